"""A morph's report: weight-free measures of its frames, as a dict, ``report.json`` and ``report.png``.

``report(FRAMES)`` reads the frames (:func:`diffmorph.io.readers.read_frames`: a video,
a GIF, a folder of frames or a morph output folder), streams them through
:class:`diffmorph.core.meter.PathMeter` (the frames are never all held) and returns
its result, with what was read. With ``out_dir`` it also writes ``report.json`` (the
dict) and ``report.png`` (distances between neighbouring frames and cumulative path,
colour-path deviation per frame, a strip of frames); both are made in memory, staged under temporary names
and published together (:class:`diffmorph.io.outputs.OutputSet`), so on any error
nothing is written. :func:`format_table` is the short text the command line prints;
:func:`read_report` reads a ``report.json`` back (this version's or an older one's).

The measures are self-consistent, weight-free numbers, not LPIPS or FID (see
:mod:`diffmorph.core.metrics`).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from ..core.report_layout import upgrade
from ..errors import InputError, display_path
from .progress import SILENT, Progress

STRIP_FRAMES = 6  # frames shown in report.png
THUMB_HEIGHT = 128  # pixels, their height in the strip (before matplotlib scales the figure)
REPORT_JSON, REPORT_PNG = "report.json", "report.png"


def _inputs(source, target, truth, progress: Progress) -> dict:
    """The reference images as pixels, read exactly as :func:`~diffmorph.app.morph.morph` reads its
    inputs (:func:`~diffmorph.app.inputs.load_pair`: the target resized to the source's size, with
    a notice; :func:`~diffmorph.app.inputs.as_pixels` for one alone and the truth).

    Raises:
      InputError: an unusable image or argument, naming it.
    """
    from .inputs import as_pixels, load_pair

    if source is not None and target is not None:
        pair = load_pair(source, target, progress)
        images = {"source": pair.source, "target": pair.target}
    else:
        images = {
            name: None if image is None else as_pixels(image, _name(image, name), progress)
            for name, image in (("source", source), ("target", target))
        }
    images["truth"] = None if truth is None else as_pixels(truth, _name(truth, "truth"), progress)
    return images


def _name(image, fallback: str) -> str:
    return display_path(image) if isinstance(image, (str, os.PathLike)) and str(image).strip() else fallback


class _Thumbnails:
    """Small copies of about ``k`` evenly spaced frames, the first and the last included.

    With ``count`` known the frames are picked as they pass; otherwise every
    ``stride``-th frame is kept and the stride doubles whenever more than ``2k`` are
    held, so memory stays bounded for any length.
    """

    def __init__(self, count: int | None, k: int = STRIP_FRAMES):
        self.k, self.count = k, count
        self.wanted = None if count is None else set(np.linspace(0, count - 1, min(k, count)).round().astype(int))
        self.kept: list[tuple[int, np.ndarray]] = []
        self.stride = 1
        self.last: tuple[int, np.ndarray] | None = None

    @staticmethod
    def _small(frame: np.ndarray) -> np.ndarray:
        import cv2

        height, width = frame.shape[:2]
        if height <= THUMB_HEIGHT:
            return frame.copy()
        size = (max(1, round(width * THUMB_HEIGHT / height)), THUMB_HEIGHT)
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)

    def add(self, index: int, frame: np.ndarray) -> None:
        if self.wanted is not None:
            if index in self.wanted:
                self.kept.append((index, self._small(frame)))
            return
        self.last = (index, frame)  # the newest frame (referenced, not copied)
        if index % self.stride == 0:
            self.kept.append((index, self._small(frame)))
            if len(self.kept) > 2 * self.k:
                self.stride *= 2
                self.kept = [(i, f) for i, f in self.kept if i % self.stride == 0]

    def pick(self) -> list[tuple[int, np.ndarray]]:
        kept = list(self.kept)
        if self.last is not None and kept[-1][0] != self.last[0]:
            kept.append((self.last[0], self._small(self.last[1])))
        if len(kept) <= self.k:
            return kept
        return [kept[i] for i in np.linspace(0, len(kept) - 1, self.k).round().astype(int)]


def default_report_folder(input) -> Path:
    """Where the report of ``input`` goes by default (the command line's, without ``out_dir``).

    A morph output folder ``OUT`` (holding ``morph/``): ``OUT/morph``; a ``morph``
    folder, or a folder holding ``morph.*`` outputs: that folder; another folder (of
    frames): its parent; a video or GIF: its folder.
    """
    path = Path(input)
    if path.is_dir():
        if (path / "morph").is_dir():
            return path / "morph"
        if path.name == "morph" or any(path.glob("morph.*")):
            return path
    return path.parent


def alignment_entry(maps_low, config, points=None, held_out=None, maps_path=None) -> dict:
    """The report's ``"alignment"``: where the two halves of the middle frame (alpha 0.5)
    put the same content (:func:`diffmorph.core.geometry.alignment`), in % of the diagonal.

    Args:
      maps_low: float32 ``(1, n, n, 16)``. config: its settings (``size``, ``warp_scale``,
        ``geometry``: ``"auto"`` is measured as ``"scaled"``, as it renders without points).
      points, held_out: float ``(N, 4)`` pairs as fractions of their images, or None.
      maps_path: what to record as the maps' origin.

    Returns:
      ``{"alpha", "geometry", "dense", "points", "held_out", "maps"}``.
    """
    from ..core.geometry import alignment

    geometry = "scaled" if config.geometry == "auto" else config.geometry
    out = alignment(maps_low, config.size, config.warp_scale, geometry, 0.5, points, held_out)
    return {**out, "maps": None if maps_path is None else str(maps_path)}


def _find_maps(frames) -> Path | None:
    """The maps file of a morph's outputs (``OUT/morph/maps.npz``, ``morph/maps.npz``, or
    beside a video, GIF or frames folder in ``morph/``), or None."""
    path = Path(frames)
    candidates = [path / "morph" / "maps.npz", path / "maps.npz"] if path.is_dir() else []
    for candidate in candidates + [path.parent / "maps.npz"]:  # a video or frames folder in morph/
        if candidate.is_file():
            return candidate
    return None


def _maps_alignment(maps, frames, sizes, points, held_out) -> dict | None:
    """The alignment entry for ``report``: from ``maps`` or the morph folder's own maps file.

    ``points`` None: the morph's own ``points.csv`` beside the maps file, if any.
    ``sizes``: ``(source (H, W), target (H, W))`` the pairs' pixels are in.
    """
    from ..io import mapsfile
    from ..io import points as point_files
    from .saved_maps import settings_for_maps

    path = Path(maps) if maps is not None else _find_maps(frames)
    if path is None:
        if held_out is not None:
            raise InputError("held_out: needs the morph's maps (a morph output folder, or maps=)", setting="held_out")
        return None
    saved = mapsfile.load_maps(path)
    config = settings_for_maps(saved, None)
    if saved.meta.get("geometry") in ("scaled", "between"):
        config = config.replace(geometry=saved.meta["geometry"])  # (the colour maps do not move content)
    if points is None and (path.parent / "points.csv").is_file():
        points = path.parent / "points.csv"

    def fractions(given, name):
        if given is None:
            return None
        pixels = point_files.as_points(given)
        point_files.check_points(pixels, *sizes, name=name)
        return point_files.normalise(pixels, *sizes)

    return alignment_entry(
        saved.maps_low, config, fractions(points, "points"), fractions(held_out, "held_out"), display_path(path)
    )


def report(
    frames,
    source=None,
    target=None,
    truth=None,
    out_dir=None,
    progress: Progress = SILENT,
    *,
    maps=None,
    points=None,
    held_out=None,
) -> dict:
    """Measure a morph's frames; optionally write ``report.json`` and ``report.png``.

    Args:
      frames: a video, a GIF, a folder of frames, or a morph output folder (``morph/``
        or its parent), see :mod:`diffmorph.io.readers`.
      source, target: the morph's inputs (paths, or uint8 ``(H, W, 3)`` RGB arrays), or None;
        read as :func:`~diffmorph.app.morph.morph` reads them (the target resized to the
        source's size; alone, to the frames' size, as the morph's frames have the source's);
        the end frames are compared with them.
      truth: a known midpoint (path or array) of the frames' size, or None; the middle
        frame is compared with it.
      out_dir: a folder (created if needed) to write ``report.json`` and ``report.png``
        in, or None to write nothing.
      progress: a :class:`~diffmorph.app.progress.Progress`: receives the ``measure``
        phase (frames; its total is None when the input does not say how many), and can cancel.
      maps: the morph's maps file (default: ``morph/maps.npz`` of a morph output folder):
        with it the report measures the alignment of the middle frame's halves.
      points: point pairs (a ``.csv``/``.json`` file or an ``(N, 4)`` array, each
        image's own pixels) to measure the alignment at (default: the morph's own
        ``points.csv`` beside the maps file).
      held_out: more pairs, not used by the morph, measured the same way.

    Returns:
      :meth:`diffmorph.core.meter.PathMeter.result` plus ``"diffmorph"`` (the
      version), ``"input"`` (the path read and its kind), ``"alignment"``
      (:func:`alignment_entry`, or None without maps) and ``"files"`` (the paths
      written, empty without ``out_dir``). Pair coordinates are in the source's and
      the target's own pixels (the frames' size when no ``target`` is given).

    Raises:
      InputError: unreadable or missing input, no frames, one frame, frames of
        different sizes, a source, target or truth image of another size (one line;
        nothing is written).
      OutputError: ``out_dir`` or its files cannot be written (nothing is left half-written).
      Cancelled: ``progress.cancel()`` was called (nothing is written).
    """
    from ..io.readers import read_frames
    from .inputs import check_path
    from .runtime import import_tensorflow_quietly

    check_path("frames", frames)
    check_path("out_dir", out_dir, optional=True)
    if not isinstance(progress, Progress):
        raise InputError(f"progress must be a diffmorph.Progress (got {type(progress).__name__})")

    if out_dir is not None:
        from ..io.files import check_folder_path
        from ..io.outputs import refuse_inputs

        check_folder_path(out_dir)  # a file there: bad input (exit 2), before any reading
    reader = read_frames(frames)  # a bad input is refused before TensorFlow loads
    if out_dir is not None:
        try:
            refuse_inputs(
                [Path(out_dir) / REPORT_JSON, Path(out_dir) / REPORT_PNG],
                [frames, source, target, truth, *reader.files],  # a folder's frames are inputs too
            )
        except InputError:
            reader.close()
            raise
    import_tensorflow_quietly()
    measurement = None
    try:
        images = _inputs(source, target, truth, progress)
        stream = iter(reader)
        first = next(stream)  # raises InputError for a stream without frames
        crop = _padding_of(reader.kind, first.shape[:2], images)
        if crop is not None:  # an MP4 padded to even sizes by an encoder that did not record the true size
            stream = (frame[: crop[0], : crop[1]] for frame in stream)
            first = first[: crop[0], : crop[1]]
        height, width = first.shape[:2]
        target = images["target"]
        if images["source"] is None and target is not None and target.shape[:2] != (height, width):
            from .inputs import match_size

            progress.notice(
                f"target is {target.shape[1]}x{target.shape[0]}, the frames {width}x{height}: "
                f"resizing the target to the frames' size (as the morph resized it to the source's)"
            )
            images["target"] = match_size(target, height, width)
        for name, image in images.items():
            if image is not None and image.shape[:2] != (height, width):
                raise InputError(
                    f"the {name} image is {image.shape[1]}x{image.shape[0]} but the frames of "
                    f"{display_path(frames)} are {width}x{height}"
                )
        measurement = Measurement(reader.count)
        frame = first
        with progress.phase("measure", reader.count):
            while frame is not None:
                progress.check_cancelled()
                measurement.add(frame)
                progress.update(measurement.count)
                frame = next(stream, None)
    except BaseException:
        if measurement is not None:
            measurement.close()  # ends its background thread
        raise
    finally:
        reader.close()
    try:
        result = measurement.result(**images, origin={"path": str(reader.path), "kind": reader.kind})
    except ValueError as exc:  # fewer frames than counted, and the like
        raise InputError(f"{display_path(frames)}: {exc}") from None
    sizes = (
        (height, width),
        images["target"].shape[:2] if images["target"] is not None else (height, width),
    )
    result["alignment"] = _maps_alignment(maps, frames, sizes, points, held_out)
    if out_dir is not None:
        result["files"] = _publish(Path(out_dir), measurement, result)
    return result


def _padding_of(kind: str, size: tuple[int, int], images: dict) -> tuple[int, int] | None:
    """The ``(height, width)`` to crop a video's frames to when they are a reference image's
    odd size padded by one pixel to even (as H.264 encoders need), else None."""
    if kind != "video":
        return None
    for image in images.values():
        if image is not None:
            height, width = image.shape[:2]
            if (height, width) != size and (height + height % 2, width + width % 2) == size:
                return height, width
    return None


class Measurement:
    """Measures frames as they stream by: the :class:`~diffmorph.core.meter.PathMeter`
    and the thumbnails of ``report.png``. The pipeline feeds it the frames it renders
    (``report=True``); :func:`report` the frames it reads.

    Args:
      count: the number of frames to come, if known.
    """

    def __init__(self, count: int | None = None):
        from ..core.meter import PathMeter

        self.meter = PathMeter(count)
        self.thumbs = _Thumbnails(count)
        self.count = 0

    def add(self, frame: np.ndarray) -> None:
        """One uint8 ``(H, W, 3)`` RGB frame, in order."""
        self.meter.add(frame)
        self.thumbs.add(self.count, frame)
        self.count += 1

    def close(self) -> None:
        """Stop measuring (ends the meter's background thread)."""
        self.meter.close()

    def result(self, source=None, target=None, truth=None, origin=None) -> dict:
        """The measures (:meth:`~diffmorph.core.meter.PathMeter.result`) with the version, and
        ``origin`` (``{"path", "kind"}``: what the frames were read from) as ``"input"``.

        Raises:
          ValueError: too few frames.
        """
        from ..version import __version__

        return {"diffmorph": __version__, "input": origin, **self.meter.result(source, target, truth), "files": []}

    def contents(self, result: dict, files) -> dict:
        """``{json path: bytes, png path: bytes}`` for ``files`` = (the JSON's path, the PNG's path),
        the JSON listing both."""
        json_file, png_file = files
        png = figure_png(result, self.thumbs.pick())
        data = json.dumps({**result, "files": [str(f) for f in files]}, indent=1, allow_nan=False).encode() + b"\n"
        return {json_file: data, png_file: png}


def _publish(folder: Path, measurement: Measurement, result: dict) -> list[str]:
    """Write ``report.json`` and ``report.png`` in ``folder``, both or neither."""
    from ..io.files import ensure_folder, write_bytes
    from ..io.outputs import OutputSet

    files = [folder / REPORT_JSON, folder / REPORT_PNG]
    contents = measurement.contents(result, files)  # made before anything touches the disk
    ensure_folder(folder)
    with OutputSet(folder, "report") as outputs:
        for path in files:
            write_bytes(outputs.stage(path), contents[path])  # OutputError on failure
        outputs.publish()
    return [str(f) for f in files]


def figure_png(result: dict, strip) -> bytes:
    """``report.png`` as PNG bytes: neighbour distances and cumulative path, colour deviation, a strip.

    Drawn with matplotlib's Agg canvas on its own :class:`~matplotlib.figure.Figure`
    (no pyplot, no global backend change).

    Args:
      result: a :func:`report` result. strip: ``[(index, uint8 (h, w, 3)), ...]``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    result = upgrade(result)
    n = result["frames"]
    pairs = np.arange(1, n)
    d, mad = np.array(result["distance"]["distances"]), np.array(result["mad"]["distances"])
    figure = Figure(figsize=(11, 9.5), dpi=90)  # fixed margins: a constrained layout costs more than the drawing
    grid = figure.add_gridspec(
        3, 2, height_ratios=[1, 1, 0.8], left=0.08, right=0.92, bottom=0.02, top=0.96, wspace=0.38, hspace=0.38
    )

    ax = figure.add_subplot(grid[0, 0])
    ax.plot(pairs, d, color="tab:blue", label="1 - MS-SSIM")
    ax.axhline(d.mean(), color="tab:blue", linestyle=":", linewidth=1, label="even steps")
    ax.set_xlabel("i (frames i-1 and i)")
    ax.set_ylabel("1 - MS-SSIM", color="tab:blue")
    twin = ax.twinx()
    twin.plot(pairs, mad, color="tab:orange", label="MAD")
    twin.set_ylabel("mean abs. difference (levels)", color="tab:orange")
    cv = result["distance"]["cv"]
    ax.set_title("distance between neighbouring frames" + ("" if cv is None else f" (std/mean {cv:.3f})"))

    ax = figure.add_subplot(grid[0, 1])
    frames = np.arange(n)
    for values, colour, label in ((d, "tab:blue", "1 - MS-SSIM"), (mad, "tab:orange", "MAD")):
        total = values.sum()
        cumulative = np.concatenate([[0.0], np.cumsum(values) / total]) if total > 0 else np.zeros(n)
        ax.plot(frames, cumulative, color=colour, label=label)
    ax.plot([0, n - 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="even pace")
    ax.set_xlabel("frame")
    ax.set_ylabel("cumulative path (normalised)")
    ax.set_title("cumulative path")
    ax.legend(loc="lower right", fontsize="small")

    colour = result["colour"]
    span = colour["w2_ends"]
    ax = figure.add_subplot(grid[1, 0])
    deviation = np.array(colour["deviation"])
    ax.plot(frames, deviation / span if span > 0 else deviation, color="tab:green")
    ax.set_xlabel("frame")
    ax.set_ylabel("W2 to geodesic / W2(first, last)" if span > 0 else "W2 to geodesic")
    ax.set_title("colour: distance to the Bures geodesic")

    ax = figure.add_subplot(grid[1, 1])
    ax.plot(frames, colour["geodesic_s"], color="tab:green", label="colour position s")
    ax.plot([0, n - 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="even pace")
    ax.set_xlabel("frame")
    ax.set_ylabel("nearest geodesic point s")
    ax.set_title("colour: position along the geodesic")
    ax.legend(loc="lower right", fontsize="small")

    ax = figure.add_subplot(grid[2, :])
    if strip:
        height = max(f.shape[0] for _, f in strip)
        gap = np.full((height, 4, 3), 255, np.uint8)
        tiles = []
        for _, f in strip:
            tile = np.full((height, f.shape[1], 3), 255, np.uint8)
            tile[: f.shape[0]] = f
            tiles += [tile, gap]
        ax.imshow(np.concatenate(tiles[:-1], axis=1))
        ax.set_title("frames " + ", ".join(str(i) for i, _ in strip))
    ax.set_axis_off()

    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def read_report(path) -> dict:
    """A ``report.json`` read back, with today's key names (:func:`~diffmorph.core.report_layout.upgrade`:
    an older report's ``"steps"`` come back as ``"distances"``).

    Raises:
      InputError: the file cannot be read or is not a report (one line).
    """
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{display_path(str(path))}: cannot be read as a report ({exc})") from None
    if not isinstance(result, dict) or not all(isinstance(result.get(k), dict) for k in ("distance", "mad", "colour")):
        raise InputError(f"{display_path(str(path))}: not a diffmorph report (no distance, mad and colour entries)")
    return upgrade(result)


def _number(x, spec: str = ".4g") -> str:
    return "n/a" if x is None else format(x, spec)


def _fidelity(entry) -> str:
    if entry is None:
        return "not given"
    if entry["exact"]:
        return "exact"
    return f"PSNR {_number(entry['psnr'], '.2f')} dB, SSIM {_number(entry['ssim'], '.4f')}"


def format_table(result: dict) -> str:
    """A short human-readable table of a :func:`report` result (a few lines, no trailing newline)."""
    d, mad, colour, sharp = result["distance"], result["mad"], result["colour"], result["sharpness"]
    height, width = result["size"]
    rows = [
        f"frames          {result['frames']} ({width}x{height}), middle frame {result['middle_index']}",
        f"{'frame to frame':<16}{'1 - MS-SSIM':>14}{'MAD (levels)':>14}",
        *(
            f"  {label:<14}{_number(d[key]):>14}{_number(mad[key]):>14}"
            for label, key in (
                ("path length", "path_length"),
                ("PDV (var)", "pdv"),
                ("std/mean", "cv"),
                ("max/mean", "max_over_mean"),
            )
        ),
        (
            f"endpoints       source {_fidelity(result['endpoints']['source'])}; "
            f"target {_fidelity(result['endpoints']['target'])}"
        ),
        f"sharpness       middle / {sharp['reference_of']}: {_number(sharp['middle_ratio'], '.3f')}",
        (
            f"colour path     W2(first, last) {_number(colour['w2_ends'], '.4f')}; length "
            f"{_number(colour['path_length_ratio'], '.3f')}x; max deviation "
            f"{_number(colour['max_deviation_ratio'], '.3f')}x; "
            f"max step {_number(colour['max_step_ratio'], '.2f')}x even"
        ),
        (
            f"colour variance middle {_number(colour['middle_variance'], '.4f')}, geodesic midpoint "
            f"{_number(colour['geodesic_mid_variance'], '.4f')}"
        ),
    ]
    if result.get("truth") is not None:
        rows.append(f"truth           middle frame vs truth: {_fidelity(result['truth'])}")
    aligned = result.get("alignment")
    if aligned is not None:
        parts = [f"dense {aligned['dense']['mean']:.2f} (p90 {aligned['dense']['p90']:.2f})"]
        for key, label in (("points", "point pairs"), ("held_out", "held-out pairs")):
            if aligned.get(key) is not None:
                entry = aligned[key]
                parts.append(f"{entry['count']} {label} {entry['mean']:.2f} (p90 {entry['p90']:.2f})")
        rows.append(
            f"alignment       halves of the middle frame apart, % of the diagonal ({aligned['geometry']}): "
            + "; ".join(parts)
        )
    rows.append("(weight-free measures: not comparable with LPIPS- or FID-based figures)")
    return "\n".join(rows)
