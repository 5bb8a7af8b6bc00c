"""The page's point pairs: the picked list, and its CSV through the library's one reader.

A pair is ``[source_x, source_y, target_x, target_y]`` in each image's own pixels, as
:func:`diffmorph.morph` takes ``points`` (:mod:`diffmorph.io.points`: the origin at the
centre of the top-left pixel, a point of a ``W x H`` image inside ``-0.5 .. W - 0.5``);
a pair being picked has ``None`` for its target point. Reading, checking and writing are
:mod:`diffmorph.io.points`'s; drawing is :mod:`diffmorph.app.markers`'s.
"""

from __future__ import annotations

import numpy as np

from diffmorph.io import points as point_files

HEADER = point_files.HEADER
MAX_PAIRS = point_files.MAX_POINTS


def complete(pairs) -> np.ndarray:
    """The picked pairs whose two points are both set, float64 ``(N, 4)`` (N may be 0)."""
    return np.array([p for p in pairs if None not in p], dtype=np.float64).reshape(-1, 4)


def read_text(text: str | None, name: str = "points CSV") -> np.ndarray:
    """Point pairs from CSV or JSON text (:func:`diffmorph.io.points.read_points`): float64
    ``(N, 4)``; blank text gives ``(0, 4)`` (no points).

    Raises:
      InputError: as :func:`~diffmorph.io.points.read_points` (one line naming ``name`` and the row).
    """
    if not (text or "").strip():
        return np.zeros((0, 4))
    return point_files.read_points(text if "\n" in text else text + "\n", name=name)  # text, never a path


def csv_text(pairs) -> str:
    """The CSV text of the complete pairs (the header alone when there are none)."""
    return point_files.points_csv(complete(pairs)).decode()


def check_inside(pairs: np.ndarray, source_shape, target_shape, name: str = "point pairs") -> None:
    """Refuse a pair outside its image (:func:`diffmorph.io.points.check_points`; shapes ``(H, W, ...)``).

    Raises:
      InputError: naming the first such row.
    """
    if len(pairs):
        point_files.check_points(pairs, tuple(source_shape[:2]), tuple(target_shape[:2]), name=name)
