"""A morph run on a worker thread, with a time limit, that ends when its client goes.

:class:`Runner` calls :func:`diffmorph.morph` on its own thread with a
:class:`~diffmorph.web.progress.WebProgress`, so the page's handler can poll the progress
and show training snapshots while it runs. :meth:`Runner.cancel` (Stop, a closed client,
the time limit) asks the run to stop at its next train step or frame
(:meth:`diffmorph.Progress.cancel`; the optimisation keeps its checkpoint); the thread
then frees its session by itself. No Gradio here.
"""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import diffmorph

from ..app.write import FORMATS  # a run writes every format (plus the report)
from .progress import WebProgress
from .sessions import Session


class Runner:
    """Runs one morph on a worker thread, reporting to a :class:`WebProgress`.

    Args:
      session: whose folder it writes in; ``session.runner`` is this runner while it runs.
      source, target: uint8 ``(H, W, 3)`` arrays. config: the :class:`diffmorph.MorphConfig`.
      pairs: point pairs ``(N, 4)`` or None. resume, maps: as for :func:`diffmorph.morph`.
      max_s: seconds after which the run is cancelled (``timed_out`` then says so).
      done: called with the runner on its thread once the run is over (the session is free).
    """

    def __init__(
        self, session: Session, source, target, config, *, pairs=None, resume=False, maps=None, max_s=None, done=None
    ):
        self.session = session
        self.progress = WebProgress()
        self.result = None
        self.error: BaseException | None = None
        self.timed_out = False
        self._done = done
        kwargs = dict(
            resume=resume,
            maps=maps,
            options=diffmorph.OutputOptions(formats=FORMATS, report=True),
            progress=self.progress,
        )
        if pairs is not None and len(pairs):
            kwargs["points"] = pairs
        self._call = lambda: diffmorph.morph(source, target, session.run_dir, config, **kwargs)
        self.thread = threading.Thread(target=self._run, name="diffmorph-web-run", daemon=True)
        self._timer = threading.Timer(max_s, self._time_up) if max_s else None

    def _run(self) -> None:
        try:
            self.result = self._call()
        except BaseException as exc:  # noqa: BLE001 (reported to the page)
            self.error = exc
        finally:
            if self._timer is not None:
                self._timer.cancel()
            self.session.runner = None
            if self._done is not None:
                self._done(self)

    def _time_up(self) -> None:
        self.timed_out = True
        self.progress.cancel()

    def start(self) -> Runner:
        self.session.runner = self
        self.session.stopped = False
        self.thread.start()
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        return self

    def cancel(self) -> None:
        """Ask the run to stop at its next train step or frame (any thread; returns at once)."""
        self.progress.cancel()

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` s; True once the run is over."""
        self.thread.join(timeout)
        return not self.thread.is_alive()


def frames_zip(frames: Path, out: Path) -> Path:
    """The numbered frames as one ZIP (stored: PNGs do not compress further), written
    under a temporary name and renamed."""
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(frames.glob("*.png")):
            archive.write(path, path.name)
    tmp.replace(out)
    return out
