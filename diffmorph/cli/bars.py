"""Progress bars on stderr: the command line's :class:`~diffmorph.app.progress.Progress`."""

from __future__ import annotations

import sys

from ..app.progress import Progress
from .options import in_flags
from .progress import say

LABELS = {
    "pairs": ("Pairs", "pair"),
    "optimise": ("Optimising", "step"),
    "render": ("Rendering", "frame"),
    "measure": ("Measuring", "frame"),
    "colour": ("Colour transfer", "it"),
}


class BarProgress(Progress):
    """Progress bars (tqdm) on stderr, one per phase (nested phases stack), and notices
    as ``diffmorph: TEXT`` lines that do not break the bars, naming flags where the
    library names settings (:func:`~diffmorph.cli.options.in_flags`).

    Args:
      quiet: no bars (notices are still printed).
    """

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._bars = []

    def notice(self, text: str) -> None:
        say(in_flags(text))

    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        from tqdm import tqdm

        label, unit = LABELS.get(phase, (phase, "it"))
        self._bars.append(
            tqdm(
                total=total,
                initial=done,
                desc=label,
                unit=unit,
                disable=self.quiet,
                dynamic_ncols=True,
                position=len(self._bars),
                leave=not self._bars,
                file=sys.stderr,
            )
        )

    def update(self, done: int, status: str | None = None) -> None:
        if not self._bars:
            return
        bar = self._bars[-1]
        if status is not None:
            bar.set_postfix_str(status, refresh=False)
        bar.update(done - bar.n)

    def end(self) -> None:
        if self._bars:
            self._bars.pop().close()
