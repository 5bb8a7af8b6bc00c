"""Progress bars on stderr: a :class:`~diffmorph.app.progress.Progress` for scripts and notebooks.

:class:`BarProgress` draws one tqdm bar per phase (nested phases stack) and prints notices as
``diffmorph: TEXT`` lines that do not break the bars. The command line's bars
(``diffmorph.cli.bars``) are this class with notices that name its flags.
"""

from __future__ import annotations

import sys

from .progress import Progress

LABELS = {  # phase -> (bar label, unit)
    "pairs": ("Pairs", "pair"),
    "optimise": ("Optimising", "step"),
    "render": ("Rendering", "frame"),
    "measure": ("Measuring", "frame"),
    "colour": ("Colour transfer", "it"),
}


def write_line(text: str) -> None:
    """A one-line ``diffmorph: TEXT`` message on stderr that does not break progress bars."""
    from tqdm import tqdm

    tqdm.write(f"diffmorph: {text}", file=sys.stderr)
    sys.stderr.flush()


class BarProgress(Progress):
    """Progress bars (tqdm) on stderr, one per phase (nested phases stack), and notices as
    ``diffmorph: TEXT`` lines (naming settings, as the library's messages do).

    Args:
      quiet: no bars (notices are still printed).

    Example:
      >>> import diffmorph
      >>> bars = diffmorph.BarProgress(quiet=True)
      >>> with bars.phase("render", 3):
      ...     bars.update(3)
    """

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._bars = []

    def notice(self, text: str) -> None:
        write_line(text)

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
