"""A background thread that hands queued items, in order, to one function.

Used where work can overlap the caller's (an MP4 encoder fed frames while the next
frame renders; MS-SSIM computed while the next frame is read: TensorFlow and ffmpeg
release the interpreter lock). The queue is bounded, so a slow consumer holds the
producer back instead of piling items up in memory. The first error in the thread
stops the work and is raised on the caller's thread by :meth:`Worker.put` or
:meth:`Worker.finish`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

_END = object()


class Worker:
    """Calls ``handle(item)`` in a thread for every item :meth:`put`, in order.

    Args:
      handle: the function (its return value is ignored).
      maxsize: items waiting at most (>= 1).
      name: the thread's name.
    """

    def __init__(self, handle: Callable[[object], object], maxsize: int, name: str):
        self._handle = handle
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def maxsize(self) -> int:
        return self._queue.maxsize

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self.error is None:
                try:
                    self._handle(item)
                except BaseException as exc:  # raised on the caller's thread
                    self.error = exc

    def put(self, item) -> None:
        """Queue one item (waits while the queue is full).

        Raises:
          the thread's first error, if there was one.
        """
        if self.error is not None:
            raise self.error
        self._queue.put(item)

    def finish(self) -> None:
        """Wait until every queued item is handled and the thread has ended.

        Raises:
          the thread's first error, if there was one.
        """
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """End the thread without handling the items still queued (after a failure elsewhere)."""
        self.error = self.error or RuntimeError("stopped")
        while True:  # the caller is the only producer: once drained, the end marker fits
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()
