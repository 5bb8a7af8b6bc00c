"""The sequence pipeline: images IMG1 -> IMG2 -> IMG3 ... morphed into ONE video.

Each consecutive pair (IMG1->IMG2, IMG2->IMG3, ...; with ``loop`` also the last
image back to the first) is optimised on its own, with one
:class:`~diffmorph.app.fit.Fitter` (the compiled programs are reused, so memory stays
flat however many pairs), then all pairs are rendered, pair after pair, into one set:
``OUT.mp4`` (H.264), ``OUT.gif`` and ``OUT_frames/`` for the chosen formats,
published together.

Frame-count rule (:func:`diffmorph.app.stream.total_frames`): every pair gives all of
its ``frames``, so ``P`` pairs give ``P * frames`` frames (3 images: ``2 * frames``;
with ``loop``: ``3 * frames``); the image where two pairs meet is held for two frames.
Boomerang plays those ``F`` frames forward then backward without repeating the two
turning frames: ``2F - 2`` (not with ``loop``, which already returns to the start).
The GIF merges identical consecutive frames (same timing, fewer stored frames).

Every image is resized (``INTER_AREA``, with a notice) to the FIRST image's size.

Work folder (default ``OUT_stem + "_pairs"`` beside ``OUT``): one folder per pair,
``000_a_to_b/``, ``001_b_to_c/``..., each with the morph command's layout (``train/``
snapshots, ``morph/maps.npz``, ``morph/checkpoint.npz``, ``morph/maps.jpg``,
``morph/result.jpg``; no ``preds.npy``). A re-run re-uses a pair whose maps file was
finished for the same pixels and settings, and resumes a pair that was interrupted
(its checkpoint), so only new or changed pairs are optimised again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..config import MorphConfig
from ..errors import InputError, Interrupted, display_path, stopped
from ..io import mapsfile
from ..io.files import ensure_folder
from ..io.images import pixels_digest
from ..io.outputs import FolderLock, OutputSet, is_earlier_output, read_manifest, recover, refuse_inputs, sweep
from .cluster import Cluster, uses_cluster
from .inputs import Pair, check_path, check_types, load_images
from .layout import MorphPaths, check_ffmpeg
from .pairs import PairJob, check_time_limit, fit_serially
from .pairs import finished_maps as _finished_maps
from .points import guide_for, pair_guides, write_guide
from .progress import SILENT, Progress
from .publish import settings_record, stage_report
from .report import Measurement
from .runtime import import_tensorflow_quietly
from .stream import PairFrames
from .write import OutputOptions, check_frames_folder, check_outputs, write_video

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
MAX_NAME_PART = 40  # characters of an image's stem kept in a pair folder's name


def pairs_of(count: int, loop: bool) -> list[tuple[int, int]]:
    """The ``(source index, target index)`` pairs of ``count`` images, in video order.

    >>> pairs_of(3, False), pairs_of(3, True)
    ([(0, 1), (1, 2)], [(0, 1), (1, 2), (2, 0)])
    """
    pairs = [(i, i + 1) for i in range(count - 1)]
    if loop and count >= 2:
        pairs.append((count - 1, 0))
    return pairs


def images_in(folder) -> list[Path]:
    """The image files directly in ``folder``, sorted by name.

    Images are files ending in ``.jpg .jpeg .png .webp .bmp`` (any case), hidden files
    (``.name``) excluded. Sorted by code point (as ``LC_ALL=C sort``, the order
    ``scripts/morph_folder.sh`` uses): zero-pad numbers (``01.jpg``, ``02.jpg``...).

    Raises:
      InputError: if ``folder`` is not a folder path or not a folder.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> import diffmorph
      >>> with tempfile.TemporaryDirectory() as folder:
      ...     for name in ("b.jpg", "a.png", ".hidden.png", "notes.txt"):
      ...         (Path(folder) / name).touch()
      ...     [p.name for p in diffmorph.images_in(folder)]
      ['a.png', 'b.jpg']
    """
    check_path("folder", folder)
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{display_path(folder)}: not a folder")
    return sorted(
        (
            p
            for p in folder.iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
        ),
        key=lambda p: p.name,
    )


def _slug(stem: str) -> str:
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")
    return text[:MAX_NAME_PART] or "image"


def pair_folder_name(index: int, source: str, target: str) -> str:
    """``NNN_source-stem_to_target-stem`` (characters other than ``[A-Za-z0-9._-]`` become ``_``)."""
    return f"{index:03d}_{_slug(Path(source).stem)}_to_{_slug(Path(target).stem)}"


def output_files(out: Path, formats) -> dict[str, Path]:
    """The joined outputs of ``formats``: ``{"mp4": OUT, "gif": OUT.gif, "frames": OUT_frames/}``."""
    return {name: path for name, path in all_outputs(out).items() if name in formats}


def all_outputs(out: Path) -> dict[str, Path]:
    """Every joined output a sequence may write beside ``OUT``, whatever the formats."""
    return {
        "mp4": out,
        "gif": out.with_suffix(".gif"),
        "frames": out.with_name(out.stem + "_frames"),
        "report.json": out.with_name(out.stem + "_report.json"),
        "report.png": out.with_name(out.stem + "_report.png"),
    }


@dataclasses.dataclass(frozen=True)
class SequenceResult:
    """What :func:`morph_sequence` made: the joined files, frames written, pairs and how many were re-used."""

    files: dict
    frames: int
    pairs: int
    reused: int
    work_dir: Path


def morph_sequence(
    images,
    output,
    config: MorphConfig | None = None,
    *,
    work_dir=None,
    loop: bool = False,
    options: OutputOptions | None = None,
    points=None,
    progress: Progress = SILENT,
    workers: int | None = None,
    ray_address: str | None = None,
    shared_dir=None,
    pair_time_limit: float | None = None,
) -> SequenceResult:
    """Morph ``images`` (in video order) into one video ``output`` (an ``.mp4`` path).

    Args:
      images: two or more image files or uint8 ``(H, W, 3)`` arrays.
      output: ``OUT.mp4``; the GIF is ``OUT.gif`` and numbered frames ``OUT_frames/``.
      config: the settings of every pair (default :class:`MorphConfig`).
      work_dir: each pair's maps and checkpoints (default ``OUT_pairs`` beside OUT).
      loop: also morph the last image back to the first.
      options: formats, GIF size, boomerang (not with ``loop``).
      points: point pairs guiding the pairs (default none): ``"auto"``, ``"faces"`` or ``"faces68"`` for every pair,
        a folder of ``NNN.csv``/``NNN.json`` files (``000`` the first pair; a pair
        without one is unguided), or a list with one entry per pair, each ``None`` or
        as :func:`diffmorph.app.morph.morph` takes ``points``; each pair's points are
        in its two images' own pixels and written to its folder's ``morph/points.csv``
        and ``points.jpg``.
      progress: receives notices and the ``pairs``, ``optimise`` and ``render`` phases.
      workers: optimise up to this many pairs at once on a Ray cluster
        (:mod:`diffmorph.app.cluster`; needs the ``cluster`` extra); None or 1: one
        after another in this process (unless there is an address).
      ray_address: join the Ray cluster at this address (``host:port``, ``ray://host:port``
        or ``auto``; default the ``RAY_ADDRESS`` environment variable, Ray's convention);
        without one, ``workers`` >= 2 starts a local cluster on this machine.
        Rendering and publishing stay in this process; only the pairs' fits run on workers.
      shared_dir: a folder every node sees at the same path: inputs below it reach the
        workers as paths, and a work folder below it gets the checkpoints directly.
      pair_time_limit: seconds each pair's optimisation may take, here or on a worker
        (checked at every train step; None: no limit); a pair past it fails the sequence
        (:class:`~diffmorph.errors.TimeLimitError`) with its checkpoint and the finished
        pairs kept, so a re-run without the limit continues.

    Returns:
      :class:`SequenceResult`.

    Raises:
      InputError: fewer than two images, an unusable image, OUT not an ``.mp4``,
        ``loop`` with boomerang, output paths that are in the way; Ray is missing or
        the cluster cannot be reached (before any work).
      OutputError, NonFiniteLossError, Interrupted: as :func:`diffmorph.app.morph.morph`;
        finished pairs and the current pair's checkpoint are kept for the next run.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> import numpy as np
      >>> import diffmorph
      >>> dark, light = np.zeros((24, 32, 3), np.uint8), np.full((24, 32, 3), 200, np.uint8)
      >>> config = diffmorph.MorphConfig(size=32, train_steps=2, frames=3, seed=0)
      >>> with tempfile.TemporaryDirectory() as folder:
      ...     show = diffmorph.morph_sequence([dark, light], Path(folder) / "show.mp4", config)
      >>> show.pairs, show.frames, sorted(show.files)
      (1, 3, ['gif', 'mp4'])
    """
    config = MorphConfig() if config is None else config
    options = OutputOptions() if options is None else options
    check_types(config=(config, MorphConfig), options=(options, OutputOptions))
    if isinstance(images, (str, bytes, os.PathLike, np.ndarray)) or not isinstance(images, Iterable):
        raise InputError(
            f"images must be a list of two or more image files or uint8 (H, W, 3) arrays (got {type(images).__name__})"
        )
    images = list(images)
    if not isinstance(output, (str, os.PathLike)) or not str(output).strip():
        raise InputError(f"output must be the path of an .mp4 file (got {output!r})")
    out = Path(output)
    if len(images) < 2:
        raise InputError(f"give at least two images (got {len(images)})", setting="images")
    if out.suffix.lower() != ".mp4":
        raise InputError(
            f"the output must name an .mp4 file (got {display_path(out)}); the GIF is written beside it",
            setting="output",
        )
    if loop and options.boomerang:
        raise InputError(
            "loop=True and boomerang=True cannot be combined (both return to the first image)", setting="loop"
        )
    work = Path(work_dir) if work_dir is not None else out.with_name(out.stem + "_pairs")
    time_limit = check_time_limit(pair_time_limit)
    cluster = None
    if uses_cluster(workers, ray_address):  # Ray and the address are checked here
        cluster = Cluster(workers, ray_address, shared_dir, pair_time_limit=time_limit)
    names = [str(x) if isinstance(x, (str, os.PathLike)) else f"image{k + 1}" for k, x in enumerate(images)]
    written = output_files(out, options.formats) | (_reports(out) if options.report else {})
    refuse_inputs(list(written.values()), images)
    sizes: list = []
    pixels = load_images(images, progress, names=[display_path(n) for n in names], sizes=sizes)
    indices = pairs_of(len(pixels), loop)
    guides = [
        guide_for(entry, pixels[i], pixels[j], sizes[j], progress, sizes[i])
        for entry, (i, j) in zip(pair_guides(points, len(indices)), indices)
    ]
    check_outputs(pixels[0].shape[:2], len(indices), config, options)
    files = output_files(out, options.formats)
    _prepare(out, work, files | (_reports(out) if options.report else {}), options)
    pairs = [
        (
            MorphPaths(work / pair_folder_name(k, names[i], names[j])),
            Pair(pixels[i], pixels[j], (pixels_digest(pixels[i]), pixels_digest(pixels[j]))),
        )
        for k, (i, j) in enumerate(indices)
    ]
    with FolderLock(work), FolderLock(out.parent, f".{out.name}.lock"):  # before the heavy work
        import_tensorflow_quietly()
        recover(out.parent, out.name)
        sweep(list(all_outputs(out).values()))
        inputs = [(images[i], images[j]) for i, j in indices]
        with cluster if cluster is not None else contextlib.nullcontext():
            reused = _fit_pairs(pairs, inputs, config, progress, guides, cluster, time_limit)
        points = sum(guide.count for guide in guides if guide is not None)
        frames = _render(pairs, config, out, files, options, progress, work, points)
    return SequenceResult(files, frames, len(pairs), reused, work)


def _reports(out: Path) -> dict[str, Path]:
    return {key: path for key, path in all_outputs(out).items() if key.startswith("report")}


def _prepare(out: Path, work: Path, files: dict, options: OutputOptions) -> None:
    for name, path in files.items():
        if name != "frames" and path.is_dir():
            raise InputError(f"{display_path(path)} is a folder; cannot write the output there")
    if "frames" in files:
        check_frames_folder(files["frames"])
    earlier = read_manifest(out.parent, out.name)
    for name, path in files.items():
        derived = name != "mp4"  # OUT.mp4 is named by the user; OUT.gif, OUT_frames/ and the reports are not
        if derived and (path.exists() or path.is_symlink()) and not is_earlier_output(path, earlier, out.parent):
            raise InputError(
                f"{display_path(path)} is in the way: it is not an output of an earlier run for "
                f"{display_path(out)}, so it is never replaced; move it away or choose another output name"
            )
    for folder in (out.parent, work):
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{display_path(folder)} exists and is not a folder")
        ensure_folder(folder)
    if "mp4" in options.formats:
        check_ffmpeg()


def _fit_pairs(pairs, images, config: MorphConfig, progress: Progress, guides, cluster=None, time_limit=None) -> int:
    """Give every pair finished maps in its maps file: re-used, or resumed/optimised and saved.

    The pairs to fit go as :class:`~diffmorph.app.pairs.PairJob` through the path a batch's rows
    take: :func:`~diffmorph.app.pairs.fit_serially` in this process (one compiled optimiser; the
    first failure stops the sequence at once), or :meth:`Cluster.fit` on its workers (every pair
    runs to its end, then the first failure is raised). Each maps file is written here as its
    pair arrives (an interrupted run keeps it).

    Returns the number of pairs re-used. The maps stay on disk (0.45 MB a pair), so memory
    does not grow with the number of pairs.
    """
    jobs, reused = [], 0
    for k, ((paths, pair), guide) in enumerate(zip(pairs, guides)):
        label = f"pair {k + 1}/{len(pairs)}"
        if _finished_maps(paths, config, pair.digests, guide) is not None:
            progress.notice(f"reusing {label} ({display_path(paths.maps_npz)})")
            reused += 1
        else:
            named = tuple(f if isinstance(f, (str, Path)) else None for f in images[k])
            jobs.append(PairJob(k, pair, paths, label, named, guide))
    work = pairs[0][0].root.parent
    failures = []
    with progress.phase("pairs", len(pairs), reused):
        done = reused
        try:
            if cluster is None:
                outcomes = fit_serially(jobs, config, progress, time_limit)
            else:
                outcomes = cluster.fit(jobs, config, progress)
            for outcome in outcomes:
                if outcome.error is None:
                    _save(outcome, config)
                else:
                    failures.append(outcome)
                    if cluster is None:
                        break  # serially the next pairs would be fitted for a sequence that cannot be made
                done += 1
                progress.update(done)
        except Interrupted as exc:  # or Cancelled: the same class, with the pairs kept named
            resumable = exc.resumable or cluster is not None  # a worker's pair keeps its last checkpoint
            raise type(exc)(f"{exc.message}; finished pairs are kept in {display_path(work)}", resumable) from None
    if failures:
        first = failures[0]
        raise type(first.error)(f"{first.job.label}: {first.error}") from None
    return reused


def _save(outcome, config: MorphConfig) -> None:
    """Write a fitted pair's maps file (with every setting, :func:`settings_record`) and its point files."""
    job, guide = outcome.job, outcome.job.guide
    extra = guide.meta() if guide is not None else {}
    mapsfile.save_maps(
        job.paths.maps_npz,
        outcome.fitted.maps_low,
        config,
        job.pair.digests,
        config.train_steps,
        settings=settings_record(config),
        **extra,
    )
    write_guide(job.paths, job.pair, guide)


def _render(
    pairs,
    config: MorphConfig,
    out: Path,
    files: dict,
    options: OutputOptions,
    progress: Progress,
    work: Path,
    points: int = 0,
) -> int:
    parts = [
        PairFrames(pair.source, pair.target, paths.maps_npz, paths.result, paths.maps_jpg) for paths, pair in pairs
    ]
    measurement = Measurement() if options.report else None
    every = all_outputs(out)
    try:
        with OutputSet(out.parent, out.name) as outputs:
            frames = write_video(parts, config, files, options, outputs, progress, measurement)
            if measurement is not None:
                stage_report(
                    outputs,
                    measurement,
                    [every["report.json"], every["report.png"]],
                    parts[0].source,
                    parts[-1].target,
                    out,
                    points,
                )
            for path in every.values():
                outputs.retire(path)  # what this run wrote is staged, so not retired
            outputs.publish()
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or progress.cancel()
        raise stopped(
            exc,
            f"while writing the outputs; the previous outputs are unchanged and the pairs are kept in "
            f"{display_path(work)}",
        ) from None
    finally:
        if measurement is not None:
            measurement.close()
    return frames
