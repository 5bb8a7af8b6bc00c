"""Progress bars on stderr: the command line's :class:`~diffmorph.app.progress.Progress`."""

from __future__ import annotations

from ..app import bars
from .options import in_flags
from .progress import say


class BarProgress(bars.BarProgress):
    """The library's :class:`~diffmorph.app.bars.BarProgress` with notices that name the
    command line's flags where the library names settings (:func:`~diffmorph.cli.options.in_flags`).

    Args:
      quiet: no bars (notices are still printed).
    """

    def notice(self, text: str) -> None:
        say(in_flags(text))
