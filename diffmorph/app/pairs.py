"""One pair's maps in its work folder: finished, resumable, or fitted there.

Shared by the pipelines that fit many pairs (a sequence's pairs, a batch's rows) in this
process or on cluster workers (:mod:`diffmorph.app.cluster`): each pair has a folder
with the morph command's layout (:class:`~diffmorph.app.layout.MorphPaths`), whose
``morph/maps.npz`` says the pair is finished and whose ``morph/checkpoint.npz`` lets an
interrupted pair resume.

Finished means "made as asked now": the maps file records every setting it was made with
(``"settings"``, :func:`~diffmorph.app.publish.settings_record`), and a published set also
its output options (``"outputs"``); :func:`finished_maps` compares the settings the maps
depend on, :func:`finished_outputs` all of them, the options and the files themselves.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..config import RENDER_SETTINGS, MorphConfig
from ..errors import Cancelled, InputError, Interrupted, TimeLimitError
from ..io import mapsfile
from ..io.files import ensure_folder
from ..io.outputs import is_earlier_output, read_manifest
from .fit import Fitter, WorkFiles, guide_key
from .inputs import Pair
from .layout import MorphPaths
from .progress import SILENT, Deadline, Progress
from .publish import outputs_record, settings_record


def finished_maps(paths: MorphPaths, config: MorphConfig, digests, guide=None) -> np.ndarray | None:
    """The pair's saved maps if they were finished for these pixels, settings and point pairs
    (``guide``, a :class:`~diffmorph.app.points.Guide` or None), else None.

    Every setting but the render settings (:data:`~diffmorph.config.RENDER_SETTINGS`) counts
    where the file records them all (``"settings"``): a seed or loss weight changed since makes
    the maps unfinished; other render settings only call for rendering them again.
    """
    try:
        saved = mapsfile.load_maps(paths.maps_npz)
    except InputError:
        return None
    if (
        mapsfile.mismatches(saved.meta, config, *digests, optimiser=True, points=guide_key(guide))
        or saved.meta.get("steps_done") != config.train_steps
    ):
        return None
    recorded = saved.meta.get("settings")
    if isinstance(recorded, dict):
        now = settings_record(config)
        if any(recorded.get(key) != value for key, value in now.items() if key not in RENDER_SETTINGS):
            return None
    return saved.maps_low


def finished_outputs(paths: MorphPaths, config: MorphConfig, options, digests, guide=None) -> bool:
    """Whether the pair's folder holds a complete set published for exactly what is asked now.

    That is: finished maps (:func:`finished_maps`) whose file records this run's every setting,
    render settings included (frames, fps, hold, pacing...), and its output options
    (formats, GIF size, boomerang, report); and every output of that set (maps file,
    ``preds.npy``, strip, maps image, each format's file or folder, the report and the point
    files when asked) still there as published (its size and time in the set's manifest).
    Anything else (an earlier version's set, other settings, a deleted or edited output): False.
    """
    if finished_maps(paths, config, digests, guide) is None:
        return False
    meta = mapsfile.load_maps(paths.maps_npz).meta
    if meta.get("settings") != settings_record(config) or meta.get("outputs") != outputs_record(options):
        return False
    wanted = [paths.maps_npz, paths.preds, paths.result, paths.maps_jpg]
    wanted += [path for fmt, path in paths.video_files().items() if fmt in options.formats]
    wanted += paths.report_files if options.report else []
    wanted += [paths.points_csv, paths.points_jpg] if guide is not None else []
    manifest = read_manifest(paths.root, "morph")
    return all(is_earlier_output(path, manifest, paths.root) for path in wanted)


def resumable(paths: MorphPaths, config: MorphConfig, digests, guide=None) -> bool:
    """Whether the pair's checkpoint is for these pixels, settings and point pairs, at a step <= train_steps."""
    if not paths.checkpoint.is_file():
        return False
    try:
        meta, state = mapsfile.load_checkpoint(paths.checkpoint)
        step = int(state["step"])
    except (InputError, KeyError, TypeError, ValueError):
        return False
    points = guide_key(guide)
    return (
        not mapsfile.mismatches(meta, config, *digests, optimiser=True, points=points)
        and 0 < step <= config.train_steps
    )


def checkpoint_step(paths: MorphPaths) -> int:
    """The train step of the pair's checkpoint (0 when there is none or it cannot be read)."""
    try:
        return int(mapsfile.load_checkpoint(paths.checkpoint)[1]["step"])
    except (InputError, KeyError, TypeError, ValueError, OSError):
        return 0


@dataclasses.dataclass(frozen=True)
class Fitted:
    """One pair's fit: the maps (float32 ``(1, n, n, 16)``), the step it resumed from (0: from the
    start) and the seconds it took."""

    maps_low: np.ndarray
    resumed_from: int
    seconds: float


def check_time_limit(seconds) -> float | None:
    """``pair_time_limit`` as a float of seconds > 0 (or None: no limit).

    Raises:
      InputError: anything else.
    """
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < float("inf"):
        raise InputError(
            f"pair_time_limit must be a number of seconds > 0, or None for no limit (got {seconds!r})",
            setting="pair_time_limit",
        )
    return float(seconds)


def fit_in_folder(
    pair: Pair,
    paths: MorphPaths,
    config: MorphConfig,
    fitter: Fitter | None = None,
    progress: Progress = SILENT,
    guide=None,
    time_limit: float | None = None,
) -> Fitted:
    """Fit ``pair`` with snapshots and checkpoints in ``paths`` (resuming its checkpoint when it
    is for this pair, these settings and these point pairs, ``guide``). The maps file is not
    written: the caller does.

    ``time_limit``: seconds the fit may take (checked at every train step; None: no limit);
    past it the fit stops as a cancel would, with its checkpoint saved, so a later run without
    the limit (or with a longer one) resumes it.

    Raises:
      OutputError, NonFiniteLossError, Interrupted: as :meth:`Fitter.fit`.
      TimeLimitError: the fit went past ``time_limit`` (says what was kept).
    """
    started = time.perf_counter()
    for folder in (paths.root, paths.morph, paths.train):
        ensure_folder(folder)
    resume = resumable(paths, config, pair.digests, guide)
    step = checkpoint_step(paths) if resume else 0
    deadline = Deadline(progress, time_limit) if time_limit is not None else None
    try:
        maps_low = (fitter or Fitter(config)).fit(
            pair, WorkFiles(paths.train, paths.checkpoint), resume, deadline or progress, guide
        )
    except Cancelled as exc:
        if deadline is None or not deadline.expired:
            raise
        what = exc.message.removeprefix("cancelled ")
        raise TimeLimitError(f"stopped at its time limit of {time_limit:g} s (pair_time_limit) {what}") from None
    return Fitted(maps_low, step, time.perf_counter() - started)


@dataclasses.dataclass(frozen=True)
class PairJob:
    """A pair to fit: ``index`` (its place in the caller's list), the pixels, its work folder,
    a label for messages (``pair 2/5``, ``row 3``), the image files it came from
    (``(source, target)``, None for arrays: a cluster with a shared folder reads them there)
    and its point pairs (a :class:`~diffmorph.app.points.Guide`, or None)."""

    index: int
    pair: Pair
    paths: MorphPaths
    label: str
    files: tuple = (None, None)
    guide: object = None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What fitting a :class:`PairJob` gave: ``fitted`` or ``error`` (one of the user errors, with
    its one-line message); ``worker`` says where it ran (``pid 123`` or ``pid 123 on node ab12cd34``)
    and ``peak_mb`` that process's peak resident memory so far (MB)."""

    job: PairJob
    fitted: Fitted | None = None
    error: Exception | None = None
    worker: str = ""
    peak_mb: float = 0.0


def peak_memory_mb() -> float:
    """This process's peak resident memory in MB (0 where the platform does not say)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 0.0
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def fit_serially(jobs, config: MorphConfig, progress: Progress = SILENT, time_limit: float | None = None):
    """Fit ``jobs`` one after another in this process with one :class:`Fitter` (compiled once),
    each within ``time_limit`` seconds (None: no limit; see :func:`fit_in_folder`).

    Yields an :class:`Outcome` per job, in order; a job that fails with a user error
    (:data:`~diffmorph.errors.USER_ERRORS`) gives an outcome with ``error`` and the next one runs
    (a caller that stops iterating fits no more).

    Raises:
      Cancelled: ``progress.cancel()`` was called: ``"cancelled before LABEL"`` between jobs,
        or the fit's own message followed by ``" (LABEL)"`` (its checkpoint is saved).
      Interrupted: on Ctrl-C, the fit's message followed by ``" (LABEL)"`` (its checkpoint is saved).
    """
    import os

    from ..errors import USER_ERRORS

    fitter = Fitter(config)
    for job in jobs:
        try:
            progress.check_cancelled()
        except Cancelled:
            raise Cancelled(f"cancelled before {job.label}") from None
        try:
            fitted = fit_in_folder(job.pair, job.paths, config, fitter, progress, job.guide, time_limit)
        except Interrupted as exc:  # or Cancelled: the same class, with the pair named
            raise type(exc)(f"{exc.message} ({job.label})", exc.resumable) from None
        except USER_ERRORS as exc:
            yield Outcome(job, error=exc, worker=f"pid {os.getpid()}", peak_mb=peak_memory_mb())
            continue
        yield Outcome(job, fitted, worker=f"pid {os.getpid()}", peak_mb=peak_memory_mb())
