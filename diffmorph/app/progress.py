"""How a pipeline reports to its caller, and how the caller stops it: one interface for every surface.

Every long operation (:func:`~diffmorph.app.morph.morph`, :func:`~diffmorph.app.morph.render_frames`,
:func:`~diffmorph.app.sequence.morph_sequence`, :func:`~diffmorph.app.report.report`,
:func:`~diffmorph.app.colour_transfer.transfer_file`) takes ``progress=`` a :class:`Progress`.
The base class reports nothing except that notices go to the ``diffmorph`` logger
(library use); the command line passes one that draws bars (``diffmorph.cli.bars``), a
web app one that drives its page. Phases nest (a sequence's ``pairs`` holds each pair's
``optimise``); each :meth:`Progress.start` is matched by one :meth:`Progress.end`.

Cancelling: any thread may call :meth:`Progress.cancel`; the pipeline checks
(:meth:`Progress.check_cancelled`) at every train step, frame, measured frame, pair
and every few Sinkhorn iterations, and stops there by raising
:class:`~diffmorph.errors.Cancelled`. An optimisation saves its checkpoint first, so
the same call with ``resume=True`` continues it; outputs are published as a set, so a
cancelled run leaves the previous ones complete.

Phases: ``"pairs"`` (pairs of a sequence), ``"optimise"`` (train steps), ``"render"``
(frames written), ``"measure"`` (frames measured by a report), ``"colour"`` (Sinkhorn
iterations).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from ..errors import Cancelled

LOGGER = logging.getLogger("diffmorph")


class Progress:
    """Receives what a pipeline reports, and carries the caller's request to stop.

    Subclass and override what you need (``notice``, ``start``, ``update``, ``end``);
    keep the cancel methods as they are. One instance serves one run at a time.

    Example:
      >>> progress = Progress()
      >>> progress.cancelled
      False
      >>> progress.cancel()  # from any thread, e.g. a Stop button's handler
      >>> try:
      ...     progress.check_cancelled()  # what the pipelines call at every step
      ... except Cancelled as stop:  # a KeyboardInterrupt subclass: catch it by name
      ...     print(stop, stop.resumable)
      cancelled False
    """

    @property
    def _cancel(self) -> threading.Event:
        # Made on first use, so a subclass's __init__ need not call super().__init__().
        event = self.__dict__.get("_cancel_event")
        return event if event is not None else self.__dict__.setdefault("_cancel_event", threading.Event())

    def notice(self, text: str) -> None:
        """A one-line remark for the user (a resized input, a reused pair...)."""
        LOGGER.info(text)

    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        """A phase begins: ``total`` units (None if unknown), ``done`` already done."""

    def update(self, done: int, status: str | None = None) -> None:
        """``done`` units of the current phase are done; ``status`` is a short text (a loss)."""

    def end(self) -> None:
        """The current phase ends (also when it fails)."""

    def cancel(self) -> None:
        """Ask the running pipeline to stop at its next train step, frame or pair (thread-safe)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called (and not :meth:`reset` since)."""
        return self._cancel.is_set()

    def reset(self) -> None:
        """Forget an earlier :meth:`cancel`, so the instance can serve another run."""
        self._cancel.clear()

    def check_cancelled(self) -> None:
        """Raise :class:`~diffmorph.errors.Cancelled` if :meth:`cancel` was called. The pipelines call it.

        Raises:
          Cancelled: with the message ``"cancelled"`` (the pipeline that catches it says what was kept).
        """
        if self._cancel.is_set():
            raise Cancelled("cancelled")

    @contextlib.contextmanager
    def phase(self, name: str, total: int | None, done: int = 0):
        """``start`` ... ``end`` as a context manager."""
        self.start(name, total, done)
        try:
            yield self
        finally:
            self.end()


class _Silent(Progress):
    """The default: reports nothing and cannot be cancelled (it is shared by every call)."""

    def cancel(self) -> None:
        raise TypeError("pass your own Progress() as progress= to be able to cancel a run")


SILENT = _Silent()


class Deadline(Progress):
    """Passes everything on to ``progress`` and stops the run, as a cancel would, once ``seconds``
    have passed (checked wherever the pipelines check for a cancel: every train step, frame, pair).

    ``expired`` says whether the time ran out (rather than a cancel of ``progress`` or of this one).

    Example:
      >>> deadline = Deadline(Progress(), 0.0)
      >>> try:
      ...     deadline.check_cancelled()
      ... except Cancelled:
      ...     print(deadline.expired)
      True
    """

    def __init__(self, progress: Progress, seconds: float):
        self.progress = progress
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.expired = False

    def notice(self, text: str) -> None:
        self.progress.notice(text)

    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        self.progress.start(phase, total, done)

    def update(self, done: int, status: str | None = None) -> None:
        self.progress.update(done, status)

    def end(self) -> None:
        self.progress.end()

    @property
    def cancelled(self) -> bool:
        return super().cancelled or self.progress.cancelled

    def check_cancelled(self) -> None:
        self.progress.check_cancelled()
        super().check_cancelled()
        if time.monotonic() >= self.ends:
            self.expired = True
            raise Cancelled("cancelled")
