"""Point pairs ("this goes there"): reading, checking and writing them (drawn by :mod:`diffmorph.app.markers`).

A guided morph takes point pairs: rows ``(source_x, source_y, target_x, target_y)``,
each point in its own image's pixels: x to the right, y down, the origin at the
centre of the top-left pixel, so a point of a ``W x H`` image lies in
``[-0.5, W - 0.5] x [-0.5, H - 0.5]``. The target's coordinates are in the target's
own pixels even when the morph resizes it to the source's size. Files:

* CSV with the header ``source_x,source_y,target_x,target_y`` and one pair per row;
* JSON ``[{"source": [x, y], "target": [x, y]}, ...]``.

Every problem is one :class:`~diffmorph.errors.InputError` line naming the file (or
``points``) and the row (1-based, the header not counted; a JSON entry's index + 1).
Specification of how they are used: ``docs/algorithm.md``, "Point pairs".
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import InputError, display_path
from .files import write_bytes

HEADER = ("source_x", "source_y", "target_x", "target_y")
MAX_POINTS = 1000  # pairs accepted in one morph
MAX_FILE_BYTES = 1 << 20  # a points file larger than this is not a points file
SUFFIXES = (".csv", ".json")


def read_points(path_or_text, name: str | None = None) -> np.ndarray:
    """Point pairs from a ``.csv``/``.json`` file or from the text of one.

    Args:
      path_or_text: a path (``str`` or ``os.PathLike``) ending in ``.csv`` or ``.json``,
        or the CSV/JSON text itself (JSON if it starts with ``[``).
      name: what to call the points in messages (default the file's name, or ``points``).

    Returns:
      float64 ``(N, 4)`` rows ``(source_x, source_y, target_x, target_y)`` in each
      image's own pixels, 1 <= N <= 1000, finite. (Whether they lie inside the images
      is checked by :func:`check_points`, which needs the image sizes.)

    Raises:
      InputError: a missing or unreadable file, a wrong header or JSON shape, a
        non-numeric, NaN or infinite value, no pairs, more than 1000, or one source
        point paired with two different targets.

    Example:
      >>> read_points("source_x,source_y,target_x,target_y\\n10,20,30,40\\n")
      array([[10., 20., 30., 40.]])
    """
    text, label, is_json = _text_of(path_or_text)
    label = name or label
    if is_json:
        rows = _parse_json(text, label)
    else:
        rows = _parse_csv(text, label)
    return _checked(rows, label)


def as_points(points, name: str = "points") -> np.ndarray:
    """``points`` given in any accepted form as float64 ``(N, 4)``, checked like a file.

    Args:
      points: an ``(N, 4)`` array (or nested list) of rows ``(source_x, source_y,
        target_x, target_y)``, a list of ``{"source": [x, y], "target": [x, y]}``, or
        a path to a ``.csv``/``.json`` file.

    Raises:
      InputError: as :func:`read_points`.
    """
    if isinstance(points, (str, os.PathLike)):
        return read_points(points)
    if isinstance(points, (list, tuple)) and points and isinstance(points[0], dict):
        return _checked(_rows_of_json(list(points), name), name)
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected an (N, 4) array of numbers or a list of source/target pairs") from None
    if array.ndim != 2 or array.shape[1] != 4:
        if array.size == 0:
            raise InputError(f"{name}: no point pairs")
        raise InputError(f"{name}: expected shape (N, 4) (source_x, source_y, target_x, target_y); got {array.shape}")
    return _checked([(k + 1, row) for k, row in enumerate(array.tolist())], name)


def check_points(points: np.ndarray, source_size, target_size, name: str = "points") -> None:
    """Refuse points outside their images.

    Args:
      points: float ``(N, 4)`` from :func:`read_points` / :func:`as_points`.
      source_size, target_size: ``(height, width)`` of each image as given (the
        target's own size, before any resize).

    Raises:
      InputError: naming the first row with a point outside its image.
    """
    for which, offset, (height, width) in (("source", 0, source_size), ("target", 2, target_size)):
        xs, ys = points[:, offset], points[:, offset + 1]
        outside = (xs < -0.5) | (xs > width - 0.5) | (ys < -0.5) | (ys > height - 0.5)
        if outside.any():
            k = int(np.argmax(outside))
            raise InputError(
                f"{name} row {k + 1}: the {which} point ({xs[k]:g}, {ys[k]:g}) is outside the {which} image "
                f"({width}x{height}: x from -0.5 to {width - 0.5:g}, y from -0.5 to {height - 0.5:g})"
            )


def normalise(points: np.ndarray, source_size, target_size) -> np.ndarray:
    """Points as fractions of their image, float32 ``(N, 4)`` in [0, 1]: ``(x + 0.5) / W``.

    The working-size pixel of a fraction u is ``u * S - 0.5`` (both images are resized
    to S x S, x and y each on its own), see :func:`diffmorph.core.points.working_points`.
    """
    (sh, sw), (th, tw) = source_size, target_size
    scale = np.asarray([sw, sh, tw, th], np.float64)
    return ((np.asarray(points, np.float64) + 0.5) / scale).astype(np.float32)


def to_pixels(normalised: np.ndarray, source_size, target_size) -> np.ndarray:
    """The inverse of :func:`normalise`: float64 ``(N, 4)`` in each image's own pixels."""
    (sh, sw), (th, tw) = source_size, target_size
    return np.asarray(normalised, np.float64) * np.asarray([sw, sh, tw, th], np.float64) - 0.5


def points_csv(points: np.ndarray) -> bytes:
    """The CSV text of ``points`` (the header, then one row per pair; values to 10 significant digits)."""
    out = io.StringIO()
    out.write(",".join(HEADER) + "\n")
    for row in np.asarray(points, np.float64):
        out.write(",".join(f"{v:.10g}" for v in row) + "\n")
    return out.getvalue().encode()


def write_points(path, points: np.ndarray) -> None:
    """Write ``points`` as a CSV that :func:`read_points` reads back (atomically).

    Raises:
      OutputError: if the file cannot be written.
    """
    write_bytes(path, points_csv(points))


def points_digest(points: np.ndarray | None) -> str | None:
    """SHA-256 of the points as used (float32 fractions, see :func:`normalise`); None without points."""
    import hashlib

    if points is None:
        return None
    return hashlib.sha256(np.ascontiguousarray(points, np.float32).tobytes()).hexdigest()


def _text_of(path_or_text) -> tuple[str, str, bool]:
    """``(text, label, is JSON)``: a file's contents, its name and its format (by suffix),
    or the text itself (JSON if it starts with ``[`` or ``{``)."""
    if isinstance(path_or_text, str):
        stripped = path_or_text.lstrip("\ufeff \t\r\n")
        if "\n" in path_or_text or stripped.startswith(("[", "{")) or stripped.lower().startswith(HEADER[0]):
            return path_or_text.lstrip("\ufeff"), "points", stripped.startswith(("[", "{"))
    elif not isinstance(path_or_text, os.PathLike):
        raise InputError(f"points: expected a file path or CSV/JSON text, got {type(path_or_text).__name__}")
    path = Path(path_or_text)
    label = display_path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"{label}: a points file must end in .csv or .json")
    try:
        if not path.is_file():
            raise InputError(f"{label}: no such file" if not path.exists() else f"{label}: not a regular file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{label}: {path.stat().st_size} bytes is too large for a points file")
        with os.fdopen(os.open(path, os.O_RDONLY), "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig"), label, path.suffix.lower() == ".json"
    except UnicodeDecodeError:
        raise InputError(f"{label}: not a text file (not UTF-8)") from None


def _parse_csv(text: str, name: str) -> list[tuple[int, list]]:
    lines = [line for line in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in line)]
    if not lines:
        raise InputError(f"{name}: no point pairs (the file is empty)")
    header = tuple(cell.strip().lower() for cell in lines[0])
    if header != HEADER:
        raise InputError(f"{name}: the header must be {','.join(HEADER)} (got {','.join(lines[0])})")
    rows = []
    for k, cells in enumerate(lines[1:], start=1):
        if len(cells) != 4:
            raise InputError(f"{name} row {k}: expected 4 values ({','.join(HEADER)}), got {len(cells)}")
        rows.append((k, [_number(cell, name, k) for cell in cells]))
    return rows


def _number(cell, name: str, row: int) -> float:
    if isinstance(cell, bool) or not isinstance(cell, (str, int, float)):
        raise InputError(f"{name} row {row}: {cell!r} is not a number")
    try:
        value = float(cell.strip() if isinstance(cell, str) else cell)
    except ValueError:
        raise InputError(f"{name} row {row}: {cell.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{name} row {row}: {value} is not a finite number")
    return value


def _parse_json(text: str, name: str) -> list[tuple[int, list]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{name}: not valid JSON ({exc})") from None
    return _rows_of_json(data, name)


SHAPE = 'a list of {"source": [x, y], "target": [x, y]}'


def _rows_of_json(data, name: str) -> list[tuple[int, list]]:
    if not isinstance(data, list):
        raise InputError(f"{name}: expected {SHAPE}; got a JSON {type(data).__name__}")
    rows = []
    for k, entry in enumerate(data, start=1):
        if not isinstance(entry, dict) or set(entry) != {"source", "target"}:
            raise InputError(f'{name} row {k}: expected {{"source": [x, y], "target": [x, y]}}; got {entry!r:.80}')
        values = []
        for key in ("source", "target"):
            point = entry[key]
            if not isinstance(point, list) or len(point) != 2:
                raise InputError(f"{name} row {k}: {key} must be [x, y]; got {point!r:.60}")
            for v in point:
                if isinstance(v, str):  # JSON numbers only; CSV cells are text
                    raise InputError(f"{name} row {k}: {v!r} is not a number")
                values.append(_number(v, name, k))
        rows.append((k, values))
    return rows


def _checked(rows: list[tuple[int, list]], name: str) -> np.ndarray:
    """The rows as an array after the checks that need no image: count, finiteness, conflicts."""
    if not rows:
        raise InputError(f"{name}: no point pairs")
    if len(rows) > MAX_POINTS:
        raise InputError(f"{name}: {len(rows)} point pairs; at most {MAX_POINTS} are accepted")
    seen: dict[tuple[float, float], tuple[int, tuple[float, float]]] = {}
    for k, values in rows:
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InputError(f"{name} row {k}: {v!r} is not a finite number")
        source, target = (values[0], values[1]), (values[2], values[3])
        if source in seen and seen[source][1] != target:
            first, other = seen[source]
            raise InputError(
                f"{name} row {k}: the source point ({source[0]:g}, {source[1]:g}) is already paired with "
                f"({other[0]:g}, {other[1]:g}) in row {first}; one source point can go to one target only"
            )
        seen.setdefault(source, (k, target))
    return np.asarray([values for _, values in rows], np.float64).reshape(-1, 4)
