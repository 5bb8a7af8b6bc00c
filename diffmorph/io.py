"""Image loading and crash-safe file writing.

Every output is written to a temporary name in the destination folder and renamed
into place (``os.replace``), so an interrupted or failed write never leaves a
truncated file under the real name and never destroys the previous file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import InputError, OutputError

MAX_PIXELS = 50_000_000  # larger inputs are refused (about 8660 x 5773)
MIN_SIDE = 2  # smallest accepted width and height, in pixels


class LoadedImage(NamedTuple):
    """``pixels``: uint8 ``(H, W, 3)`` RGB. ``notices``: one-line remarks for the user."""

    pixels: np.ndarray
    notices: tuple[str, ...]


def load_image(path, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Read an image file as 8-bit RGB.

    Handles what Pillow reads: 8/16-bit grayscale and colour, palette, CMYK (converted
    to RGB), transparency (composited over white), EXIF orientation (applied), and
    multi-frame files (first frame, with a notice).

    Args:
      path: the file.
      max_pixels: images with more pixels are refused before decoding.

    Returns:
      :class:`LoadedImage`.

    Raises:
      InputError: missing, a directory, unreadable, empty, not an image, truncated or
        corrupt, too small (< 2 x 2) or too large (> ``max_pixels``).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    if p.is_dir():
        raise InputError(f"{path}: is a directory, not an image file")
    if not p.is_file():  # a FIFO or device would block or never end
        raise InputError(f"{path}: is not a regular file")
    try:
        with open(p, "rb") as handle:
            empty = not handle.read(1)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if empty:
        raise InputError(f"{path}: the file is empty")
    notices = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise InputError(
                        f"{path}: {width}x{height} is {width * height / 1e6:.0f} megapixels; "
                        f"the limit is {max_pixels / 1e6:.0f} (downscale it first)")
                if getattr(image, "n_frames", 1) > 1:
                    notices.append(f"{path}: has {image.n_frames} frames; using the first")
                image.seek(0)
                image = ImageOps.exif_transpose(image)
                pixels = _to_rgb(image)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own limit (> 2 x 89 MP) fired first
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "too many megapixels"
        raise InputError(f"{path}: image is {size}; the limit is {max_pixels / 1e6:.0f} "
                         f"(downscale it first)") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file in a format Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: truncated or corrupt image ({exc})") from None
    if min(pixels.shape[:2]) < MIN_SIDE:
        raise InputError(f"{path}: {pixels.shape[1]}x{pixels.shape[0]} pixels is too small; "
                         f"width and height must be at least {MIN_SIDE}")
    return LoadedImage(pixels, tuple(notices))


def _to_rgb(image) -> np.ndarray:
    """A Pillow image (any mode) as uint8 ``(H, W, 3)``; alpha over white."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        wide = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or wide.max() > 255 else 255.0
        gray = np.rint(np.clip(wide, 0, top) * (255.0 / top)).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode in ("P", "L", "RGB") and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def ensure_folder(folder) -> None:
    """Create ``folder`` (and parents) if needed and check it is a writable folder.

    Raises:
      OutputError: it exists as a file, cannot be created, or is not writable.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {folder}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{folder} is not writable")


def pixels_digest(pixels: np.ndarray) -> str:
    """SHA-256 hex digest of an image's shape and pixels (identifies an input)."""
    digest = hashlib.sha256(str(pixels.shape).encode())
    digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()


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
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".part{suffix}", dir=final.parent)
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
    """Save arrays to a ``.npz`` (compressed), atomically. Raises :class:`OutputError`."""
    write_file(path, lambda handle: np.savez_compressed(handle, **arrays))


def save_npy(path, array: np.ndarray) -> None:
    """Save one array as ``.npy``, atomically. Raises :class:`OutputError`."""
    write_file(path, lambda handle: np.save(handle, array))
