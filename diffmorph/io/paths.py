"""Opening an input file safely, with one-line messages for every way it can fail.

:func:`open_regular` opens a path for reading only if it is a regular file (not a
folder, FIFO, socket or device), checks the file it opened is the one it checked, and
turns every ``OSError`` (missing file, dangling link, link loop, name too long,
permission, I/O error) into an :class:`~diffmorph.errors.InputError` with a message
that says what is wrong and, where it helps, what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from ..errors import InputError, display_path


def os_reason(exc: OSError) -> str:
    """A short lower-case reason for an OSError (``permission denied``)."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


@contextlib.contextmanager
def open_regular(path, shown: str):
    """Open ``path`` for reading if it is a regular file; every OSError becomes an InputError."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise InputError(_stat_message(path, shown, exc)) from None
    except ValueError:  # an embedded NUL character
        raise InputError(f"{shown}: the path contains a NUL character") from None
    _check_regular(info.st_mode, shown)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)  # non-blocking: a FIFO swapped in after the stat cannot hang us
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise InputError(f"{shown}: cannot be read (permission denied)") from None
        raise InputError(_stat_message(path, shown, exc)) from None
    try:
        _check_regular(os.fstat(fd).st_mode, shown)  # the file opened is the one checked
    except OSError as exc:
        os.close(fd)
        raise InputError(f"{shown}: cannot be read ({os_reason(exc)})") from None
    except InputError:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        yield handle


def _check_regular(mode: int, shown: str) -> None:
    if stat.S_ISDIR(mode):
        raise InputError(f"{shown}: is a directory, not an image file")
    if not stat.S_ISREG(mode):  # a FIFO or device would block or never end
        what = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a special file"
        )
        raise InputError(f"{shown}: is {what}, not a regular file")


def _stat_message(path, shown: str, exc: OSError) -> str:
    """The one-line message for an OSError from stat/open on ``path``."""
    code = exc.errno
    if code == errno.ENOENT:
        try:
            is_link = stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError:
            is_link = False
        if is_link:
            try:
                target = display_path(os.readlink(path))
            except OSError:
                target = "?"
            return f"{shown}: is a symbolic link to a missing file ({target})"
        return f"{shown}: no such file"
    if code == errno.ELOOP:
        return f"{shown}: symbolic link loop (a link that points back to itself, directly or through others)"
    if code == errno.ENAMETOOLONG:
        parts = [os.fsencode(part) for part in Path(os.fsdecode(os.fspath(path))).parts]
        longest = max((len(part) for part in parts), default=0)
        if longest > 255:
            return (
                f"{shown}: a name in the path is {longest} bytes long; "
                f"file systems allow 255 (rename the file or folder)"
            )
        return f"{shown}: the path is too long for the file system ({len(os.fsencode(os.fspath(path)))} bytes)"
    if code == errno.ENOTDIR:
        return f"{shown}: a part of the path is a file, not a folder"
    if code in (errno.EACCES, errno.EPERM):
        return f"{shown}: cannot be read (permission denied on the file or a folder of its path)"
    if code == errno.EIO:
        return f"{shown}: cannot be read (input/output error: check the disk or network share)"
    return f"{shown}: cannot be read ({os_reason(exc)})"
