"""The errors a user can meet; each message is one line meant for them.

Kept free of heavy imports so the command line can catch them before TensorFlow
loads. Exit statuses (every command): 0 done; 2 bad input or flags
(:class:`InputError`); 1 a failure while optimising or writing (:class:`OutputError`,
:class:`NonFiniteLossError`); 130 interrupted (Ctrl-C or SIGTERM) or cancelled
(:class:`Interrupted`, :class:`Cancelled`).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class InputError(ValueError):
    """An input (image, maps or checkpoint file, setting value) cannot be used. Exit status 2.

    Args:
      message: one line for the user; settings and arguments are written as in Python
        (``train_steps``, ``resume=True``).
      setting: the setting or argument the error is about (``"resume"``, ``"frames"``...),
        or None; kept as ``error.setting``, so a front end can point at its own control
        (the command line names its flag).
    """

    def __init__(self, *args, setting: str | None = None):
        super().__init__(*args)
        self.setting = setting


class OutputError(OSError):
    """An output cannot be written (folder, permissions, disk full, locked). Exit status 1.

    ``setting`` (keyword, kept as ``error.setting``): the setting or argument the error is
    about (``"formats"`` when MP4 output has no ffmpeg...), or None.
    """

    def __init__(self, *args, setting: str | None = None):
        super().__init__(*args)
        self.setting = setting


class NonFiniteLossError(RuntimeError):
    """The optimisation diverged (NaN or infinite loss or maps). Exit status 1."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a run, with one line saying what was kept. Exit status 130.

    Raised by the pipeline in place of the bare KeyboardInterrupt once it knows what
    to tell the user (a checkpoint saved at step N, the previous outputs unchanged...).
    """

    def __init__(self, message: str, resumable: bool = False):
        super().__init__(message)
        self.message = message
        self.resumable = resumable  # a checkpoint was kept: the run can be resumed


class Cancelled(Interrupted):
    """The caller asked the run to stop (:meth:`diffmorph.Progress.cancel`). Exit status 130.

    Raised at the next train step, frame or pair after the request, with one line saying
    what was kept; ``resumable`` is true when a checkpoint was saved (pass ``resume=True``
    to continue). A subclass of :class:`Interrupted`, so code that handles Ctrl-C handles it.
    """

    def __init__(self, message: str = "cancelled", resumable: bool = False):
        super().__init__(message, resumable)


class TimeLimitError(RuntimeError):
    """A pair's optimisation went past its time limit (``pair_time_limit``) and was stopped;
    its checkpoint is kept (a run without the limit resumes it). Exit status 1."""


def stopped(cause: BaseException, what: str, resumable: bool = False) -> Interrupted:
    """The error to raise for a run stopped by ``cause``: :class:`Cancelled` when ``cause``
    is one, else :class:`Interrupted`; its message is ``"cancelled "`` or ``"interrupted "``
    followed by ``what`` (``"while writing the outputs; ..."``)."""
    if isinstance(cause, Cancelled):
        return Cancelled(f"cancelled {what}", resumable)
    return Interrupted(f"interrupted {what}", resumable)


USER_ERRORS = (InputError, OutputError, NonFiniteLossError, TimeLimitError)  # reported as one line, no traceback


def exit_status(error: BaseException) -> int:
    """The exit status for one of :data:`USER_ERRORS`: 2 for bad input, else 1."""
    return EXIT_USAGE if isinstance(error, InputError) else EXIT_FAILURE


def display_path(path) -> str:
    """A path as it goes into a one-line message.

    Printable names are shown as they are; a name with a newline, another control
    character or bytes that are not valid UTF-8 is shown quoted with escapes
    (``'a\\nb.png'``), so a message stays on one line and can always be printed.
    """
    text = str(path)
    return text if text.isprintable() else repr(text)


def printable(text: str) -> str:
    r"""``text`` with whitespace runs as one space and other unprintable characters as ``?``.

    >>> printable("a\tb\x00c")
    'a b?c'
    """
    return "".join(char if char.isprintable() else "?" for char in " ".join(text.split()))


def first_line(error: BaseException) -> str:
    r"""The first non-empty line of an error's message (ffmpeg's, Ray's and decoders' are long),
    printable and at most 200 characters; the error's class name when the message is empty.

    >>> first_line(RuntimeError("\n  boom: bad frame\nTraceback ..."))
    'boom: bad frame'
    >>> first_line(ValueError())
    'ValueError'
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return printable(lines[0][:200]) if lines else type(error).__name__
