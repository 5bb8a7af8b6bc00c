"""``diffmorph morph``: the original's command line (also ``diffmorph -s A -t B ...`` and
``python morph.py -s A -t B ...``, which mean the same).

Every flag of the original keeps its meaning (``-s -t -e -a -m -w -add_first --fps
--steps`` and their long forms); the rest are additions. Outputs go under
``--output-dir`` in the original's layout (see :mod:`diffmorph.app.morph`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import display_path
from .options import UsageError, add_morph_options, explicit_settings, make_config, output_options, preset_base
from .progress import say

HELP = dict(
    summary="morph a source image into a target image (the default command)",
    description="Morph a source image into a target image (DiffMorph). The same as 'diffmorph -s A -t B' and "
    "'python morph.py -s A -t B'.",
    epilog="Outputs: train/ (snapshots), preds.npy, morph/ (morph.mp4, morph.gif, result.jpg, maps.jpg, maps.npz, "
    "checkpoint.npz) under --output-dir.",
    resume_hint="run the same command with --resume to continue",
)


def add_options(parser: argparse.ArgumentParser) -> None:
    opt = parser.add_argument
    opt("-s", "--source", help="source image (the first frame)")
    opt("-t", "--target", help="target image (the last frame)")
    opt(
        "--output-dir",
        "-o",
        default=".",
        metavar="DIR",
        help="where train/, morph/ and preds.npy go (default: the current directory)",
    )
    opt("--frames-dir", metavar="DIR", help="folder for numbered PNG frames (default OUTPUT_DIR/morph/frames)")
    opt(
        "--maps",
        metavar="FILE",
        help="render from saved maps (morph/maps.npz) instead of optimising; the settings stored in the file are used",
    )
    opt(
        "--force",
        action="store_true",
        help="with --maps: use maps made for other images, or let the command line's settings override the file's; "
        "with --resume: continue a checkpoint made with other --points",
    )
    opt(
        "--points",
        metavar="FILE|auto|faces|faces68",
        help="guide the morph with point pairs: a CSV (header source_x,source_y,target_x,target_y; each image's own "
        "pixels) or JSON file; 'faces' for 47 landmarks (eyes, brows, nose, lips, face oval) of the largest face "
        "in each image (needs the faces extra: pip install 'diffmorph[faces]'), 'faces68' for 68 (a model not for "
        "commercial use), or 'auto' to find them (faces, else SIFT); no face or too few matches: SIFT, then "
        "unguided, with a notice; written to morph/points.csv and drawn in morph/points.jpg",
    )
    opt("--resume", action="store_true", help="continue from OUTPUT_DIR/morph/checkpoint.npz")
    add_morph_options(parser)


def run(args) -> int:
    """Run the morph command: the flags checked, then one call to :func:`diffmorph.app.morph.morph`
    (which merges a ``--maps`` file's settings with the flags given); returns the exit status
    (errors propagate to :func:`cli.main.main`)."""
    from ..app.morph import morph
    from .bars import BarProgress

    if not args.source or not args.target:
        raise UsageError("both -s/--source and -t/--target are required")
    if args.maps and args.resume:
        raise UsageError("--maps and --resume cannot be combined")
    if args.force and not (args.maps or args.resume):
        raise UsageError("--force only applies with --maps or --resume")
    if args.points and args.maps:
        raise UsageError("--points guides an optimisation; --maps renders saved maps (leave --points out)")
    explicit = explicit_settings(args)
    result = morph(
        args.source,
        args.target,
        Path(args.output_dir),
        make_config(preset_base(args), explicit),
        maps=args.maps,
        explicit=set(explicit),
        resume=args.resume,
        force=args.force,
        options=output_options(args),
        frames_dir=args.frames_dir,
        points=args.points,
        progress=BarProgress(args.quiet),
    )
    if not args.quiet:
        say(f"done: {display_path(result.paths.morph)} ({result.frames} frames)")
    return 0
