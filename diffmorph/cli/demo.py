"""``diffmorph demo [-o DIR] [morph options]``: the bundled photo pair, morphed in about a minute.

The first command to try after ``pip install diffmorph`` (no images or checkout
needed): see :mod:`diffmorph.app.demo`. The morph options override the demo's settings
(working size 256, 600 train steps, 60 frames, the ``best`` preset).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..app.demo import DEMO_PRESET, DEMO_SETTINGS
from ..errors import display_path
from .options import add_morph_options, explicit_settings, make_config, output_options
from .progress import say

HELP = dict(
    summary="morph the bundled photo pair (astronaut -> cat) in about a minute: a first try",
    description="Morph the photo pair shipped with diffmorph (astronaut -> cat), guided by its point pairs where "
    f"shipped, at working size {DEMO_SETTINGS['size']} with {DEMO_SETTINGS['train_steps']} train steps and "
    f"{DEMO_SETTINGS['frames']} frames (preset {DEMO_PRESET}): about a minute on a 2-core CPU. The morph options "
    "below override these settings.",
    epilog="Outputs: OUTPUT_DIR/morph/morph.mp4 and morph.gif (the morph), result.jpg, maps.jpg, maps.npz, "
    "train/ (snapshots), as 'diffmorph morph' writes them.",
    resume_hint="run the same command with --resume to continue",
)


def add_options(parser: argparse.ArgumentParser) -> None:
    opt = parser.add_argument
    opt(
        "-o",
        "--output-dir",
        default="diffmorph-demo",
        metavar="DIR",
        help="where the outputs go (default: ./diffmorph-demo)",
    )
    opt("--unguided", action="store_true", help="leave out the bundled point pairs")
    opt("--resume", action="store_true", help="continue an interrupted demo from OUTPUT_DIR/morph/checkpoint.npz")
    add_morph_options(parser)
    parser.set_defaults(preset=None)


def run(args) -> int:
    """Run the demo; returns the exit status (errors propagate to :func:`cli.main.main`)."""
    from ..app.demo import demo, demo_config
    from .bars import BarProgress

    config = make_config(demo_config(args.preset or DEMO_PRESET), explicit_settings(args))
    result = demo(
        Path(args.output_dir),
        config,
        guided=not args.unguided,
        resume=args.resume,
        options=output_options(args),
        progress=BarProgress(args.quiet),
    )
    if not args.quiet:
        made = [display_path(result.paths.video_files()[f]) for f in ("mp4", "gif") if f in args.formats]
        say(f"done: {result.frames} frames in {display_path(result.paths.morph)}; open {' or '.join(made)}")
    return 0
