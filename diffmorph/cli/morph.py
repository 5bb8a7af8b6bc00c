"""``diffmorph morph``: the original's command line (also ``diffmorph -s A -t B ...`` and
``python morph.py -s A -t B ...``, which mean the same).

Every flag of the original keeps its meaning (``-s -t -e -a -m -w -add_first --fps
--steps`` and their long forms); the rest are additions. Outputs go under
``--output-dir`` in the original's layout (see :mod:`diffmorph.app.morph`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import MAPS_SETTINGS, MorphConfig
from ..errors import InputError, display_path
from .options import (
    FLAGS,
    UsageError,
    add_morph_options,
    explicit_settings,
    make_config,
    output_options,
    preset_base,
)
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
        metavar="FILE|auto",
        help="guide the morph with point pairs: a CSV (header source_x,source_y,target_x,target_y; each image's own "
        "pixels) or JSON file, or 'auto' to find them (SIFT); written to morph/points.csv and drawn in "
        "morph/points.jpg",
    )
    opt("--resume", action="store_true", help="continue from OUTPUT_DIR/morph/checkpoint.npz")
    add_morph_options(parser)


def config_for_maps(saved, base: MorphConfig, explicit: dict, force: bool, progress) -> MorphConfig:
    """The settings for rendering ``saved`` maps: ``base`` (the preset's), then the file's,
    then the flags given.

    Raises:
      InputError: a flag contradicts a setting stored in the file, without ``--force``.
    """
    from ..io import mapsfile

    stored = mapsfile.stored_settings(saved.meta, saved.path)
    settings = {key: stored[key] for key in MAPS_SETTINGS if key in stored}
    for field in settings:
        if field in explicit and explicit[field] != settings[field]:
            flag = FLAGS[field][1]
            if not force:
                raise InputError(
                    f"{display_path(saved.path)} was made with {flag} {settings[field]}; "
                    f"{flag} {explicit[field]} contradicts it (leave the flag out, or add --force "
                    f"to use the command line's value)"
                )
            progress.notice(
                f"--force: using {flag} {explicit[field]} from the command line instead of "
                f"{settings[field]} from {display_path(saved.path)}"
            )
    settings.update(explicit)
    return make_config(base, settings)


def run(args) -> int:
    """Run the morph command; returns the exit status (errors propagate to :func:`cli.main.main`)."""
    from ..app.morph import morph

    if not args.source or not args.target:
        raise UsageError("both -s/--source and -t/--target are required")
    if args.maps and args.resume:
        raise UsageError("--maps and --resume cannot be combined")
    if args.force and not (args.maps or args.resume):
        raise UsageError("--force only applies with --maps or --resume")
    if args.points and args.maps:
        raise UsageError("--points guides an optimisation; --maps renders saved maps (leave --points out)")
    explicit = explicit_settings(args)
    options = output_options(args)
    from .bars import BarProgress

    progress = BarProgress(args.quiet)
    maps = None
    if args.maps:
        from ..io import mapsfile

        maps = mapsfile.load_maps(args.maps)
        config = config_for_maps(maps, preset_base(args), explicit, args.force, progress)
    else:
        config = make_config(preset_base(args), explicit)
    result = morph(
        args.source,
        args.target,
        Path(args.output_dir),
        config,
        maps=maps,
        resume=args.resume,
        force=args.force,
        options=options,
        frames_dir=args.frames_dir,
        points=args.points,
        progress=progress,
    )
    if not args.quiet:
        say(f"done: {display_path(result.paths.morph)} ({result.frames} frames)")
    return 0
