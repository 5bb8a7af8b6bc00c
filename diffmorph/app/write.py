"""Rendering a morph's frames into its output files, published as one set.

One function, :func:`write_video`, serves the morph command (one pair) and
sequences (pairs rendered one after another into one video). For each pair it
renders the frames once and streams them to the writers (MP4, GIF, numbered PNGs),
builds the pair's strip (``result.jpg``) and maps image (``maps.jpg``). Boomerang
(play forward, then backward without repeating the two turning frames) re-renders
the frames backwards instead of holding them, so memory is bounded as for any render.

Everything goes to temporary names through an :class:`~diffmorph.io.outputs.OutputSet`
that the caller publishes once all of it is written.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..config import MorphConfig
from ..errors import InputError, display_path
from ..io.files import save_image
from ..io.outputs import OutputSet
from .progress import SILENT, Progress

FORMATS = ("mp4", "gif", "frames")
DEFAULT_FORMATS = ("mp4", "gif")
DEFAULT_GIF_MAX_SIDE = 512
GIF_MEMORY_BUDGET = 1_000_000_000  # bytes of palette frames a GIF may hold before it is written
FRAME_NAME = "frame_{:05d}.png"
MAX_JPEG_SIDE = 65_500  # the longest side OpenCV's JPEG encoder writes (JPEG itself: 65,535)


@dataclasses.dataclass(frozen=True)
class OutputOptions:
    """How the frames are written (not what they show).

    formats: any of ``mp4``, ``gif``, ``frames`` (numbered PNGs).
    gif_max_side: the GIF (only) is downsized so its longer side is at most this (>= 2).
    boomerang: play forward, then backward without repeating the turning frames.
    report: also write ``report.json`` and ``report.png`` (:mod:`diffmorph.app.report`),
      measured on the frames as they are written.
    """

    formats: tuple[str, ...] = DEFAULT_FORMATS
    gif_max_side: int = DEFAULT_GIF_MAX_SIDE
    boomerang: bool = False
    report: bool = False

    def __post_init__(self):
        formats = self.formats
        if isinstance(formats, str) or not isinstance(formats, (tuple, list)):
            raise ValueError(f"formats must be a tuple of format names from {', '.join(FORMATS)} (got {formats!r})")
        unknown = [f for f in formats if f not in FORMATS]
        if unknown or not formats:
            raise ValueError(f"formats must be a non-empty subset of {', '.join(FORMATS)} (got {formats!r})")
        repeated = sorted({f for f in formats if formats.count(f) > 1})
        if repeated:
            raise ValueError(f"formats names {repeated[0]} twice (got {formats!r}); give each format once")
        object.__setattr__(self, "formats", tuple(formats))
        side = self.gif_max_side
        if not isinstance(side, numbers.Integral) or isinstance(side, (bool, np.bool_)) or side < 2:
            raise ValueError(f"gif_max_side must be an integer >= 2 (got {side!r})")
        object.__setattr__(self, "gif_max_side", int(side))
        for name in ("boomerang", "report"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False (got {getattr(self, name)!r})")
            object.__setattr__(self, name, bool(getattr(self, name)))


@dataclasses.dataclass
class PairFrames:
    """One pair's part of a video.

    source, target: uint8 ``(H, W, 3)``.
    maps: float32 ``(1, n, n, 16)``, or the maps file holding them (read when the pair
      is rendered, so a long sequence never holds every pair's maps at once).
    strip, maps_image: final paths of its ``result.jpg`` and ``maps.jpg`` (None: not written).
    """

    source: np.ndarray
    target: np.ndarray
    maps: np.ndarray | Path
    strip: Path | None = None
    maps_image: Path | None = None

    def maps_low(self) -> np.ndarray:
        """The maps, float32 ``(1, n, n, 16)`` (read from the file if given one)."""
        if isinstance(self.maps, np.ndarray):
            return self.maps
        from ..io import mapsfile

        return mapsfile.load_maps(self.maps).maps_low


def total_frames(pairs: int, frames: int, boomerang: bool) -> int:
    """Frames in a video of ``pairs`` pairs of ``frames`` each: ``F = pairs * frames``,
    or ``2F - 2`` with boomerang (back again without repeating the turning frames)."""
    forward = pairs * frames
    return 2 * forward - 2 if boomerang else forward


def gif_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """``(height, width)`` of the GIF's frames: downsized so the longer side is at most ``max_side``."""
    scale = max_side / max(height, width)
    if scale >= 1:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def check_output_budget(size: tuple[int, int], frames: int, options: OutputOptions) -> None:
    """Refuse outputs whose memory is not bounded by streaming (the GIF is held until written).

    Raises:
      InputError: the GIF's palette frames would exceed :data:`GIF_MEMORY_BUDGET`.
    """
    if "gif" not in options.formats:
        return
    height, width = gif_size(*size, options.gif_max_side)
    need = frames * height * width
    if need > GIF_MEMORY_BUDGET:
        raise InputError(
            f"a GIF of {frames} frames of {width}x{height} would need {need / 1e9:.1f} GB of memory "
            f"(the limit is {GIF_MEMORY_BUDGET / 1e9:.0f} GB); use fewer frames (--steps), a smaller "
            f"--gif-max-side, or --formats mp4"
        )


def strip_columns(frames: int) -> int:
    """Frames in the strip of ``frames`` frames: every 10th, or the last if none
    (``len(diffmorph.core.render.strip_indices(frames))``, without loading TensorFlow)."""
    return max(1, frames // 10)


def check_outputs(size: tuple[int, int], pairs: int, config: MorphConfig, options: OutputOptions) -> None:
    """Everything about the outputs that could fail after the work, checked before it.

    ``size`` is ``(height, width)`` of the frames, ``pairs`` the pairs in the video.
    The strip ``result.jpg`` is ``3 S`` high and ``k S`` wide for its ``k`` frames
    (:func:`diffmorph.core.render.strip_indices` of ``frames + 2 hold``), which must
    stay within JPEG's :data:`MAX_JPEG_SIDE`; the GIF must fit its memory budget
    (:func:`check_output_budget`).

    Raises:
      InputError: naming the settings to change.
    """
    per_pair = config.frames + 2 * config.hold
    columns = strip_columns(per_pair)
    if columns * config.size > MAX_JPEG_SIDE:
        widest = MAX_JPEG_SIDE // config.size  # strip columns that fit
        raise InputError(
            f"the strip result.jpg would be {columns * config.size} pixels wide ({columns} frames of "
            f"{config.size} pixels: frames {config.frames} plus 2 x hold {config.hold}), over JPEG's limit of "
            f"{MAX_JPEG_SIDE}; at size {config.size} at most {widest * 10 + 9} frames including the held "
            f"ones fit: lower frames, hold or size"
        )
    check_output_budget(size, total_frames(pairs, per_pair, options.boomerang), options)


def check_frames_folder(folder: Path) -> None:
    """A frames folder is replaced as a whole: refuse one that holds anything but our frames.

    Raises:
      InputError: it is a file, or holds other files.
    """
    import re

    if not folder.exists():
        return
    if not folder.is_dir():
        raise InputError(f"{display_path(folder)} exists and is not a folder (frames folder)")
    ours = re.compile(r"^frame_\d{5,}\.png$")
    foreign = [p.name for p in folder.iterdir() if not ours.match(p.name)]
    if foreign:
        raise InputError(
            f"the frames folder {display_path(folder)} holds other files "
            f"({display_path(foreign[0])}); it would be replaced as a whole: "
            f"choose an empty or new folder"
        )


def frame_order(pairs: int, frames: int, boomerang: bool) -> Iterator[tuple[int, int]]:
    """``(pair, frame)`` in video order: every pair's frames, then (boomerang) all of them
    backwards without repeating the last and the first frame of the whole video."""
    for p in range(pairs):
        for i in range(frames):
            yield p, i
    if boomerang:
        for p in reversed(range(pairs)):
            for i in reversed(range(frames)):
                if (p, i) not in ((pairs - 1, frames - 1), (0, 0)):
                    yield p, i


PACE_SIDE = 256  # the dense pass of uniform pacing renders at most this long side (pixels)


class Schedules:
    """The alphas of each pair (:func:`diffmorph.core.pacing.alphas_for` with the config's
    pacing, ease and hold). Uniform pacing measures a dense pass rendered by the pair's
    own renderer when its frames are small, else by a renderer of the pair downscaled to
    :data:`PACE_SIDE` (whose compiled programs all pairs share)."""

    def __init__(self, config: MorphConfig):
        self.config = config
        self._programs = None

    def alphas(self, pair: PairFrames, renderer) -> list[float]:
        from ..core.pacing import alphas_for

        config = self.config
        if config.pacing == "linear":
            return alphas_for(config.frames, "linear", config.ease, config.hold)
        return alphas_for(
            config.frames, config.pacing, config.ease, config.hold, renderer=self._measuring(pair, renderer)
        )

    def _measuring(self, pair: PairFrames, renderer):
        import cv2

        from ..core.render import FrameRenderer, RenderPrograms

        height, width = pair.source.shape[:2]
        scale = PACE_SIDE / max(height, width)
        if scale >= 1:
            return renderer
        size = (max(2, round(width * scale)), max(2, round(height * scale)))
        small = [cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (pair.source, pair.target)]
        if self._programs is None:
            self._programs = RenderPrograms(self.config)
        return FrameRenderer(*small, renderer.maps_low, self.config, programs=self._programs)


def write_video(
    pairs: list[PairFrames],
    config: MorphConfig,
    files: dict,
    options: OutputOptions,
    outputs: OutputSet,
    progress: Progress = SILENT,
    measurement=None,
) -> int:
    """Render every pair into the writers of ``options.formats``; stage it all in ``outputs``.

    Each pair's frames are at the alphas of its schedule (``config.pacing``, ``ease``,
    ``hold``; the original's linear schedule by default); with ``config.colour_path``
    ``"bures"`` each frame's colours are moved onto the W2 geodesic between the pair's
    end images (:class:`~diffmorph.core.colour.ColourPath`).

    Args:
      pairs: the pairs in video order (all of one size).
      config: the render settings (frames, fps, render mode, scales, pacing, colour path).
      files: final paths, ``{"mp4": ..., "gif": ..., "frames": folder}`` for the formats.
      options: formats, GIF size, boomerang.
      outputs: the set the files are staged in (the caller publishes it).
      progress: receives the ``render`` phase.
      measurement: a :class:`~diffmorph.app.report.Measurement` fed every frame written, or None.

    Returns:
      the number of frames written.

    Raises:
      OutputError: a file cannot be written; nothing is published.
    """
    from ..core.render import FrameRenderer, RenderPrograms, StripBuilder, maps_image
    from ..io.video import frame_writers

    size = pairs[0].source.shape[:2]
    programs = RenderPrograms(config)
    schedules = Schedules(config)
    current = {}  # the pair being rendered: its renderer, alphas and colour path

    def pair_state(p):
        if current.get("index") != p:
            pair = pairs[p]
            renderer = FrameRenderer(pair.source, pair.target, pair.maps_low(), config, programs=programs)
            current.clear()
            current.update(
                index=p, renderer=renderer, alphas=schedules.alphas(pair, renderer), colour=colour_path_of(pair, config)
            )
        return current

    frames = len(pair_state(0)["alphas"])
    staged = {
        fmt: (outputs.stage_folder(files[fmt]) if fmt == "frames" else outputs.stage(files[fmt]))
        for fmt in options.formats
    }
    total = total_frames(len(pairs), frames, options.boomerang)
    written, last = 0, (None, None)
    with (
        progress.phase("render", total),
        frame_writers(options.formats, staged, size, config.fps, options.gif_max_side) as write,
    ):
        strip = None
        for p, i in frame_order(len(pairs), frames, options.boomerang):
            progress.check_cancelled()
            state = pair_state(p)
            forward = written < len(pairs) * frames
            if i == 0 and forward:
                pair = pairs[p]
                if pair.maps_image is not None:
                    save_image(outputs.stage(pair.maps_image), maps_image(state["renderer"].maps))
                strip = StripBuilder(frames, config.size) if pair.strip is not None else None
            alpha = state["alphas"][i]
            in_strip = strip is not None and forward and i in strip.columns
            if last[0] == (p, alpha) and not in_strip:  # a hold repeats a frame: render it once
                image = last[1]
            else:
                frame = state["renderer"].render(i, alpha, with_tiles=in_strip)
                image = on_colour_path(frame.image, alpha, state["colour"])
                if in_strip:
                    strip.add(
                        frame._replace(tiles=(on_colour_path(frame.tiles[0], alpha, state["colour"]), *frame.tiles[1:]))
                    )
                last = ((p, alpha), image)
            if strip is not None and forward and i == frames - 1:
                save_image(outputs.stage(pairs[p].strip), strip.bgr, bgr=True)
                strip = None
            write(image)
            if measurement is not None:
                measurement.add(image)
            written += 1
            progress.update(written)
    return written


def colour_path_of(pair: PairFrames, config: MorphConfig):
    """The pair's :class:`~diffmorph.core.colour.ColourPath` when ``config.colour_path`` asks for one."""
    if config.colour_path == "none":
        return None
    from ..core.colour import ColourPath

    return ColourPath(pair.source, pair.target)


def on_colour_path(image: np.ndarray, alpha: float, colour_path) -> np.ndarray:
    """``image`` with its colours on the geodesic at ``alpha`` (unchanged without a colour path)."""
    return image if colour_path is None else colour_path.apply(image, alpha)
