"""The web app's :class:`diffmorph.Progress`: what a run reports, read by the page's poller.

The morph runs on a worker thread; the page's handler polls :meth:`WebProgress.snapshot`
a few times a second and shows it (Gradio's progress bar, a status line). ``stop()`` (the
Stop button's, any thread) stops the run at its next train step or frame: the library's
``Progress.cancel()`` where it has one, else an interrupt raised from ``update()``; the
optimisation saves its checkpoint first either way, so the next run can resume it.
"""

from __future__ import annotations

import dataclasses
import threading

import diffmorph

LIBRARY_CANCELS = hasattr(diffmorph.Progress, "check_cancelled")  # the pipelines stop at progress.cancel()
LABELS = {"optimise": "Training", "render": "Rendering frames", "measure": "Measuring frames", "colour": "Colours"}


@dataclasses.dataclass(frozen=True)
class State:
    """What the run is doing: phase label, units done of ``total`` (None: unknown), the last status (a loss)."""

    phase: str = "Starting"
    done: int = 0
    total: int | None = None
    status: str = ""
    notices: tuple[str, ...] = ()

    def line(self) -> str:
        """One line for the page: ``Training: step 40 of 200, loss 0.012345``."""
        if self.total:
            text = f"{self.phase}: {self.done} of {self.total}"
        else:
            text = self.phase
        return f"{text}, {self.status}" if self.status else text


class WebProgress(diffmorph.Progress):
    """Records the run's phase, counts and loss for the page; ``stop()`` stops the run."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._state = State()
        self._stop = threading.Event()

    def stop(self) -> None:
        """Stop the run at its next train step or frame (thread-safe; the Stop button's)."""
        self._stop.set()
        if LIBRARY_CANCELS:
            self.cancel()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def snapshot(self) -> State:
        with self._lock:
            return self._state

    def _set(self, **changes) -> None:
        with self._lock:
            self._state = dataclasses.replace(self._state, **changes)

    def notice(self, text: str) -> None:
        super().notice(text)
        with self._lock:
            self._state = dataclasses.replace(self._state, notices=(*self._state.notices, text))

    def start(self, phase: str, total: int | None, done: int = 0) -> None:
        self._set(phase=LABELS.get(phase, phase), total=total, done=done, status="")
        self._check()

    def update(self, done: int, status: str | None = None) -> None:
        self._set(done=done, **({"status": status} if status is not None else {}))
        self._check()

    def _check(self) -> None:
        if self._stop.is_set() and not LIBRARY_CANCELS:
            # A library without Progress.cancel(): the pipeline turns this into its
            # "interrupted at train step N; checkpoint saved" error, as for Ctrl-C.
            raise KeyboardInterrupt("stopped")
