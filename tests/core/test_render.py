"""Tests of rendering (``diffmorph.core.render``): alphas, strip, frames, bands, maps image."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from diffmorph.config import MorphConfig  # noqa: E402
from diffmorph.core.pacing import linear_alphas  # noqa: E402
from diffmorph.core.render import (  # noqa: E402
    Frame,
    FrameRenderer,
    SnapshotRenderer,
    StripBuilder,
    maps_image,
    resize_maps_rows,
    strip_indices,
    to_float,
    to_uint8,
    to_working,
)

S = 64
OUT_W, OUT_H = 48, 40  # a non-square output size
STEPS = 5


# ----------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("frames", [2, 3, 12, 100])
def test_linear_alphas(frames):
    alphas = linear_alphas(frames)
    assert len(alphas) == frames
    assert alphas[0] == 0.0 and alphas[-1] == 1.0
    for i, alpha in enumerate(alphas):
        assert alpha == i / (frames - 1)
    assert alphas == sorted(alphas)


@pytest.mark.parametrize("frames", [1, 0, -4])
def test_linear_alphas_refuses_fewer_than_two(frames):
    with pytest.raises(ValueError, match="frames must be >= 2"):
        linear_alphas(frames)


@pytest.mark.parametrize(
    "steps, expected",
    [
        (100, list(range(9, 100, 10))),
        (12, [9]),
        (5, [4]),
        (2, [1]),
        (10, [9]),
        (25, [9, 19]),
    ],
)
def test_strip_indices(steps, expected):
    assert strip_indices(steps) == expected


# ----------------------------------------------------------------------------- conversions


def test_uint8_float_round_trip():
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    x = to_float(pixels)
    assert x.shape == (1, 16, 16, 3) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_array_equal(to_uint8(x[0]), pixels)
    assert to_uint8(np.float32([-5, 5]))[0] == 0 and to_uint8(np.float32([-5, 5]))[1] == 255


def test_to_working():
    image = np.zeros((30, 40, 3), np.uint8)
    image[:, :20] = 255
    w = to_working(image, S)
    assert w.shape == (1, S, S, 3) and w.dtype == np.float32
    expected = cv2.resize(image, (S, S), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(w[0], expected, atol=1e-6)


# ----------------------------------------------------------------------------- renderer


@pytest.fixture(scope="module")
def small_pair(toy_pair):
    """The toy pair resized to OUT_W x OUT_H, uint8 (40, 48, 3)."""
    return tuple(cv2.resize(x, (OUT_W, OUT_H), interpolation=cv2.INTER_AREA) for x in toy_pair)


@pytest.fixture(scope="module")
def random_maps_low():
    """Smallish random low-resolution maps (the net's output shape at a small size)."""
    rng = np.random.default_rng(0)
    return rng.normal(0, 0.4, (1, 12, 12, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def random_maps(random_maps_low):
    """The same maps at the working size (what the renderer upsamples them to)."""
    return tf.image.resize(random_maps_low, [S, S]).numpy()


@pytest.fixture(scope="module")
def native_frames(small_pair, random_maps_low):
    config = MorphConfig(size=S, frames=STEPS, render="native")
    renderer = FrameRenderer(*small_pair, random_maps_low, config)
    return renderer, list(renderer.frames())


def test_native_frames_start_and_end_exactly(native_frames, small_pair):
    _, frames = native_frames
    a, b = small_pair
    assert [f.index for f in frames] == list(range(STEPS))
    for f in frames:
        assert isinstance(f, Frame)
        assert f.image.shape == a.shape == (OUT_H, OUT_W, 3)
        assert f.image.dtype == np.uint8
    np.testing.assert_array_equal(frames[0].image, a)
    np.testing.assert_array_equal(frames[-1].image, b)
    # the frames in between are neither endpoint, and move from A towards B
    diffs_a = [np.abs(f.image.astype(int) - a).mean() for f in frames]
    diffs_b = [np.abs(f.image.astype(int) - b).mean() for f in frames]
    assert all(d > 1 for d in diffs_a[1:]) and all(d > 1 for d in diffs_b[:-1])
    assert diffs_a[1] < diffs_a[-1] and diffs_b[-2] < diffs_b[0]


def test_native_frames_tiles(native_frames):
    _, frames = native_frames
    picked = set(strip_indices(STEPS))
    for f in frames:
        if f.index in picked:
            assert f.tiles is not None and len(f.tiles) == 3
            for tile in f.tiles:
                assert tile.shape == (S, S, 3) and tile.dtype == np.uint8
        else:
            assert f.tiles is None
    last = frames[-1]  # strength 1: the blend is B, and the b2a tile is B
    np.testing.assert_array_equal(last.tiles[0], last.tiles[2])


def test_native_render_matches_formula(native_frames, small_pair, random_maps):
    """A middle frame recomputed from the documented formula at the native size."""
    from diffmorph.core.maps import apply_maps, split_maps

    renderer, frames = native_frames
    a, b = small_pair
    config = renderer.config
    maps = tf.image.resize(random_maps, [OUT_H, OUT_W])
    a_to_b, b_to_a = split_maps(maps)
    fs = config.flow_scale(OUT_H, OUT_W)
    i = 2
    s = i / (STEPS - 1)
    t = 1 - s
    assert frames[i].alpha == s
    a2b = np.clip(apply_maps(to_float(a), a_to_b.scaled(s), config, fs).numpy()[0], -1, 1)
    b2a = np.clip(apply_maps(to_float(b), b_to_a.scaled(t), config, fs).numpy()[0], -1, 1)
    expected = to_uint8(a2b * t + b2a * s)
    diff = np.abs(frames[i].image.astype(int) - expected)
    assert diff.max() <= 1


def test_working_frames(small_pair, random_maps_low):
    a, b = small_pair
    config = MorphConfig(size=S, frames=STEPS, render="working")
    renderer = FrameRenderer(a, b, random_maps_low, config)
    frames = list(renderer.frames())
    assert len(frames) == STEPS
    for f in frames:
        assert f.image.shape == (OUT_H, OUT_W, 3) and f.image.dtype == np.uint8
    # frame 0 is A after an INTER_AREA round trip through S x S
    round_trip = cv2.resize(
        cv2.resize(a, (S, S), interpolation=cv2.INTER_AREA), (OUT_W, OUT_H), interpolation=cv2.INTER_AREA
    )
    assert np.abs(frames[0].image.astype(int) - round_trip).max() <= 1
    assert np.abs(frames[0].image.astype(int) - a).mean() < 4
    assert np.abs(frames[-1].image.astype(int) - b).mean() < 4
    # the strip tiles are the S x S frames; the blend tile of the last frame is B at S x S
    last = frames[-1]
    assert last.tiles is not None and all(t.shape == (S, S, 3) for t in last.tiles)
    np.testing.assert_array_equal(last.tiles[0], to_uint8(to_working(b, S)[0]))


def test_banded_native_equals_single_band(native_frames, small_pair, random_maps_low):
    _, single = native_frames
    config = MorphConfig(size=S, frames=STEPS, render="native")
    per_row = OUT_W * 16 * 4  # bytes of maps per output row
    banded = FrameRenderer(*small_pair, random_maps_low, config, maps_budget=7 * per_row)
    assert len(banded.bounds) >= 5
    frames = list(banded.frames())
    assert len(frames) == len(single)
    for x, y in zip(frames, single):
        assert x.image.shape == y.image.shape
        assert np.abs(x.image.astype(int) - y.image.astype(int)).max() <= 1, f"frame {x.index}"
        if y.tiles is not None:
            for p, q in zip(x.tiles, y.tiles):
                assert np.abs(p.astype(int) - q.astype(int)).max() <= 1


def test_renderer_refuses_bad_shapes(small_pair, random_maps_low):
    a, b = small_pair
    config = MorphConfig(size=S, frames=STEPS)
    with pytest.raises(ValueError, match="source and target"):
        FrameRenderer(a, b[:-1], random_maps_low, config)
    with pytest.raises(ValueError, match="maps_low"):
        FrameRenderer(a, b, random_maps_low[..., :8], config)


@pytest.mark.parametrize(
    "height, width, rows",
    [
        (40, 48, [(0, 40), (0, 7), (7, 14), (33, 40)]),
        (150, 130, [(0, 150), (0, 1), (75, 101), (149, 150)]),
        (64, 64, [(0, 64), (10, 20)]),
    ],
)
def test_resize_maps_rows_matches_tf_resize(random_maps, height, width, rows):
    rng = np.random.default_rng(5)
    maps = (random_maps + rng.normal(0, 0.2, random_maps.shape)).astype(np.float32)
    full = tf.image.resize(maps, [height, width]).numpy()
    for r0, r1 in rows:
        got = resize_maps_rows(maps, height, width, r0, r1)
        assert got.shape == (1, r1 - r0, width, 16) and got.dtype == np.float32
        np.testing.assert_allclose(got, full[:, r0:r1], atol=1e-5, rtol=0)


def test_snapshots_with_zero_maps_are_the_inputs(toy_working):
    a, b = toy_working
    a2b, b2a = SnapshotRenderer(a, b, MorphConfig(size=S))(np.zeros((1, 84, 84, 16), np.float32))
    assert a2b.shape == b2a.shape == (S, S, 3) and a2b.dtype == np.uint8
    np.testing.assert_array_equal(a2b, to_uint8(a[0]))
    np.testing.assert_array_equal(b2a, to_uint8(b[0]))


def test_snapshots_match_the_eager_formula(toy_working):
    """The compiled snapshot equals upsample + apply_maps + clip + round done eagerly."""
    from diffmorph.core.maps import apply_maps, split_maps
    from diffmorph.core.model import upsample_maps

    a, b = toy_working
    config = MorphConfig(size=S)
    low = np.random.default_rng(3).normal(0, 0.5, (1, 84, 84, 16)).astype(np.float32)
    a2b, b2a = SnapshotRenderer(a, b, config)(low)
    a_to_b, b_to_a = split_maps(upsample_maps(low, S))
    want_a = to_uint8(apply_maps(a, a_to_b, config, config.flow_scale())[0])
    want_b = to_uint8(apply_maps(b, b_to_a, config, config.flow_scale())[0])
    assert np.abs(a2b.astype(int) - want_a).max() <= 1 and np.abs(b2a.astype(int) - want_b).max() <= 1
    assert np.mean(a2b != want_a) < 0.01 and np.mean(b2a != want_b) < 0.01


# ----------------------------------------------------------------------------- maps image and strip


def test_maps_image_layout():
    maps = np.zeros((1, S, S, 16), np.float32)
    maps[..., 0] = 1.0  # A->B mult R       -> tile (0, 0) R = 255
    maps[..., 4] = -1.0  # A->B add G       -> tile (0, 1) G = 0
    maps[..., 6] = 0.5  # A->B dy           -> tile (0, 2) R = floor(1.5 * 127.5) = 191
    maps[..., 7] = -3.0  # A->B dx, clipped -> tile (0, 2) G = 0
    maps[..., 10] = 2.0  # B->A mult B, clipped -> tile (1, 0) B = 255
    maps[..., 15] = 1.0  # B->A dx          -> tile (1, 2) G = 255
    image = maps_image(maps)
    assert image.shape == (2 * S, 3 * S, 3) and image.dtype == np.uint8

    def tile(row, col):
        return image[row * S : (row + 1) * S, col * S : (col + 1) * S]

    expected = {
        (0, 0): (255, 127, 127),
        (0, 1): (127, 0, 127),
        (0, 2): (191, 0, 127),
        (1, 0): (127, 127, 255),
        (1, 1): (127, 127, 127),
        (1, 2): (127, 255, 127),
    }
    for (row, col), rgb in expected.items():
        t = tile(row, col)
        for channel, value in enumerate(rgb):
            assert (t[..., channel] == value).all(), (row, col, channel, np.unique(t[..., channel]))


def test_strip_builder():
    size, steps = 8, 30  # strip frames 9, 19, 29
    strip = StripBuilder(steps, size)
    assert strip.image.shape == (3 * size, 3 * size, 3) and strip.image.dtype == np.uint8
    for i in range(steps):
        value = i * 8
        tiles = tuple(np.full((size, size, 3), value + k, np.uint8) for k in range(3))
        # every frame offers tiles; only strip frames may be placed
        strip.add(Frame(i, i / (steps - 1), np.zeros((5, 5, 3), np.uint8), tiles))
    for col, i in enumerate([9, 19, 29]):
        for row in range(3):
            block = strip.image[row * size : (row + 1) * size, col * size : (col + 1) * size]
            assert (block == i * 8 + row).all(), (row, col)
    strip2 = StripBuilder(12, size)
    assert strip2.image.shape == (3 * size, size, 3)
    strip2.add(Frame(9, 9 / 11, np.zeros((5, 5, 3), np.uint8), None))  # no tiles: ignored
    assert not strip2.image.any()


# ----------------------------------------------------------------------------- bicubic render kernel


def test_bicubic_warp_hand_checked_half_pixel_shift():
    """An impulse moved half a pixel right: Keys' cubic weights (a = -0.75) at distance 0.5
    are 0.59375, at 1.5 they are -0.09375 (W(0.5) = 1.25/8 - 2.25/4 + 1; W(1.5) = a(1.5^3
    - 5 * 1.5^2 + 8 * 1.5 - 4))."""
    from diffmorph.core.warp import bicubic_warp_rows

    image = np.zeros((1, 4, 9, 3), np.float32)
    image[0, :, 4] = 0.8
    flow = np.zeros((1, 4, 9, 2), np.float32)
    flow[..., 1] = 0.25  # dx units; scaled by strength 0.5 and flow_scale 4 -> 0.5 pixels
    out = bicubic_warp_rows(image, flow, 0.5, np.array([4.0, 4.0], np.float32), 0)
    assert out.shape == (1, 4, 9, 3) and out.dtype == np.float32
    expected = np.zeros(9, np.float32)
    expected[[4, 5]] = 0.8 * 0.59375
    expected[[3, 6]] = 0.8 * -0.09375  # the kernel's negative lobes
    np.testing.assert_allclose(out[0, 2, :, 0], expected, atol=1e-6)


def test_bicubic_warp_integer_shift_band_and_clamp():
    """Whole-pixel flows copy pixels exactly (border samples clamped), a band's rows are the
    full warp's rows, and values are clipped to [-1, 1]."""
    from diffmorph.core.warp import bicubic_warp_rows, dense_image_warp

    rng = np.random.default_rng(1)
    image = rng.uniform(-1, 1, (1, 10, 12, 3)).astype(np.float32)
    flow = np.zeros((1, 10, 12, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, -3.0
    full = bicubic_warp_rows(image, flow, 1.0, np.ones(2, np.float32), 0)
    np.testing.assert_allclose(full, dense_image_warp(image, flow).numpy(), atol=1e-6)
    band = bicubic_warp_rows(image, flow[:, 3:7], 1.0, np.ones(2, np.float32), 3)
    np.testing.assert_array_equal(band, full[:, 3:7])
    spiky = np.where(np.arange(12) % 2 == 0, 1.0, -1.0).astype(np.float32)[None, None, :, None] * np.ones(
        (1, 10, 1, 3), np.float32
    )
    flow[..., 0], flow[..., 1] = 0.0, 0.5
    ringing = bicubic_warp_rows(spiky, flow, 1.0, np.ones(2, np.float32), 0)
    assert ringing.min() >= -1.0 and ringing.max() <= 1.0


def test_bicubic_render_keeps_the_ends_and_is_sharper(small_pair, random_maps_low, native_frames):
    _, bilinear = native_frames
    config = MorphConfig(size=S, frames=STEPS, render="native", render_kernel="bicubic")
    frames = list(FrameRenderer(*small_pair, random_maps_low, config).frames())
    np.testing.assert_array_equal(frames[0].image, small_pair[0])
    np.testing.assert_array_equal(frames[-1].image, small_pair[1])
    middle, reference = frames[STEPS // 2].image, bilinear[STEPS // 2].image
    assert 0 < np.abs(middle.astype(int) - reference).mean() < 6  # the same morph, resampled differently

    def detail(x):
        return cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()

    assert detail(middle) > detail(reference)
    banded = FrameRenderer(*small_pair, random_maps_low, config, maps_budget=7 * OUT_W * 16 * 4)
    assert len(banded.bounds) > 1
    assert np.abs(banded.render(2, 0.5).image.astype(int) - frames[2].image).max() <= 1


def test_render_kernel_is_validated():
    with pytest.raises(ValueError, match="^render_kernel must be one of bilinear, bicubic"):
        MorphConfig(render_kernel="nearest")
