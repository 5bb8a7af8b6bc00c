"""Tests of the map channels (``diffmorph.core.maps``), the net (``diffmorph.core.model``) and
the settings (``diffmorph.config``) against the original DiffMorph's definitions."""

from __future__ import annotations

import dataclasses
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from diffmorph import config as config_module  # noqa: E402
from diffmorph.config import MorphConfig  # noqa: E402
from diffmorph.core.maps import Maps, apply_maps, colour_transform, split_direction, split_maps  # noqa: E402
from diffmorph.core.model import build_map_net, build_net_input, coordinate_grid, shrink_input, upsample_maps  # noqa: E402

S = 64


# ----------------------------------------------------------------------------- maps


def test_split_maps_channel_names():
    preds = np.broadcast_to(np.arange(16, dtype=np.float32), (1, 4, 4, 16)).copy()
    a_to_b, b_to_a = split_maps(preds)
    expected = {
        (0, "mult"): [0, 1, 2],
        (0, "add"): [3, 4, 5],
        (0, "flow"): [6, 7],
        (1, "mult"): [8, 9, 10],
        (1, "add"): [11, 12, 13],
        (1, "flow"): [14, 15],
    }
    for (direction, name), channels in expected.items():
        part = np.asarray(getattr((a_to_b, b_to_a)[direction], name))
        assert part.shape == (1, 4, 4, len(channels)), (direction, name)
        np.testing.assert_array_equal(
            part, np.broadcast_to(np.float32(channels), part.shape), err_msg=f"direction {direction} {name}"
        )


def test_split_direction_and_scaled():
    maps8 = np.broadcast_to(np.arange(8, dtype=np.float32) + 1, (1, 2, 3, 8)).copy()
    maps = split_direction(maps8)
    assert isinstance(maps, Maps)
    half = maps.scaled(0.5)
    np.testing.assert_array_equal(np.asarray(half.mult)[0, 0, 0], [0.5, 1.0, 1.5])
    np.testing.assert_array_equal(np.asarray(half.add)[0, 0, 0], [2.0, 2.5, 3.0])
    np.testing.assert_array_equal(np.asarray(half.flow)[0, 0, 0], [3.5, 4.0])


# ----------------------------------------------------------------------------- net input


@pytest.mark.parametrize("size", [2, 5, 64])
def test_coordinate_grid(size):
    grid = coordinate_grid(size)
    assert grid.shape == (1, size, size, 2)
    assert grid.dtype == np.float32
    ramp = np.arange(size) / (size - 1) * 2 - 1
    # channel 0: the normalised column (varies along axis 2 only)
    np.testing.assert_allclose(grid[0, :, :, 0], np.broadcast_to(ramp[None, :], (size, size)), atol=1e-6)
    # channel 1: the normalised row (varies along axis 1 only)
    np.testing.assert_allclose(grid[0, :, :, 1], np.broadcast_to(ramp[:, None], (size, size)), atol=1e-6)
    # corners
    np.testing.assert_array_equal(grid[0, 0, 0], [-1, -1])
    np.testing.assert_array_equal(grid[0, 0, -1], [1, -1])  # top right: column 1, row -1
    np.testing.assert_array_equal(grid[0, -1, 0], [-1, 1])
    np.testing.assert_array_equal(grid[0, -1, -1], [1, 1])


def test_net_input(toy_working):
    a, b = toy_working
    x = build_net_input(a, b)
    assert x.shape == (1, S, S, 8)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x[..., 0:2], coordinate_grid(S))
    np.testing.assert_allclose(x[..., 2:5], a * 0.1, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(x[..., 5:8], b * 0.1, rtol=1e-6, atol=1e-7)
    assert np.abs(x[..., 2:8]).max() <= 0.1 + 1e-7


# ----------------------------------------------------------------------------- net


def _weights(net):
    return [np.asarray(w) for w in net.weights]


@pytest.fixture(scope="module")
def net_seed0():
    return build_map_net(MorphConfig(size=S, seed=0))


def test_net_output_shape(net_seed0, toy_working):
    config = MorphConfig(size=S, seed=0)
    small = shrink_input(tf.constant(build_net_input(*toy_working)), config)
    assert tuple(small.shape) == (1, 96, 96, 8)
    low = net_seed0(small)
    assert tuple(low.shape) == (1, 84, 84, 16)
    assert tuple(upsample_maps(low, S).shape) == (1, S, S, 16)


def test_net_same_seed_same_weights(net_seed0):
    again = build_map_net(MorphConfig(size=S, seed=0))
    first, second = _weights(net_seed0), _weights(again)
    assert len(first) == len(second) == 6
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)


def test_net_different_seed_different_weights(net_seed0):
    other = build_map_net(MorphConfig(size=S, seed=1))
    kernels0 = [w for w in _weights(net_seed0) if w.ndim == 4]
    kernels1 = [w for w in _weights(other) if w.ndim == 4]
    assert len(kernels0) == len(kernels1) == 3
    for x, y in zip(kernels0, kernels1):
        assert not np.array_equal(x, y)


def test_net_structure(net_seed0):
    convs = [layer for layer in net_seed0.layers if isinstance(layer, keras.layers.Conv2D)]
    leaky = [layer for layer in net_seed0.layers if isinstance(layer, keras.layers.LeakyReLU)]
    assert [c.filters for c in convs] == [64, 64, 16]
    assert len(leaky) == 2
    for layer in leaky:
        assert layer.negative_slope == pytest.approx(0.2)
    in_channels = [8, 64, 64]
    for conv, cin in zip(convs, in_channels):
        assert tuple(conv.kernel_size) == (5, 5)
        assert conv.padding == "valid"
        assert tuple(conv.strides) == (1, 1)
        assert conv.use_bias
        assert tuple(conv.kernel.shape) == (5, 5, cin, conv.filters)
        np.testing.assert_array_equal(np.asarray(conv.bias), 0.0)  # zero biases at init
        # Glorot uniform: |w| <= sqrt(6 / (fan_in + fan_out)), and not all zero
        limit = math.sqrt(6 / (25 * cin + 25 * conv.filters))
        kernel = np.asarray(conv.kernel)
        assert np.abs(kernel).max() <= limit + 1e-7
        assert np.abs(kernel).max() > 0.5 * limit
    trainable = sum(int(np.prod(v.shape)) for v in net_seed0.trainable_variables)
    assert trainable == (5 * 5 * 8 * 64 + 64) + (5 * 5 * 64 * 64 + 64) + (5 * 5 * 64 * 16 + 16)


def test_net_computes_conv_leaky_conv_leaky_conv(net_seed0):
    """The forward pass is exactly the documented stack, recomputed with raw TF ops."""
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(0, 0.5, (1, 96, 96, 8)).astype(np.float32))
    # non-zero biases, so that a missing bias would show
    convs = [layer for layer in net_seed0.layers if isinstance(layer, keras.layers.Conv2D)]
    w = [(np.asarray(c.kernel), rng.normal(0, 0.1, c.filters).astype(np.float32)) for c in convs]
    net = build_map_net(MorphConfig(size=S, seed=0))
    net_convs = [layer for layer in net.layers if isinstance(layer, keras.layers.Conv2D)]
    for conv, (_, bias) in zip(net_convs, w):
        conv.bias.assign(bias)
    h = x
    for k, (kernel, bias) in enumerate(w):
        h = tf.nn.conv2d(h, kernel, 1, "VALID") + bias
        if k < 2:
            h = tf.where(h >= 0, h, 0.2 * h)
    np.testing.assert_allclose(np.asarray(net(x)), np.asarray(h), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- colour and apply


def _random_maps(rng, shape, scale=0.7):
    return split_direction(rng.normal(0, scale, shape + (8,)).astype(np.float32))


def test_apply_maps_zero_maps_is_identity():
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (1, 17, 23, 3)).astype(np.float32)
    config = MorphConfig(size=S)
    zero = split_direction(np.zeros((1, 17, 23, 8), np.float32))
    out = np.asarray(apply_maps(image, zero, config, config.flow_scale(17, 23)))
    assert out.shape == image.shape
    # Exact away from the last row/column. There the bilinear weight is clamped to 1
    # (tfa semantics: c0 + 1 * (c1 - c0)), which may differ from c1 by one float ulp.
    np.testing.assert_array_equal(out[:, :-1, :-1], image[:, :-1, :-1])
    np.testing.assert_allclose(out, image, rtol=0, atol=2e-7)
    # and exactly the same pixels once converted to 8 bits
    from diffmorph.core.render import to_uint8

    np.testing.assert_array_equal(to_uint8(out), to_uint8(image))


@pytest.mark.parametrize("add_first", [False, True])
def test_colour_transform_formula(add_first):
    rng = np.random.default_rng(1)
    image = rng.uniform(-1, 1, (1, 6, 7, 3)).astype(np.float32)
    maps = _random_maps(rng, (1, 6, 7))
    config = MorphConfig(size=S, mult_scale=0.3, add_scale=0.25, add_first=add_first)
    mult, add = np.asarray(maps.mult), np.asarray(maps.add)
    gain = np.maximum(np.float32(0.1), 1 + mult * np.float32(0.3))
    offset = add * 2 * np.float32(0.25)
    expected = (image + offset) * gain if add_first else image * gain + offset
    got = np.asarray(colour_transform(image, maps, config))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    other = (image * gain + offset) if add_first else (image + offset) * gain
    assert np.abs(got - other).max() > 1e-2  # the two orders really differ


def test_colour_transform_gain_floor():
    image = np.full((1, 2, 2, 3), 0.5, np.float32)
    maps = Maps(
        mult=np.full((1, 2, 2, 3), -10.0, np.float32),
        add=np.zeros((1, 2, 2, 3), np.float32),
        flow=np.zeros((1, 2, 2, 2), np.float32),
    )
    config = MorphConfig(size=S)  # m_s = 0.4: 1 + (-10) * 0.4 = -3 -> floored to 0.1
    np.testing.assert_allclose(np.asarray(colour_transform(image, maps, config)), 0.05, rtol=1e-6)
    maps = maps._replace(add=np.full((1, 2, 2, 3), 0.5, np.float32))  # offset 0.5 * 2 * 0.4 = 0.4
    np.testing.assert_allclose(np.asarray(colour_transform(image, maps, config)), 0.05 + 0.4, rtol=1e-6)
    first = config.replace(add_first=True)  # (0.5 + 0.4) * 0.1
    np.testing.assert_allclose(np.asarray(colour_transform(image, maps, first)), 0.09, rtol=1e-6)


def test_apply_maps_flow_units_and_direction():
    """A constant flow of 1 unit moves content by flow_scale pixels (dy rows, dx cols)."""
    image = np.zeros((1, 20, 30, 3), np.float32)
    image[0, 5, 7] = 1.0
    config = MorphConfig(size=S, warp_scale=0.1)  # flow_scale(20, 30) = (2, 3) pixels per unit
    flow = np.zeros((1, 20, 30, 2), np.float32)
    flow[..., 0], flow[..., 1] = 1.0, 1.0
    maps = Maps(np.zeros((1, 20, 30, 3), np.float32), np.zeros((1, 20, 30, 3), np.float32), flow)
    out = np.asarray(apply_maps(image, maps, config, config.flow_scale(20, 30)))
    assert out[0, 7, 10, 0] == pytest.approx(1.0)  # moved down 2 rows and right 3 columns
    assert out[0, 5, 7, 0] == pytest.approx(0.0)
    assert out.sum() == pytest.approx(3.0)


# ----------------------------------------------------------------------------- config


def test_config_defaults_are_the_originals():
    c = MorphConfig()
    assert c.size == 1024
    assert c.train_steps == 1000
    assert c.add_scale == 0.4
    assert c.mult_scale == 0.4
    assert c.warp_scale == 0.05
    assert c.frames == 100
    assert c.fps == 45
    assert c.add_first is False
    assert c.learning_rate == 0.0002
    assert c.map_size == 96
    assert config_module.CONSISTENCY_WEIGHT == 1.0
    assert config_module.IMAGE_WEIGHT == 0.3
    assert config_module.MULT_FLOOR == 0.1


@pytest.mark.parametrize(
    "changes, flag",
    [
        ({"size": 15}, "size"),
        ({"size": 8}, "size"),
        ({"size": 2049}, "size"),
        ({"size": 64.0}, "size"),
        ({"train_steps": 0}, "train_steps"),
        ({"train_steps": -3}, "train_steps"),
        ({"train_steps": 10**7}, "train_steps"),
        ({"frames": 1}, "frames"),
        ({"frames": 0}, "frames"),
        ({"frames": 10**9}, "frames"),
        ({"fps": 0}, "fps"),
        ({"fps": -1.0}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"add_scale": float("nan")}, "add_scale"),
        ({"add_scale": -0.1}, "add_scale"),
        ({"mult_scale": float("inf")}, "mult_scale"),
        ({"mult_scale": -1.0}, "mult_scale"),
        ({"warp_scale": float("nan")}, "warp_scale"),
        ({"warp_scale": float("-inf")}, "warp_scale"),
        ({"warp_scale": -0.05}, "warp_scale"),
        ({"add_first": "yes"}, "add_first"),
        ({"seed": -1}, "seed"),
        ({"render": "best"}, "render"),
        ({"learning_rate": 0.0}, "learning_rate"),
    ],
)
def test_config_invalid_values(changes, flag):
    with pytest.raises(ValueError, match=f"^{flag} must"):
        MorphConfig(**changes)
    with pytest.raises(ValueError, match=f"^{flag} must"):
        MorphConfig(size=S).replace(**changes)
    assert [name for name, _ in _unchecked(**changes).problems()] == [flag]  # exactly one problem


def test_config_valid_edge_values():
    c = MorphConfig(size=16, train_steps=1, frames=2, fps=0.5, add_scale=0.0, mult_scale=0.0, warp_scale=0.0)
    assert c.problems() == []


def test_config_is_frozen():
    c = MorphConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.size = 5  # type: ignore[misc]


def test_flow_scale():
    c = MorphConfig(size=64, warp_scale=0.05)
    assert c.flow_scale() == pytest.approx((64 * 0.05, 64 * 0.05))
    assert c.flow_scale(40, 48) == pytest.approx((40 * 0.05, 48 * 0.05))
    c = MorphConfig(size=1024, warp_scale=0.1)
    assert c.flow_scale(300, 200) == pytest.approx((30.0, 20.0))


def _unchecked(**changes):
    """A MorphConfig with ``changes`` applied but not validated (to call problems() on it)."""
    config = MorphConfig(size=S)
    for name, value in changes.items():
        object.__setattr__(config, name, value)
    return config
