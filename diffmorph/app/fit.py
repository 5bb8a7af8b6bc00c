"""Fitting one pair's maps: the optimisation, with training snapshots and checkpoints.

A :class:`Fitter` owns one :class:`~diffmorph.core.optimise.Trainer` and one
:class:`~diffmorph.core.render.SnapshotRenderer` and reuses them for every pair it
fits (a sequence compiles its programs once). For each pair it:

1. resumes from a checkpoint if asked (checked against the pair and settings), or
   starts fresh and sets the previous run's snapshots aside (``train/.previous/``):
   they come back if the fit fails (diverges, cannot write) and are deleted once it
   succeeds, so a failed run leaves the previous run's snapshots in place;
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
import os
import re
import shutil
import threading
from pathlib import Path

import numpy as np

from ..config import MorphConfig
from ..errors import InputError, Interrupted, NonFiniteLossError, OutputError, display_path, stopped
from ..io import mapsfile
from ..io.files import save_image
from ..worker import Worker
from .inputs import Pair, match_size
from .progress import SILENT, Progress

SNAPSHOT_NAME = re.compile(r"^(a_to_b|b_to_a)_\d+\.jpg$")
PREVIOUS_SNAPSHOTS = ".previous"  # in train/: the previous run's snapshots while a fresh fit runs
SNAPSHOTS_QUEUED = 2  # snapshot steps waiting for the writer (each: two images and the net's state, ~5 MB)


@dataclasses.dataclass(frozen=True)
class WorkFiles:
    """Where a pair's optimisation writes: snapshots folder and checkpoint (None: not written)."""

    train: Path | None = None
    checkpoint: Path | None = None


# The compiled optimiser of the last settings, kept for the next morph in this process
# (a notebook's second morph at the same settings starts without tracing or compiling).
# At most one entry: compile key -> (Trainer, SnapshotRenderer). clear_compiled() frees it.
# A Fitter takes the entry out while it fits a pair and puts it back after, under
# _COMPILED_LOCK, so two threads never share one optimiser (the other compiles its own).
_COMPILED: dict = {}
_COMPILED_LOCK = threading.Lock()


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
        geometry=MorphConfig.geometry,
    )
    if config.lr_schedule == "constant":
        render_only["train_steps"] = MorphConfig.train_steps  # a schedule over the steps is compiled in
    return config.replace(**render_only)


def clear_compiled() -> None:
    """Free the compiled optimiser kept for the next morph (its memory: ~0.1 GB at 256, ~1 GB at 1024)."""
    with _COMPILED_LOCK:
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

    def _trainer_for(self, pair: Pair, guide=None):
        from ..core.optimise import Trainer
        from ..core.render import SnapshotRenderer, to_working

        working_a = to_working(pair.source, self.config.size)  # (1, S, S, 3)
        working_b = to_working(pair.target, self.config.size)
        key = compile_key(self.config)
        with _COMPILED_LOCK:  # take it out: no other thread may use it while this one fits
            taken = _COMPILED.pop(key, None)
            if taken is None:
                _COMPILED.clear()  # one at a time: free the old programs before compiling new ones
        if taken is None:
            self.trainer = Trainer(working_a, working_b, self.config)
            self.snapshots = SnapshotRenderer(self.trainer.source, self.trainer.target, self.config)
            self.stage_trainers = {}
        else:
            self.trainer, self.snapshots, self.stage_trainers = taken
            self.trainer.reset(working_a, working_b, self.config.seed)
        self._points = None if guide is None else guide.normalised
        self.trainer.set_points(self._points)
        self._pair = pair
        self._fresh_stages = set()  # coarse-stage Trainers not yet given this pair's images
        return self.trainer

    def _stage_trainer(self, size: int):
        """The Trainer of a coarse stage at working ``size``, holding this pair's images and
        point pairs (weights: loaded next)."""
        from ..core.optimise import Trainer
        from ..core.render import to_working

        images = (to_working(self._pair.source, size), to_working(self._pair.target, size))
        trainer = self.stage_trainers.get(size)
        if trainer is None:
            trainer = self.stage_trainers[size] = Trainer(*images, self.config.stage_config(size))
        elif size not in self._fresh_stages:
            trainer.reset(*images, self.config.seed)
        if size not in self._fresh_stages:
            trainer.set_points(self._points)
        self._fresh_stages.add(size)
        return trainer

    def _give_back(self) -> None:
        """Keep the compiled optimiser for the next pair or morph (of any thread)."""
        if self.trainer is not None:
            with _COMPILED_LOCK:
                _COMPILED.clear()
                _COMPILED[compile_key(self.config)] = (self.trainer, self.snapshots, self.stage_trainers)
            self.trainer = self.snapshots = None

    def fit(
        self,
        pair: Pair,
        files: WorkFiles = WorkFiles(),
        resume: bool = False,
        progress: Progress = SILENT,
        guide=None,
        force: bool = False,
    ) -> np.ndarray:
        """Optimise the maps of ``pair``.

        Args:
          pair: the inputs (uint8 ``(H, W, 3)`` each).
          files: where snapshots and checkpoints go.
          resume: continue from ``files.checkpoint``.
          progress: receives the ``optimise`` phase (step, loss).
          guide: the point pairs (:class:`~diffmorph.app.points.Guide`) or ``None``.
          force: with ``resume``, continue a checkpoint made with other point pairs.

        Returns:
          ``maps_low``: float32 ``(1, n, n, 16)``, the net's final output (finite).

        Raises:
          InputError: ``resume`` without a usable checkpoint for this pair and settings.
          OutputError: a snapshot or checkpoint cannot be written.
          NonFiniteLossError: the optimisation diverged.
          Interrupted: on Ctrl-C, after saving a checkpoint.
          Cancelled: when ``progress.cancel()`` was called, after saving a checkpoint.
        """
        from ..core.optimise import StagedTrainer

        config = self.config
        trainer = self._trainer_for(pair, guide)
        extra = guide.meta() if guide is not None else {}
        meta = mapsfile.describe(config, *pair.digests, kind=mapsfile.CHECKPOINT_KIND, **extra)
        try:
            if resume:
                self._resume(trainer, pair, files.checkpoint, progress, guide, force)
            elif files.train is not None:
                set_aside_snapshots(files.train)
        except BaseException:
            self._give_back()
            raise
        try:
            maps_low = self._run(StagedTrainer(trainer, self._stage_trainer, self.config), pair, files, meta, progress)
        except Interrupted:
            self._give_back()
            raise  # the snapshots so far are the work state --resume continues
        except BaseException:
            self._give_back()
            if files.train is not None and not resume:
                restore_snapshots(files.train)
            raise
        self._give_back()
        if files.train is not None:
            shutil.rmtree(files.train / PREVIOUS_SNAPSHOTS, ignore_errors=True)
        return maps_low

    def _run(self, staged, pair: Pair, files: WorkFiles, meta: dict, progress: Progress) -> np.ndarray:
        from ..core.optimise import is_snapshot_step

        config = self.config
        trainer = staged.final
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
                progress.check_cancelled()
                staged_run = len(config.stages()) > 1
                for step in staged.run():
                    at = f" (working size {staged.current.config.size})" if staged_run else ""
                    progress.update(step.step, f"loss {step.loss:.6f}{at}")
                    progress.check_cancelled()
                    if step.maps_low is not None:
                        _check_finite(step.maps_low, step.step)
                        images = self.snapshots(step.maps_low) if files.train is not None else ()
                        writer.put((step.step, images, staged.current.state()))
                writer.finish()
            except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or progress.cancel()
                with contextlib.suppress(Exception):
                    writer.finish()  # what was queued is written first; then the latest state
                what, saved = self._interrupted(staged.current, files, save_checkpoint)
                raise stopped(exc, what, resumable=saved) from None
            finally:
                writer.stop()
        maps_low = trainer.maps_low()
        _check_finite(maps_low, trainer.step_count)
        if not is_snapshot_step(trainer.step_count, config.train_steps) and trainer.step_count:
            save_checkpoint()  # a resumed run that had nothing left to do saved none
        return maps_low

    def _resume(self, trainer, pair: Pair, checkpoint: Path | None, progress: Progress, guide, force) -> None:
        if checkpoint is None or not checkpoint.exists():
            raise InputError(f"resume=True: no checkpoint at {display_path(checkpoint)}", setting="resume")
        meta, state = mapsfile.load_checkpoint(checkpoint)
        points = guide_key(guide)
        problems = mapsfile.mismatches(meta, self.config, *pair.digests, optimiser=True, points=points)
        only_points = not mapsfile.mismatches(meta, self.config, *pair.digests, True, mapsfile.ANY_POINTS)
        if force and only_points:
            if problems:
                progress.notice(
                    f"force=True: resuming with {mapsfile.point_change(meta.get('points', 0), guide_count(guide))}"
                )
            problems = []
        if problems:
            hint = " (force=True continues it with this run's points)" if only_points else ""
            raise InputError(
                f"resume=True: {display_path(checkpoint)} is for another morph ({'; '.join(problems)}){hint}",
                setting="resume",
            )
        try:
            trainer.load_state(state)
        except ValueError as exc:
            raise InputError(f"resume=True: {display_path(checkpoint)}: {exc}", setting="resume") from None
        recorded = state.get("stage_size")  # checkpoints of a coarse-to-fine run record their stage's working size
        stages = self.config.stages()
        expected = next((size for size, end in stages if max(trainer.step_count, 1) <= end), stages[-1][0])
        if recorded is not None and int(recorded) != expected:
            raise InputError(
                f"resume=True: {display_path(checkpoint)} was saved at working size {int(recorded)}, "
                f"but train step {trainer.step_count} runs at {expected} with these settings",
                setting="resume",
            )
        if trainer.step_count > self.config.train_steps:
            raise InputError(
                f"resume=True: {display_path(checkpoint)} is at train step {trainer.step_count}, "
                f"beyond the {self.config.train_steps} asked for (train_steps)",
                setting="resume",
            )
        progress.notice(f"resuming at train step {trainer.step_count} of {self.config.train_steps}")

    @staticmethod
    def _interrupted(trainer, files: WorkFiles, save_checkpoint) -> tuple[str, bool]:
        """What to say after Ctrl-C or a cancel during optimisation (the words after
        "interrupted"/"cancelled"), after saving a checkpoint; and whether one was saved."""
        if trainer.step_count == 0:
            return "before the first train step; nothing was saved", False
        if files.checkpoint is None:
            return f"at train step {trainer.step_count}", False
        try:
            save_checkpoint()
        except (KeyboardInterrupt, OutputError) as exc:
            reason = "interrupted again" if isinstance(exc, KeyboardInterrupt) else str(exc)
            return f"at train step {trainer.step_count}; the checkpoint was not saved ({reason})", False
        return f"at train step {trainer.step_count}; checkpoint saved in {display_path(files.checkpoint)}", True


def guide_key(guide) -> tuple[int, str] | None:
    """``(count, sha256)`` of a :class:`~diffmorph.app.points.Guide`, as maps files compare them."""
    return None if guide is None else (guide.count, guide.digest)


def guide_count(guide) -> int:
    return 0 if guide is None else guide.count


def _check_finite(maps_low: np.ndarray, step: int) -> None:
    if not np.isfinite(maps_low).all():
        raise NonFiniteLossError(
            f"the optimisation diverged at train step {step} (the maps are not finite); "
            f"the scales are likely too large (add_scale, mult_scale, warp_scale)"
        )


def clear_snapshots(folder: Path) -> None:
    """Delete the training snapshots (``a_to_b_N.jpg``, ``b_to_a_N.jpg``) of an earlier run."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if SNAPSHOT_NAME.match(path.name):
            path.unlink(missing_ok=True)


def snapshot_files(folder: Path) -> list[Path]:
    """The training snapshots (``a_to_b_N.jpg``, ``b_to_a_N.jpg``) in ``folder`` (none if it is not a folder)."""
    try:
        return [p for p in folder.iterdir() if SNAPSHOT_NAME.match(p.name) and p.is_file()]
    except OSError:  # no such folder, a name too long...: the checks that follow say what is wrong
        return []


def set_aside_snapshots(folder: Path) -> None:
    """Before a fresh fit: move the snapshots in ``folder`` to ``folder/.previous/``.

    If ``.previous`` is already there (a fresh run was interrupted before succeeding),
    it holds the snapshots of the last finished run, and the ones in ``folder`` are the
    interrupted run's: those are deleted instead.

    Raises:
      OutputError: the snapshots cannot be moved.
    """
    if not folder.is_dir():
        return
    keep = folder / PREVIOUS_SNAPSHOTS
    current = snapshot_files(folder)
    try:
        if keep.is_dir():
            for path in current:
                path.unlink(missing_ok=True)
        elif current:
            keep.mkdir()
            for path in current:
                os.replace(path, keep / path.name)
    except OSError as exc:
        raise OutputError(
            f"cannot set the previous snapshots aside in {display_path(folder)}: {exc.strerror or exc}"
        ) from None


def restore_snapshots(folder: Path) -> None:
    """After a failed fresh fit: delete its snapshots and move the previous run's back (best effort)."""
    keep = folder / PREVIOUS_SNAPSHOTS
    if not keep.is_dir():
        return
    with contextlib.suppress(OSError):
        clear_snapshots(folder)
        for path in keep.iterdir():
            os.replace(path, folder / path.name)
        keep.rmdir()
