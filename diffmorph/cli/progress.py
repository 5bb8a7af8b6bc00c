"""Progress bars (tqdm) and one-line notices on stderr for the command line."""

from __future__ import annotations

import sys

from ..app.progress import Progress

PROG = "diffmorph"
LABELS = {"pairs": ("Pairs", "pair"), "optimise": ("Optimising", "step"), "render": ("Rendering", "frame"),
          "measure": ("Measuring", "frame"), "colour": ("Colour transfer", "it")}


def say(message: str) -> None:
    """A one-line ``diffmorph: ...`` message on stderr that does not break progress bars."""
    from tqdm import tqdm

    tqdm.write(f"{PROG}: {message}", file=sys.stderr)
    sys.stderr.flush()


class BarProgress(Progress):
    """Draws one tqdm bar per phase (nested phases stack); notices go to :func:`say`.

    Args:
      quiet: no bars (notices are still printed).
    """

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._bars = []

    def notice(self, text: str) -> None:
        say(text)

    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        from tqdm import tqdm

        label, unit = LABELS.get(phase, (phase, "it"))
        self._bars.append(tqdm(total=total, initial=done, desc=label, unit=unit, disable=self.quiet,
                               dynamic_ncols=True, position=len(self._bars), leave=not self._bars,
                               file=sys.stderr))

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
