"""Fitting one pair's maps: the optimisation, with training snapshots and checkpoints.

A :class:`Fitter` owns one :class:`~diffmorph.core.optimise.Trainer` and one
:class:`~diffmorph.core.render.SnapshotRenderer` and reuses them for every pair it
fits (a sequence compiles its programs once). For each pair it:

1. resumes from a checkpoint if asked (checked against the pair and settings), or
   starts fresh and removes the previous run's snapshots;
2. runs the train steps, reporting each to the :class:`~diffmorph.app.progress.Progress`;
   at the original's snapshot steps (plus the last) it writes ``a_to_b_N.jpg`` and
   ``b_to_a_N.jpg`` (at the source's size) and a checkpoint, both atomically (rendered
   on the training thread, encoded and written by a background
   :class:`~diffmorph.worker.Worker` while the training goes on);
3. checks the final maps are finite (a step can diverge on its very last update).

Ctrl-C saves a checkpoint (when a step was done) and raises
:class:`~diffmorph.errors.Interrupted` saying what was kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from pathlib import Path

import numpy as np

from ..config import MorphConfig
from ..errors import InputError, Interrupted, NonFiniteLossError, OutputError, display_path
from ..io import mapsfile
from ..io.files import save_image
from ..worker import Worker
from .inputs import Pair, match_size
from .progress import SILENT, Progress

SNAPSHOT_NAME = re.compile(r"^(a_to_b|b_to_a)_\d+\.jpg$")
SNAPSHOTS_QUEUED = 2  # snapshot steps waiting for the writer (each: two images and the net's state, ~5 MB)


@dataclasses.dataclass(frozen=True)
class WorkFiles:
    """Where a pair's optimisation writes: snapshots folder and checkpoint (None: not written)."""

    train: Path | None = None
    checkpoint: Path | None = None


# The compiled optimiser of the last settings, kept for the next morph in this process
# (a notebook's second morph at the same settings starts without tracing or compiling).
# At most one entry: compile key -> (Trainer, SnapshotRenderer). clear_compiled() frees it.
_COMPILED: dict = {}


def compile_key(config: MorphConfig) -> MorphConfig:
    """The settings an optimiser's compiled programs depend on (the rest set to defaults)."""
    render_only = dict(
        frames=MorphConfig.frames,
        fps=MorphConfig.fps,
        seed=None,
        render=MorphConfig.render,
        render_kernel=MorphConfig.render_kernel,
        pacing=MorphConfig.pacing,
        ease=MorphConfig.ease,
        hold=MorphConfig.hold,
        colour_path=MorphConfig.colour_path,
    )
    if config.lr_schedule == "constant":
        render_only["train_steps"] = MorphConfig.train_steps  # a schedule over the steps is compiled in
    return config.replace(**render_only)


def clear_compiled() -> None:
    """Free the compiled optimiser kept for the next morph (its memory: ~0.1 GB at 256, ~1 GB at 1024)."""
    _COMPILED.clear()


class Fitter:
    """Fits the maps of pairs of images of one config, reusing the compiled programs.

    The first pair takes the optimiser kept from an earlier morph of the same compile
    settings (:func:`compile_key`) if there is one; each later pair resets it.

    Args:
      config: the morph's settings (working size, scales, train steps, seed...).
    """

    def __init__(self, config: MorphConfig):
        self.config = config
        self.trainer = None
        self.snapshots = None
        self.stage_trainers: dict = {}  # working size -> Trainer of a coarse stage (size_schedule)

    def _trainer_for(self, pair: Pair):
        from ..core.optimise import Trainer
        from ..core.render import SnapshotRenderer, to_working

        working_a = to_working(pair.source, self.config.size)  # (1, S, S, 3)
        working_b = to_working(pair.target, self.config.size)
        key = compile_key(self.config)
        if self.trainer is None and key in _COMPILED:
            self.trainer, self.snapshots, self.stage_trainers = _COMPILED[key]
        if self.trainer is None:
            _COMPILED.clear()  # one at a time: free the old programs before compiling new ones
            self.trainer = Trainer(working_a, working_b, self.config)
            self.snapshots = SnapshotRenderer(self.trainer.source, self.trainer.target, self.config)
            self.stage_trainers = {}
            _COMPILED[key] = (self.trainer, self.snapshots, self.stage_trainers)
        else:
            self.trainer.reset(working_a, working_b, self.config.seed)
        self._pair = pair
        self._fresh_stages = set()  # coarse-stage Trainers not yet given this pair's images
        return self.trainer

    def _stage_trainer(self, size: int):
        """The Trainer of a coarse stage at working ``size``, holding this pair's images (weights: loaded next)."""
        from ..core.optimise import Trainer
        from ..core.render import to_working

        images = (to_working(self._pair.source, size), to_working(self._pair.target, size))
        trainer = self.stage_trainers.get(size)
        if trainer is None:
            trainer = self.stage_trainers[size] = Trainer(*images, self.config.stage_config(size))
        elif size not in self._fresh_stages:
            trainer.reset(*images, self.config.seed)
        self._fresh_stages.add(size)
        return trainer

    def fit(
        self, pair: Pair, files: WorkFiles = WorkFiles(), resume: bool = False, progress: Progress = SILENT
    ) -> np.ndarray:
        """Optimise the maps of ``pair``.

        Args:
          pair: the inputs (uint8 ``(H, W, 3)`` each).
          files: where snapshots and checkpoints go.
          resume: continue from ``files.checkpoint``.
          progress: receives the ``optimise`` phase (step, loss).

        Returns:
          ``maps_low``: float32 ``(1, n, n, 16)``, the net's final output (finite).

        Raises:
          InputError: ``resume`` without a usable checkpoint for this pair and settings.
          OutputError: a snapshot or checkpoint cannot be written.
          NonFiniteLossError: the optimisation diverged.
          Interrupted: on Ctrl-C, after saving a checkpoint.
        """
        from ..core.optimise import StagedTrainer, is_snapshot_step

        config = self.config
        trainer = self._trainer_for(pair)
        staged = StagedTrainer(trainer, self._stage_trainer)
        meta = mapsfile.describe(config, *pair.digests, kind=mapsfile.CHECKPOINT_KIND)
        if resume:
            self._resume(trainer, pair, files.checkpoint, progress)
        elif files.train is not None:
            clear_snapshots(files.train)
        height, width = pair.source.shape[:2]

        def save_checkpoint(state=None):
            if files.checkpoint is not None:
                state = staged.current.state() if state is None else state
                stage = np.asarray(staged.stage_size(max(int(state["step"]), 1)), np.int64)
                mapsfile.save(files.checkpoint, meta, **state, stage_size=stage)

        def write(step: int, images, state: dict):
            """Encode and write one snapshot step's files, off the training thread."""
            for name, image in zip(("a_to_b", "b_to_a"), images):
                save_image(files.train / f"{name}_{step}.jpg", match_size(image, height, width))
            save_checkpoint(state)

        # The snapshots are rendered on the training thread (rendered beside a train step,
        # their buffers would add ~0.45 GB to the peak at 1024, for no time saved on 2
        # cores); a worker encodes and writes them and the checkpoint while training goes on.
        writer = Worker(lambda item: write(*item), SNAPSHOTS_QUEUED, "diffmorph-snapshots")
        with progress.phase("optimise", config.train_steps, trainer.step_count):
            try:
                staged_run = len(config.stages()) > 1
                for step in staged.run():
                    at = f" (working size {staged.current.config.size})" if staged_run else ""
                    progress.update(step.step, f"loss {step.loss:.6f}{at}")
                    if step.maps_low is not None:
                        _check_finite(step.maps_low, step.step)
                        images = self.snapshots(step.maps_low) if files.train is not None else ()
                        writer.put((step.step, images, staged.current.state()))
                writer.finish()
            except KeyboardInterrupt:
                with contextlib.suppress(Exception):
                    writer.finish()  # what was queued is written first; then the latest state
                message, saved = self._interrupted(staged.current, files, save_checkpoint)
                raise Interrupted(message, resumable=saved) from None
            finally:
                writer.stop()
        maps_low = trainer.maps_low()
        _check_finite(maps_low, trainer.step_count)
        if not is_snapshot_step(trainer.step_count, config.train_steps) and trainer.step_count:
            save_checkpoint()  # a resumed run that had nothing left to do saved none
        return maps_low

    def _resume(self, trainer, pair: Pair, checkpoint: Path | None, progress: Progress) -> None:
        if checkpoint is None or not checkpoint.exists():
            raise InputError(f"--resume: no checkpoint at {display_path(checkpoint)}")
        meta, state = mapsfile.load_checkpoint(checkpoint)
        problems = mapsfile.mismatches(meta, self.config, *pair.digests, optimiser=True)
        if problems:
            raise InputError(f"--resume: {display_path(checkpoint)} is for another morph ({'; '.join(problems)})")
        try:
            trainer.load_state(state)
        except ValueError as exc:
            raise InputError(f"--resume: {display_path(checkpoint)}: {exc}") from None
        recorded = state.get("stage_size")  # checkpoints of a coarse-to-fine run record their stage's working size
        stages = self.config.stages()
        expected = next((size for size, end in stages if max(trainer.step_count, 1) <= end), stages[-1][0])
        if recorded is not None and int(recorded) != expected:
            raise InputError(
                f"--resume: {display_path(checkpoint)} was saved at working size {int(recorded)}, "
                f"but train step {trainer.step_count} runs at {expected} with these settings"
            )
        if trainer.step_count > self.config.train_steps:
            raise InputError(
                f"--resume: {display_path(checkpoint)} is at train step {trainer.step_count}, "
                f"beyond the {self.config.train_steps} asked for (-e)"
            )
        progress.notice(f"resuming at train step {trainer.step_count} of {self.config.train_steps}")

    @staticmethod
    def _interrupted(trainer, files: WorkFiles, save_checkpoint) -> tuple[str, bool]:
        """The message for Ctrl-C during optimisation, after saving a checkpoint; and whether one was saved."""
        if trainer.step_count == 0:
            return "interrupted before the first train step; nothing was saved", False
        if files.checkpoint is None:
            return f"interrupted at train step {trainer.step_count}", False
        try:
            save_checkpoint()
        except (KeyboardInterrupt, OutputError) as exc:
            reason = "interrupted again" if isinstance(exc, KeyboardInterrupt) else str(exc)
            return f"interrupted at train step {trainer.step_count}; the checkpoint was not saved ({reason})", False
        return (
            f"interrupted at train step {trainer.step_count}; checkpoint saved in {display_path(files.checkpoint)}"
        ), True


def _check_finite(maps_low: np.ndarray, step: int) -> None:
    if not np.isfinite(maps_low).all():
        raise NonFiniteLossError(
            f"the optimisation diverged at train step {step} (the maps are not finite); "
            f"the scales are likely too large (-a, -m, -w)"
        )


def clear_snapshots(folder: Path) -> None:
    """Delete the training snapshots (``a_to_b_N.jpg``, ``b_to_a_N.jpg``) of an earlier run."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if SNAPSHOT_NAME.match(path.name):
            path.unlink(missing_ok=True)
