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
from ..errors import InputError
from ..io.outputs import FolderLock, recover, sweep
from .fit import Fitter, WorkFiles
from .inputs import check_types, load_pair
from .layout import MorphPaths, check_before_work, refuse_inputs_as_outputs
from .points import guide_for
from .progress import SILENT, Progress
from .publish import publish_pair
from .runtime import import_tensorflow_quietly
from .saved_maps import resolve_maps
from .stream import stream_frames
from .write import OutputOptions


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
        (:func:`diffmorph.io.points.read_points`), ``"faces"`` (47 face-mesh landmarks of the
        largest face in each image; ``"faces68"``: 68; needs the ``faces`` extra) or ``"auto"`` (faces, else
        SIFT matches; see :func:`diffmorph.app.points.find_points`; none: unguided, with
        a notice naming the reason). The
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
    refuse_inputs_as_outputs(paths, [source, target])
    pair = load_pair(source, target, progress)
    guide = guide_for(points, pair.source, pair.target, pair.target_size, progress)
    if maps is not None:
        maps_low, config, steps_done = resolve_maps(maps, pair, config, force, explicit, progress)
    else:
        config = config or MorphConfig()
        if guide is not None:  # point_prior and geometry "auto": the guided choices (recorded in the maps file)
            config = config.for_guide(True)
        maps_low, steps_done = None, config.train_steps
    check_before_work(paths, pair.source.shape[:2], config, options, optimising=maps is None)
    with FolderLock(paths.root):  # before the heavy work: a second run on the folder is refused at once
        import_tensorflow_quietly()
        recover(paths.root, "morph", also=[paths.frames])
        sweep(paths.set_files() + [paths.checkpoint, paths.frames])
        if maps_low is None:
            files = WorkFiles(paths.train, paths.checkpoint)
            maps_low = Fitter(config).fit(pair, files, resume, progress, guide, force)
        frames = publish_pair(pair, maps_low, config, paths, options, steps_done, progress, maps is None, guide)
    return MorphResult(maps_low, config, paths, frames, steps_done)


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
