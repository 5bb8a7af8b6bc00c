"""``diffmorph sequence IMG1 IMG2 [IMG3 ...] -o OUT.mp4``: morph a chain of images into one video.

Each consecutive pair (IMG1->IMG2, IMG2->IMG3, ...; with ``--loop`` also the last
image back to the first) is optimised on its own with the morph command's code
(:func:`diffmorph.cli.optimise_maps`), then all pairs are rendered, pair after pair,
into ONE joined video: ``OUT.mp4`` (H.264) and, when ``gif`` is in ``--formats``,
``OUT.gif`` beside it (``frames`` writes numbered PNGs to ``OUT_frames/``).

Frame-count rule (documented in ``--help`` too; see :func:`frame_count`):

* every pair contributes all of its ``--steps`` frames, so ``P`` pairs give
  ``P * steps`` frames: 3 images give ``2 * steps``, 3 images with ``--loop`` give
  ``3 * steps``. The last frame of one pair and the first frame of the next are
  both exactly the shared image, so every image where two pairs meet is held for
  two frames (with ``--loop`` this includes the wrap-around from the end to the
  start when the video repeats).
* ``--boomerang`` plays those ``F`` frames forward, then backward without repeating
  the two turning frames, as the morph command does: ``2 * F - 2`` frames.
  It cannot be combined with ``--loop`` (both already return to the first image).
* The GIF holds the same frames with the same timing, but GIF encoders (Pillow)
  store two identical consecutive frames as one frame of double duration, so its
  frame *count* is lower by the number of such holds while its length is the same.

Every image is resized (``INTER_AREA``, with a notice) to the FIRST image's size,
since one video has one size; the frames have that size.

Work folder (``--work-dir``, default ``OUT_stem + "_pairs"`` beside ``OUT``): one
folder per pair, ``000_a_to_b/``, ``001_b_to_c/``... each with the morph command's
layout (``train/`` snapshots, ``preds.npy``, ``morph/maps.npz``,
``morph/checkpoint.npz``, ``morph/maps.jpg``, ``morph/result.jpg``). A re-run re-uses
a pair whose ``morph/maps.npz`` was finished for the same pixels and settings
(``reusing pair k`` on stderr), and resumes a pair that was interrupted (its
checkpoint), so only new or changed pairs are optimised again.

Exit status: 0 done; 2 usage error or unusable input image (one line
``diffmorph: error: ...`` on stderr, no traceback); 1 an output cannot be written or
the loss became NaN; 130 interrupted (Ctrl-C), with finished pairs and the current
pair's checkpoint kept for the next run. TensorFlow is imported only after the
arguments and images are checked, so ``--help`` and input errors answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import signal
import sys
import time
from pathlib import Path

from ..version import __version__
from .main import (EXIT_INTERRUPTED, EXIT_USAGE, PROG, OutputPaths, add_morph_options,
                  import_tensorflow_quietly, make_config, threading_is_main)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
MAX_NAME_PART = 40  # characters of an image's stem kept in a pair folder's name

FRAME_RULE = """\
frames: every pair gives all of its --steps frames, so P pairs give P x steps
frames (3 images: 2 x steps; 3 images with --loop: 3 x steps); images where two
pairs meet are held for two frames. --boomerang plays the F frames forward and then
backward without repeating the turning frames: 2 x F - 2 (not with --loop). The GIF
merges identical consecutive frames (same timing, fewer stored frames).

Every image is resized to the first image's size. Each pair's maps are kept in
WORK_DIR/NNN_a_to_b/ (default OUT_pairs/ beside OUT); a re-run with the same images
and settings re-uses finished pairs and resumes an interrupted one."""


# ----------------------------------------------------------------------------- plain helpers


def pairs_of(count: int, loop: bool) -> list[tuple[int, int]]:
    """The ``(source index, target index)`` pairs of ``count`` images, in video order.

    >>> pairs_of(3, False), pairs_of(3, True)
    ([(0, 1), (1, 2)], [(0, 1), (1, 2), (2, 0)])
    """
    pairs = [(i, i + 1) for i in range(count - 1)]
    if loop and count >= 2:
        pairs.append((count - 1, 0))
    return pairs


def frame_count(images: int, steps: int, loop: bool = False, boomerang: bool = False) -> int:
    """Frames in the joined video (the module's frame-count rule).

    ``P * steps`` for ``P`` pairs (``images - 1``, or ``images`` with ``loop``);
    ``2 * F - 2`` of those ``F`` with ``boomerang``.
    """
    forward = len(pairs_of(images, loop)) * steps
    return 2 * forward - 2 if boomerang else forward


def images_in(folder) -> list[Path]:
    """The image files directly in ``folder``, sorted by name.

    Images are files ending in ``.jpg .jpeg .png .webp .bmp`` (any case), hidden files
    (``.name``) excluded. Sorted by code point (as ``LC_ALL=C sort``, the order
    ``scripts/morph_folder.sh`` uses): zero-pad numbers (``01.jpg``, ``02.jpg``...).

    Raises:
      NotADirectoryError: if ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder")
    return sorted((p for p in folder.iterdir()
                   if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()),
                  key=lambda p: p.name)


def _slug(stem: str) -> str:
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")
    return text[:MAX_NAME_PART] or "image"


def pair_folder_name(index: int, source, target) -> str:
    """``NNN_source-stem_to_target-stem`` (other characters than ``[A-Za-z0-9._-]`` become ``_``)."""
    return f"{index:03d}_{_slug(Path(source).stem)}_to_{_slug(Path(target).stem)}"


def notice(message: str) -> None:
    """A one-line ``diffmorph: ...`` notice on stderr that does not break progress bars."""
    from tqdm import tqdm

    tqdm.write(f"{PROG}: {message}", file=sys.stderr)
    sys.stderr.flush()


# ----------------------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``diffmorph sequence`` (the morph options plus images, -o, --work-dir, --loop)."""
    parser = argparse.ArgumentParser(
        prog=f"{PROG} sequence", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Morph a sequence of images (IMG1 -> IMG2 -> IMG3 ...) into one video.",
        epilog=FRAME_RULE)
    opt = parser.add_argument
    opt("images", nargs="*", metavar="IMAGE", help="two or more images, in video order")
    opt("-o", "--output", metavar="OUT.mp4",
        help="the video to write; the GIF goes beside it as OUT.gif (required)")
    opt("--work-dir", metavar="DIR",
        help="where each pair's maps, checkpoints and snapshots are kept (default: OUT_pairs beside OUT)")
    opt("--loop", action="store_true", help="also morph the last image back to the first")
    add_morph_options(parser)
    opt("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def _check_args(args, parser: argparse.ArgumentParser):
    """Usage checks beyond argparse's; returns the validated MorphConfig (exits 2 otherwise)."""
    if len(args.images) < 2:
        parser.error(f"give at least two images (got {len(args.images)})")
    if not args.output:
        parser.error("the following arguments are required: -o/--output")
    if Path(args.output).suffix.lower() != ".mp4":
        parser.error(f"-o/--output must name an .mp4 file (got {args.output!r}); "
                     f"the GIF is written beside it")
    if args.loop and args.boomerang:
        parser.error("--loop and --boomerang cannot be combined (both return to the first image)")
    return make_config(args, parser)


# ----------------------------------------------------------------------------- the work


@dataclasses.dataclass
class Pair:
    """One morph of the sequence.

    index: 0-based position in the video. source, target: indices into the images.
    paths: its folder (the morph command's layout). digests: SHA-256 of the pixels
    used (after resizing to the first image's size). maps: float32 maps once fitted:
    the net's output ``(1, 84, 84, 16)`` (from ``maps.npz``) when ``low``, else the
    working-size ``(1, S, S, 16)``. reused: whether finished maps were found.
    """

    index: int
    source: int
    target: int
    paths: OutputPaths
    digests: tuple[str, str]
    maps: object = None
    low: bool = True
    reused: bool = False


def load_images(paths) -> list:
    """Read every image as uint8 RGB, all resized to the first image's ``(H, W)``.

    Args:
      paths: two or more image files.

    Returns:
      a list of uint8 ``(H, W, 3)`` arrays, ``(H, W)`` the first image's size.

    Raises:
      InputError: for the first file that cannot be used (missing, not an image...).
    """
    import cv2

    from ..io.images import load_image

    out = []
    for path in paths:
        loaded = load_image(path)
        for line in loaded.notices:
            notice(line)
        pixels = loaded.pixels
        if out and pixels.shape != out[0].shape:
            height, width = out[0].shape[:2]
            notice(f"{path} is {pixels.shape[1]}x{pixels.shape[0]}, the first image {width}x{height}: "
                   f"resizing it to the first image's size")
            pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
        out.append(pixels)
    return out


def output_files(out: Path, formats) -> dict[str, Path]:
    """The joined outputs for ``formats``: ``{"mp4": OUT, "gif": OUT.gif, "frames": OUT_frames/}``."""
    files = {"mp4": out, "gif": out.with_suffix(".gif"), "frames": out.with_name(out.stem + "_frames")}
    return {name: path for name, path in files.items() if name in formats}


def prepare_outputs(out: Path, work: Path, formats) -> None:
    """Create OUT's folder and the work folder; fail fast if they cannot be written.

    Raises:
      OutputError: with a one-line reason.
    """
    from ..errors import OutputError
    from ..io.files import ensure_folder

    for name, path in output_files(out, formats).items():
        if name != "frames" and path.is_dir():
            raise OutputError(f"{path} is a folder; cannot write the output there")
    for folder in (out.parent, work):
        ensure_folder(folder)


def finished_maps(paths: OutputPaths, config, digests):
    """The net's output stored in ``paths.maps_npz`` if it is finished and fits, else ``None``.

    Fits: same input pixels and bound settings (:func:`mapsfile.mismatches` empty) and
    ``steps_done == config.epochs``. Returns float32 ``(1, 84, 84, 16)``.
    """
    from ..io import mapsfile
    from ..errors import InputError

    if not paths.maps_npz.is_file():
        return None
    try:
        meta, arrays = mapsfile.load(paths.maps_npz)
    except InputError:
        return None
    if mapsfile.mismatches(meta, config, *digests) or meta.get("steps_done") != config.epochs:
        return None
    return arrays.get("low")


def resumable(paths: OutputPaths, config, digests) -> bool:
    """Whether ``paths.checkpoint`` is for this pair and settings, at a step ``<= config.epochs``."""
    from ..io import mapsfile
    from ..errors import InputError

    if not paths.checkpoint.is_file():
        return False
    try:
        meta, arrays = mapsfile.load(paths.checkpoint)
        step = int(arrays["step"])
    except (InputError, KeyError, TypeError, ValueError):
        return False
    return not mapsfile.mismatches(meta, config, *digests) and 0 < step <= config.epochs


def fit_pairs(pairs: list[Pair], images, config, quiet: bool) -> None:
    """Give every pair its maps: re-use finished ones, resume or optimise the others.

    Fills ``pair.maps`` and ``pair.reused``. Progress: a bar over the pairs, and
    :func:`cli.optimise_maps`'s bar for each pair optimised.

    Raises:
      OutputError, NonFiniteLossError; KeyboardInterrupt after the current pair's
      checkpoint is saved.
    """
    from tqdm import tqdm

    from .main import optimise_maps

    bar = tqdm(pairs, disable=quiet, unit="pair", dynamic_ncols=True, desc="Pairs")
    try:
        for pair in bar:
            label = f"pair {pair.index + 1}/{len(pairs)}"
            pair.paths.prepare()
            low = finished_maps(pair.paths, config, pair.digests)
            if low is not None:
                notice(f"reusing {label} ({pair.paths.maps_npz})")
                pair.maps, pair.reused = low, True
                continue
            resume = resumable(pair.paths, config, pair.digests)
            full = optimise_maps(images[pair.source], images[pair.target], pair.digests, config,
                                 pair.paths, resume, quiet)
            low = finished_maps(pair.paths, config, pair.digests)  # 450 KB instead of S x S x 16
            pair.maps, pair.low = (low, True) if low is not None else (full, False)
    finally:
        bar.close()


def render_sequence(pairs: list[Pair], images, config, out: Path, formats, gif_max_side: int,
                    boomerang: bool, quiet: bool) -> int:
    """Render every pair in order into one set of writers; returns the frames written.

    Frames are streamed (the GIF keeps its downsized palette frames until it is
    written). ``boomerang`` re-renders the pairs backwards instead of holding frames.
    Also writes each pair's ``morph/maps.jpg`` and ``morph/result.jpg``.

    Raises:
      OutputError; on any exception the partial outputs are removed.
    """
    from tqdm import tqdm

    from ..io.files import save_image
    from ..core.model import upsample_maps
    from ..core.render import FrameRenderer, StripBuilder, maps_image, strengths
    from ..io.video import frame_writers

    steps = config.steps
    forward = len(pairs) * steps  # the frame-count rule (frame_count)
    total = 2 * forward - 2 if boomerang else forward
    files = output_files(out, formats)
    schedule = strengths(steps)

    def working_maps(pair):
        return upsample_maps(pair.maps, config.size).numpy() if pair.low else pair.maps

    def renderer(pair):
        return FrameRenderer(images[pair.source], images[pair.target], working_maps(pair), config)

    written = 0
    bar = tqdm(total=total, disable=quiet, unit="frame", dynamic_ncols=True, desc="Rendering")
    try:
        with frame_writers(tuple(files), files, images[0].shape[:2], config.fps, gif_max_side) as write:

            def emit(image):
                nonlocal written
                write(image)
                written += 1
                bar.update()

            for pair in pairs:
                maps = working_maps(pair)
                save_image(pair.paths.maps_jpg, maps_image(maps))
                strip = StripBuilder(steps, config.size)
                for frame in FrameRenderer(images[pair.source], images[pair.target], maps, config).frames():
                    strip.add(frame)
                    emit(frame.image)
                save_image(pair.paths.result, strip.bgr, bgr=True)
            if boomerang:  # back again: global frames forward-2 ... 1, re-rendered pair by pair
                for pair in reversed(pairs):
                    back = None
                    for i in reversed(range(steps)):
                        g = pair.index * steps + i
                        if g in (0, forward - 1):
                            continue
                        back = back or renderer(pair)
                        s, t = schedule[i]
                        emit(back.render(i, s, t).image)
    finally:
        bar.close()
    return written


# ----------------------------------------------------------------------------- entry point


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Run ``diffmorph sequence`` with ``argv`` (without the ``sequence`` word); returns the exit status.

    Never raises SystemExit for usage errors or ``--help``: it returns their status
    (2 or 0), so it can be called in-process (a notebook). Exit statuses: see the
    module docstring.
    """
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        config = _check_args(args, parser)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    previous = None
    if threading_is_main():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(args, config)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args, config) -> int:
    from ..errors import USER_ERRORS, InputError, OutputError, exit_status
    from ..io.images import pixels_digest

    out = Path(args.output)
    work = Path(args.work_dir) if args.work_dir else out.with_name(out.stem + "_pairs")
    started = time.monotonic()
    try:
        images = load_images(args.images)
        prepare_outputs(out, work, args.formats)
        import_tensorflow_quietly()
    except (InputError, OutputError) as exc:
        notice(f"error: {exc}")
        return exit_status(exc)
    except KeyboardInterrupt:
        notice("interrupted")
        return EXIT_INTERRUPTED


    pairs = [Pair(k, i, j, OutputPaths(work / pair_folder_name(k, args.images[i], args.images[j])),
                  (pixels_digest(images[i]), pixels_digest(images[j])))
             for k, (i, j) in enumerate(pairs_of(len(images), args.loop))]
    try:
        try:
            fit_pairs(pairs, images, config, args.quiet)
        except KeyboardInterrupt:
            notice(f"interrupted; finished pairs and a checkpoint are kept in {work}. "
                   f"Run the same command again to continue")
            return EXIT_INTERRUPTED
        try:
            frames = render_sequence(pairs, images, config, out, args.formats, args.gif_max_side,
                                     args.boomerang, args.quiet)
        except KeyboardInterrupt:
            notice(f"interrupted while rendering; the pairs are kept in {work}, "
                   f"run the same command again to render")
            return EXIT_INTERRUPTED
    except USER_ERRORS as exc:
        notice(f"error: {exc}")
        return exit_status(exc)
    if not args.quiet:
        reused = sum(p.reused for p in pairs)
        notice(f"done: {', '.join(str(p) for p in output_files(out, args.formats).values())} "
               f"({frames} frames, {len(pairs)} pairs, {reused} reused, {time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
