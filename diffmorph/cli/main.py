"""Command line: ``diffmorph -s SOURCE -t TARGET [options]`` (also ``python morph.py``).

The CLI owns paths, progress bars and files; the core (:mod:`diffmorph.optimize`,
:mod:`diffmorph.render`) only computes. TensorFlow is imported after the arguments
are checked, so ``--version``, ``--help`` and usage errors answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from pathlib import Path

from ..version import __version__
from ..config import (DEFAULT_ADD_SCALE, DEFAULT_EPOCHS, DEFAULT_FPS, DEFAULT_MULT_SCALE, DEFAULT_SIZE,
                     DEFAULT_STEPS, DEFAULT_WARP_SCALE, RENDER_MODES)

PROG = "diffmorph"
FORMATS = ("mp4", "gif", "frames")
DEFAULT_FORMATS = "mp4,gif"
DEFAULT_GIF_MAX_SIDE = 512
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

TRUE_WORDS = ("1", "true", "t", "yes", "y", "on")
FALSE_WORDS = ("0", "false", "f", "no", "n", "off")


def parse_bool(text: str) -> bool:
    """``True/False/1/0/yes/no/on/off`` (any case) to bool; argparse type for ``-add_first``."""
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false, 1/0, yes/no), got {text!r}")


def parse_formats(text: str) -> tuple[str, ...]:
    """``mp4,gif,frames`` (any subset, comma-separated) to a tuple of names."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown format(s) {', '.join(unknown) or text!r}; choose from {', '.join(FORMATS)}")
    return names


def _number(kind, name):
    def convert(text):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
    convert.__name__ = name
    return convert


def add_morph_options(parser: argparse.ArgumentParser) -> None:
    """The options shared by the morph command and ``diffmorph sequence``."""
    opt = parser.add_argument
    opt("-e", "--train_epochs", type=_number(int, "epochs"), default=DEFAULT_EPOCHS, metavar="N",
        help=f"optimisation steps (default {DEFAULT_EPOCHS})")
    opt("-a", "--add_scale", type=_number(float, "add_scale"), default=DEFAULT_ADD_SCALE, metavar="X",
        help=f"scale of the additive colour map (default {DEFAULT_ADD_SCALE})")
    opt("-m", "--mult_scale", type=_number(float, "mult_scale"), default=DEFAULT_MULT_SCALE, metavar="X",
        help=f"scale of the multiplicative colour map (default {DEFAULT_MULT_SCALE})")
    opt("-w", "--warp_scale", type=_number(float, "warp_scale"), default=DEFAULT_WARP_SCALE, metavar="X",
        help=f"scale of the flow, as a fraction of the image size (default {DEFAULT_WARP_SCALE})")
    opt("-add_first", "--add_first", type=parse_bool, nargs="?", const=True, default=False, metavar="BOOL",
        help="add before multiplying; a bare flag means true (default false)")
    opt("--fps", type=_number(float, "fps"), default=DEFAULT_FPS, help=f"frames per second (default {DEFAULT_FPS})")
    opt("--steps", type=_number(int, "steps"), default=DEFAULT_STEPS, metavar="N",
        help=f"frames in the morph, >= 2 (default {DEFAULT_STEPS})")
    opt("--size", type=_number(int, "size"), default=DEFAULT_SIZE, metavar="S",
        help=f"working resolution S (S x S) for optimisation (default {DEFAULT_SIZE})")
    opt("--seed", type=_number(int, "seed"), default=None, help="seed for the net's initial weights")
    opt("--render", choices=RENDER_MODES, default="native",
        help="native: frames at the source's own size (default); working: render at S x S and "
             "resize each frame (the original's path)")
    opt("--formats", type=parse_formats, default=parse_formats(DEFAULT_FORMATS), metavar="LIST",
        help=f"outputs to write, comma-separated from {','.join(FORMATS)} (default {DEFAULT_FORMATS})")
    opt("--gif-max-side", type=_number(int, "gif-max-side"), default=DEFAULT_GIF_MAX_SIDE, metavar="N",
        help=f"downsize the GIF (only) so its longer side is at most N (default {DEFAULT_GIF_MAX_SIDE})")
    opt("--boomerang", action="store_true", help="play forward then backward (a seamless loop)")
    opt("--plain", action="store_true",
        help="use the plain path (separate warps, no XLA) instead of the fast one; same results, slower")
    opt("-q", "--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the morph command (the original's flags and the new ones)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Morph a source image into a target image (DiffMorph).",
        epilog="Outputs: train/ (snapshots), preds.npy, morph/ (morph.mp4, morph.gif, result.jpg, "
               "maps.jpg, maps.npz, checkpoint.npz) under --output-dir. "
               "Also: 'diffmorph sequence IMG1 IMG2 ... -o OUT.mp4'.")
    opt = parser.add_argument
    opt("-s", "--source", help="source image (the first frame)")
    opt("-t", "--target", help="target image (the last frame)")
    opt("--output-dir", "-o", default=".", metavar="DIR",
        help="where train/, morph/ and preds.npy go (default: the current directory)")
    opt("--frames-dir", metavar="DIR", help="folder for numbered PNG frames (default OUTPUT_DIR/morph/frames)")
    opt("--maps", metavar="FILE", help="render from saved maps (morph/maps.npz) instead of optimising")
    opt("--force", action="store_true", help="with --maps: use maps made for other images or settings")
    opt("--resume", action="store_true", help="continue from OUTPUT_DIR/morph/checkpoint.npz")
    add_morph_options(parser)
    opt("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def make_config(args, parser: argparse.ArgumentParser):
    """A validated :class:`MorphConfig` from parsed arguments (usage error otherwise)."""
    from ..config import MorphConfig

    try:
        config = MorphConfig(size=args.size, epochs=args.train_epochs, add_scale=args.add_scale,
                             mult_scale=args.mult_scale, warp_scale=args.warp_scale,
                             add_first=args.add_first, steps=args.steps, fps=args.fps, seed=args.seed,
                             render=args.render, fast=not args.plain)
    except ValueError as exc:
        parser.error(str(exc))
    if args.gif_max_side < 2:
        parser.error(f"--gif-max-side must be >= 2 (got {args.gif_max_side})")
    return config


@dataclasses.dataclass(frozen=True)
class OutputPaths:
    """Where one morph writes, relative to ``root`` (the original's layout)."""

    root: Path
    frames_dir: Path | None = None

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def morph(self) -> Path:
        return self.root / "morph"

    def __getattr__(self, name):
        files = {"preds": ("", "preds.npy"), "mp4": ("morph", "morph.mp4"), "gif": ("morph", "morph.gif"),
                 "result": ("morph", "result.jpg"), "maps_jpg": ("morph", "maps.jpg"),
                 "maps_npz": ("morph", "maps.npz"), "checkpoint": ("morph", "checkpoint.npz")}
        if name not in files:
            raise AttributeError(name)
        folder, file = files[name]
        return self.root / folder / file

    @property
    def frames(self) -> Path:
        return self.frames_dir if self.frames_dir is not None else self.morph / "frames"

    def prepare(self, frames: bool = False) -> None:
        """Create the folders (and the frames folder if ``frames``) and check they are
        writable: fail fast, before any work.

        Raises:
          OutputError: with a one-line reason.
        """
        from ..errors import OutputError
        from ..io.files import ensure_folder

        for folder in (self.root, self.train, self.morph) + ((self.frames,) if frames else ()):
            ensure_folder(folder)
        for file in (self.preds, self.mp4, self.gif, self.result, self.maps_jpg, self.maps_npz):
            if file.is_dir():
                raise OutputError(f"{file} is a folder; cannot write the output there")


def say(message: str) -> None:
    """A one-line notice on stderr."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def load_pair(source_path, target_path):
    """Both images as uint8 RGB, the target resized to the source's size (with a notice)."""
    import cv2

    from ..io.images import load_image, pixels_digest

    source, target = load_image(source_path), load_image(target_path)
    for notice in source.notices + target.notices:
        say(notice)
    a, b = source.pixels, target.pixels
    digests = (pixels_digest(a), pixels_digest(b))
    if b.shape != a.shape:
        say(f"target is {b.shape[1]}x{b.shape[0]}, source {a.shape[1]}x{a.shape[0]}: "
            f"resizing the target to the source's size")
        b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
    return a, b, digests


def _resize_to(image, height, width):
    import cv2

    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def optimise_maps(a, b, digests, config, paths: OutputPaths, resume: bool, quiet: bool):
    """Fit the maps (or resume), writing snapshots, checkpoints, ``maps.npz`` and ``preds.npy``.

    Returns float32 ``(1, S, S, 16)`` final maps. On Ctrl-C saves a checkpoint and the
    current maps, then re-raises KeyboardInterrupt.
    """
    from tqdm import tqdm

    from ..io import mapsfile
    from ..errors import InputError
    from ..io.files import save_image, save_npy
    from ..core.model import upsample_maps
    from ..core.optimize import Trainer, optimize
    from ..core.render import SnapshotRenderer, to_working

    height, width = a.shape[:2]
    working_a, working_b = to_working(a, config.size), to_working(b, config.size)
    trainer = Trainer(working_a, working_b, config)
    snapshot = SnapshotRenderer(working_a, working_b, config)
    meta = mapsfile.describe(config, *digests)
    if resume:
        state_meta, state = mapsfile.load(paths.checkpoint) if paths.checkpoint.exists() else (None, None)
        if state is None:
            raise InputError(f"--resume: no checkpoint at {paths.checkpoint}")
        problems = mapsfile.mismatches(state_meta, config, *digests)
        if problems:
            raise InputError(f"--resume: {paths.checkpoint} is for another morph ({'; '.join(problems)})")
        trainer.load_state(state)
        say(f"resuming at step {trainer.step_count} of {config.epochs}")

    def save_state(low):
        mapsfile.save(paths.checkpoint, meta, **trainer.state())
        mapsfile.save(paths.maps_npz, dict(meta, steps_done=trainer.step_count), low=low)

    bar = tqdm(total=config.epochs, initial=trainer.step_count, disable=quiet, unit="step",
               dynamic_ncols=True, desc="Optimising")
    try:
        for progress in optimize(trainer, config.epochs):
            bar.set_description(f"Epoch {progress.step}, Loss: {progress.loss:.6f}", refresh=False)
            bar.update()
            if progress.maps is not None:
                for name, image in zip(("a_to_b", "b_to_a"), snapshot(progress.maps)):
                    save_image(paths.train / f"{name}_{progress.step}.jpg", _resize_to(image, height, width))
                save_state(progress.maps)
    except KeyboardInterrupt:
        bar.close()
        if trainer.step_count:
            save_state(trainer.low_maps())
        raise
    finally:
        bar.close()
    low = trainer.low_maps()
    if trainer.step_count and not paths.maps_npz.exists():
        save_state(low)
    maps = upsample_maps(low, config.size).numpy()
    save_npy(paths.preds, maps)
    return maps


def render_outputs(a, b, maps, config, paths: OutputPaths, formats, gif_max_side: int, boomerang: bool,
                   quiet: bool) -> None:
    """Render every frame once and stream it to the chosen writers, then the strip and maps image."""
    from tqdm import tqdm

    from ..io.files import save_image
    from ..core.render import FrameRenderer, StripBuilder, maps_image
    from ..io.video import frame_writers

    save_image(paths.maps_jpg, maps_image(maps))
    renderer = FrameRenderer(a, b, maps, config)
    strip = StripBuilder(config.steps, config.size)
    files = {"mp4": paths.mp4, "gif": paths.gif, "frames": paths.frames}
    with frame_writers(formats, files, a.shape[:2], config.fps, gif_max_side) as write:
        kept = []
        for frame in tqdm(renderer.frames(), total=config.steps, disable=quiet, unit="frame",
                          dynamic_ncols=True, desc="Rendering"):
            strip.add(frame)
            write(frame.image)
            if boomerang and 0 < frame.index < config.steps - 1:
                kept.append(frame.image)
        for image in reversed(kept):  # boomerang: back again, without repeating the ends
            write(image)
    save_image(paths.result, strip.bgr, bgr=True)


def run(args, parser) -> int:
    config = make_config(args, parser)
    if not args.source or not args.target:
        parser.error("both -s/--source and -t/--target are required")
    if args.maps and args.resume:
        parser.error("--maps and --resume cannot be combined")
    if args.force and not args.maps:
        parser.error("--force only applies with --maps")
    paths = OutputPaths(Path(args.output_dir), Path(args.frames_dir) if args.frames_dir else None)

    from ..errors import USER_ERRORS, InputError, exit_status

    try:
        a, b, digests = load_pair(args.source, args.target)  # input errors before TensorFlow loads
        paths.prepare(frames="frames" in args.formats)
        import_tensorflow_quietly()
        from ..io import mapsfile

        if args.maps:
            meta, arrays = mapsfile.load(args.maps)
            problems = mapsfile.mismatches(meta, config, *digests)
            if problems and not args.force:
                raise InputError(f"{args.maps} was made for another morph ({'; '.join(problems)}); "
                                 f"use --force to render with it anyway")
            config = mapsfile.config_from(meta, config)
            if "low" not in arrays:
                raise InputError(f"{args.maps}: holds no maps (is it a checkpoint?)")
            from ..core.model import upsample_maps

            maps = upsample_maps(arrays["low"], config.size).numpy()
        else:
            try:
                maps = optimise_maps(a, b, digests, config, paths, args.resume, args.quiet)
            except KeyboardInterrupt:
                say(f"interrupted; checkpoint saved in {paths.checkpoint}. "
                    f"Run the same command with --resume to continue")
                return EXIT_INTERRUPTED
        try:
            render_outputs(a, b, maps, config, paths, args.formats, args.gif_max_side, args.boomerang,
                           args.quiet)
        except KeyboardInterrupt:
            say(f"interrupted while rendering; re-render with --maps {paths.maps_npz}")
            return EXIT_INTERRUPTED
    except USER_ERRORS as exc:
        say(f"error: {exc}")
        return exit_status(exc)
    if not args.quiet:
        say(f"done: {paths.morph}")
    return 0


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and initialise its devices with stderr (fd 2) muted.

    TensorFlow 2.21 prints C++ INFO lines and, without a GPU driver, a cuInit error
    before ``TF_CPP_MIN_LOG_LEVEL`` takes effect; they are noise to a CLI user.
    Python exceptions still propagate (stderr is restored first).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        import tensorflow as tf

        tf.constant(0.0).numpy()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``diffmorph`` and ``morph.py``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sequence"]:
        from .sequence import main as sequence_main

        return sequence_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if threading_is_main():
        signal.signal(signal.SIGTERM, _terminate)
    return run(args, parser)


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
