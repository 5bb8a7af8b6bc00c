"""``diffmorph batch PAIRS.csv -o OUT_DIR``: many pairs, each morphed into its own folder.

See :mod:`diffmorph.app.batch` for the rows, the layout and the re-run rules.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import EXIT_FAILURE
from .options import add_morph_options, explicit_settings, make_config, output_options, preset_base
from .scale import SCALE_HELP, add_cluster_options, cluster_arguments

BATCH_RULES = """\
PAIRS.csv: a header line naming the columns source,target[,name][,points] (any order),
then one pair per line; paths are relative to the CSV file's folder. Each row goes to
OUT_DIR/NAME/ in the morph command's layout (train/, preds.npy, morph/morph.mp4, ...);
NAME defaults to SOURCE_to_TARGET (file stems). A re-run skips finished rows and resumes
an interrupted one. A row that fails (a missing or unreadable image...) is reported
with its reason while the others run. At the end a table (row, status, time, output)
is printed and OUT_DIR/batch.json written. Exit status 1 if any row failed; 2 for a bad
CSV file (missing column, duplicate name), before any work."""

HELP = dict(
    summary="morph many pairs listed in a CSV file, optionally on a Ray cluster",
    description="Morph every pair listed in PAIRS.csv, each into its own folder.",
    epilog=f"{BATCH_RULES}\n\n{SCALE_HELP}",
    resume_hint="run the same command again to continue",
    formatter_class=argparse.RawDescriptionHelpFormatter,
)


def add_options(parser: argparse.ArgumentParser) -> None:
    opt = parser.add_argument
    opt("pairs", metavar="PAIRS.csv", help="the pairs: columns source,target[,name][,points]")
    opt("-o", "--output-dir", required=True, metavar="OUT_DIR", help="where each row's folder goes (required)")
    add_cluster_options(parser)
    add_morph_options(parser)


def run(args) -> int:
    """Run the batch command; returns the exit status (1 if any row failed)."""
    from ..app.batch import morph_batch
    from .bars import BarProgress

    config = make_config(preset_base(args), explicit_settings(args))
    result = morph_batch(
        args.pairs,
        args.output_dir,
        config,
        options=output_options(args),
        progress=BarProgress(args.quiet),
        **cluster_arguments(args),
    )
    sys.stdout.write(result.table() + "\n")
    return EXIT_FAILURE if result.failed else 0
