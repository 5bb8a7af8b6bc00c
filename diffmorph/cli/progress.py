"""One-line messages on stderr for the command line (progress bars: :mod:`diffmorph.cli.bars`)."""

from __future__ import annotations

import sys

PROG = "diffmorph"


def say(message: str) -> None:
    """A one-line ``diffmorph: ...`` message on stderr that does not break progress bars."""
    from tqdm import tqdm

    tqdm.write(f"{PROG}: {message}", file=sys.stderr)
    sys.stderr.flush()
