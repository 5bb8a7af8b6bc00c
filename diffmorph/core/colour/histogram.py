"""Colour histograms: raw pixel counts on a ``bins x bins x bins`` grid over RGB.

Bin ``floor(value * bins / 256)`` per channel (:func:`colour_histogram`, not
normalised); bin ``i`` of an axis has grid coordinate ``x_i = i / (bins - 1)`` (the
unit cube) and its centre at ``(i + 0.5) * 256 / bins - 0.5`` in 0..255 units
(:func:`bin_centres`; ``4 i + 1.5`` for 64 bins). Inputs are uint8 ``(H, W, 3)`` RGB:
transparency and grey images are handled by the loader
(:func:`diffmorph.io.images.read_image` composites alpha over white and repeats grey
into three channels), never here.
"""

from __future__ import annotations

import numpy as np

from ...checks import is_int
from .arrays import CHUNK, check_rgb8

MIN_BINS, MAX_BINS = 8, 128  # histogram bins per channel accepted
DEFAULT_BINS = 64  # the published grid: bin = value // 4


def check_bins(bins) -> None:
    """Raise ValueError unless ``bins`` is an integer from :data:`MIN_BINS` to :data:`MAX_BINS`."""
    if not is_int(bins) or not MIN_BINS <= bins <= MAX_BINS:
        raise ValueError(f"bins must be an integer from {MIN_BINS} to {MAX_BINS} (got {bins!r})")


def colour_histogram(pixels, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Raw pixel counts on a ``bins^3`` grid over RGB (not normalised).

    Bin of a channel value ``v`` (0..255): ``floor(v * bins / 256)`` (``v // 4`` for 64
    bins). Transparency and grey images are the loader's business: it always yields
    uint8 RGB (see the module docstring).

    Args:
      pixels: uint8 ``(H, W, 3)`` RGB.
      bins: bins per channel, an integer from 8 to 128.

    Returns:
      float64 ``(bins, bins, bins)`` counts indexed ``[r, g, b]``; they sum to ``H * W``.

    Raises:
      ValueError: bad ``bins``, or pixels that are not uint8 ``(H, W, 3)``.
    """
    check_bins(bins)
    flat = check_rgb8(pixels, "pixels").reshape(-1, 3)
    counts = np.zeros(bins**3, np.int64)
    for start in range(0, len(flat), CHUNK):
        chunk = flat[start : start + CHUNK].astype(np.intp) * bins >> 8  # (m, 3) bin per channel
        index = (chunk[:, 0] * bins + chunk[:, 1]) * bins + chunk[:, 2]
        counts += np.bincount(index, minlength=bins**3)
    return counts.astype(np.float64).reshape(bins, bins, bins)


def bin_centres(bins: int) -> np.ndarray:
    """Centres of the bins along one axis in 0..255 units: ``(i + 0.5) * 256 / bins - 0.5``, float64."""
    return (np.arange(bins) + 0.5) * (256 / bins) - 0.5
