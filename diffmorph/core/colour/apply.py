"""Applying colour maps to pixels: a grid map by trilinear interpolation, or an affine map.

Pixels are mapped by trilinear interpolation of a map ``T`` on the histogram grid
(:func:`map_colours`) at their exact colour between bin centres (no posterisation),
rounded to the nearest level and clipped; :func:`apply_affine` applies
``x -> A x + b`` in unit-cube RGB. Pixels are processed in chunks of
:data:`~diffmorph.core.colour.arrays.CHUNK`, which bounds the temporary memory.
"""

from __future__ import annotations

import numpy as np

from .arrays import CHUNK, check_rgb8


def map_colours(colours, mapped: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of a colour map at exact colours.

    Grid bin ``i`` sits at its centre, :func:`bin_centres`; a mapped value ``T`` (unit
    cube, as :func:`barycentric_map` returns) is the colour ``T * (bins - 1)`` in grid
    units, i.e. ``(T * (bins - 1) + 0.5) * 256 / bins - 0.5`` in 0..255 units (grid ``i``
    -> ``4 i + 1.5`` for 64 bins). The displacement (mapped minus centre) is
    interpolated, so inside the centres this is trilinear interpolation of ``T``, and
    beyond the outermost centres (within half a bin of 0 or 255) the nearest centres'
    displacement applies; an identity map gives back every colour exactly.

    Args:
      colours: float ``(m, 3)`` RGB in 0..255 units.
      mapped: float ``(bins, bins, bins, 3)``, unit cube.

    Returns:
      float64 ``(m, 3)`` in 0..255 units (not rounded or clipped).
    """
    return _interpolate(np.asarray(colours, np.float64), _displacement(mapped))


def _displacement(mapped: np.ndarray) -> np.ndarray:
    """Mapped colour minus bin centre, 0..255 units, float64 ``(n, n, n, 3)``."""
    mapped = np.asarray(mapped, np.float64)
    n = mapped.shape[0]
    if mapped.shape != (n, n, n, 3) or n < 2:
        raise ValueError(f"mapped must have shape (n, n, n, 3) (got {mapped.shape})")
    index = np.indices((n, n, n), dtype=np.float64).transpose(1, 2, 3, 0)  # (n, n, n, 3) grid units
    return (mapped * (n - 1) - index) * (256 / n)


def _interpolate(colours: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """``colours + trilinear(displacement)`` at the colours (float64 ``(m, 3)``, 0..255 units)."""
    n = displacement.shape[0]
    displacement = displacement.reshape(-1, 3)
    u = np.clip((colours + 0.5) * (n / 256) - 0.5, 0, n - 1)  # (m, 3) grid units
    low = np.minimum(u.astype(np.intp), n - 2)
    frac = u - low
    out = colours.copy()
    for dr in (0, 1):
        for dg in (0, 1):
            for db in (0, 1):
                weight = (
                    (frac[:, 0] if dr else 1 - frac[:, 0])
                    * (frac[:, 1] if dg else 1 - frac[:, 1])
                    * (frac[:, 2] if db else 1 - frac[:, 2])
                )
                flat = ((low[:, 0] + dr) * n + low[:, 1] + dg) * n + low[:, 2] + db
                out += weight[:, None] * displacement[flat]
    return out


def _to_uint8(levels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(levels), 0, 255).astype(np.uint8)


def apply_colour_map(pixels, mapped: np.ndarray) -> np.ndarray:
    """Recolour uint8 ``(H, W, 3)`` pixels through a colour map (:func:`map_colours`), rounded, clipped.

    Returns:
      uint8 ``(H, W, 3)``.
    """
    image = check_rgb8(pixels, "pixels")
    flat = image.reshape(-1, 3)
    out = np.empty_like(flat)
    displacement = _displacement(mapped)
    for start in range(0, len(flat), CHUNK):
        out[start : start + CHUNK] = _to_uint8(
            _interpolate(flat[start : start + CHUNK].astype(np.float64), displacement)
        )
    return out.reshape(image.shape)


def apply_affine(pixels, matrix: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Map uint8 ``(H, W, 3)`` pixels through ``x -> matrix @ x + offset`` (unit-cube RGB), rounded, clipped.

    Returns:
      uint8 ``(H, W, 3)``.
    """
    image = check_rgb8(pixels, "pixels")
    flat = image.reshape(-1, 3)
    out = np.empty_like(flat)
    matrix, offset = np.asarray(matrix, np.float64), np.asarray(offset, np.float64)
    for start in range(0, len(flat), CHUNK):
        unit = flat[start : start + CHUNK] / 255.0
        out[start : start + CHUNK] = _to_uint8((unit @ matrix.T + offset) * 255.0)
    return out.reshape(image.shape)
