"""Rendering: scale the maps by alpha from 0 to 1 and blend the two directions.

A frame at ``alpha`` in [0, 1] (the A->B strength; the original's frame i of n has
``alpha = i / (n - 1)``, see :func:`~diffmorph.core.pacing.linear_alphas`)::

    a2b = clip(apply_maps(A, maps_A->B * alpha), -1, 1)
    b2a = clip(apply_maps(B, maps_B->A * (1 - alpha)), -1, 1)
    frame = a2b * (1 - alpha) + b2a * alpha

so the frame at alpha 0 is exactly A and at alpha 1 exactly B. The renderer takes the
net's low-resolution output (``maps_low``, ``(1, 84, 84, 16)``) and upsamples it once
(:func:`~diffmorph.core.model.upsample_maps`, to the working size S). Two ways to get
output pixels:

* ``native`` (default): the maps are resized (bilinear) to the source's own size
  ``H x W`` and the flow is scaled per axis (dy by ``H * w_s``, dx by ``W * w_s``),
  the same geometry as the working size, without resampling the images. Large
  outputs are processed in horizontal bands so memory stays bounded.
* ``working``: render at ``S x S`` and resize each frame to ``H x W`` with
  ``INTER_AREA`` (the original's path, blurrier when ``H, W > S``... or ``< S``).

With ``geometry="between"`` each half is warped to the frame's in-between geometry
instead (:func:`~diffmorph.core.geometry.frame_flows`: every point of the source at
``(1 - alpha) a + alpha b``, as a classic morph does); the colour maps are scaled as
above. The in-between flows are solved on a grid of at most 128 x 128 and resized like
the maps.

Float images are in [-1, 1]; uint8 conversion rounds to nearest. Specification:
``docs/algorithm.md``, "Rendering" (and "Differences from the original" there).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import cv2
import numpy as np
import tensorflow as tf

from ..config import MorphConfig
from .maps import (
    DIRECTION_CHANNELS,
    FLOW_CHANNELS,
    Maps,
    colour_transform,
    flow_scale_tensor,
    split_direction,
    split_flows,
    split_maps,
)
from .pacing import linear_alphas
from .warp import bicubic_warp_rows, warp_rows

GEOMETRY_GRID = 128  # geometry="between": the in-between flows are solved on at most this grid, then resized
MAPS_BUDGET_BYTES = 128 * 2**20  # native-size maps held at once (bands beyond this)
STRIP_EVERY = 10  # the original's strip takes every 10th frame


def to_uint8(x) -> np.ndarray:
    """Float in [-1, 1] (any shape) to uint8 0..255, clipped and rounded to nearest."""
    return np.rint((np.clip(np.asarray(x, np.float32), -1, 1) + 1) * 127.5).astype(np.uint8)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 ``(H, W, 3)`` to float32 ``(1, H, W, 3)`` in [-1, 1] (``x / 127.5 - 1``)."""
    return (image.astype(np.float32) / 127.5 - 1)[None]


def to_working(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(H, W, 3)`` to the working size: float32 ``(1, S, S, 3)`` in [-1, 1].

    Resized with ``INTER_AREA`` (aspect ratio not kept), as the original does.
    """
    return to_float(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA))


def strip_indices(frames: int) -> list[int]:
    """Frames in ``result.jpg``: every 10th (``(i + 1) % 10 == 0``), or the last if none."""
    picked = [i for i in range(frames) if (i + 1) % STRIP_EVERY == 0]
    return picked or [frames - 1]


def _resize_weights(out_size: int, in_size: int, start: int, stop: int):
    """tf.image.resize bilinear (half-pixel centres) taps for outputs ``start..stop-1``."""
    pos = (np.arange(start, stop) + 0.5) * (in_size / out_size) - 0.5
    floor = np.floor(pos)
    lo = np.clip(floor, 0, in_size - 1).astype(np.int64)
    hi = np.clip(np.ceil(pos), 0, in_size - 1).astype(np.int64)
    return lo, hi, (pos - floor).astype(np.float32)


def resize_maps_rows(maps: np.ndarray, height: int, width: int, row0: int, row1: int) -> np.ndarray:
    """Rows ``row0..row1-1`` of the maps resized bilinearly to ``height x width``.

    Equals ``tf.image.resize(maps, [height, width])[:, row0:row1]`` up to float
    rounding, without building the whole resized array; at most two arrays of the
    band's size are alive at once.

    Args:
      maps: float32 ``(1, S, S, C)`` (any C: callers pass only the channels they need).

    Returns:
      float32 ``(1, row1 - row0, width, C)``.
    """
    lo, hi, ly = _resize_weights(height, maps.shape[1], row0, row1)
    rows = maps[0, lo]  # (h, S, C)
    rows += (maps[0, hi] - rows) * ly[:, None, None]
    lo, hi, lx = _resize_weights(width, maps.shape[2], 0, width)
    out = np.take(rows, lo, axis=1)  # (h, W, C)
    step = np.take(rows, hi, axis=1)  # (h, W, C)
    step -= out
    step *= lx[None, :, None]
    out += step
    return out[None]


class Frame(NamedTuple):
    """One rendered frame, uint8 ``(H, W, 3)`` RGB at the output size, at ``alpha``.

    ``tiles`` is ``(frame, a2b, b2a)`` at the working size ``S x S`` for frames that
    go into the strip (:func:`strip_indices`), else ``None``.
    """

    index: int
    alpha: float
    image: np.ndarray
    tiles: tuple[np.ndarray, np.ndarray, np.ndarray] | None


class FrameRenderer:
    """Renders the morph's frames from final maps, one at a time.

    Args:
      source: uint8 ``(H, W, 3)`` RGB, the source at its own size.
      target: uint8 ``(H, W, 3)`` RGB, the target already resized to the source's size.
      maps_low: float32 ``(1, n, n, 16)``, the net's output (n = 84); upsampled here
        to the working size.
      config: the morph's settings (``render``, scales, ``frames``, ``plain``).
      maps_budget: bytes of native-size maps held at once; larger outputs are
        rendered in horizontal bands whose maps are recomputed for every frame.
      programs: compiled programs to share with other renderers of the same config
        (a sequence renders many pairs with one set); default: its own.

    Raises:
      ValueError: if the shapes disagree.
    """

    def __init__(
        self,
        source: np.ndarray,
        target: np.ndarray,
        maps_low: np.ndarray,
        config: MorphConfig,
        maps_budget: int = MAPS_BUDGET_BYTES,
        programs: RenderPrograms | None = None,
    ):
        from .model import upsample_maps

        if source.shape != target.shape or source.ndim != 3 or source.shape[2] != 3:
            raise ValueError(f"source and target must be equal (H, W, 3); got {source.shape}, {target.shape}")
        if maps_low.ndim != 4 or maps_low.shape[0] != 1 or maps_low.shape[3] != 16:
            raise ValueError(f"maps_low must have shape (1, n, n, 16); got {maps_low.shape}")
        size = config.size
        self.config = config
        self.out_size = source.shape[:2]  # (H, W)
        self.maps_low = np.asarray(maps_low, np.float32)  # (1, n, n, 16)
        self.maps = upsample_maps(self.maps_low, size).numpy()  # (1, S, S, 16)
        if config.render == "native":
            self._inputs = (source, target)  # uint8 (H, W, 3): turned into floats band by band
            height, width = self.out_size
        else:
            self._inputs = (to_working(source, size), to_working(target, size))  # float32 (1, S, S, 3)
            height = width = size
        self.work_size = (height, width)
        rows_per_band = max(1, maps_budget // (width * 16 * 4))
        self.bounds = [(r, min(height, r + rows_per_band)) for r in range(0, height, rows_per_band)]
        self.flow_scale = config.flow_scale(height, width)
        self._flow_scale = flow_scale_tensor(self.flow_scale)  # (2,) float32
        # one band (the usual case): the maps at the output size are made once and kept
        self._whole = self._band(0, height) if len(self.bounds) == 1 else None
        self._whole_flows = None if self._whole is None else tf.gather(self._whole, FLOW_CHANNELS, axis=-1)
        self._colour_buffer = None  # (1, H, W, 3) variable for banded renders, made on first use
        self.programs = programs if programs is not None else RenderPrograms(config)
        self.between = config.geometry == "between"  # "auto" is resolved by the pipeline; here it is "scaled"
        if self.between:  # both flows at the geometry grid, in its pixels (float64)
            from .geometry import flows_pixels

            self.grid = min(size, GEOMETRY_GRID)
            self._flows_px = flows_pixels(self.maps_low, self.grid, config.warp_scale)
            self._fraction_scale = flow_scale_tensor((height, width))  # fractions of the image to output pixels

    def _band(self, row0: int, row1: int, channels=slice(None)) -> tf.Tensor:
        """The maps' ``channels`` for output rows ``row0..row1-1`` at the output width.

        Returns float32 ``(1, h, W, c)``: a slice at the working size, or a band of
        the maps resized to the output size (native).
        """
        picked = self.maps[..., channels]  # (1, S, S, c)
        if self.config.render == "working":
            return tf.constant(picked[:, row0:row1])
        height, width = self.work_size
        return tf.constant(resize_maps_rows(picked, height, width, row0, row1))  # (1, h, W, c)

    def _image_band(self, which: int, row0: int, row1: int) -> np.ndarray:
        """Rows of the source (0) or target (1) as float32 ``(1, h, W, 3)`` in [-1, 1]."""
        image = self._inputs[which]
        return to_float(image[row0:row1]) if self.config.render == "native" else image[:, row0:row1]

    def _colour_image(self, which: int, strength):
        """The colour-transformed source (0) or target (1) at ``strength``: ``(1, H, W, 3)``.

        Banded renders fill one preallocated variable band by band, so a frame holds
        one full-size float image per direction at a time, never the inputs as floats.
        """
        if self._whole is not None:
            return self.programs.colour(
                self._image_band(which, 0, self.work_size[0]), split_maps(self._whole)[which], strength
            )
        if self._colour_buffer is None:
            self._colour_buffer = tf.Variable(tf.zeros((1, *self.work_size, 3)), trainable=False)
        channels = slice(which * DIRECTION_CHANNELS, (which + 1) * DIRECTION_CHANNELS)
        for row0, row1 in self.bounds:
            maps = split_direction(self._band(row0, row1, channels))
            self._colour_buffer[:, row0:row1].assign(
                self.programs.colour(self._image_band(which, row0, row1), maps, strength)
            )
        return self._colour_buffer

    def render(self, index: int, alpha: float, with_tiles: bool = False) -> Frame:
        """The frame at ``alpha`` in [0, 1] (A->B strength ``alpha``, B->A ``1 - alpha``).

        ``index`` only labels the frame (and places it in the strip). The two
        directions are rendered one after the other into one float accumulator, band
        by band: ``blend = a2b * (1 - alpha)``, then ``blend += b2a * alpha``.
        """
        height, width = self.work_size
        blend = np.empty((height, width, 3), np.float32)
        warped = [np.empty((height, width, 3), np.uint8) for _ in range(2)] if with_tiles else None
        between = self._between_flows(alpha) if self.between else None
        for which, (strength, weight) in enumerate(((alpha, 1 - alpha), (1 - alpha, alpha))):
            strength32 = tf.constant(strength, tf.float32)
            colour = self.programs.warp_input(self._colour_image(which, strength32))
            flow_channels = FLOW_CHANNELS[2 * which : 2 * which + 2]
            for row0, row1 in self.bounds:
                if between is not None:  # this frame's in-between flow (fractions), at strength 1
                    flow = tf.constant(resize_maps_rows(between[which], height, width, row0, row1))
                    out = self.programs.warp(colour, flow, tf.constant(1.0), self._fraction_scale, row0)
                    out = np.asarray(out)[0]  # (h, W, 3)
                    self._accumulate(which, out, weight, blend, warped, row0, row1)
                    continue
                if self._whole is not None:
                    flow = split_flows(self._whole_flows)[which]  # (1, H, W, 2)
                else:
                    flow = self._band(row0, row1, flow_channels)  # (1, h, W, 2)
                out = np.asarray(self.programs.warp(colour, flow, strength32, self._flow_scale, row0))[0]  # (h, W, 3)
                self._accumulate(which, out, weight, blend, warped, row0, row1)
            del colour
        frame = np.empty((height, width, 3), np.uint8)
        for row0, row1 in self.bounds:
            frame[row0:row1] = to_uint8(blend[row0:row1])
        del blend
        tiles = None
        if self.config.render == "working":
            if with_tiles:
                tiles = (frame, *warped)
            if frame.shape[:2] != self.out_size:
                frame = cv2.resize(frame, (self.out_size[1], self.out_size[0]), interpolation=cv2.INTER_AREA)
        elif with_tiles:
            size = (self.config.size, self.config.size)
            tiles = tuple(cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (frame, *warped))
        return Frame(index, alpha, frame, tiles)

    def _between_flows(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """The frame's in-between backward flows (``geometry="between"``) as fractions of the
        image, float32 ``(1, G, G, 2)`` per half (:func:`~diffmorph.core.geometry.frame_flows`)."""
        from .geometry import frame_flows

        halves = frame_flows(*self._flows_px, alpha, "between")
        return tuple((g / self.grid).astype(np.float32)[None] for g in halves)

    @staticmethod
    def _accumulate(which, out, weight, blend, warped, row0, row1) -> None:
        if which == 0:
            np.multiply(out, weight, out=blend[row0:row1], dtype=np.float32)
        else:
            blend[row0:row1] += out * np.float32(weight)
        if warped is not None:
            warped[which][row0:row1] = to_uint8(out)

    def frames(self, alphas=None) -> Iterator[Frame]:
        """The frames at ``alphas`` (default :func:`~diffmorph.core.pacing.linear_alphas` of ``config.frames``),
        in order; strip frames (:func:`strip_indices`) carry their tiles."""
        alphas = linear_alphas(self.config.frames) if alphas is None else alphas
        picked = set(strip_indices(len(alphas)))
        for i, alpha in enumerate(alphas):
            yield self.render(i, alpha, with_tiles=i in picked)


class RenderPrograms:
    """The compiled programs of :class:`FrameRenderer`, shareable between renderers.

    Everything that changes between frames or pairs (images, maps, strength, flow
    scale) is an argument, so renderers of the same config and output size reuse one
    trace and one compilation (``row0``, a Python int, traces once per band).
    """

    def __init__(self, config: MorphConfig):
        self.config = config
        self.colour = tf.function(self._colour_fn, jit_compile=not config.plain)
        if config.render_kernel == "bicubic":
            # OpenCV reads host arrays: the colour image is copied out of TensorFlow once per
            # direction and frame (not once per band), then every band samples that copy
            self.warp_input = lambda colour: np.asarray(colour, np.float32)
            self.warp = bicubic_warp_rows
        else:
            self.warp_input = lambda colour: colour
            self.warp = tf.function(self._warp_fn, jit_compile=not config.plain)

    def _colour_fn(self, image, maps: Maps, strength):
        return colour_transform(image, maps.scaled(strength), self.config)

    @staticmethod
    def _warp_fn(colour, flow, strength, flow_scale, row0):
        return tf.clip_by_value(warp_rows(colour, flow * strength * flow_scale, row0), -1.0, 1.0)


class SnapshotRenderer:
    """Both directions at full strength at the working size: the training snapshots.

    The net's low-resolution output is upsampled by :func:`~diffmorph.core.model.upsample_maps`
    as a plain TensorFlow op, then one compiled program makes the two uint8 images
    (colour transform, warp, clip, round), so a snapshot needs no full-size maps in
    host memory. The upsample stays outside XLA: XLA lowers ``tf.image.resize`` to a
    gather of ``(S, S, 9, 16)`` floats (604 MB scratch at S = 1024).

    Args:
      source, target: float32 ``(1, S, S, 3)`` in [-1, 1]: arrays, or variables (a
        :class:`~diffmorph.core.optimise.Trainer`'s ``source`` and ``target``) whose
        current values each snapshot reads, so one renderer serves every pair.
      config: the morph's settings.
    """

    def __init__(self, source, target, config: MorphConfig):
        self.source = source if isinstance(source, tf.Variable) else tf.constant(source, tf.float32)
        self.target = target if isinstance(target, tf.Variable) else tf.constant(target, tf.float32)
        self.config = config
        self._render = tf.function(self._render_fn, jit_compile=not config.plain)

    def _render_fn(self, maps):
        from .maps import apply_maps

        a_to_b, b_to_a = split_maps(maps)  # (1, S, S, 8) each
        fs = self.config.flow_scale()

        def as_uint8(x):  # [-1, 1] -> 0..255, clipped, rounded half to even like np.rint
            return tf.cast(tf.round((tf.clip_by_value(x[0], -1.0, 1.0) + 1) * 127.5), tf.uint8)

        return (
            as_uint8(apply_maps(self.source, a_to_b, self.config, fs)),
            as_uint8(apply_maps(self.target, b_to_a, self.config, fs)),
        )

    def __call__(self, maps_low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(a_to_b, b_to_a)``, uint8 ``(S, S, 3)`` each, from float32 ``(1, n, n, 16)`` net output."""
        from .model import upsample_maps

        maps = upsample_maps(tf.constant(maps_low, tf.float32), self.config.size)  # (1, S, S, 16)
        a_to_b, b_to_a = self._render(maps)
        return a_to_b.numpy(), b_to_a.numpy()


class StripBuilder:
    """Builds ``result.jpg``: rows frame / a2b / b2a, one ``S x S`` tile per strip frame.

    The strip is kept in BGR order (``bgr``, what the JPEG encoder takes: at S = 1024
    it is 94 MB, so saving it needs no converted copy); ``image`` is an RGB view.
    """

    def __init__(self, frames: int, size: int, first: int = 0):
        """``frames``: the morph's own frames (:func:`strip_indices` of them are shown); ``first``: the
        index of the morph's first frame in the frames added (``hold``: the held copies before it
        are not shown)."""
        self.columns = {first + i: c for c, i in enumerate(strip_indices(frames))}
        self.size = size
        self.bgr = np.zeros((3 * size, len(self.columns) * size, 3), np.uint8)  # (3S, kS, 3)

    @property
    def image(self) -> np.ndarray:
        """The strip as uint8 ``(3S, kS, 3)`` RGB (a view)."""
        return self.bgr[..., ::-1]

    def add(self, frame: Frame) -> None:
        """Place a frame's tiles if it is a strip frame."""
        if frame.tiles is None or frame.index not in self.columns:
            return
        c, s = self.columns[frame.index], self.size
        for row, tile in enumerate(frame.tiles):
            self.bgr[row * s : (row + 1) * s, c * s : (c + 1) * s] = tile[..., ::-1]


def maps_image(maps: np.ndarray) -> np.ndarray:
    """``maps.jpg``: 2 x 3 tiles of ``S x S``, uint8 ``(2S, 3S, 3)`` RGB.

    Row 0 is A->B, row 1 B->A; columns mult (RGB), add (RGB), flow (dy in R, dx in
    G, B = 0, shown as 127); values clipped to [-1, 1] and mapped to 0..255 with the
    original's truncation. Built tile by tile (no full-size float copy).
    """
    size = maps.shape[1]
    out = np.full((2 * size, 3 * size, 3), to_uint8_truncated(np.zeros(1, np.float32))[0], np.uint8)
    for row in range(2):
        direction = split_direction(maps[0, ..., row * DIRECTION_CHANNELS : (row + 1) * DIRECTION_CHANNELS])
        for col, part in enumerate(direction):
            tile = out[row * size : (row + 1) * size, col * size : (col + 1) * size]
            tile[..., : part.shape[-1]] = to_uint8_truncated(part)
    return out


def to_uint8_truncated(x: np.ndarray) -> np.ndarray:
    """The original's conversion for ``maps.jpg``: clip to [-1, 1], ``(x + 1) * 127.5``, floor."""
    scaled = np.clip(x, -1, 1).astype(np.float32, copy=False)  # one float buffer, updated in place
    scaled += 1
    scaled *= 127.5
    return scaled.astype(np.uint8)
