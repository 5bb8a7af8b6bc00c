"""The web app's :class:`diffmorph.Progress`: what a run reports, read by the page's poller.

The morph runs on a worker thread; the page's handler polls :meth:`WebProgress.snapshot`
a few times a second and shows it (Gradio's progress bar, a status line). The Stop button
calls :meth:`diffmorph.Progress.cancel` (any thread): the run stops at its next train step or
frame with :class:`diffmorph.Cancelled`, the optimisation saving its checkpoint first, so the
next run can resume it.
"""

from __future__ import annotations

import dataclasses
import threading

import diffmorph

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
    """Records the run's phase, counts and loss for the page; ``cancel()`` stops the run."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._state = State()

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

    def update(self, done: int, status: str | None = None) -> None:
        self._set(done=done, **({"status": status} if status is not None else {}))
