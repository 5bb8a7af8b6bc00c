"""Rendering a morph's frames into its output files, published as one set.

One function, :func:`write_video`, serves the morph command (one pair) and
sequences (pairs rendered one after another into one video). The frames come from
one :class:`~diffmorph.app.stream.FrameStream` (schedules, holds, colour path,
boomerang) and go to sinks: the writers (MP4, GIF, numbered PNGs), each pair's strip
(``result.jpg``) and maps image (``maps.jpg``, :class:`PairImages`), and the report's
measurement. Memory is bounded as for any stream: one frame at a time.

Everything goes to temporary names through an :class:`~diffmorph.io.outputs.OutputSet`
that the caller publishes once all of it is written.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
from pathlib import Path

import numpy as np

from ..config import MorphConfig
from ..errors import InputError, display_path
from ..io.files import save_image
from ..io.outputs import OutputSet
from .estimate import record_frame
from .progress import SILENT, Progress
from .stream import FrameStream, PairFrames, StreamFrame, frame_order, total_frames

__all__ = [  # frame_order, total_frames and PairFrames live in .stream; kept importable from here
    "OutputOptions",
    "PairFrames",
    "PairImages",
    "check_frames_folder",
    "check_output_budget",
    "frame_order",
    "gif_size",
    "total_frames",
    "write_video",
]

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
            f"(the limit is {GIF_MEMORY_BUDGET / 1e9:.0f} GB); use fewer frames (frames=N), a smaller "
            f'gif_max_side, or formats=("mp4",)',
            setting="gif_max_side",
        )


def strip_columns(frames: int) -> int:
    """Frames in the strip of ``frames`` frames: every 10th, or the last if none
    (``len(diffmorph.core.render.strip_indices(frames))``, without loading TensorFlow)."""
    return max(1, frames // 10)


def check_outputs(size: tuple[int, int], pairs: int, config: MorphConfig, options: OutputOptions) -> None:
    """Everything about the outputs that could fail after the work, checked before it.

    ``size`` is ``(height, width)`` of the frames, ``pairs`` the pairs in the video.
    The strip ``result.jpg`` is ``3 S`` high and ``k S`` wide for its ``k`` frames
    (:func:`diffmorph.core.render.strip_indices` of the morph's own ``frames``: ``hold``'s
    repeated frames are not in it), which must stay within JPEG's :data:`MAX_JPEG_SIDE`;
    the GIF, with its held frames, must fit its memory budget (:func:`check_output_budget`).

    Raises:
      InputError: naming the settings to change.
    """
    check_strip(config)
    per_pair = config.frames + 2 * config.hold
    check_output_budget(size, total_frames(pairs, per_pair, options.boomerang), options)


def check_strip(config: MorphConfig) -> None:
    """Refuse settings whose strip ``result.jpg`` (``k`` tiles of ``size`` for every 10th of the
    morph's own ``frames``) would be wider than JPEG's :data:`MAX_JPEG_SIDE` (the settings alone
    decide it, whatever the images).

    Raises:
      InputError: naming the settings to change.
    """
    columns = strip_columns(config.frames)
    if columns * config.size > MAX_JPEG_SIDE:
        widest = MAX_JPEG_SIDE // config.size  # strip columns that fit
        raise InputError(
            f"the strip result.jpg would be {columns * config.size} pixels wide ({columns} frames of "
            f"{config.size} pixels: every 10th of frames {config.frames}), over JPEG's limit of "
            f"{MAX_JPEG_SIDE}; at size {config.size} at most {widest * 10 + 9} frames fit: lower frames=N or size=N",
            setting="frames",
        )


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

    The frames come from one :class:`~diffmorph.app.stream.FrameStream` (each pair's
    schedule, colour path, boomerang); this function only hands each frame to its sinks:
    the frame writers (MP4, GIF, numbered PNGs), each pair's strip (``result.jpg``) and
    maps image (``maps.jpg``), and the ``measurement``.

    Args:
      pairs: the pairs in video order (all of one size).
      config: the render settings (frames, fps, render mode, scales, pacing, colour path).
      files: final paths, ``{"mp4": ..., "gif": ..., "frames": folder}`` for the formats.
      options: formats, GIF size, boomerang.
      outputs: the set the files are staged in (the caller publishes it).
      progress: receives the ``render`` phase (frames written).
      measurement: a :class:`~diffmorph.app.report.Measurement` fed every frame written, or None.

    Returns:
      the number of frames written.

    Raises:
      OutputError: a file cannot be written; nothing is published.
    """
    from ..io.video import frame_writers

    stream = FrameStream(
        pairs,
        config,
        boomerang=options.boomerang,
        tiles=[p for p, pair in enumerate(pairs) if pair.strip is not None],
        progress=progress,
    )
    pair_images = PairImages(pairs, stream, config, outputs)
    staged = {
        fmt: (outputs.stage_folder(files[fmt]) if fmt == "frames" else outputs.stage(files[fmt]))
        for fmt in options.formats
    }
    written = 0
    with (
        progress.phase("render", stream.total),
        frame_writers(options.formats, staged, pairs[0].source.shape[:2], config.fps, options.gif_max_side) as write,
    ):
        clock = time.perf_counter()
        for frame in stream:
            pair_images.add(frame)
            write(frame.image)
            if measurement is not None:
                measurement.add(frame.image)
            written += 1
            progress.update(written)
            now = time.perf_counter()
            if written > 1:  # the first frame traces the render programs
                record_frame(*frame.image.shape[:2], now - clock)
            clock = now
    return written


class PairImages:
    """A sink for each pair's strip (``result.jpg``) and maps image (``maps.jpg``), staged in ``outputs``.

    Fed the frames of a :class:`~diffmorph.app.stream.FrameStream` (asked for the strip
    frames' tiles of the pairs with a strip): at a pair's first frame it stages the maps
    image (from ``stream.renderer.maps``), places the strip frames' tiles, and at the
    pair's last frame stages the strip.
    """

    def __init__(self, pairs: list[PairFrames], stream: FrameStream, config: MorphConfig, outputs: OutputSet):
        self.pairs = pairs
        self.stream = stream
        self.config = config
        self.outputs = outputs
        self.strip = None

    def add(self, frame: StreamFrame) -> None:
        from ..core.render import StripBuilder, maps_image

        if not frame.forward:
            return
        pair = self.pairs[frame.pair]
        if frame.index == 0:
            if pair.maps_image is not None:
                save_image(self.outputs.stage(pair.maps_image), maps_image(self.stream.renderer.maps))
            first, count = self.stream.strip_span  # the morph's own frames, not the held copies
            self.strip = StripBuilder(count, self.config.size, first) if pair.strip is not None else None
        if self.strip is None:
            return
        self.strip.add(frame)
        if frame.index == self.stream.frames - 1:
            save_image(self.outputs.stage(pair.strip), self.strip.bgr, bgr=True)
            self.strip = None
