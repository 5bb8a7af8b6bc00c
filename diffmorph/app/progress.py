"""How a pipeline reports to its caller: notices, and progress through its phases.

The pipeline calls a :class:`Progress`; the base class reports nothing except that
notices go to the ``diffmorph`` logger (library use). The command line passes a
subclass that draws progress bars. Phases nest (a sequence's ``pairs`` holds each
pair's ``optimise``); each :meth:`Progress.start` is matched by one :meth:`Progress.end`.

Phases: ``"pairs"`` (pairs of a sequence), ``"optimise"`` (train steps), ``"render"``
(frames written), ``"measure"`` (frames measured by a report), ``"colour"`` (Sinkhorn
iterations).
"""

from __future__ import annotations

import contextlib
import logging
import sys

LOGGER = logging.getLogger("diffmorph")
LABELS = {
    "pairs": ("Pairs", "pair"),
    "optimise": ("Optimising", "step"),
    "render": ("Rendering", "frame"),
    "measure": ("Measuring", "frame"),
    "colour": ("Colour transfer", "it"),
}


class Progress:
    """Receives what a pipeline reports. Subclass and override what you need."""

    def notice(self, text: str) -> None:
        """A one-line remark for the user (a resized input, a reused pair...)."""
        LOGGER.info(text)

    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        """A phase begins: ``total`` units (None if unknown), ``done`` already done."""

    def update(self, done: int, status: str | None = None) -> None:
        """``done`` units of the current phase are done; ``status`` is a short text (a loss)."""

    def end(self) -> None:
        """The current phase ends (also when it fails)."""

    @contextlib.contextmanager
    def phase(self, name: str, total: int | None, done: int = 0):
        """``start`` ... ``end`` as a context manager."""
        self.start(name, total, done)
        try:
            yield self
        finally:
            self.end()


SILENT = Progress()


class BarProgress(Progress):
    """Progress bars (tqdm) on stderr, one per phase (nested phases stack), and notices
    as ``diffmorph: TEXT`` lines that do not break the bars. The command line's.

    Args:
      quiet: no bars (notices are still printed).
    """

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._bars = []

    def notice(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"diffmorph: {text}", file=sys.stderr)
        sys.stderr.flush()

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
