"""The errors a user can meet; each message is one line meant for them.

Kept free of heavy imports so the CLI can catch them before TensorFlow loads.
"""


class InputError(ValueError):
    """An input (image, maps or checkpoint file) cannot be used. CLI exit status 2."""


class OutputError(OSError):
    """An output cannot be written (folder, permissions, disk full). CLI exit status 1."""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the maps are unusable. CLI exit status 1."""


USER_ERRORS = (InputError, OutputError, NonFiniteLossError)  # reported as one line, no traceback


def exit_status(error: BaseException) -> int:
    """The CLI's exit status for one of :data:`USER_ERRORS`: 2 for bad input, else 1."""
    return 2 if isinstance(error, InputError) else 1
