"""The map net: a tiny conv net whose weights parameterise the 16 maps.

Architecture (the original's): the 8-channel net input is resized to 96 x 96
(bilinear, no antialias), then Conv2D(64, 5x5, valid) -> LeakyReLU(0.2) ->
Conv2D(64, 5x5, valid) -> LeakyReLU(0.2) -> Conv2D(16, 5x5, valid), Keras default
initialisers (Glorot uniform kernels, zero biases). Its (1, 84, 84, 16) output is
resized bilinearly to the working size. Only the resulting maps are kept.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .config import MorphConfig
from .maps import MAP_CHANNELS

NET_INPUT_CHANNELS = 8  # grid (2) + source * 0.1 (3) + target * 0.1 (3)
HIDDEN_FILTERS = 64
KERNEL = 5
LEAKY_SLOPE = 0.2


def coordinate_grid(size: int) -> np.ndarray:
    """Normalised pixel coordinates, float32 ``(1, size, size, 2)`` in [-1, 1].

    At row r, column c: channel 0 is the column ``c / (size - 1) * 2 - 1`` and
    channel 1 the row ``r / (size - 1) * 2 - 1`` (the original's ``create_grid``).
    """
    ramp = np.arange(size, dtype=np.float64) / (size - 1) * 2 - 1  # (S,)
    cols = np.broadcast_to(ramp[None, :], (size, size))  # (S, S)
    rows = np.broadcast_to(ramp[:, None], (size, size))  # (S, S)
    return np.stack([cols, rows], axis=-1)[None].astype(np.float32)  # (1, S, S, 2)


def net_input(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The net's input: grid, source * 0.1 and target * 0.1, float32 ``(1, S, S, 8)``.

    Args:
      source, target: float32 ``(1, S, S, 3)`` in [-1, 1].
    """
    grid = coordinate_grid(source.shape[1])  # (1, S, S, 2)
    return np.concatenate([grid, source * 0.1, target * 0.1], axis=-1).astype(np.float32)


class MapNet(keras.Model):
    """Conv net from the resized net input to 16 low-resolution map channels.

    ``call(small)`` takes the net input already resized to ``map_size`` (see
    :func:`shrink_input`): the input is constant during optimisation, so it is
    resized once instead of at every step. Output: float32
    ``(1, map_size - 12, map_size - 12, 16)``.
    """

    def __init__(self, seed: int | None = None):
        super().__init__()

        def conv(filters, offset):
            init_seed = None if seed is None else seed + offset
            return keras.layers.Conv2D(
                filters, KERNEL, padding="valid",
                kernel_initializer=keras.initializers.GlorotUniform(seed=init_seed))

        self.conv1 = conv(HIDDEN_FILTERS, 0)
        self.act1 = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE)
        self.conv2 = conv(HIDDEN_FILTERS, 1)
        self.act2 = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE)
        self.conv_out = conv(MAP_CHANNELS, 2)

    def call(self, small):
        x = self.act1(self.conv1(small))  # (1, m-4, m-4, 64)
        x = self.act2(self.conv2(x))  # (1, m-8, m-8, 64)
        return self.conv_out(x)  # (1, m-12, m-12, 16)


def build_map_net(config: MorphConfig) -> MapNet:
    """A freshly initialised :class:`MapNet` (weights built), seeded by ``config.seed``."""
    net = MapNet(seed=config.seed)
    net(tf.zeros((1, config.map_size, config.map_size, NET_INPUT_CHANNELS)))  # creates the weights
    return net


def shrink_input(maps_input, config: MorphConfig):
    """Resize the ``(1, S, S, 8)`` net input to ``(1, map_size, map_size, 8)`` (bilinear)."""
    return tf.image.resize(maps_input, [config.map_size, config.map_size])


def upsample_maps(low, size: int):
    """Resize the net's ``(1, h, w, 16)`` output to ``(1, size, size, 16)`` (bilinear)."""
    return tf.image.resize(low, [size, size])
