"""Reading input images: any format Pillow reads, as 8-bit RGB, with clear errors."""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError

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


def pixels_digest(pixels: np.ndarray) -> str:
    """SHA-256 hex digest of an image's shape and pixels (identifies an input)."""
    digest = hashlib.sha256(str(pixels.shape).encode())
    digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()
