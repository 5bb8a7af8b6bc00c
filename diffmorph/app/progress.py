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

LOGGER = logging.getLogger("diffmorph")


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
