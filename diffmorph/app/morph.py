"""The pair pipeline: files in, a morph's outputs out.

:func:`morph` is the one path from a source and a target to the outputs::

    load and match the pair -> optimise (or load saved maps) -> render frames -> writers
      -> publish the set (maps file, preds.npy, maps image, strip, video, GIF, frames)

Every command, the public API, the notebook and the benchmarks use it. The output
folder is locked for the run (:class:`~diffmorph.io.outputs.FolderLock`) and its
outputs are published as one set (:class:`~diffmorph.io.outputs.OutputSet`): a
failure or Ctrl-C leaves the previous set complete. Layout (the original's)::

    OUT/train/a_to_b_N.jpg, b_to_a_N.jpg   snapshots during optimisation
    OUT/preds.npy                          the final maps at the working size, (1, S, S, 16)
    OUT/morph/morph.mp4, morph.gif         the video and the GIF
    OUT/morph/result.jpg, maps.jpg         the strip and the maps image
    OUT/morph/maps.npz                     the net's output and its settings (render again with maps=)
    OUT/morph/checkpoint.npz               net and Adam state (resume=True; not part of the set)
    OUT/morph/frames/frame_00000.png ...   numbered frames (format "frames")
    OUT/morph/report.json, report.png      measures of the frames (report=True)
    OUT/morph/points.csv, points.jpg       the point pairs used and their picture (points=)

A run publishes exactly its outputs: those of an earlier run that it does not write
(a GIF when only an MP4 is asked for, an old report) are removed with the publish.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..config import MorphConfig
from ..errors import InputError, OutputError, display_path, stopped
from ..io import mapsfile
from ..io.files import ensure_folder, save_image, save_npy
from ..io.outputs import FolderLock, OutputSet, is_earlier_output, read_manifest, recover, refuse_inputs, sweep
from ..io.points import write_points
from .fit import Fitter, WorkFiles, snapshot_files
from .inputs import check_types, load_pair
from .points import guide_for
from .progress import SILENT, Progress
from .report import Measurement
from .runtime import import_tensorflow_quietly
from .saved_maps import resolve_maps
from .stream import PairFrames, stream_frames
from .write import OutputOptions, check_frames_folder, check_outputs, write_video

LAYOUT = {  # attribute of MorphPaths -> path below the output folder (the original's layout)
    "train": "train",
    "morph": "morph",
    "preds": "preds.npy",
    "mp4": "morph/morph.mp4",
    "gif": "morph/morph.gif",
    "result": "morph/result.jpg",
    "maps_jpg": "morph/maps.jpg",
    "maps_npz": "morph/maps.npz",
    "checkpoint": "morph/checkpoint.npz",
    "report_json": "morph/report.json",
    "report_png": "morph/report.png",
    "points_csv": "morph/points.csv",
    "points_jpg": "morph/points.jpg",
    "default_frames": "morph/frames",
}


@dataclasses.dataclass(frozen=True)
class MorphPaths:
    """Where one morph writes, below ``root``: ``paths.mp4`` is ``root/morph/morph.mp4``, and
    so on for every name in :data:`LAYOUT`.

    ``frames_dir`` overrides where numbered frames go (default ``root/morph/frames``).
    """

    root: Path
    frames_dir: Path | None = None

    def __getattr__(self, name: str) -> Path:
        if name not in LAYOUT:
            raise AttributeError(name)
        return self.root / LAYOUT[name]

    @property
    def frames(self) -> Path:
        return self.frames_dir if self.frames_dir is not None else self.default_frames

    @property
    def report_files(self) -> list[Path]:
        return [self.report_json, self.report_png]

    def video_files(self) -> dict[str, Path]:
        return {"mp4": self.mp4, "gif": self.gif, "frames": self.frames}

    def set_files(self) -> list[Path]:
        """Every output a run may publish at its default place (retired when not written).

        A ``frames_dir`` chosen by the user is never in it: it is replaced when frames
        are written there, and never removed otherwise.
        """
        return [
            self.preds,
            self.mp4,
            self.gif,
            self.result,
            self.maps_jpg,
            self.maps_npz,
            self.default_frames,
            *self.report_files,
            self.points_csv,
            self.points_jpg,
        ]


@dataclasses.dataclass(frozen=True)
class MorphResult:
    """What :func:`morph` made.

    maps_low: float32 ``(1, n, n, 16)``, the net's final output (the maps).
    config: the settings used (with ``maps=``, the maps settings come from the file).
    paths: where the outputs are. frames: frames written. train_steps: steps the maps had.
    """

    maps_low: np.ndarray
    config: MorphConfig
    paths: MorphPaths
    frames: int
    train_steps: int


def prepare_folders(paths: MorphPaths, options: OutputOptions, optimising: bool) -> None:
    """Check and create the output folders before any work (fail fast).

    Raises:
      InputError: the output folder or the frames folder is an existing file, or the
        frames folder holds other files or frames no earlier run published there; an
        output name is taken by a folder.
      OutputError: a folder cannot be created or is not writable; ffmpeg is missing.
    """
    for folder, what, setting in (
        (paths.root, "output folder", "out_dir"),
        (paths.frames, "frames folder", "frames_dir"),
    ):
        try:
            if folder.exists() and not folder.is_dir():
                raise InputError(f"the {what} {display_path(folder)} exists and is not a folder", setting=setting)
        except OSError as exc:
            raise InputError(
                f"the {what} {display_path(folder)} cannot be used ({exc.strerror or exc})", setting=setting
            ) from None
    if "frames" in options.formats:
        check_frames_folder(paths.frames)
        frames = paths.frames
        if (
            frames.is_dir()
            and any(frames.iterdir())
            and not is_earlier_output(frames, read_manifest(paths.root, "morph"), paths.root)
        ):
            raise InputError(
                f"the frames folder {display_path(frames)} holds frames an earlier run into "
                f"{display_path(paths.root)} did not write (or changed since); it would be replaced as a whole: "
                f"choose an empty or new folder (or delete it yourself if it is an old output)"
            )
    for folder in (paths.root, paths.morph) + ((paths.train,) if optimising else ()):
        ensure_folder(folder)
    if "frames" in options.formats:
        ensure_folder(paths.frames.parent)
    for file in (paths.preds, paths.mp4, paths.gif, paths.result, paths.maps_jpg, paths.maps_npz, paths.checkpoint):
        if file.is_dir():
            raise InputError(f"{display_path(file)} is a folder; cannot write the output there", setting="out_dir")
    if "mp4" in options.formats:
        check_ffmpeg()


def check_ffmpeg() -> None:
    """Raise OutputError unless an ffmpeg for the MP4 writer is there (one clear line)."""
    from ..io import video

    checker = getattr(video, "check_ffmpeg", None)
    if checker is not None:
        checker()


def morph(
    source,
    target,
    out_dir=".",
    config: MorphConfig | None = None,
    *,
    maps=None,
    explicit=None,
    resume: bool = False,
    force: bool = False,
    options: OutputOptions | None = None,
    frames_dir=None,
    points=None,
    progress: Progress = SILENT,
) -> MorphResult:
    """Morph ``source`` into ``target`` and write the outputs under ``out_dir``.

    Args:
      source, target: image files, or uint8 ``(H, W, 3)`` RGB arrays; the target is
        resized to the source's size.
      out_dir: the output folder (created; the layout is in the module docstring).
      config: the settings (default :class:`MorphConfig`, the original's).
      maps: render from saved maps instead of optimising: a maps file (its maps
        settings are used unless ``config`` is given; see ``explicit``) or a float32
        ``(1, n, n, 16)`` array.
      explicit: with a maps file, the names of the settings of ``config`` the caller
        set on purpose (a command line: the flags given); the file's maps settings
        replace ``config``'s others, so a preset's values give way to the file's
        (:func:`~diffmorph.app.saved_maps.settings_for_maps`). None: all of ``config`` is explicit.
      resume: continue the optimisation from ``out_dir/morph/checkpoint.npz``.
      force: with ``maps``, use maps made for other images, or explicit settings that
        contradict the file's; with ``resume``, continue a checkpoint made with other
        point pairs.
      options: formats, GIF size, boomerang (:class:`~diffmorph.app.write.OutputOptions`).
      frames_dir: where numbered frames go (default ``out_dir/morph/frames``).
      points: point pairs that guide the optimisation (a guided morph; default none):
        an ``(N, 4)`` array of rows ``(source_x, source_y, target_x, target_y)`` in each
        image's own pixels (origin at the centre of the top-left pixel), a list of
        ``{"source": [x, y], "target": [x, y]}``, a ``.csv``/``.json`` file
        (:func:`diffmorph.io.points.read_points`), or ``"auto"`` (found by
        :func:`diffmorph.app.points.find_points`; too few: unguided, with a notice). The
        pairs used are written to ``morph/points.csv`` and drawn in ``morph/points.jpg``;
        weight: ``config.point_weight``. With points, ``config.point_prior`` and
        ``config.geometry`` ``"auto"`` become ``"tps"`` and ``"between"`` (the
        result's ``config`` says so). Not with ``maps`` (saved maps need no points).
      progress: receives notices and the ``optimise`` and ``render`` phases.

    Returns:
      :class:`MorphResult`.

    Raises:
      InputError: unusable inputs, maps or settings (any argument of the wrong type or
        range, named in the message), outputs that could not be written whatever the
        work (a strip wider than JPEG allows, a GIF over its memory budget), output paths
        that are files, or outputs that would replace an input or a folder holding one
        (nothing is written).
      OutputError: an output cannot be written, or another run holds the folder
        (the previous outputs stay complete).
      NonFiniteLossError: the optimisation diverged.
      Interrupted: Ctrl-C; says what was kept.
      Cancelled: ``progress.cancel()`` was called; says what was kept (a checkpoint:
        the same call with ``resume=True`` continues).

    Example:
      Two made-up 32x24 images, working size 32, 2 train steps, 3 frames, a GIF only:

      >>> import tempfile
      >>> from pathlib import Path
      >>> import numpy as np
      >>> import diffmorph
      >>> dark, light = np.zeros((24, 32, 3), np.uint8), np.full((24, 32, 3), 200, np.uint8)
      >>> config = diffmorph.MorphConfig(size=32, train_steps=2, frames=3, seed=0)
      >>> with tempfile.TemporaryDirectory() as out:
      ...     result = diffmorph.morph(dark, light, out, config, options=diffmorph.OutputOptions(formats=("gif",)))
      ...     sorted(p.name for p in (Path(out) / "morph").iterdir())
      ['checkpoint.npz', 'maps.jpg', 'maps.npz', 'morph.gif', 'result.jpg']
      >>> result.frames, result.train_steps, result.maps_low.shape
      (3, 2, (1, 84, 84, 16))
    """
    options = OutputOptions() if options is None else options
    check_types(options=(options, OutputOptions), resume=(resume, bool), force=(force, bool))
    if config is not None:
        check_types(config=(config, MorphConfig))
    for name, folder in (("out_dir", out_dir), ("frames_dir", frames_dir)):
        if (folder is not None or name == "out_dir") and (
            not isinstance(folder, (str, os.PathLike)) or not str(folder).strip()
        ):
            raise InputError(f"{name} must be a folder path (got {folder!r})")
    if maps is not None and resume:
        raise InputError("maps and resume=True cannot be combined", setting="resume")
    if maps is not None and points is not None:
        raise InputError(
            "points guide an optimisation; maps are rendered as saved (leave points out)", setting="points"
        )
    paths = MorphPaths(Path(out_dir), Path(frames_dir) if frames_dir is not None else None)
    refuse_inputs(paths.set_files() + [paths.frames, paths.checkpoint, *snapshot_files(paths.train)], [source, target])
    pair = load_pair(source, target, progress)
    guide = guide_for(points, pair.source, pair.target, pair.target_size, progress)
    if maps is not None:
        maps_low, config, steps_done = resolve_maps(maps, pair, config, force, explicit, progress)
    else:
        config = config or MorphConfig()
        if guide is not None:  # point_prior and geometry "auto": the guided choices (recorded in the maps file)
            config = config.for_guide(True)
        maps_low, steps_done = None, config.train_steps
    check_outputs(pair.source.shape[:2], 1, config, options)
    prepare_folders(paths, options, optimising=maps is None)
    with FolderLock(paths.root):  # before the heavy work: a second run on the folder is refused at once
        import_tensorflow_quietly()
        recover(paths.root, "morph")
        sweep(paths.set_files() + [paths.checkpoint, paths.frames])
        if maps_low is None:
            files = WorkFiles(paths.train, paths.checkpoint)
            maps_low = Fitter(config).fit(pair, files, resume, progress, guide, force)
        frames = _publish(pair, maps_low, config, paths, options, steps_done, progress, maps is None, guide)
    return MorphResult(maps_low, config, paths, frames, steps_done)


def _publish(
    pair,
    maps_low,
    config,
    paths: MorphPaths,
    options: OutputOptions,
    steps_done: int,
    progress: Progress,
    fitted: bool,
    guide=None,
) -> int:
    """Write every output of the set under temporary names, then publish them together."""
    from ..core.model import upsample_maps

    kept = f"; the optimised maps are kept in {display_path(paths.checkpoint)}" if fitted else ""
    measurement = None
    try:
        with OutputSet(paths.root, "morph") as outputs:
            extra = guide.meta() if guide is not None else {}
            mapsfile.save_maps(outputs.stage(paths.maps_npz), maps_low, config, pair.digests, steps_done, **extra)
            if guide is not None:
                write_points(outputs.stage(paths.points_csv), guide.pixels)
                save_image(outputs.stage(paths.points_jpg), guide.drawing(pair.source, pair.target), quality=90)
            save_npy(outputs.stage(paths.preds), upsample_maps(maps_low, config.size).numpy())
            files = {fmt: path for fmt, path in paths.video_files().items() if fmt in options.formats}
            if options.report:
                measurement = Measurement()
            frames = write_video(
                [PairFrames(pair.source, pair.target, maps_low, paths.result, paths.maps_jpg)],
                config,
                files,
                options,
                outputs,
                progress,
                measurement,
            )
            if measurement is not None:
                points = guide.count if guide is not None else 0
                from .report import alignment_entry

                aligned = alignment_entry(
                    maps_low, config, None if guide is None else guide.normalised, maps_path=paths.maps_npz
                )
                stage_report(
                    outputs, measurement, paths.report_files, pair.source, pair.target, paths.morph, points, aligned
                )
            for path in paths.set_files():
                if fitted or path not in (paths.points_csv, paths.points_jpg):  # saved maps keep their points
                    outputs.retire(path)  # what this run wrote is staged, so not retired
            outputs.publish()
    except OutputError as exc:
        hint = " (resume with resume=True to write the outputs)" if fitted else ""
        raise OutputError(f"{exc}{kept}{hint}", setting=exc.setting) from None
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or progress.cancel()
        raise stopped(
            exc, f"while writing the outputs; the previous outputs are unchanged{kept}", resumable=fitted
        ) from None
    finally:
        if measurement is not None:
            measurement.close()
    return frames


def stage_report(
    outputs: OutputSet, measurement, files, source, target, measured: Path, points: int = 0, alignment=None
) -> None:
    """Stage ``report.json`` and ``report.png`` (``files``) of the frames ``measurement`` saw
    (``points``: the point pairs that guided the morph, recorded in the input; ``alignment``:
    :func:`~diffmorph.app.report.alignment_entry` of the maps, or None)."""
    from ..io.files import write_bytes

    described = {"path": str(measured), "kind": "rendered frames", "points": int(points)}
    result = {**measurement.result(source, target, origin=described), "alignment": alignment}
    contents = measurement.contents(result, files)
    for path in files:
        write_bytes(outputs.stage(path), contents[path])


def render_frames(
    maps, source, target, config: MorphConfig | None = None, *, alphas=None, explicit=None, force: bool = False
) -> Iterator[np.ndarray]:
    """The frames of a morph from saved maps, one at a time (nothing is written).

    Args:
      maps: a maps file (``morph/maps.npz``; its settings are used unless ``config``
        is given) or the net's output, float32 ``(1, n, n, 16)``.
      source, target: image files or uint8 ``(H, W, 3)`` RGB arrays (the target is
        resized to the source's size).
      config: render settings (frames, render mode and kernel, scales, pacing, ease,
        hold, colour path; default the file's maps settings and the original's others).
      alphas: the A->B strength of each frame in [0, 1] (default: the config's schedule,
        as the outputs of :func:`morph` use it: ``config.frames`` evenly spaced from 0 to
        1, the original's, unless ``pacing``, ``ease`` or ``hold`` say otherwise).
      explicit: the names of the settings of ``config`` set on purpose; with a maps
        file, its maps settings replace ``config``'s others (as for :func:`morph`).
      force: use maps made for other images or settings.

    Returns:
      an iterator of uint8 ``(H, W, 3)`` RGB frames at the source's size; the frame at
      alpha 0 is the source, at alpha 1 the target.

    Raises:
      InputError: unusable inputs or maps, an alpha outside [0, 1] or NaN (raised by
        this call, before any frame is rendered).

    Example:
      Zero maps change nothing, so the frames are a plain cross-fade:

      >>> import numpy as np
      >>> import diffmorph
      >>> dark, light = np.zeros((24, 32, 3), np.uint8), np.full((24, 32, 3), 200, np.uint8)
      >>> still = np.zeros((1, 84, 84, 16), np.float32)
      >>> frames = diffmorph.render_frames(still, dark, light, diffmorph.MorphConfig(size=32, frames=3))
      >>> [(frame.shape, int(frame.mean())) for frame in frames]
      [((24, 32, 3), 0), ((24, 32, 3), 100), ((24, 32, 3), 200)]

    :func:`~diffmorph.app.stream.stream_frames` gives the same frames with their index and alpha.
    """
    stream = stream_frames(maps, source, target, config, alphas=alphas, explicit=explicit, force=force)
    return (frame.image for frame in stream)
