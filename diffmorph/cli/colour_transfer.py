"""``diffmorph colour-transfer IMAGE --palette PALETTE -o OUT``: recolour an image by optimal transport.

``uot`` (default): unbalanced optimal transport between colour histograms, solved by
a log-domain convolutional Sinkhorn (:func:`diffmorph.core.colour.colour_transfer`);
``gaussian``: the W2 (Bures) map between Gaussian fits of the colours. Prints W2
between the colour Gaussians of the image and the palette, before and after.
"""

from __future__ import annotations

import argparse

from ..errors import display_path
from .options import UsageError, in_flags, number
from .progress import say

HELP = dict(
    summary="recolour an image with a palette image's colours (optimal transport)",
    description="Recolour IMAGE with the colours of PALETTE: unbalanced optimal transport between colour "
    "histograms (uot), or the W2 map between Gaussian fits (gaussian).",
)


def add_options(parser: argparse.ArgumentParser) -> None:
    from ..core.colour import DEFAULT_BINS, DEFAULT_EPS0, DEFAULT_ITERS, DEFAULT_LAMBDA, DEFAULT_STAGES

    opt = parser.add_argument
    opt("image", metavar="IMAGE", help="the image to recolour")
    opt("--palette", required=True, metavar="PALETTE", help="the image whose colours to take")
    opt("-o", "--output", required=True, metavar="OUT", help="the recoloured image (.png, .jpg, ...)")
    opt("--method", choices=("uot", "gaussian"), default="uot", help="uot (default) or gaussian")
    opt(
        "--bins",
        type=number(int, "bins"),
        default=DEFAULT_BINS,
        metavar="N",
        help=f"histogram bins per channel, 8..128 (default {DEFAULT_BINS})",
    )
    opt(
        "--lambda",
        dest="lam",
        type=number(float, "lambda"),
        default=DEFAULT_LAMBDA,
        metavar="L",
        help=f"strength of the soft marginal constraints, 1e-6..1e6 (default {DEFAULT_LAMBDA})",
    )
    opt(
        "--eps",
        dest="eps0",
        type=number(float, "eps"),
        default=DEFAULT_EPS0,
        metavar="E",
        help=f"first entropic regularisation, halved at each stage, 1e-6..1e6 (default {DEFAULT_EPS0})",
    )
    opt(
        "--stages",
        type=number(int, "stages"),
        default=DEFAULT_STAGES,
        metavar="S",
        help=f"stages of the epsilon schedule, 1..64 (default {DEFAULT_STAGES})",
    )
    opt(
        "--iters",
        type=number(int, "iters"),
        default=DEFAULT_ITERS,
        metavar="I",
        help=f"Sinkhorn iterations per stage, 1..100000; stages x iters at most 1000000 (default {DEFAULT_ITERS})",
    )
    opt("-q", "--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    """Run the colour-transfer command; returns the exit status."""
    from ..app.colour_transfer import check_output_path, transfer_file
    from ..core.colour import TransferSettings
    from .bars import BarProgress

    try:
        settings = TransferSettings(
            method=args.method, bins=args.bins, lam=args.lam, eps0=args.eps0, stages=args.stages, iters=args.iters
        )
    except ValueError as exc:  # the message starts with the setting's name: put its flag there
        text = str(exc)
        raise UsageError(in_flags(text, text.partition(" ")[0])) from None
    check_output_path(args.output)  # a bad output name is refused before the progress bar appears
    progress = BarProgress(args.quiet)
    result = transfer_file(args.image, args.palette, args.output, settings, progress=progress)
    say(
        f"W2 between the colour Gaussians of the image and the palette: {result['w2_before']:.4f} before, "
        f"{result['w2_after']:.4f} after (unit RGB cube)"
    )
    if not args.quiet:
        say(f"done: {display_path(args.output)} ({result['seconds']:.1f} s)")
    return 0
