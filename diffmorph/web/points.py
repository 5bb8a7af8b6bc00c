"""Point pairs in the page: the CSV format, and numbered markers drawn on the images.

A pair is ``(source_x, source_y, target_x, target_y)`` in each image's own pixels (x to
the right, y down, from the top-left corner), the format :func:`diffmorph.morph` takes as
``points``. The CSV has that header and one pair a line.
"""

from __future__ import annotations

import math

import numpy as np

from diffmorph.errors import InputError

HEADER = ("source_x", "source_y", "target_x", "target_y")
MAX_PAIRS = 1000


def parse_csv(text: str) -> np.ndarray:
    """Point pairs from CSV text: float64 ``(N, 4)`` (``N`` may be 0 for empty text).

    An optional header line (``source_x,source_y,target_x,target_y``), blank lines and
    lines starting with ``#`` are skipped.

    Raises:
      InputError: a line that is not four finite numbers >= 0, or more than 1000 pairs.
    """
    rows = []
    for number, line in enumerate((text or "").splitlines(), 1):
        cells = [cell.strip() for cell in line.split(",")]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not rows and [cell.lower() for cell in cells] == list(HEADER):
            continue
        try:
            values = [float(cell) for cell in cells]
        except ValueError:
            values = []
        if len(values) != 4 or not all(math.isfinite(v) and v >= 0 for v in values):
            shown = line.strip()[:40]
            raise InputError(
                f"points CSV line {number}: expected four numbers >= 0 ({','.join(HEADER)}), got {shown!r}"
            )
        rows.append(values)
        if len(rows) > MAX_PAIRS:
            raise InputError(f"points CSV: more than {MAX_PAIRS} pairs")
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def to_csv(pairs) -> str:
    """CSV text (with the header) of complete pairs ``[(sx, sy, tx, ty), ...]``."""
    lines = [",".join(HEADER)]
    lines += [",".join(f"{v:g}" for v in pair) for pair in pairs if None not in pair]
    return "\n".join(lines) + "\n"


def check_inside(pairs: np.ndarray, source_shape, target_shape) -> None:
    """Raise InputError unless every pair lies inside its images (``shape`` = ``(H, W, ...)``)."""
    for i, (sx, sy, tx, ty) in enumerate(pairs, 1):
        for what, x, y, shape in (("source", sx, sy, source_shape), ("target", tx, ty, target_shape)):
            if not (x < shape[1] and y < shape[0]):
                raise InputError(
                    f"point pair {i}: ({x:g}, {y:g}) is outside the {what} image ({shape[1]}x{shape[0]} pixels)"
                )


def draw_markers(image: np.ndarray, points, colour=(255, 40, 40)) -> np.ndarray:
    """A copy of uint8 ``(H, W, 3)`` ``image`` with a numbered ring at each ``(x, y)`` of ``points``
    (``None`` entries are skipped but keep their number)."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    side = min(out.shape[:2])
    radius = max(2, side // 50)
    thick = max(1, side // 200)
    scale = max(0.3, side / 700)
    for number, point in enumerate(points, 1):
        if point is None:
            continue
        x, y = (round(v) for v in point)
        cv2.circle(out, (x, y), radius + thick, (0, 0, 0), thick + 1, cv2.LINE_AA)
        cv2.circle(out, (x, y), radius, colour, thick, cv2.LINE_AA)
        at = (x + radius + 2, max(y - radius, 10))
        cv2.putText(out, str(number), at, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(out, str(number), at, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out
