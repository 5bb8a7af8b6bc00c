"""Crash-safe file writing.

Every output is written to a temporary name in the destination folder and renamed
into place (``os.replace``), so an interrupted or failed write never leaves a
truncated file under the real name and never destroys the previous file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError, display_path


def check_folder_path(folder) -> None:
    """Refuse an output folder that is a file, or lies below one (one rule for every command).

    Raises:
      InputError: "DIR exists and is not a folder" (or names the file above it).
    """
    folder = Path(folder)
    for path in (folder, *folder.parents):
        try:
            if path.exists() and not path.is_dir():
                where = "" if path == folder else f" (the folder {display_path(folder)} would be inside it)"
                raise InputError(f"{display_path(path)} exists and is not a folder{where}")
        except OSError:
            return
        if path.is_dir():
            return


def ensure_folder(folder) -> None:
    """Create ``folder`` (and parents) if needed and check it is a writable folder.

    Raises:
      InputError: it, or a folder above it, exists and is not a folder (a bad output
        name, exit status 2 for every command).
      OutputError: it cannot be created, or is not writable.
    """
    check_folder_path(folder)
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.EEXIST):
            raise InputError(f"{display_path(folder)} cannot be a folder: a file is in the way") from None
        raise OutputError(f"cannot create {display_path(folder)}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{folder} is not writable")


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is removed and
    ``path`` is left as it was.

    Raises:
      OutputError: if the folder is not writable or the rename fails.
    """
    final = Path(path)
    suffix = final.suffix if suffix is None else suffix
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.part-", suffix=suffix, dir=final.parent)
    except OSError as exc:
        raise OutputError(f"cannot write in {final.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_file(path, write) -> None:
    """Write ``path`` atomically: ``write(handle)`` fills a temporary file beside it.

    Raises:
      OutputError: on any OS error (disk full, permissions); ``path`` is untouched.
    """
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically. Raises :class:`OutputError`."""
    write_file(path, lambda handle: handle.write(data))


def save_image(path, rgb: np.ndarray, quality: int = 95, bgr: bool = False) -> None:
    """Save uint8 ``(H, W, 3)`` RGB as JPEG or PNG (by extension), atomically.

    JPEG quality 95 is OpenCV's default, which the original used. With ``bgr=True``
    the array is already in OpenCV's BGR order and is encoded without a copy.

    Raises:
      OutputError: if the file cannot be written.
    """
    import cv2

    ext = Path(path).suffix.lower() or ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(ext, rgb if bgr else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OutputError(f"cannot encode {path}")
    write_bytes(path, data.tobytes())


def save_arrays(path, **arrays) -> None:
    """Save arrays to a ``.npz``, atomically (not compressed: float weights and maps
    shrink by a few percent only, for many times the time). Raises :class:`OutputError`."""
    write_file(path, lambda handle: np.savez(handle, **arrays))


def save_npy(path, array: np.ndarray) -> None:
    """Save one array as ``.npy``, atomically. Raises :class:`OutputError`."""
    write_file(path, lambda handle: np.save(handle, array))
