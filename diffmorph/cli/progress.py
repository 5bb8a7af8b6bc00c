"""One-line messages on stderr for the command line, and its progress bars (:func:`bars`)."""

from __future__ import annotations

import sys

PROG = "diffmorph"


def say(message: str) -> None:
    """A one-line ``diffmorph: ...`` message on stderr that does not break progress bars."""
    from tqdm import tqdm

    tqdm.write(f"{PROG}: {message}", file=sys.stderr)
    sys.stderr.flush()


def bars(quiet: bool = False):
    """The command line's progress: bars (unless ``quiet``), and notices that name flags
    where the library names settings (:func:`diffmorph.cli.options.in_flags`)."""
    from ..app.progress import BarProgress
    from .options import in_flags

    class Bars(BarProgress):
        def notice(self, text: str) -> None:
            super().notice(in_flags(text))

    return Bars(quiet)
