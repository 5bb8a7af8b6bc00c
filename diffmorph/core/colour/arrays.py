"""What the colour modules share: the chunk size that bounds temporary memory, and the pixel check."""

from __future__ import annotations

import numpy as np

CHUNK = 1 << 18  # pixels (or fallback terms) per chunk: bounds the temporary memory


def check_rgb8(pixels, name: str) -> np.ndarray:
    array = np.asarray(pixels)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or array.size == 0:
        raise ValueError(f"{name} must be uint8 pixels of shape (H, W, 3) (got {array.dtype} {array.shape})")
    return array
