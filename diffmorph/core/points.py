"""The point-pair loss of a guided morph: the flow at the points must carry each source
point onto its target point, in both directions.

Convention (the warp's, ``out[y, x] = img[y - dy, x - dx]``): the A->B warp shows at
pixel ``p`` the source's pixel ``p - flow_AB(p)``. For the source point ``a`` to appear
at the target point ``b``, ``flow_AB(b) = b - a``; likewise ``flow_BA(a) = a - b``. With
N pairs ``(a_i, b_i)`` in working-size pixels and flows in pixels (flow map times
``size * warp_scale``), sampled bilinearly as the warp samples images::

    L_points = point_weight * (256 / S)^2 / N
               * sum_i ( |flow_AB(b_i) - (b_i - a_i)|^2 + |flow_BA(a_i) - (a_i - b_i)|^2 )

The factor ``(256 / S)^2`` makes the weight mean the same at every working size S: the
errors are measured in pixels of a 256 x 256 working image (:data:`REFERENCE_SIZE`), so
a setting tuned at one size (or one level of a coarse-to-fine schedule) holds at another.

Derivation and gradient: ``docs/algorithm.md``, "Point pairs".
"""

from __future__ import annotations

import tensorflow as tf

from ..config import MorphConfig
from .maps import flow_scale_tensor, split_maps

__all__ = ["REFERENCE_SIZE", "working_points", "sample_bilinear", "point_loss", "point_capacity", "padded_points"]

REFERENCE_SIZE = 256  # point errors are weighed as pixels at this working size
MIN_CAPACITY = 8  # point pairs a Trainer holds room for at least (padding rows do not count)


def working_points(normalised, size: int):
    """Point pairs as fractions of their image to working-size pixels.

    Args:
      normalised: float32 ``(N, 4)``: ``(x + 0.5) / W`` and ``(y + 0.5) / H`` of
        ``(source_x, source_y, target_x, target_y)`` in each image's own pixels
        (:func:`diffmorph.io.points.normalise`).
      size: the working size S at this step (both images are S x S).

    Returns:
      float32 ``(N, 4)`` in working-size pixels, origin at the centre of the top-left
      pixel: ``u * S - 0.5``.
    """
    return tf.convert_to_tensor(normalised, tf.float32) * float(size) - 0.5


def sample_bilinear(field, y, x):
    """Bilinear samples of ``field`` at ``(y, x)``, as the warp samples images.

    Args:
      field: float32 ``(H, W, C)``.
      y, x: float32 ``(N,)`` pixel coordinates (row, column). Outside the image the
        border values are used (floor clamped to ``[0, size - 2]``, weight to [0, 1]),
        like :func:`~diffmorph.core.warp.dense_image_warp`.

    Returns:
      float32 ``(N, C)``; differentiable with respect to ``field``.
    """
    height, width = field.shape[0], field.shape[1]
    y0 = tf.clip_by_value(tf.floor(y), 0.0, float(height - 2))
    x0 = tf.clip_by_value(tf.floor(x), 0.0, float(width - 2))
    fy = tf.clip_by_value(y - y0, 0.0, 1.0)[:, None]
    fx = tf.clip_by_value(x - x0, 0.0, 1.0)[:, None]
    iy, ix = tf.cast(y0, tf.int32), tf.cast(x0, tf.int32)

    def tap(dy, dx):
        return tf.gather_nd(field, tf.stack([iy + dy, ix + dx], axis=1))

    top = tap(0, 0) * (1 - fx) + tap(0, 1) * fx
    bottom = tap(1, 0) * (1 - fx) + tap(1, 1) * fx
    return top * (1 - fy) + bottom * fy


def point_capacity(count: int) -> int:
    """Rows a Trainer holds for ``count`` point pairs: the next power of two, at least
    :data:`MIN_CAPACITY`. The compiled loss depends on the rows' shape, so adding a pair
    recompiles it only when the count crosses a power of two (8, 16, 32...).

    Example:
      >>> [point_capacity(n) for n in (1, 8, 9, 100)]
      [8, 8, 16, 128]
    """
    return max(MIN_CAPACITY, 1 << max(count - 1, 0).bit_length())


def padded_points(normalised, capacity: int):
    """``(N, 4)`` point pairs then zero rows: float32 ``(capacity, 4)`` (see :func:`point_loss`'s ``count``)."""
    import numpy as np

    rows = np.asarray(normalised, np.float32).reshape(-1, 4)
    out = np.zeros((capacity, 4), np.float32)
    out[: len(rows)] = rows
    return out


def point_loss(maps, normalised, config: MorphConfig, count=None):
    """``L_points`` (module docstring) for the maps at the working size.

    Args:
      maps: float32 ``(1, S, S, 16)``, S = ``config.size``.
      normalised: float32 ``(N, 4)`` point pairs as fractions of their images, N >= 1.
      config: supplies ``size``, ``warp_scale`` (via ``flow_scale``) and ``point_weight``.
      count: the number of pairs that count (a scalar or variable, >= 1): only the first
        ``count`` rows of ``normalised`` are used, the rest are padding
        (:func:`padded_points`); ``None``: every row. The sum of the rows' errors divided
        by ``count`` is the mean over the pairs, as without padding.

    Returns:
      float32 scalar: ``point_weight`` times the mean squared error in pixels of a
      256-pixel working image (``(256 / S)^2`` times squared working-size pixels).
    """
    points = working_points(normalised, config.size)  # (N, 4): xa, ya, xb, yb
    a = tf.stack([points[:, 1], points[:, 0]], axis=1)  # (N, 2) as (y, x)
    b = tf.stack([points[:, 3], points[:, 2]], axis=1)
    scale = flow_scale_tensor(config.flow_scale())  # (2,) pixels per flow unit, (dy, dx)
    a_to_b, b_to_a = split_maps(maps[0])  # flows (S, S, 2)
    flow_ab = sample_bilinear(a_to_b.flow, b[:, 0], b[:, 1]) * scale  # (N, 2) at the target points
    flow_ba = sample_bilinear(b_to_a.flow, a[:, 0], a[:, 1]) * scale  # (N, 2) at the source points
    error = tf.reduce_sum(tf.square(flow_ab - (b - a)), axis=1) + tf.reduce_sum(tf.square(flow_ba - (a - b)), axis=1)
    if count is None:
        mean = tf.reduce_mean(error)
    else:
        count = tf.cast(count, tf.float32)
        used = tf.range(tf.shape(error)[0], dtype=tf.float32) < count  # (N,) the rows that are pairs
        mean = tf.reduce_sum(tf.where(used, error, tf.zeros_like(error))) / count
    return config.point_weight * (REFERENCE_SIZE / config.size) ** 2 * mean
