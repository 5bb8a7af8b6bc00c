"""Pictures of point pairs: numbered markers drawn on images (OpenCV).

:func:`draw_markers` marks points on one image (the web app's point pickers);
:func:`draw_points` puts a source and a target side by side with their pairs
(``morph/points.jpg``). Coordinates as in :mod:`diffmorph.io.points`: x to the right, y
down, in the image's own pixels, the origin at the centre of the top-left pixel.
"""

from __future__ import annotations

import numpy as np

MARKER_RGB = (255, 40, 40)  # the markers' colour unless each pair has its own


def pair_colours(count: int) -> list[tuple[int, int, int]]:
    """``count`` well-separated RGB colours (golden-ratio hues), one per pair."""
    import cv2

    hues = [int(179 * ((k * 0.618) % 1.0)) for k in range(count)]
    return [tuple(cv2.cvtColor(np.uint8([[[h, 230, 255]]]), cv2.COLOR_HSV2RGB)[0, 0].tolist()) for h in hues]


def draw_markers(image: np.ndarray, points, colours=None, side: int | None = None) -> np.ndarray:
    """A copy of ``image`` with a numbered marker at each point.

    Args:
      image: uint8 ``(H, W, 3)`` RGB.
      points: a sequence of ``(x, y)`` in the image's pixels, or ``None`` for a point not
        to draw (it keeps its number: the k-th entry is numbered k, from 1).
      colours: one RGB colour per entry (default :data:`MARKER_RGB` for all).
      side: the image side the marker size is scaled to (default the image's shorter side).

    Returns:
      uint8 ``(H, W, 3)``: a filled dot ringed in black, and the number beside it.

    Example:
      >>> import numpy as np
      >>> marked = draw_markers(np.zeros((60, 80, 3), np.uint8), [(10, 20), None])
      >>> bool(marked[20, 10].any()), bool(marked[50, 70].any())
      (True, False)
    """
    import cv2

    out = np.ascontiguousarray(np.array(image, dtype=np.uint8, copy=True))
    side = min(out.shape[:2]) if side is None else side
    radius = max(2, round(side / 100))
    thick = max(1, radius // 2)
    font = max(0.35, side / 600)
    for k, point in enumerate(points):
        if point is None:
            continue
        colour = tuple(int(c) for c in (colours[k] if colours is not None else MARKER_RGB))
        centre = (round(float(point[0])), round(float(point[1])))
        cv2.circle(out, centre, radius + thick, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(out, centre, radius, colour, -1, cv2.LINE_AA)
        origin = (centre[0] + radius + 2, max(centre[1] - radius - 2, 10))
        cv2.putText(out, str(k + 1), origin, cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(out, str(k + 1), origin, cv2.FONT_HERSHEY_SIMPLEX, font, colour, thick, cv2.LINE_AA)
    return out


def draw_points(source: np.ndarray, target: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The two images side by side with the numbered pairs, uint8 ``(H, W1 + W2, 3)`` RGB
    (a pair's two points share a colour).

    Args:
      source, target: uint8 ``(H, W, 3)`` RGB (the target at the size it is drawn;
        ``points`` must be in those images' pixels).
      points: ``(N, 4)`` rows ``(source_x, source_y, target_x, target_y)``.
    """
    height = max(source.shape[0], target.shape[0])
    canvas = np.full((height, source.shape[1] + target.shape[1], 3), 255, np.uint8)
    canvas[: source.shape[0], : source.shape[1]] = source
    canvas[: target.shape[0], source.shape[1] :] = target
    pairs = np.asarray(points, np.float64).reshape(-1, 4)
    colours = pair_colours(len(pairs))
    side = min(source.shape[:2])
    canvas = draw_markers(canvas, [tuple(p[:2]) for p in pairs], colours, side)
    return draw_markers(canvas, [(p[2] + source.shape[1], p[3]) for p in pairs], colours, side)


__all__ = ["draw_markers", "draw_points", "pair_colours"]
