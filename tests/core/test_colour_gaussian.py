"""Gaussian colour statistics and the Bures-Wasserstein geometry (:mod:`diffmorph.core.colour`).

Closed forms first (equal covariances give the mean difference; the geodesic has
constant speed; the map pushes one covariance onto the other), then POT's
``ot.gaussian`` as the reference implementation.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import import_pot, random_gaussian
from diffmorph.core.colour import (
    Gaussian,
    bures_geodesic,
    bures_map,
    gaussian_stats,
    sqrtm_psd,
    unit_colours,
    w2_gaussian,
)

ot = import_pot()


def test_unit_colours_scales_by_dtype():
    assert unit_colours(np.array([[0, 255, 51]], np.uint8)).tolist() == [[0.0, 1.0, 0.2]]
    assert unit_colours(np.array([[65535, 0, 0]], np.uint16)).tolist() == [[1.0, 0.0, 0.0]]
    assert unit_colours(np.array([0.5, 0.25, 1.0], np.float32)).tolist() == [[0.5, 0.25, 1.0]]


@pytest.mark.parametrize("shape", [(4, 4), (2, 2, 4), (0, 3)])
def test_unit_colours_refuses_bad_shapes(shape):
    with pytest.raises(ValueError, match="shape"):
        unit_colours(np.zeros(shape, np.uint8))


def test_gaussian_stats_hand_checked():
    pixels = np.array([[[0, 0, 0], [255, 0, 0]], [[0, 255, 0], [255, 255, 0]]], np.uint8)  # (2, 2, 3)
    stats = gaussian_stats(pixels)
    assert np.allclose(stats.mean, [0.5, 0.5, 0.0])
    assert np.allclose(stats.cov, np.diag([0.25, 0.25, 0.0]))  # population variance of {0, 1}


def test_gaussian_stats_matches_numpy_cov():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(17, 9, 3), dtype=np.uint8)
    stats = gaussian_stats(pixels)
    flat = pixels.reshape(-1, 3) / 255.0
    assert np.allclose(stats.mean, flat.mean(0))
    assert np.allclose(stats.cov, np.cov(flat.T, bias=True))


def test_sqrtm_psd_squares_back_and_clips_negative_eigenvalues():
    rng = np.random.default_rng(1)
    cov = random_gaussian(rng).cov
    root = sqrtm_psd(cov)
    assert np.allclose(root @ root, cov, atol=1e-12)
    assert np.allclose(sqrtm_psd(np.diag([4.0, -1e-12, 0.0])), np.diag([2.0, 0.0, 0.0]))


def test_w2_equal_covariances_is_the_mean_difference():
    rng = np.random.default_rng(2)
    a = random_gaussian(rng)
    b = Gaussian(a.mean + np.array([0.1, -0.2, 0.05]), a.cov)
    assert w2_gaussian(a, b) == pytest.approx(np.sqrt(0.01 + 0.04 + 0.0025), rel=1e-6)


def test_w2_of_a_gaussian_to_itself_is_zero_also_when_singular():
    grey = gaussian_stats(np.repeat(np.arange(0, 256, 5, dtype=np.uint8)[:, None], 3, axis=1))  # rank 1
    assert w2_gaussian(grey, grey) == pytest.approx(0.0, abs=1e-6)


def test_w2_diagonal_closed_form():
    # commuting (diagonal) covariances: W2^2 = |dm|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    a = Gaussian(np.zeros(3), np.diag([0.04, 0.01, 0.09]))
    b = Gaussian(np.zeros(3), np.diag([0.01, 0.04, 0.0]))
    expected = np.sqrt((0.2 - 0.1) ** 2 + (0.1 - 0.2) ** 2 + 0.3**2)
    assert w2_gaussian(a, b) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_w2_matches_pot(seed):
    rng = np.random.default_rng(seed)
    a, b = random_gaussian(rng), random_gaussian(rng)
    expected = ot.gaussian.bures_wasserstein_distance(a.mean, b.mean, a.cov, b.cov)
    assert w2_gaussian(a, b) == pytest.approx(float(expected), rel=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_bures_map_matches_pot_and_pushes_the_covariance(seed):
    rng = np.random.default_rng(seed + 10)
    a, b = random_gaussian(rng), random_gaussian(rng)
    matrix, offset = bures_map(a, b, ridge=1e-14)
    pot_matrix, pot_offset = ot.gaussian.bures_wasserstein_mapping(a.mean, b.mean, a.cov, b.cov)
    assert np.allclose(matrix, pot_matrix, atol=1e-7)
    assert np.allclose(offset, np.ravel(pot_offset), atol=1e-7)
    assert np.allclose(matrix @ a.cov @ matrix, b.cov, atol=1e-9)
    assert np.allclose(matrix @ a.mean + offset, b.mean)


def test_bures_map_is_finite_for_a_grey_source():
    grey = gaussian_stats(np.repeat(np.arange(0, 256, 5, dtype=np.uint8)[:, None], 3, axis=1))
    colourful = random_gaussian(np.random.default_rng(3))
    matrix, offset = bures_map(grey, colourful)
    assert np.isfinite(matrix).all() and np.isfinite(offset).all()


def test_bures_map_refuses_a_zero_ridge():
    g = random_gaussian(np.random.default_rng(4))
    with pytest.raises(ValueError, match="ridge"):
        bures_map(g, g, ridge=0.0)


def test_geodesic_end_points_and_constant_speed():
    rng = np.random.default_rng(5)
    a, b = random_gaussian(rng), random_gaussian(rng)
    start = bures_geodesic(a, b, 0.0)
    assert np.array_equal(start.mean, a.mean) and np.array_equal(start.cov, a.cov)
    end = bures_geodesic(a, b, 1.0, ridge=1e-14)
    assert np.allclose(end.mean, b.mean) and np.allclose(end.cov, b.cov, atol=1e-9)
    total = w2_gaussian(a, b)
    for s in (0.25, 0.5, 0.8):
        point = bures_geodesic(a, b, s, ridge=1e-14)
        assert w2_gaussian(a, point) == pytest.approx(s * total, rel=1e-6)
        assert w2_gaussian(point, b) == pytest.approx((1 - s) * total, rel=1e-6)
