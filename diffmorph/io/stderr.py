"""Capturing what C libraries print on standard error (file descriptor 2).

Decoders (libpng, libtiff...) and TensorFlow's C++ runtime write straight to file
descriptor 2, past ``sys.stderr``. :func:`captured_stderr` points descriptor 2 at a
temporary file (or at the null device) for the length of a block and restores it.
Descriptor 2 is shared by the whole process, so the capture holds a lock: captures
from several threads take turns (and one thread may nest them).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading

CAPTURED_BYTES = 65536  # at most this much of what was written is kept

_LOCK = threading.RLock()


class Captured:
    """What a :func:`captured_stderr` block printed: ``text`` (str), filled when the block ends."""

    def __init__(self):
        self.text = ""


@contextlib.contextmanager
def captured_stderr(keep: bool = True):
    """Redirect file descriptor 2 for the length of the block; yield a :class:`Captured`.

    Args:
      keep: True: into a temporary file, whose first :data:`CAPTURED_BYTES` bytes
        become ``text`` (UTF-8, undecodable bytes replaced) when the block ends;
        False: into the null device (muted, ``text`` stays empty).

    Without a usable descriptor 2 (closed, or an embedded interpreter) nothing is
    redirected and ``text`` stays empty. Exceptions from the block propagate, with
    descriptor 2 restored first.
    """
    captured = Captured()
    with _LOCK, contextlib.ExitStack() as stack:
        saved = sink = None
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        try:
            if keep:
                sink = stack.enter_context(tempfile.TemporaryFile())
                target = sink.fileno()
            else:
                target = os.open(os.devnull, os.O_WRONLY)
                stack.callback(os.close, target)
            saved = os.dup(2)
            os.dup2(target, 2)
        except (OSError, ValueError):  # no usable stderr descriptor: nothing to redirect
            if saved is not None:
                os.close(saved)
            saved = None
        try:
            yield captured
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
                if sink is not None:
                    sink.seek(0)
                    captured.text = sink.read(CAPTURED_BYTES).decode("utf-8", "replace")
