"""Point pairs of a guided morph: from the caller's argument to what the optimiser uses.

:func:`guide_for` turns ``points=`` (``None``, an ``(N, 4)`` array, a list of
``{"source": [x, y], "target": [x, y]}``, a ``.csv``/``.json`` path, or ``"auto"``) into
a :class:`Guide`: the pairs in each image's own pixels, checked against the images,
and as fractions of each image for the optimiser (converted to working-size pixels at
each step, see :func:`diffmorph.core.points.working_points`). :func:`find_points` is the
automatic matcher behind ``"auto"``, ``"faces"`` and ``"faces68"``:

* ``"faces"``: landmark pairs of the largest face in each image (47 of MediaPipe's
  468 face-mesh landmarks, :mod:`diffmorph.core.faces`; needs the optional ``faces``
  extra); no face in one image: SIFT, then unguided, as ``"auto"`` does, with a
  notice naming the reason.
* ``"faces68"``: the same with 68 landmarks (jaw, brows, nose, eyes, lips); the model
  was trained on iBUG 300-W, whose licence excludes commercial use.
* ``"auto"``: face landmarks (as ``"faces"``) when both images show a face, else SIFT matches
  (:mod:`diffmorph.core.matching`), else unguided, with a notice naming the reason.
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
FACES = "faces"
FACES68 = "faces68"  # the 68-landmark model: trained on iBUG 300-W, not for commercial use
AUTOMATIC = (AUTO, FACES, FACES68)  # the words points= takes for pairs found automatically
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


def find_points(source, target, progress: Progress = SILENT, method: str = AUTO) -> np.ndarray:
    """Point pairs found automatically: face landmarks, else SIFT matches.

    ``method="auto"`` (default) and ``"faces"``: the landmarks of the largest face in
    each image (:func:`diffmorph.core.faces.face_pairs`, 47 of MediaPipe's face-mesh
    landmarks: eyes, brows, nose, lips, cheeks, face oval) when both images show one; otherwise SIFT matches with
    Lowe's ratio test and a robust fit (:mod:`diffmorph.core.matching`). ``"faces68"``:
    68 face landmarks (a model not for commercial use, see :mod:`diffmorph.core.faces`).
    ``"sift"``: SIFT only. Which was used, and why, goes to ``progress`` as a notice.

    Args:
      source, target: image files or uint8 ``(H, W, 3)`` RGB arrays (any sizes).
      progress: receives one notice naming the method used and the reason for a fall-back.
      method: ``"auto"``, ``"faces"``, ``"faces68"`` or ``"sift"``.

    Returns:
      float64 ``(N, 4)`` rows ``(source_x, source_y, target_x, target_y)`` in each
      image's own pixels; N = 47 for faces (68 for ``"faces68"``), N <= 100 for SIFT, N = 0 when nothing
      reliable is found (different subjects without faces, flat images).

    Raises:
      InputError: an unusable image or method; ``method="faces"``/``"faces68"`` without
        the optional ``faces`` extra (``pip install 'diffmorph[faces]'``).

    Example:
      >>> pairs = find_points("images/toy_a.png", "images/toy_b.png")  # doctest: +SKIP
    """
    if method not in (*AUTOMATIC, "sift"):
        raise InputError(f"method must be 'auto', 'faces', 'faces68' or 'sift' (got {method!r})", setting="method")
    found, how = automatic_points(method, as_pixels(source, "source", progress), as_pixels(target, "target", progress))
    progress.notice(f"points {method}: {how}")
    return found


def automatic_points(method: str, source: np.ndarray, target: np.ndarray, sizes=None) -> tuple[np.ndarray, str]:
    """The pairs of ``points="auto"``/``"faces"`` (or SIFT alone for ``"sift"``) and
    what found them, or why there are none.

    Args:
      method: ``"auto"``, ``"faces"``, ``"faces68"`` or ``"sift"``.
      source, target: uint8 ``(H, W, 3)`` RGB, any sizes.
      sizes: each image's own ``((height, width), (height, width))`` when an array was
        resized (the target to the source's size): faces are looked for in the arrays
        resized back to their own proportions (at about the arrays' pixel count), so a
        face is not squashed (SIFT matches the arrays as given).

    Returns:
      ``(pairs, how)``: float64 ``(N, 4)`` in the arrays' pixels (N = 0: morph
      unguided), and a phrase for the notice (``"47 face landmark pairs"``, ``"no face
      found in the target image; SIFT found 0 reliable pairs (fewer than 4)"``).

    Raises:
      FaceExtraMissing (an InputError): ``"faces"``/``"faces68"`` without the ``faces`` extra.
    """
    from ..core import faces
    from ..core.matching import match_points

    reason = ""
    if method in AUTOMATIC:
        arrays = (source.shape[:2], target.shape[:2])
        shapes = tuple(_proportioned(array, size) for array, size in zip(arrays, sizes or arrays))
        try:
            landmarks = 68 if method == FACES68 else faces.DEFAULT_LANDMARKS
            found = faces.face_pairs(*(_resized(im, shape) for im, shape in zip((source, target), shapes)), landmarks)
            if shapes != arrays:
                found = point_files.to_pixels(point_files.normalise(found, *shapes), *arrays)
            return found, f"{len(found)} face landmark pairs"
        except faces.FaceExtraMissing:
            if method != AUTO:
                raise faces.FaceExtraMissing(faces.MISSING.replace("'faces'", repr(method))) from None
            reason = "no face points (the optional face extra is not installed)"
        except faces.NoFace as exc:
            reason = str(exc)
    found = match_points(source, target)
    because = f"{reason}; " if reason else ""
    if len(found) < MIN_AUTO_POINTS:
        return np.zeros((0, 4)), f"{because}SIFT found {len(found)} reliable pairs (fewer than {MIN_AUTO_POINTS})"
    return found, f"{because}kept {len(found)} SIFT pairs"


def _proportioned(array, own) -> tuple[int, int]:
    """``(height, width)`` with ``own``'s proportions and about ``array``'s pixel count (``array`` if equal)."""
    (height, width), (own_height, own_width) = array, own
    if own_height * width == own_width * height:
        return tuple(array)
    scale = min(1.0, (height * width / (own_height * own_width)) ** 0.5)
    return max(1, round(own_height * scale)), max(1, round(own_width * scale))


def _resized(image: np.ndarray, shape) -> np.ndarray:
    import cv2

    if image.shape[:2] == tuple(shape):
        return image
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def guide_for(
    points, source: np.ndarray, target: np.ndarray, target_size=None, progress: Progress = SILENT, source_size=None
) -> Guide | None:
    """The :class:`Guide` for ``points=``, or ``None`` for an unguided morph.

    Args:
      points: ``None``, ``"auto"``, ``"faces"``, ``"faces68"``, a ``.csv``/``.json`` path, an
        ``(N, 4)`` array or a list of ``{"source": [x, y], "target": [x, y]}`` (each image's own pixels).
      source, target: uint8 ``(H, W, 3)`` RGB as morphed (the target maybe resized).
      target_size, source_size: each image's own ``(height, width)`` (default its
        array's): given points are in these pixels, and automatic ones are written in them.
      progress: receives the notices of ``"auto"``/``"faces"``/``"faces68"`` (pairs kept, or the fallback).

    Raises:
      InputError: unusable points (one line naming the file and row); ``"faces"``
        without the optional ``faces`` extra.
    """
    if points is None:
        return None
    sizes = (tuple(source_size or source.shape[:2]), tuple(target_size or target.shape[:2]))
    if isinstance(points, str) and points in AUTOMATIC:
        found, how = automatic_points(points, source, target, sizes)
        if not len(found):
            progress.notice(f"points {points}: {how}; morphing without points")
            return None
        progress.notice(f"points {points}: {how} (written to points.csv)")
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
      points: ``None``, ``"auto"``, ``"faces"`` or ``"faces68"`` (every pair), a folder holding ``NNN.csv`` or
        ``NNN.json`` files (``000`` the first pair; a pair without one is unguided),
        or a list of ``count`` entries (each as :func:`guide_for` takes, or ``None``).

    Raises:
      InputError: a list of the wrong length, or a folder with no points files.
    """
    from pathlib import Path

    if points is None or (isinstance(points, str) and points in AUTOMATIC):
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
        f'points: give one entry per pair ({count}), "auto", "faces", "faces68", or a folder of NNN.csv files'
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


__all__ = ["Guide", "automatic_points", "find_points", "guide_for", "pair_guides", "write_guide"]
