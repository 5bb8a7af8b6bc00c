"""``diffmorph sequence IMG1 IMG2 [IMG3 ...] -o OUT.mp4``: a chain of images in one video.

See :mod:`diffmorph.app.sequence` for the frame-count rule and the work folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import display_path
from .options import add_morph_options, explicit_settings, make_config, output_options, preset_base
from .progress import say
from .scale import SCALE_HELP, add_cluster_options, cluster_arguments

FRAME_RULE = """\
Frames: every pair gives all of its --steps frames, so P pairs give P x steps
frames (3 images: 2 x steps; 3 images with --loop: 3 x steps); images where two
pairs meet are held for two frames. --boomerang plays the F frames forward and then
backward without repeating the turning frames: 2 x F - 2 (not with --loop). The GIF
merges identical consecutive frames (same timing, fewer stored frames).

Every image is resized to the first image's size. Each pair's maps are kept in
WORK_DIR/NNN_a_to_b/ (default OUT_pairs/ beside OUT); a re-run with the same images
and settings re-uses finished pairs and resumes an interrupted one (an interrupted run
keeps the finished pairs and the current pair's checkpoint)."""


HELP = dict(
    summary="morph a sequence of images into one video",
    description="Morph a sequence of images (IMG1 -> IMG2 -> IMG3 ...) into one video.",
    epilog=f"{FRAME_RULE}\n\n{SCALE_HELP}",
    resume_hint="run the same command again to continue",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)


def add_options(parser: argparse.ArgumentParser) -> None:
    opt = parser.add_argument
    opt("images", nargs="+", metavar="IMAGE", help="two or more images, in video order")
    opt(
        "-o",
        "--output",
        required=True,
        metavar="OUT.mp4",
        help="the video to write; the GIF goes beside it as OUT.gif (required)",
    )
    opt(
        "--work-dir",
        metavar="DIR",
        help="where each pair's maps, checkpoints and snapshots are kept (default: OUT_pairs beside OUT)",
    )
    opt("--loop", action="store_true", help="also morph the last image back to the first")
    opt(
        "--points",
        action="append",
        metavar="FILE|DIR|auto|faces|faces68",
        help="point pairs per pair: 'auto', 'faces' or 'faces68' (every pair; see morph --points), a folder of "
        "NNN.csv/NNN.json files (000 the first pair; a pair without one is unguided), or one file per pair, the flag "
        "repeated in pair order",
    )
    add_cluster_options(parser)
    add_morph_options(parser)


def points_argument(given: list[str] | None):
    """``--points`` as ``morph_sequence`` takes it: None, "auto", "faces", a folder, or one file per pair."""
    if not given:
        return None
    if len(given) == 1 and (given[0] in ("auto", "faces", "faces68") or Path(given[0]).is_dir()):
        return given[0]
    return given


def run(args) -> int:
    """Run the sequence command; returns the exit status."""
    from ..app.sequence import morph_sequence
    from .bars import BarProgress

    config = make_config(preset_base(args), explicit_settings(args))
    result = morph_sequence(
        args.images,
        args.output,
        config,
        work_dir=args.work_dir,
        loop=args.loop,
        points=points_argument(args.points),
        options=output_options(args),
        progress=BarProgress(args.quiet),
        **cluster_arguments(args),
    )
    if not args.quiet:
        say(
            f"done: {', '.join(display_path(p) for p in result.files.values())} ({result.frames} frames, "
            f"{result.pairs} pairs, {result.reused} reused)"
        )
    return 0
