"""Large deformations (``diffmorph.core.geometry``): the thin-plate-spline prior, the
in-between geometry of frames, and the alignment measure; values checked by hand."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from diffmorph.config import MorphConfig  # noqa: E402
from diffmorph.core import geometry as geo  # noqa: E402

WS = 0.05  # warp scale: a flow map of 1 is S * 0.05 pixels


def uniform_maps(ab_dy_dx, ba_dy_dx, size):
    """Net output whose flows are uniform shifts, given in pixels at working size ``size``."""
    maps = np.zeros((1, 84, 84, 16), np.float32)
    maps[..., 6:8] = np.asarray(ab_dy_dx, np.float32) / (size * WS)
    maps[..., 14:16] = np.asarray(ba_dy_dx, np.float32) / (size * WS)
    return maps


# ----------------------------------------------------------------------------- the spline and the prior


def test_tps_is_scipys_thin_plate_spline_and_reproduces_affine_maps():
    from scipy.interpolate import RBFInterpolator

    rng = np.random.default_rng(0)
    centres, values, where = rng.random((9, 2)), rng.random((9, 2)), rng.random((40, 2))
    expected = RBFInterpolator(centres, values, kernel="thin_plate_spline")(where)
    np.testing.assert_allclose(geo.tps_fit(centres, values)(where), expected, atol=1e-9)
    affine = centres @ np.array([[2.0, -1.0], [0.5, 3.0]]) + [0.25, -4.0]  # no bending: reproduced exactly
    np.testing.assert_allclose(geo.tps_fit(centres, affine)(where), where @ [[2.0, -1.0], [0.5, 3.0]] + [0.25, -4.0])


def test_tps_prior_values_by_hand():
    # one pair: the source point at the image centre moves 10 % of the image down. On a
    # 5 x 5 map grid (centres at 0.1, 0.3, 0.5, ...) the centre pixel (2, 2) sits on the
    # source point, so the B->A flow there is (a - b) / w_s = (-0.1 / 0.05, 0) = (-2, 0)
    pair = np.array([[0.5, 0.5, 0.5, 0.6]])  # (source_x, source_y, target_x, target_y) fractions
    prior = geo.tps_prior(pair, 5, WS)
    assert prior.shape == (1, 5, 5, 16) and prior.dtype == np.float32
    np.testing.assert_allclose(prior[0, 2, 2, 14:16], [-2.0, 0.0], atol=1e-6)
    assert np.all(prior[..., [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13]] == 0)  # only flows
    # the A->B flow is its inverse: read at the target point (in pixels of a 256 image) it is b - a
    size = 256
    f_ab, f_ba = geo.flows_pixels(geo.tps_prior(pair, 84, WS), size, WS)
    b = pair[0, [3, 2]] * size - 0.5
    np.testing.assert_allclose(geo._sample(f_ab, b[None])[0], [0.1 * size, 0.0], atol=0.3)
    # the border pins hold: no flow at the corners and edge midpoints
    for y, x in ((0, 0), (0, 255), (255, 0), (255, 255), (0, 128), (128, 0)):
        assert np.abs(f_ba[y, x]).max() < 0.6 and np.abs(f_ab[y, x]).max() < 0.6
    # a pair that does not move gives no prior at all; warp_scale 0 gives none either
    assert not np.any(geo.tps_prior(np.array([[0.3, 0.4, 0.3, 0.4]]), 8, WS))
    assert not np.any(geo.tps_prior(pair, 8, 0.0))


def test_coincident_points_with_different_moves_do_not_make_the_prior_explode():
    """A closed mouth's upper and lower lip landmarks (one point) paired with an open mouth's
    (two points): exact interpolation asks for two values at one place (weights of 1e4 and
    more); the pairs are merged to their mean, so the prior stays about as large as the moves."""
    c = np.array([[0.2, 0.2], [0.2, 0.2 + 1e-7], [0.8, 0.2], [0.5, 0.8], [0.3, 0.6]])
    v = np.array([[0.0], [0.1], [0.0], [0.0], [0.05]])
    anywhere = np.random.default_rng(0).uniform(0, 1, (500, 2))
    assert np.abs(geo.tps_fit(c, v)(anywhere)).max() > 1000  # what happens without merging
    merged = geo.tps_fit(c, v, geo.MERGE_DISTANCE)
    assert np.abs(merged(anywhere)).max() < 0.2
    np.testing.assert_allclose(merged(c[[0, 2, 3, 4]]), [[0.05], [0], [0], [0.05]], atol=1e-9)  # the mean there
    lips = np.array([[0.45, 0.6, 0.45, 0.55], [0.45, 0.6, 0.45, 0.65], [0.3, 0.3, 0.3, 0.3], [0.7, 0.3, 0.7, 0.3]])
    prior = geo.tps_prior(lips, 21, 0.05)
    assert np.isfinite(prior).all() and np.abs(prior).max() < 2.0  # flow units: 0.1 of the image is 2


def test_the_prior_directions_pair_points_the_same_way():
    pairs = np.array([[0.3, 0.3, 0.25, 0.2], [0.7, 0.3, 0.8, 0.25], [0.5, 0.6, 0.5, 0.75]])
    f_ab, f_ba = geo.flows_pixels(geo.tps_prior(pairs, 84, WS), 128, WS)
    grid = geo._grid(128)
    p = grid - f_ba  # the target point of each source pixel
    back = p - geo._sample(f_ab, p)  # ... and its source point again
    error = np.linalg.norm(back - grid, axis=-1)
    assert np.percentile(error, 90) < 0.5 and error.mean() < 0.3  # pixels of a 128 image


def test_trainer_with_a_prior_starts_aligned_and_plain_and_fused_agree():
    from diffmorph.core.model import upsample_maps
    from diffmorph.core.optimise import Trainer
    from diffmorph.core.points import point_loss
    from diffmorph.io import points as pf

    rng = np.random.default_rng(0)
    a, b = (rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32) for _ in range(2))
    u = pf.normalise(np.array([[5, 5, 20, 10], [25, 20, 12, 25]]), (32, 32), (32, 32))
    losses = {}
    for plain in (False, True):
        maps = {}
        for prior in ("none", "tps"):
            config = MorphConfig(size=32, seed=3, plain=plain, point_prior=prior)
            trainer = Trainer(a, b, config)
            trainer.set_points(u)
            assert trainer.has_prior == (prior == "tps")
            maps[prior] = trainer.maps_low()
            losses[(plain, prior)] = [trainer.step() for _ in range(2)]
        # the net's output plus the prior, which alone carries the points (the loss of 1 px off: 2 * w)
        prior_maps = geo.tps_prior(u, 84, WS)
        np.testing.assert_allclose(maps["tps"] - maps["none"], prior_maps, atol=1e-6)
        upsampled = upsample_maps(prior_maps, 32)
        assert float(point_loss(upsampled, u, config)) < 0.5 * config.point_weight  # < 0.1 px at 32
        assert float(point_loss(upsample_maps(maps["none"], 32), u, config)) > 100 * config.point_weight
        trainer.set_points(None)  # no points: no prior
        assert not trainer.has_prior
        assert np.array_equal(trainer.maps_low(), trainer._predict_low(trainer.small_input).numpy())
    for prior in ("none", "tps"):
        np.testing.assert_allclose(losses[(False, prior)], losses[(True, prior)], rtol=1e-4)


# ----------------------------------------------------------------------------- in-between geometry


def test_solve_inverts_a_zoom():
    # p - f(p) = c + (p - c) / 2: a 2x zoom about c; its inverse is p = c + 2 (m - c)
    size, c = 64, np.array([31.5, 31.5])
    grid = geo._grid(size)
    flow = 0.5 * (grid - c)
    targets = np.array([[31.5, 31.5], [25.0, 40.0], [20.0, 20.0]])
    np.testing.assert_allclose(geo.solve(flow, 1.0, targets), c + 2 * (targets - c), atol=1e-6)
    np.testing.assert_array_equal(geo.solve(flow, 0.0, targets), targets)


def test_frame_flows_by_hand():
    size = 32
    f_ab = np.broadcast_to([3.0, -2.0], (size, size, 2)).copy()
    f_ba = -f_ab
    for alpha in (0.0, 0.25, 0.5, 1.0):
        scaled = geo.frame_flows(f_ab, f_ba, alpha, "scaled")
        between = geo.frame_flows(f_ab, f_ba, alpha, "between")
        np.testing.assert_allclose(scaled[0], alpha * f_ab)
        np.testing.assert_allclose(scaled[1], (1 - alpha) * f_ba)
        for s, g in zip(scaled, between):  # uniform flows: both geometries agree
            np.testing.assert_allclose(g, s, atol=1e-9)
    zero = geo.frame_flows(f_ab * 5, f_ba * 5, 0.0, "between")[0]
    assert np.array_equal(zero, np.zeros_like(zero))  # exactly the source at alpha 0
    with pytest.raises(ValueError, match="geometry"):
        geo.frame_flows(f_ab, f_ba, 0.5, "warped")


# ----------------------------------------------------------------------------- the alignment measure


@pytest.mark.parametrize("geometry", ["scaled", "between"])
def test_alignment_of_shifts_by_hand(geometry):
    size = 64
    diagonal = size * np.sqrt(2)
    # consistent shifts: the two halves agree everywhere (0)
    result = geo.alignment(uniform_maps([0, 6], [0, -6], size), size, WS, geometry)
    assert result["dense"]["mean"] < 1e-4 and result["dense"]["count"] == size * size
    # A->B moves 6 px right, B->A only 2 px back: the halves disagree by |6 - 2| / 2 = 2 px
    result = geo.alignment(uniform_maps([0, 6], [0, -2], size), size, WS, geometry)
    assert result["dense"]["mean"] == pytest.approx(2 / diagonal * 100, rel=1e-3)
    assert result["dense"]["p90"] == pytest.approx(2 / diagonal * 100, rel=1e-3)
    # point pairs on the consistent shift: a pair that moves 6 px agrees (0); one that
    # moves 10 px: the target half shows b 4 px from where the source half shows a
    pairs = np.array([[20.0, 30, 26, 30], [40, 12, 50, 12]])
    u = (pairs + 0.5) / size
    result = geo.alignment(uniform_maps([0, 6], [0, -6], size), size, WS, geometry, points=u, held_out=u[1:])
    assert result["points"]["count"] == 2
    expected = np.array([0.0, 4.0]) / diagonal * 100
    assert result["points"]["mean"] == pytest.approx(expected.mean(), abs=1e-3)
    assert result["held_out"]["mean"] == pytest.approx(expected[1], abs=1e-3)
    assert result["alpha"] == 0.5 and result["geometry"] == geometry


def disc_pair(size):
    """A disc of radius size/10 at (0.3, 0.3) of the image, and one twice as large moved a
    quarter of the image right and down; the pairs (centre and four rim points) and the
    true middle frame's disc (radius 1.5x, half-way)."""
    r, ca = size / 10, np.array([0.3, 0.3]) * size
    cb = ca + size / 4

    def disc(centre, radius):
        image = np.full((size, size, 3), 230, np.uint8)
        cv2.circle(
            image,
            (int(round(centre[0] * 16)), int(round(centre[1] * 16))),
            int(radius * 16),
            (20, 90, 200),
            -1,
            cv2.LINE_AA,
            4,
        )
        return image

    offsets = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], np.float64)
    pairs = np.concatenate([ca + offsets * r, cb + offsets * 2 * r], axis=1)  # x, y pixels
    return disc(ca, r), disc(cb, 2 * r), pairs, disc((ca + cb) / 2, 1.5 * r)


def test_in_between_geometry_keeps_one_disc_at_alpha_half():
    from diffmorph.core.render import FrameRenderer
    from diffmorph.io import points as pf

    size = 96
    source, target, pairs, truth = disc_pair(size)
    u = pf.normalise(pairs, (size, size), (size, size))
    maps = geo.tps_prior(u, 84, WS)  # the correspondence a classic morph would use
    scaled = geo.alignment(maps, size, WS, "scaled", points=u)
    between = geo.alignment(maps, size, WS, "between", points=u)
    assert between["dense"]["mean"] < 0.5 and between["points"]["mean"] < 0.3  # % of the diagonal
    assert scaled["points"]["mean"] > 3 * between["points"]["mean"] + 1

    def halves(geometry):
        config = MorphConfig(size=size, frames=3, render="working", geometry=geometry)
        frame = FrameRenderer(source, target, maps, config).render(1, 0.5, with_tiles=True)
        return frame.image, frame.tiles[1] < 128, frame.tiles[2] < 128  # the frame, the halves' disc masks

    def iou(x, y):
        return (x[..., 0] & y[..., 0]).sum() / (x[..., 0] | y[..., 0]).sum()

    frame_b, a_b, b_b = halves("between")
    frame_s, a_s, b_s = halves("scaled")
    disc_truth = truth < 128
    assert iou(a_b, b_b) > 0.9 and iou(a_b, disc_truth) > 0.85  # one disc, where the truth has it
    assert iou(a_s, b_s) < iou(a_b, b_b) - 0.1  # the original geometry: two discs apart
    error = [np.abs(f.astype(float) - truth).mean() for f in (frame_b, frame_s)]
    assert error[0] < error[1]


def test_unguided_rendering_is_unchanged_bit_for_bit():
    from diffmorph.core.render import FrameRenderer

    rng = np.random.default_rng(1)
    source, target = (rng.integers(0, 256, (40, 48, 3), np.uint8) for _ in range(2))
    maps = rng.normal(0, 0.3, (1, 84, 84, 16)).astype(np.float32)
    default = MorphConfig(size=32, frames=4)
    assert default.point_prior == "auto" and default.geometry == "auto"
    for render in ("native", "working"):
        frames = [
            [f.image for f in FrameRenderer(source, target, maps, c).frames()]
            for c in (default.replace(render=render), default.replace(render=render, geometry="scaled"))
        ]
        for x, y in zip(*frames):
            assert np.array_equal(x, y)
    assert default.for_guide(False).geometry == "scaled" and default.for_guide(False).point_prior == "none"


def test_new_settings_are_validated():
    with pytest.raises(ValueError, match=r"point_prior must be one of auto, none, tps \(got 'spline'\)"):
        MorphConfig(point_prior="spline")
    with pytest.raises(ValueError, match=r"geometry must be one of auto, scaled, between"):
        MorphConfig(geometry="forward")
    assert MorphConfig(geometry="scaled").for_guide(True).geometry == "scaled"  # explicit values stay


def test_guided_settings_resolve_and_colour_maps_off_leave_the_image():
    import tensorflow as tf

    from diffmorph.core.maps import Maps, colour_transform

    guided = MorphConfig().for_guide(True)
    assert (guided.point_prior, guided.geometry, guided.colour_maps) == ("tps", "between", "off")
    assert guided.consistency_weight == guided.point_consistency_weight == 100.0
    assert guided.for_guide(True) == guided  # resolving twice changes nothing
    plain = MorphConfig().for_guide(False)
    assert (plain.colour_maps, plain.consistency_weight) == ("on", 1.0)
    image = tf.constant(np.full((1, 4, 4, 3), 0.25, np.float32))
    maps = Maps(*(tf.ones((1, 4, 4, c)) for c in (3, 3, 2)))
    assert colour_transform(image, maps, guided) is image
    for config in (MorphConfig(), plain):  # "auto" without points: the original's formula
        np.testing.assert_allclose(colour_transform(image, maps, config).numpy(), 0.25 * 1.4 + 0.8)
    with pytest.raises(ValueError, match="colour_maps must be one of auto, on, off"):
        MorphConfig(colour_maps="none")
    with pytest.raises(ValueError, match="point_consistency_weight must be a finite number >= 0"):
        MorphConfig(point_consistency_weight=-1)


@pytest.mark.parametrize("kernel", ["bilinear", "bicubic"])
def test_in_between_frames_keep_exact_ends_in_every_render_path(kernel):
    from diffmorph.core.render import FrameRenderer

    rng = np.random.default_rng(0)
    source, target = (rng.integers(0, 256, (40, 48, 3), np.uint8) for _ in range(2))
    maps = rng.normal(0, 0.3, (1, 84, 84, 16)).astype(np.float32)
    config = MorphConfig(size=32, geometry="between", render_kernel=kernel)
    whole = FrameRenderer(source, target, maps, config)
    banded = FrameRenderer(source, target, maps, config, maps_budget=48 * 16 * 4 * 8)  # bands of 8 rows
    assert len(banded.bounds) == 5
    assert np.array_equal(whole.render(0, 0.0).image, source) and np.array_equal(whole.render(2, 1.0).image, target)
    assert np.array_equal(banded.render(1, 0.5).image, whole.render(1, 0.5).image)
    working = FrameRenderer(source, target, maps, config.replace(render="working")).render(1, 0.5, with_tiles=True)
    assert working.image.shape == source.shape and working.tiles[0].shape == (32, 32, 3)
