"""Inputs of a morph: images from files or arrays, matched to one size.

Every image becomes uint8 ``(H, W, 3)`` RGB (see :func:`diffmorph.io.images.read_image`
for what files are read and how). A pair's target, and every image of a sequence
after the first, is resized with ``INTER_AREA`` to the first image's size (one video
has one size), with a notice.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ..errors import InputError, display_path
from ..io import images as image_files
from ..io.images import pixels_digest
from .progress import SILENT, Progress


class Pair(NamedTuple):
    """A source and a target of the same size.

    source, target: uint8 ``(H, W, 3)`` RGB (the target resized to the source's size).
    digests: SHA-256 of each one's pixels as used (:func:`diffmorph.io.images.pixels_digest`).
    target_size: the target's own ``(height, width)`` before the resize (point pairs are
    given in it); ``None``: the source's.
    """

    source: np.ndarray
    target: np.ndarray
    digests: tuple[str, str]
    target_size: tuple[int, int] | None = None


def as_pixels(image, name: str = "image", progress: Progress = SILENT) -> np.ndarray:
    """An image file or array as uint8 ``(H, W, 3)`` RGB.

    Args:
      image: a path (str or os.PathLike), or a uint8 array ``(H, W, 3)`` RGB,
        ``(H, W, 4)`` RGBA (composited over white) or ``(H, W)`` grey.
      name: what to call an array in messages.
      progress: receives the loader's notices.

    Raises:
      InputError: an unusable file (see :func:`~diffmorph.io.images.read_image`) or
        array, or anything else (None, a list...), naming ``name``.
    """
    if isinstance(image, np.ndarray):
        return _array_pixels(image, name)
    if not isinstance(image, (str, bytes, os.PathLike)):
        raise InputError(f"{name} must be an image file path or a uint8 (H, W, 3) array (got {type(image).__name__})")
    if isinstance(image, str) and not image.strip():
        raise InputError(f"{name} must be an image file path or a uint8 (H, W, 3) array (got an empty path)")
    loaded = image_files.read_image(image)
    for text in loaded.notices:
        progress.notice(text)
    return loaded.pixels


def _array_pixels(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype != np.uint8:
        raise InputError(f"{name}: expected a uint8 array (0..255), got {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InputError(f"{name}: expected an (H, W, 3) RGB array, got shape {array.shape}")
    if array.shape[2] == 4:  # over white, as the loader does for files
        alpha = array[..., 3:].astype(np.float32) / 255
        array = np.rint(array[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    if min(array.shape[:2]) < 2:
        raise InputError(
            f"{name}: {array.shape[1]}x{array.shape[0]} pixels is too small; width and height must be at least 2"
        )
    return np.ascontiguousarray(array)


def _label(image, fallback: str) -> str:
    return display_path(image) if isinstance(image, (str, os.PathLike)) and str(image).strip() else fallback


def match_size(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """``pixels`` resized to ``height x width`` with ``INTER_AREA`` (unchanged if it fits)."""
    import cv2

    if pixels.shape[:2] == (height, width):
        return pixels
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)


def load_images(images, progress: Progress = SILENT, names=None, sizes=None) -> list[np.ndarray]:
    """Two or more images, each resized to the first one's size (with a notice).

    Args:
      images: paths or arrays (see :func:`as_pixels`).
      names: labels for arrays in messages (default ``image 1``, ``image 2``...).
      sizes: a list that receives each image's own ``(height, width)`` before any resize.

    Returns:
      uint8 ``(H, W, 3)`` arrays, ``(H, W)`` the first image's size.

    Raises:
      InputError: for the first image that cannot be used.
    """
    out = []
    for k, image in enumerate(images):
        label = names[k] if names else _label(image, f"image {k + 1}")
        pixels = as_pixels(image, label, progress)
        if sizes is not None:
            sizes.append(tuple(pixels.shape[:2]))
        if out and pixels.shape != out[0].shape:
            height, width = out[0].shape[:2]
            progress.notice(
                f"{label} is {pixels.shape[1]}x{pixels.shape[0]}, the first image {width}x{height}: "
                f"resizing it to the first image's size"
            )
            pixels = match_size(pixels, height, width)
        out.append(pixels)
    return out


def load_pair(source, target, progress: Progress = SILENT) -> Pair:
    """The source and the target, the target resized to the source's size (with a notice).

    Raises:
      InputError: if either cannot be used.
    """
    a = as_pixels(source, _label(source, "source"), progress)
    b = as_pixels(target, _label(target, "target"), progress)
    if b.shape != a.shape:
        progress.notice(
            f"target is {b.shape[1]}x{b.shape[0]}, source {a.shape[1]}x{a.shape[0]}: "
            f"resizing the target to the source's size"
        )
        own = tuple(b.shape[:2])
        b = match_size(b, *a.shape[:2])
        return Pair(a, b, (pixels_digest(a), pixels_digest(b)), own)
    return Pair(a, b, (pixels_digest(a), pixels_digest(b)))


def load_image(path, progress: Progress = SILENT) -> np.ndarray:
    """An image file as uint8 ``(H, W, 3)`` RGB (any format Pillow reads; see
    :func:`diffmorph.io.images.read_image` for modes, transparency and limits).

    Raises:
      InputError: the file cannot be used, with a one-line reason.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> from PIL import Image
      >>> import diffmorph
      >>> with tempfile.TemporaryDirectory() as folder:
      ...     Image.new("L", (5, 4), 128).save(Path(folder) / "grey.png")  # 5 wide, 4 high, grey
      ...     pixels = diffmorph.load_image(Path(folder) / "grey.png")
      >>> pixels.shape, pixels.dtype, pixels[0, 0].tolist()
      ((4, 5, 3), dtype('uint8'), [128, 128, 128])
    """
    return as_pixels(path, display_path(path) if isinstance(path, (str, os.PathLike)) else "path", progress)


def check_path(name: str, value, optional: bool = False) -> None:
    """Refuse a path argument that is not a non-empty ``str`` or ``os.PathLike`` (or None if ``optional``).

    Raises:
      InputError: "NAME must be a file or folder path (got ...)".
    """
    if value is None and optional:
        return
    if not isinstance(value, (str, os.PathLike)) or not str(os.fspath(value)).strip():
        raise InputError(f"{name} must be a file or folder path (got {value!r})")


def check_types(**arguments) -> None:
    """Refuse a public function's arguments of the wrong type: ``name=(value, type)`` pairs.

    Raises:
      InputError: "NAME must be a TYPE (got ...)" for the first that is not.
    """
    for name, (value, kind) in arguments.items():
        if not isinstance(value, kind):
            raise InputError(f"{name} must be a {kind.__name__} (got {type(value).__name__})")
