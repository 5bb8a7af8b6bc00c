"""``diffmorph report INPUT``: measure a morph's frames (this tool's or another's).

INPUT is a morph output folder, a video (MP4...), a GIF or a folder of frames. Writes
``report.json`` and ``report.png`` (see :mod:`diffmorph.app.report`) and prints a
short table. The measures are weight-free and self-consistent, not LPIPS or FID.
"""

from __future__ import annotations

import argparse

from ..errors import display_path
from .progress import say

HELP = dict(
    summary="measure a morph's frames: pace, path length, sharpness, colour path, alignment",
    description="Measure a morph's frames (a morph output folder, a video, a GIF or a folder of frames) and "
    "write report.json and report.png.",
    epilog="Default output folder: OUT/morph/ for a morph output folder OUT (or its morph/ folder), the video's "
    "or GIF's folder, or a frames folder's parent folder.",
)


def add_options(parser: argparse.ArgumentParser) -> None:
    opt = parser.add_argument
    opt("input", metavar="INPUT", help="a morph output folder, an MP4 (or other video), a GIF, or a frames folder")
    opt("--source", metavar="A", help="the morph's source image: the first frame is compared with it")
    opt("--target", metavar="B", help="the morph's target image: the last frame is compared with it")
    opt("--truth", metavar="MID", help="a known midpoint image: the middle frame is compared with it")
    opt(
        "--maps",
        metavar="NPZ",
        help="the morph's maps file, to measure where the two halves of the middle frame put the same content "
        "(default: morph/maps.npz of a morph output folder)",
    )
    opt(
        "--points",
        metavar="FILE",
        help="point pairs (.csv/.json) to measure that alignment at (default: the morph's own points.csv)",
    )
    opt("--held-out", metavar="FILE", dest="held_out", help="more point pairs, not used by the morph, measured alike")
    opt("-o", "--output-dir", metavar="DIR", help="where report.json and report.png go (default: see below)")
    opt("-q", "--quiet", action="store_true", help="no progress bar, no table")


def run(args) -> int:
    """Run the report command; returns the exit status."""
    from ..app.report import default_report_folder, format_table, report
    from .bars import BarProgress

    folder = args.output_dir or default_report_folder(args.input)
    result = report(
        args.input,
        args.source,
        args.target,
        args.truth,
        folder,
        progress=BarProgress(args.quiet),
        maps=args.maps,
        points=args.points,
        held_out=args.held_out,
    )
    if not args.quiet:
        print(format_table(result))
        say(f"done: {', '.join(display_path(f) for f in result['files'])}")
    return 0
