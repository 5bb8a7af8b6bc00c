"""The 16 map channels, named once, and how a set of maps transforms an image.

The net predicts 16 channels ("preds"), two directions of 8::

    channels 0..7   source -> target (A->B)    channels 8..15  target -> source (B->A)
    within each 8:  0:3 mult, 3:6 add, 6:8 flow (dy, dx)

Applying a direction's maps to an image (DiffMorph's formula)::

    colour = I * max(0.1, 1 + mult * m_s) + add * 2 * a_s        (add_first=False)
    colour = (I + add * 2 * a_s) * max(0.1, 1 + mult * m_s)      (add_first=True)
    out    = dense_image_warp(colour, flow * flow_scale)

where ``flow_scale`` is pixels per flow unit (``size * w_s`` at the working size).
Rendering scales every map of a direction by a strength in [0, 1]. Specification:
``docs/algorithm.md``, "Idea".
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from ..config import MorphConfig
from .warp import dense_image_warp

MAP_CHANNELS = 16
DIRECTION_CHANNELS = 8


class Maps(NamedTuple):
    """One direction's maps, each float32 NHWC at the same spatial size.

    mult: ``(N, H, W, 3)`` colour multiplier map, unitless (scaled by m_s).
    add: ``(N, H, W, 3)`` colour offset map, unitless (scaled by 2 * a_s).
    flow: ``(N, H, W, 2)`` (dy, dx) in flow units (pixels = flow * flow_scale).
    """

    mult: tf.Tensor
    add: tf.Tensor
    flow: tf.Tensor

    def scaled(self, strength) -> Maps:
        """Every map multiplied by ``strength`` (a scalar in [0, 1])."""
        return Maps(self.mult * strength, self.add * strength, self.flow * strength)


PARTS = {"mult": slice(0, 3), "add": slice(3, 6), "flow": slice(6, 8)}  # within a direction
FLOW_CHANNELS = [d * DIRECTION_CHANNELS + c for d in (0, 1) for c in range(8)[PARTS["flow"]]]  # 6, 7, 14, 15


def split_direction(maps8) -> Maps:
    """Split 8 channels ``(..., 8)`` into mult ``0:3``, add ``3:6``, flow ``6:8``."""
    return Maps(*(maps8[..., PARTS[name]] for name in Maps._fields))


def split_flows(flows):
    """Split ``(..., 4)``, the 16 channels' :data:`FLOW_CHANNELS`, into (A->B, B->A) flows."""
    return flows[..., 0:2], flows[..., 2:4]


def split_maps(preds) -> tuple[Maps, Maps]:
    """Split the net's 16 channels into the (A->B, B->A) directions.

    Args:
      preds: float32 ``(N, H, W, 16)`` tensor or array.

    Returns:
      ``(a_to_b, b_to_a)``, two :class:`Maps`.
    """
    return (
        split_direction(preds[..., :DIRECTION_CHANNELS]),
        split_direction(preds[..., DIRECTION_CHANNELS:MAP_CHANNELS]),
    )


def colour_transform(image, maps: Maps, config: MorphConfig):
    """The per-pixel colour change of DiffMorph, before the warp.

    Args:
      image: float32 ``(N, H, W, 3)`` in [-1, 1].
      maps: the direction's maps at the image's size.
      config: supplies ``mult_scale``, ``add_scale`` and ``add_first``.

    Returns:
      float32 ``(N, H, W, 3)``, not clipped; ``image`` itself with
      ``config.colour_maps == "off"`` (the maps are not used).
    """
    if config.colour_maps == "off":
        return image
    gain = tf.maximum(config.mult_floor, 1 + maps.mult * config.mult_scale)
    offset = maps.add * 2 * config.add_scale
    if config.add_first:
        return (image + offset) * gain
    return image * gain + offset


def flow_scale_tensor(flow_scale) -> tf.Tensor:
    """``(dy_scale, dx_scale)`` pixels per flow unit as a float32 ``(2,)`` tensor.

    A scale beyond float32 becomes inf (and the loss non-finite, which the optimiser
    reports) without numpy's overflow warning.
    """
    with np.errstate(over="ignore"):
        scale = np.asarray(flow_scale, np.float32)
    return tf.constant(scale)


def flow_pixels(flow, flow_scale):
    """Flow units to pixels: ``flow * (dy_scale, dx_scale)``, shape unchanged."""
    return flow * flow_scale_tensor(flow_scale)


def apply_maps(image, maps: Maps, config: MorphConfig, flow_scale):
    """Colour-transform ``image`` with ``maps`` and warp it by their flow.

    Args:
      image: float32 ``(N, H, W, 3)`` in [-1, 1].
      maps: :class:`Maps` at size ``H x W``.
      config: the morph's settings.
      flow_scale: ``(dy, dx)`` pixels per flow unit, see :meth:`MorphConfig.flow_scale`.

    Returns:
      float32 ``(N, H, W, 3)``, not clipped.
    """
    return dense_image_warp(colour_transform(image, maps, config), flow_pixels(maps.flow, flow_scale))
