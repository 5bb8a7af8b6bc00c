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
from pathlib import Path
from typing import Callable, Iterator

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


@dataclasses.dataclass(frozen=True)
class OutputOptions:
    """How the frames are written (not what they show).

    formats: any of ``mp4``, ``gif``, ``frames`` (numbered PNGs).
    gif_max_side: the GIF (only) is downsized so its longer side is at most this (>= 2).
    boomerang: play forward, then backward without repeating the turning frames.
    """

    formats: tuple[str, ...] = DEFAULT_FORMATS
    gif_max_side: int = DEFAULT_GIF_MAX_SIDE
    boomerang: bool = False

    def __post_init__(self):
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise ValueError(f"formats must be a non-empty subset of {', '.join(FORMATS)} (got {self.formats})")
        if not isinstance(self.gif_max_side, int) or self.gif_max_side < 2:
            raise ValueError(f"gif_max_side must be an integer >= 2 (got {self.gif_max_side!r})")


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
        raise InputError(f"a GIF of {frames} frames of {width}x{height} would need {need / 1e9:.1f} GB of memory "
                         f"(the limit is {GIF_MEMORY_BUDGET / 1e9:.0f} GB); use fewer frames (--steps), a smaller "
                         f"--gif-max-side, or --formats mp4")


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
        raise InputError(f"the frames folder {display_path(folder)} holds other files "
                         f"({display_path(foreign[0])}); it would be replaced as a whole: "
                         f"choose an empty or new folder")


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


def write_video(pairs: list[PairFrames], config: MorphConfig, files: dict, options: OutputOptions,
                outputs: OutputSet, progress: Progress = SILENT,
                alphas_for: Callable[[int, object], list] | None = None) -> int:
    """Render every pair into the writers of ``options.formats``; stage it all in ``outputs``.

    Args:
      pairs: the pairs in video order (all of one size).
      config: the render settings (frames, fps, render mode, scales).
      files: final paths, ``{"mp4": ..., "gif": ..., "frames": folder}`` for the formats.
      options: formats, GIF size, boomerang.
      outputs: the set the files are staged in (the caller publishes it).
      progress: receives the ``render`` phase.
      alphas_for: ``(pair index, renderer) -> alphas`` (default: the original's linear
        schedule of ``config.frames``); the frame count is ``len(alphas)``.

    Returns:
      the number of frames written.

    Raises:
      OutputError: a file cannot be written; nothing is published.
    """
    from ..core.render import FrameRenderer, RenderPrograms, StripBuilder, linear_alphas, maps_image
    from ..io.video import frame_writers

    size = pairs[0].source.shape[:2]
    programs = RenderPrograms(config)
    renderers = {}

    def renderer(p):  # renderers are light once the programs are compiled; keep the current one
        if p not in renderers:
            renderers.clear()
            pair = pairs[p]
            renderers[p] = FrameRenderer(pair.source, pair.target, pair.maps_low(), config, programs=programs)
        return renderers[p]

    schedules = {}

    def alphas(p):
        if p not in schedules:
            schedules[p] = alphas_for(p, renderer(p)) if alphas_for else linear_alphas(config.frames)
        return schedules[p]

    frames = len(alphas(0))
    staged = {fmt: (outputs.stage_folder(files[fmt]) if fmt == "frames" else outputs.stage(files[fmt]))
              for fmt in options.formats}
    total = total_frames(len(pairs), frames, options.boomerang)
    written = 0
    with progress.phase("render", total), \
            frame_writers(options.formats, staged, size, config.fps, options.gif_max_side) as write:
        strip = None
        for p, i in frame_order(len(pairs), frames, options.boomerang):
            backwards = written >= len(pairs) * frames
            if i == 0 and not backwards:
                pair = pairs[p]
                if pair.maps_image is not None:
                    save_image(outputs.stage(pair.maps_image), maps_image(renderer(p).maps))
                strip = StripBuilder(frames, config.size) if pair.strip is not None else None
            in_strip = strip is not None and not backwards and i in strip.columns
            frame = renderer(p).render(i, alphas(p)[i], with_tiles=in_strip)
            if strip is not None and not backwards:
                strip.add(frame)
                if i == frames - 1:
                    save_image(outputs.stage(pairs[p].strip), strip.bgr, bgr=True)
                    strip = None
            write(frame.image)
            written += 1
            progress.update(written)
    return written
