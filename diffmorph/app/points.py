"""Point pairs of a guided morph: from the caller's argument to what the optimiser uses.

:func:`guide_for` turns ``points=`` (``None``, an ``(N, 4)`` array, a list of
``{"source": [x, y], "target": [x, y]}``, a ``.csv``/``.json`` path, or ``"auto"``) into
a :class:`Guide`: the pairs in each image's own pixels, checked against the images,
and as fractions of each image for the optimiser (converted to working-size pixels at
each step, see :func:`diffmorph.core.points.working_points`). :func:`find_points` is the
automatic matcher behind ``"auto"``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import InputError
from ..io import points as point_files
from .inputs import as_pixels
from .markers import draw_points
from .progress import SILENT, Progress

AUTO = "auto"
MIN_AUTO_POINTS = 4  # fewer automatic pairs than this: morph unguided, with a notice


@dataclasses.dataclass(frozen=True)
class Guide:
    """The point pairs of one morph.

    pixels: float64 ``(N, 4)`` ``(source_x, source_y, target_x, target_y)`` in each
    image's own pixels. source_size, target_size: ``(height, width)`` of each image as
    given (the target before any resize). auto: found by :func:`find_points`.
    """

    pixels: np.ndarray
    source_size: tuple[int, int]
    target_size: tuple[int, int]
    auto: bool = False

    @property
    def count(self) -> int:
        return len(self.pixels)

    @property
    def normalised(self) -> np.ndarray:
        """float32 ``(N, 4)``: each coordinate as a fraction of its image, ``(x + 0.5) / W``."""
        return point_files.normalise(self.pixels, self.source_size, self.target_size)

    @property
    def digest(self) -> str:
        return point_files.points_digest(self.normalised)

    def meta(self) -> dict:
        """What a maps file or checkpoint records: the count and a SHA-256 of the points."""
        return {"points": self.count, "points_sha256": self.digest}

    def drawing(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``points.jpg``: ``source`` and ``target`` (at the size they are morphed) side by side, pairs numbered."""
        on_target = point_files.to_pixels(self.normalised, source.shape[:2], target.shape[:2])
        return draw_points(source, target, np.concatenate([self.pixels[:, :2], on_target[:, 2:]], axis=1))


def find_points(source, target, progress: Progress = SILENT) -> np.ndarray:
    """Point pairs found automatically (SIFT, Lowe's ratio test, a robust fit; see
    :mod:`diffmorph.core.matching`).

    Args:
      source, target: image files or uint8 ``(H, W, 3)`` RGB arrays (any sizes).

    Returns:
      float64 ``(N, 4)`` rows ``(source_x, source_y, target_x, target_y)`` in each
      image's own pixels, N <= 100; N = 0 when nothing reliable is found (different
      subjects, flat images).

    Raises:
      InputError: an unusable image.

    Example:
      >>> pairs = find_points("images/toy_a.png", "images/toy_b.png")  # doctest: +SKIP
    """
    from ..core.matching import match_points

    return match_points(as_pixels(source, "source", progress), as_pixels(target, "target", progress))


def guide_for(
    points, source: np.ndarray, target: np.ndarray, target_size=None, progress: Progress = SILENT, source_size=None
) -> Guide | None:
    """The :class:`Guide` for ``points=``, or ``None`` for an unguided morph.

    Args:
      points: ``None``, ``"auto"``, a ``.csv``/``.json`` path, an ``(N, 4)`` array or a
        list of ``{"source": [x, y], "target": [x, y]}`` (each image's own pixels).
      source, target: uint8 ``(H, W, 3)`` RGB as morphed (the target maybe resized).
      target_size, source_size: each image's own ``(height, width)`` (default its
        array's): given points are in these pixels, and automatic ones are written in them.
      progress: receives the notices of ``"auto"`` (pairs kept, or the fallback).

    Raises:
      InputError: unusable points (one line naming the file and row).
    """
    if points is None:
        return None
    sizes = (tuple(source_size or source.shape[:2]), tuple(target_size or target.shape[:2]))
    if isinstance(points, str) and points == AUTO:
        from ..core.matching import match_points

        found = match_points(source, target)
        if len(found) < MIN_AUTO_POINTS:
            progress.notice(
                f"points auto: found {len(found)} reliable pairs (fewer than {MIN_AUTO_POINTS}); "
                f"morphing without points"
            )
            return None
        progress.notice(f"points auto: kept {len(found)} pairs (written to points.csv)")
        fractions = point_files.normalise(found, source.shape[:2], target.shape[:2])  # as matched
        return Guide(point_files.to_pixels(fractions, *sizes), *sizes, auto=True)
    pixels = point_files.as_points(points)
    point_files.check_points(pixels, *sizes, name=_name(points))
    return Guide(pixels, *sizes)


def _name(points) -> str:
    from ..errors import display_path

    return display_path(points) if isinstance(points, str) or hasattr(points, "__fspath__") else "points"


def pair_guides(points, count: int) -> list:
    """``points=`` of a sequence as one entry per pair.

    Args:
      points: ``None``, ``"auto"`` (every pair), a folder holding ``NNN.csv`` or
        ``NNN.json`` files (``000`` the first pair; a pair without one is unguided),
        or a list of ``count`` entries (each as :func:`guide_for` takes, or ``None``).

    Raises:
      InputError: a list of the wrong length, or a folder with no points files.
    """
    from pathlib import Path

    if points is None or (isinstance(points, str) and points == AUTO):
        return [points] * count
    if isinstance(points, (str, Path)) and Path(points).is_dir():
        folder = Path(points)
        entries = []
        for k in range(count):
            found = [
                folder / f"{k:03d}{suffix}" for suffix in point_files.SUFFIXES if (folder / f"{k:03d}{suffix}").exists()
            ]
            entries.append(found[0] if found else None)
        if not any(entries):
            raise InputError(f"{points}: no points files named 000.csv ... {count - 1:03d}.csv (or .json)")
        return entries
    if isinstance(points, (list, tuple)) and len(points) == count:
        return list(points)
    raise InputError(
        f'points: give one entry per pair ({count}), "auto", or a folder of NNN.csv files'
        f" (got {type(points).__name__}{f' of {len(points)}' if isinstance(points, (list, tuple)) else ''})"
    )


def write_guide(paths, pair, guide: Guide | None) -> None:
    """A sequence pair's ``points.csv`` and ``points.jpg`` in its folder (``paths``, a
    :class:`~diffmorph.app.layout.MorphPaths`), or none (removed) without points.

    Raises:
      OutputError: a file cannot be written.
    """
    from ..io.files import save_image

    if guide is None:
        for path in (paths.points_csv, paths.points_jpg):
            path.unlink(missing_ok=True)
        return
    point_files.write_points(paths.points_csv, guide.pixels)
    save_image(paths.points_jpg, guide.drawing(pair.source, pair.target), quality=90)


__all__ = ["Guide", "find_points", "guide_for", "pair_guides", "write_guide"]
