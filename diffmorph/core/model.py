"""The map net: a tiny conv net whose weights parameterise the 16 maps.

Architecture (the original's): the 8-channel net input is resized to 96 x 96
(bilinear, no antialias), then Conv2D(64, 5x5, valid) -> LeakyReLU(0.2) ->
Conv2D(64, 5x5, valid) -> LeakyReLU(0.2) -> Conv2D(16, 5x5, valid), Keras default
initialisers (Glorot uniform kernels, zero biases). Its (1, 84, 84, 16) output is
resized bilinearly to the working size. Only the resulting maps are kept.
Specification: ``docs/algorithm.md``, "Net input" and "The net".
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..config import MorphConfig
from .maps import MAP_CHANNELS

NET_INPUT_CHANNELS = 8  # grid (2) + source * 0.1 (3) + target * 0.1 (3)
HIDDEN_FILTERS = 64
KERNEL = 5
LEAKY_SLOPE = 0.2
NET_NAME = "map_net"  # variable paths: map_net/conv1/kernel, map_net/conv1/bias, ...


def coordinate_grid(size: int) -> np.ndarray:
    """Normalised pixel coordinates, float32 ``(1, size, size, 2)`` in [-1, 1].

    At row r, column c: channel 0 is the column ``c / (size - 1) * 2 - 1`` and
    channel 1 the row ``r / (size - 1) * 2 - 1`` (the original's ``create_grid``).
    """
    ramp = np.arange(size, dtype=np.float64) / (size - 1) * 2 - 1  # (S,)
    cols = np.broadcast_to(ramp[None, :], (size, size))  # (S, S)
    rows = np.broadcast_to(ramp[:, None], (size, size))  # (S, S)
    return np.stack([cols, rows], axis=-1)[None].astype(np.float32)  # (1, S, S, 2)


def build_net_input(source: np.ndarray, target: np.ndarray) -> np.ndarray:
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
        super().__init__(name=NET_NAME)  # explicit names: stable variable paths

        def conv(filters, offset, name):
            init_seed = None if seed is None else seed + offset
            return keras.layers.Conv2D(
                filters,
                KERNEL,
                padding="valid",
                name=name,
                kernel_initializer=keras.initializers.GlorotUniform(seed=init_seed),
            )

        self.conv1 = conv(HIDDEN_FILTERS, 0, "conv1")
        self.act1 = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE)
        self.conv2 = conv(HIDDEN_FILTERS, 1, "conv2")
        self.act2 = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE)
        self.conv_out = conv(MAP_CHANNELS, 2, "conv_out")

    def initialise(self, seed: int | None) -> None:
        """Set the weights to a fresh initialisation (as a new net with ``seed`` gets)."""
        for offset, layer in enumerate((self.conv1, self.conv2, self.conv_out)):
            init_seed = None if seed is None else seed + offset
            layer.kernel.assign(keras.initializers.GlorotUniform(seed=init_seed)(layer.kernel.shape))
            layer.bias.assign(tf.zeros_like(layer.bias))

    def call(self, small):
        x = self.act1(self.conv1(small))  # (1, m-4, m-4, 64)
        x = self.act2(self.conv2(x))  # (1, m-8, m-8, 64)
        return self.conv_out(x)  # (1, m-12, m-12, 16)


def build_map_net(config: MorphConfig) -> MapNet:
    """A freshly initialised :class:`MapNet` (weights built), seeded by ``config.seed``."""
    net = MapNet(seed=config.seed)
    net(tf.zeros((1, config.map_size, config.map_size, NET_INPUT_CHANNELS)))  # creates the weights
    return net


def shrink_input(net_input, config: MorphConfig):
    """Resize the ``(1, S, S, 8)`` net input to ``(1, map_size, map_size, 8)`` (bilinear)."""
    return tf.image.resize(net_input, [config.map_size, config.map_size])


def upsample_maps(maps_low, size: int):
    """Resize the net's ``(1, h, w, 16)`` output to ``(1, size, size, 16)`` (bilinear).

    ``tf.image.resize`` (half-pixel centres, no antialias), as the original. This is
    the reference used by the plain path, rendering and maps files;
    :class:`FastUpsampler` computes the same values faster for training.
    """
    return tf.image.resize(maps_low, [size, size])


def bilinear_taps_1d(out_size: int, in_size: int):
    """``tf.image.resize`` bilinear taps along one axis (half-pixel centres).

    Returns ``(lo, hi, frac)``: int32 ``(out_size,)`` lower/upper source indices and
    float32 ``(out_size,)`` weight of ``hi``, so ``out = in[lo] + (in[hi] - in[lo]) * frac``.
    """
    pos = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
    floor = np.floor(pos)
    lo = np.clip(floor, 0, in_size - 1).astype(np.int32)
    hi = np.clip(np.ceil(pos), 0, in_size - 1).astype(np.int32)
    return lo, hi, (pos - floor).astype(np.float32)


class FastUpsampler:
    """Bilinear upsampling of ``(1, n, n, C)`` to ``(1, S, S, C)`` with a sparse gradient.

    Same values as :func:`upsample_maps` (to float rounding, ~1e-6). Rows are
    interpolated by a small dense matmul ``(S x n)``; columns by gathering the two
    taps and blending. The gradient gathers, for each of the ``n`` source columns,
    the (at most K) output columns that read from it and sums them with their
    weights: one pass over the ``S x S`` gradient instead of XLA's resize gradient.
    """

    def __init__(self, in_size: int, size: int):
        lo, hi, frac = bilinear_taps_1d(size, in_size)
        matrix = np.zeros((size, in_size), np.float32)  # (S, n): row interpolation
        np.add.at(matrix, (np.arange(size), lo), 1 - frac)
        np.add.at(matrix, (np.arange(size), hi), frac)
        readers = [dict() for _ in range(in_size)]  # source column -> {output column: weight}
        for x, (a, b, w) in enumerate(zip(lo, hi, frac)):
            readers[a][x] = readers[a].get(x, 0.0) + (1 - w)
            readers[b][x] = readers[b].get(x, 0.0) + w
        k = max(len(r) for r in readers)
        index = np.zeros((in_size, k), np.int32)  # (n, K) output columns; padding reads 0 with weight 0
        weight = np.zeros((in_size, k), np.float32)  # (n, K)
        for j, r in enumerate(readers):
            index[j, : len(r)], weight[j, : len(r)] = list(r.keys()), list(r.values())
        self.size, self.in_size, self.k = size, in_size, k
        self.matrix = tf.constant(matrix)
        self.lo, self.hi = tf.constant(lo), tf.constant(hi)
        self.frac = tf.constant(frac)[None, None, :, None]  # (1, 1, S, 1)
        self.index = tf.constant(index.reshape(-1))  # (n*K,)
        self.weight = tf.constant(weight)

    def forward(self, low):
        """float32 ``(1, n, n, C)`` -> ``(1, S, S, C)`` (no gradient)."""
        rows = tf.einsum("yi,nijc->nyjc", self.matrix, low)  # (1, S, n, C)
        left = tf.gather(rows, self.lo, axis=2)  # (1, S, S, C)
        right = tf.gather(rows, self.hi, axis=2)  # (1, S, S, C)
        return left + (right - left) * self.frac

    def transpose(self, upstream):
        """The vector-Jacobian product: float32 ``(1, S, S, C)`` -> ``(1, n, n, C)``.

        The upsample is linear, so this is its transpose, whatever the input.
        """
        channels = upstream.shape[-1]
        readers = tf.gather(upstream, self.index, axis=2)  # (1, S, n*K, C)
        readers = tf.reshape(readers, [1, self.size, self.in_size, self.k, channels])
        d_rows = tf.einsum("nyjkc,jk->nyjc", readers, self.weight)  # (1, S, n, C)
        return tf.einsum("yi,nyjc->nijc", self.matrix, d_rows)  # (1, n, n, C)

    def __call__(self, low):
        """float32 ``(1, n, n, C)`` -> ``(1, S, S, C)``; differentiable (gradient :meth:`transpose`)."""

        @tf.custom_gradient
        def upsample(low):
            return self.forward(low), self.transpose

        return upsample(low)
