"""Rendering as a stream: a morph's frames, one at a time, in video order.

:class:`FrameStream` renders the frames of one or more pairs (a morph: one pair; a
sequence: pair after pair) and yields each as a :class:`StreamFrame`; what is done
with them is up to its consumers (sinks). The output files of :func:`diffmorph.morph`
are such sinks (:func:`diffmorph.app.write.write_video`: MP4, GIF and PNG writers,
the strip ``result.jpg``, the maps image ``maps.jpg``, the report's measurement), and
so are :func:`diffmorph.render_frames` and :func:`stream_frames` (previews: a web
app, a notebook). For each pair the stream:

* schedules the alphas (:class:`Schedules`: the config's pacing, ease and hold; the
  original's ``config.frames`` even alphas by default);
* renders each frame once at the source's size (:class:`~diffmorph.core.render.FrameRenderer`;
  a hold's repeated frame is rendered once and yielded again);
* moves its colours onto the W2 geodesic between the pair's end images when
  ``config.colour_path`` is ``"bures"``;
* with ``boomerang``, plays every pair's frames forward, then backward without
  repeating the turning frames (re-rendered, so memory stays bounded).

Memory: one frame (and the pair's renderer) at a time, whatever the number of frames.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..config import MorphConfig
from ..errors import InputError
from .progress import SILENT, Progress

PACE_SIDE = 256  # the dense pass of uniform pacing renders at most this long side (pixels)


def check_alphas(alphas) -> list[float]:
    """``alphas`` as a list of floats, each a finite number in [0, 1].

    Raises:
      InputError: not a sequence of numbers, empty, or a value outside [0, 1] or NaN.
    """
    if isinstance(alphas, (str, bytes)) or not hasattr(alphas, "__iter__"):
        raise InputError(
            f"alphas must be a sequence of numbers in [0, 1] (got {type(alphas).__name__})", setting="alphas"
        )
    out = []
    for i, alpha in enumerate(alphas):
        if isinstance(alpha, np.ndarray) and alpha.ndim == 0:
            alpha = alpha.item()
        if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not math.isfinite(alpha):
            raise InputError(f"alphas[{i}] must be a finite number in [0, 1] (got {alpha!r})")
        if not 0 <= alpha <= 1:
            raise InputError(f"alphas[{i}] must be in [0, 1] (got {alpha!r}); frames only blend between the images")
        out.append(float(alpha))
    if not out:
        raise InputError("alphas must hold at least one value")
    return out


class StreamFrame(NamedTuple):
    """One frame of a stream.

    pair: the pair's index in video order (0 for a single morph).
    index: the frame's index within its pair, ``0 .. frames - 1`` (0 is the source).
    alpha: the A->B strength of the frame, in [0, 1] (0: the source, 1: the target).
    image: uint8 ``(H, W, 3)`` RGB at the source's size, 0..255 (colour path applied).
    forward: False for the frames of a boomerang's way back.
    tiles: ``(frame, a2b, b2a)``, uint8 ``(S, S, 3)`` RGB at the working size, for the
      strip's frames when the stream was asked for them, else None.
    """

    pair: int
    index: int
    alpha: float
    image: np.ndarray
    forward: bool = True
    tiles: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


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


# Render programs kept for the next renders in this process (each FrameStream used to trace
# and compile its own): render key -> RenderPrograms, least recently used first. A
# tf.function may be called from several threads at once, so entries are shared, not taken.
RENDER_PROGRAMS_KEPT = 4
_RENDER_PROGRAMS: dict = {}
_RENDER_LOCK = threading.Lock()
RENDER_SETTINGS = ("add_scale", "mult_scale", "add_first", "mult_floor", "render_kernel", "plain")


def render_key(config: MorphConfig) -> tuple:
    """The settings :class:`~diffmorph.core.render.RenderPrograms` are traced with (the colour
    transform's scales, floor and order; the kernel; the plain path): the rest (frames, alphas,
    sizes, maps) are arguments of the programs."""
    return tuple(getattr(config, name) for name in RENDER_SETTINGS)


def render_programs(config: MorphConfig):
    """The process's :class:`~diffmorph.core.render.RenderPrograms` for ``config``'s render
    settings (:func:`render_key`), made on first use: a later render of the same settings,
    at any output size already seen, neither traces nor compiles again. Same values."""
    from ..core.render import RenderPrograms

    key = render_key(config)
    with _RENDER_LOCK:
        programs = _RENDER_PROGRAMS.pop(key, None)
        if programs is None:
            programs = RenderPrograms(config)
        _RENDER_PROGRAMS[key] = programs  # the most recently used last
        while len(_RENDER_PROGRAMS) > RENDER_PROGRAMS_KEPT:
            del _RENDER_PROGRAMS[next(iter(_RENDER_PROGRAMS))]
    return programs


def clear_render_programs() -> None:
    """Free the kept render programs (:func:`render_programs`)."""
    with _RENDER_LOCK:
        _RENDER_PROGRAMS.clear()


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

        from ..core.render import FrameRenderer

        height, width = pair.source.shape[:2]
        scale = PACE_SIDE / max(height, width)
        if scale >= 1:
            return renderer
        size = (max(2, round(width * scale)), max(2, round(height * scale)))
        small = [cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (pair.source, pair.target)]
        if self._programs is None:
            self._programs = render_programs(self.config)
        return FrameRenderer(*small, renderer.maps_low, self.config, programs=self._programs)


def colour_path_of(pair: PairFrames, config: MorphConfig):
    """The pair's :class:`~diffmorph.core.colour.ColourPath` when ``config.colour_path`` asks for one."""
    if config.colour_path == "none":
        return None
    from ..core.colour import ColourPath

    return ColourPath(pair.source, pair.target)


def on_colour_path(image: np.ndarray, alpha: float, colour_path) -> np.ndarray:
    """``image`` with its colours on the geodesic at ``alpha`` (unchanged without a colour path)."""
    return image if colour_path is None else colour_path.apply(image, alpha)


class FrameStream:
    """The frames of ``pairs`` in video order, rendered one at a time (iterate over it).

    Args:
      pairs: the pairs in video order (all of one size).
      config: the render settings (frames, render mode and kernel, scales, pacing,
        ease, hold, colour path).
      boomerang: after the frames, all of them again backwards without repeating the
        turning frames (:func:`frame_order`).
      alphas: the alphas of every pair (default: each pair's :class:`Schedules`).
      tiles: indices of the pairs whose strip frames (:attr:`strip_frames`)
        carry their tiles on the way forward (for ``result.jpg``).
      progress: asked once per frame whether the caller cancelled (``progress.check_cancelled()``).

    Attributes (valid once the current pair is set up, e.g. on a frame of it):
      renderer: the current pair's :class:`~diffmorph.core.render.FrameRenderer`
        (``renderer.maps``: its maps at the working size, float32 ``(1, S, S, 16)``).
    """

    def __init__(
        self,
        pairs: list[PairFrames],
        config: MorphConfig,
        *,
        boomerang: bool = False,
        alphas=None,
        tiles=(),
        progress: Progress = SILENT,
    ):
        self.pairs = pairs
        self.config = config
        self.boomerang = boomerang
        self.progress = progress
        self.tile_pairs = set(tiles)
        self._alphas = None if alphas is None else [float(a) for a in alphas]
        self._programs = render_programs(config)
        self._schedules = Schedules(config)
        self._current = None  # (pair index, renderer, alphas, colour path)

    def _pair(self, p: int):
        if self._current is None or self._current[0] != p:
            from ..core.render import FrameRenderer

            pair = self.pairs[p]
            self._current = None  # the previous pair's renderer goes before the next one is made
            renderer = FrameRenderer(pair.source, pair.target, pair.maps_low(), self.config, programs=self._programs)
            alphas = self._alphas if self._alphas is not None else self._schedules.alphas(pair, renderer)
            self._current = (p, renderer, alphas, colour_path_of(pair, self.config))
        return self._current

    @property
    def renderer(self):
        """The current pair's renderer (the first pair's before any frame)."""
        return self._pair(0 if self._current is None else self._current[0])[1]

    @property
    def frames(self) -> int:
        """Frames per pair (the length of a pair's schedule: ``config.frames`` plus holds)."""
        return len(self._pair(0 if self._current is None else self._current[0])[2])

    @property
    def strip_frames(self) -> list[int]:
        """The indices (within a pair's frames) of the frames shown in its strip ``result.jpg``:
        :func:`~diffmorph.core.render.strip_indices` of the morph's own ``config.frames``, after
        the ``hold`` copies of the source (held frames repeat the ends: the strip never shows them).
        With ``alphas`` given: those of all the frames."""
        from ..core.render import strip_indices

        first, count = self.strip_span
        return [first + i for i in strip_indices(count)]

    @property
    def strip_span(self) -> tuple[int, int]:
        """``(first, count)``: the morph's own frames within a pair's frames (after ``hold`` held
        copies of the source; with ``alphas`` given, all of them)."""
        if self._alphas is not None:
            return 0, self.frames
        return self.config.hold, self.config.frames

    @property
    def total(self) -> int:
        """Frames the stream yields: :func:`total_frames`."""
        return total_frames(len(self.pairs), self.frames, self.boomerang)

    def __iter__(self) -> Iterator[StreamFrame]:
        frames = self.frames
        strip_columns = set(self.strip_frames)
        forward_frames = len(self.pairs) * frames
        last = (None, None)  # ((pair, alpha), image) of the frame yielded last
        for count, (p, i) in enumerate(frame_order(len(self.pairs), frames, self.boomerang)):
            self.progress.check_cancelled()  # Cancelled if the caller asked to stop
            _, renderer, alphas, colour = self._pair(p)
            forward = count < forward_frames
            alpha = alphas[i]
            with_tiles = forward and p in self.tile_pairs and i in strip_columns
            tiles = None
            if last[0] == (p, alpha) and not with_tiles:  # a hold repeats a frame: render it once
                image = last[1]
            else:
                frame = renderer.render(i, alpha, with_tiles=with_tiles)
                image = on_colour_path(frame.image, alpha, colour)
                if with_tiles:
                    tiles = (on_colour_path(frame.tiles[0], alpha, colour), *frame.tiles[1:])
                last = ((p, alpha), image)
            yield StreamFrame(p, i, float(alpha), image, forward, tiles)


def stream_frames(
    maps,
    source,
    target,
    config: MorphConfig | None = None,
    *,
    alphas=None,
    explicit=None,
    force: bool = False,
    progress: Progress = SILENT,
) -> Iterator[StreamFrame]:
    """The frames of a morph from saved maps, as a stream with their place and alpha (nothing is written).

    The frames are those :func:`diffmorph.morph` writes for the same maps and settings
    (the same pixels), one at a time: a web app or a notebook can show them as they
    come (previews) and stop at any time.

    Args:
      maps: a maps file (``morph/maps.npz``; its maps settings are used unless
        ``config`` is given, see ``explicit``) or the net's output, float32 ``(1, n, n, 16)``.
      source, target: image files or uint8 ``(H, W, 3)`` RGB arrays (the target is
        resized to the source's size).
      config: render settings (frames, render mode and kernel, scales, pacing, ease,
        hold, colour path; default the file's maps settings and the original's others).
      alphas: the A->B strength of each frame in [0, 1] (default: the config's schedule).
      explicit: the names of the settings of ``config`` set on purpose; with a maps
        file its maps settings replace ``config``'s others
        (:func:`diffmorph.app.saved_maps.settings_for_maps`).
      force: use maps made for other images or settings.
      progress: receives notices (a resized target); ``progress.cancel()`` (any thread)
        stops the stream before its next frame.

    Returns:
      an iterator of :class:`StreamFrame` ``(pair=0, index, alpha, image)``: ``image`` uint8
      ``(H, W, 3)`` RGB at the source's size; the frame at alpha 0 is the source, at
      alpha 1 the target.

    Raises:
      InputError: unusable inputs or maps, an alpha outside [0, 1] or NaN (raised by this
        call, before any frame is rendered).
      Cancelled: ``progress.cancel()`` was called.

    Example:
      >>> import numpy as np, diffmorph
      >>> a = np.zeros((8, 8, 3), np.uint8); b = np.full((8, 8, 3), 255, np.uint8)
      >>> still = np.zeros((1, 6, 6, 16), np.float32)  # maps that move nothing
      >>> config = diffmorph.MorphConfig(size=16, frames=3)
      >>> [(f.index, f.alpha, f.image.shape) for f in diffmorph.stream_frames(still, a, b, config)]
      [(0, 0.0, (8, 8, 3)), (1, 0.5, (8, 8, 3)), (2, 1.0, (8, 8, 3))]
    """
    from .inputs import check_types, load_pair
    from .runtime import import_tensorflow_quietly
    from .saved_maps import resolve_maps

    check_types(force=(force, bool))
    if alphas is not None:
        alphas = check_alphas(alphas)
    pair = load_pair(source, target, progress)
    maps_low, config, _ = resolve_maps(maps, pair, config, force, explicit, progress)
    import_tensorflow_quietly()
    return iter(FrameStream([PairFrames(pair.source, pair.target, maps_low)], config, alphas=alphas, progress=progress))
