"""Colour optimal transport (:mod:`diffmorph.core.colour`): histograms, the convolutional
unbalanced Sinkhorn solver, the barycentric map, its trilinear application, the
colour transfer and the colour path of morph frames.

References: POT's dense ``ot.unbalanced.sinkhorn_unbalanced`` (same problem: reg = eps,
reg_m = lam, reg_type="entropy" is the reference measure 1 on every bin, the same
start f = g = 0), a dense kernel matrix, closed forms (single colours, identity maps,
hand-made interpolation points).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp

from conftest import import_pot
from diffmorph.core import colour
from diffmorph.core.colour import (
    ColourPath,
    Gaussian,
    TransferSettings,
    arrays,
    barycentric_map,
    bin_centres,
    colour_histogram,
    colour_transfer,
    eps_schedule,
    gaussian_stats,
    gibbs_logsumexp,
    grid_coordinates,
    lse,
    map_colours,
    plan_marginals,
    sinkhorn_unbalanced,
    w2_gaussian,
)

ot = import_pot()

pytestmark = pytest.mark.filterwarnings("error")


def sparse_histogram(rng, n, density=0.4, top=5) -> np.ndarray:
    """Random counts on an ``n^3`` grid with many empty bins."""
    return rng.integers(1, top, (n, n, n)).astype(np.float64) * (rng.random((n, n, n)) < density)


def dense_cost(n: int) -> np.ndarray:
    """``C[(a, b, c), (i, j, k)] = |x - y|^2`` on the grid, ``(n^3, n^3)``."""
    x = grid_coordinates(n)
    d = (x[:, None] - x[None, :]) ** 2
    return (
        d[:, None, None, :, None, None] + d[None, :, None, None, :, None] + d[None, None, :, None, None, :]
    ).reshape(n**3, n**3)


def grid_points(n: int) -> np.ndarray:
    x = grid_coordinates(n)
    return np.stack(np.meshgrid(x, x, x, indexing="ij"), axis=-1).reshape(-1, 3)


def smooth_image(rng, height=24, width=32) -> np.ndarray:
    """A uint8 RGB image with smooth gradients and some noise (no clipping at the ends)."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([60 + 120 * xx, 50 + 100 * yy, 140 - 60 * xx * yy], axis=-1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).round().astype(np.uint8)


# --- histograms -------------------------------------------------------------------------


def test_histogram_counts_raw_pixels_in_floor_bins():
    pixels = np.array([[[0, 3, 4], [255, 252, 251]], [[0, 3, 4], [128, 127, 64]]], np.uint8)  # (2, 2, 3)
    hist = colour_histogram(pixels, bins=64)
    assert hist.shape == (64, 64, 64) and hist.dtype == np.float64
    assert hist.sum() == 4  # raw counts, not normalised
    assert hist[0, 0, 1] == 2 and hist[63, 63, 62] == 1 and hist[32, 31, 16] == 1
    hist8 = colour_histogram(pixels, bins=8)  # bin = v * 8 // 256 = v // 32
    assert hist8[0, 0, 0] == 2 and hist8[7, 7, 7] == 1 and hist8[4, 3, 2] == 1
    hist100 = colour_histogram(np.array([[[255, 0, 3]]], np.uint8).repeat(2, 0), bins=100)  # floor(v * 100 / 256)
    assert hist100[99, 0, 1] == 2


@pytest.mark.parametrize("bins", [7, 129, 64.0, True, "64"])
def test_histogram_refuses_bad_bins(bins):
    with pytest.raises(ValueError, match="bins must be an integer from 8 to 128"):
        colour_histogram(np.zeros((2, 2, 3), np.uint8), bins=bins)


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((2, 2, 3), np.float32),
        np.zeros((2, 2, 4), np.uint8),
        np.zeros((4, 3), np.uint8),
        np.zeros((0, 2, 3), np.uint8),
    ],
)
def test_histogram_refuses_non_rgb8_pixels(pixels):
    with pytest.raises(ValueError, match=r"uint8 pixels of shape \(H, W, 3\)"):
        colour_histogram(pixels)


# --- the separable kernel ---------------------------------------------------------------


@pytest.mark.parametrize("eps", [1.0, 0.05, 1 / 128])
def test_separable_kernel_equals_the_dense_matrix_product(eps):
    rng = np.random.default_rng(0)
    n = 8
    h = rng.normal(0, 3, (n, n, n))
    h[rng.random(h.shape) < 0.5] = -np.inf  # empty bins
    h[:, 2, 5] = -np.inf  # a whole empty line
    kernel = np.exp(-dense_cost(n) / eps)
    expected = np.log(kernel @ np.exp(h.ravel()))
    assert np.allclose(gibbs_logsumexp(h, eps).ravel(), expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("eps", [1 / 256, 1 / 512, 1 / 2048])
def test_separable_kernel_is_exact_where_the_linear_product_underflows(eps, monkeypatch):
    # potentials spread over thousands of log units and small eps: exp(h) and K underflow
    # in float64; the reference is an exact log-sum-exp over log K.
    rng = np.random.default_rng(1)
    n = 8
    h = rng.uniform(-3000, 0, (n, n, n))
    h[rng.random(h.shape) < 0.6] = -np.inf
    calls = []
    exact = lse.SeparableLSE._exact
    monkeypatch.setattr(lse.SeparableLSE, "_exact", lambda self, *a: calls.append(1) or exact(self, *a))
    got = gibbs_logsumexp(h, eps).ravel()
    expected = logsumexp(-dense_cost(n) / eps + h.ravel()[None, :], axis=1)
    assert np.isfinite(got).all()
    assert np.allclose(got, expected, rtol=1e-14, atol=0)
    assert bool(calls) == (eps < 1 / 600)  # the fallback runs only below eps = 1/600, and does run there


def test_separable_kernel_with_split_products_for_large_grids():
    # n > 64: each GEMM is split into blocks of kernel columns (OpenBLAS single-thread size)
    n, eps = 66, 1 / 16
    assert lse.GEMM_ONE_THREAD // (n * n) < n
    rng = np.random.default_rng(2)
    h = rng.normal(0, 20, (n, n, n))
    h[rng.random(h.shape) < 0.9] = -np.inf
    log_k = lse.log_kernel(n, eps)
    expected = h
    for _ in range(3):  # exact log-sum-exp along the leading axis, rotating the axes like the solver
        expected = np.stack([logsumexp(log_k[:, i, None, None] + expected, axis=0) for i in range(n)], axis=-1)
    assert np.allclose(gibbs_logsumexp(h, eps), expected, rtol=1e-13, atol=0)


def test_pass_grouping_follows_the_schedule():
    plans = {eps: lse.SeparableLSE([lse.log_kernel(64, eps)] * 3).plan for eps in eps_schedule()}
    assert plans[1.0] == plans[1 / 128] == [(3, False)]  # one exp and one log per LSE
    assert plans[1 / 256] == [(2, False), (1, False)]
    assert plans[1 / 512] == [(1, False)] * 3
    assert lse.SeparableLSE([lse.log_kernel(64, 1 / 1024)] * 3).plan == [(1, True)] * 3


# --- the solver against POT ----------------------------------------------------------------


def pot_plan(p, q, eps, lam):
    """POT's dense plan, run until its relative change is below 1e-15."""
    n = p.shape[0]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="If reg_type = entropy", category=UserWarning)
        # with log=True POT also logs KL terms, which divide 0 by 0 on empty bins (not in its iterations)
        warnings.filterwarnings(
            "ignore", message="invalid value encountered in divide", category=RuntimeWarning, module=r"ot\."
        )
        plan, log = ot.unbalanced.sinkhorn_unbalanced(
            p.ravel(),
            q.ravel(),
            dense_cost(n),
            eps,
            lam,
            reg_type="entropy",
            method="sinkhorn",
            numItermax=20000,
            stopThr=1e-15,
            log=True,
        )
    assert len(log["err"]) < 20000  # converged, not stopped by the iteration limit
    return plan, len(log["err"])


@pytest.mark.parametrize(("n", "eps", "seed"), [(8, 0.05, 0), (8, 0.01, 1), (16, 0.2, 2)])
def test_solver_equals_pot_dense_unbalanced_sinkhorn(n, eps, seed):
    rng = np.random.default_rng(seed)
    p, q, lam = sparse_histogram(rng, n), sparse_histogram(rng, n), 0.8
    plan, iterations = pot_plan(p, q, eps, lam)
    solution = sinkhorn_unbalanced(p, q, lam=lam, eps0=eps, stages=1, iters=iterations + 50, eps_min=eps)
    further = sinkhorn_unbalanced(p, q, lam=lam, eps0=eps, stages=1, iters=iterations + 70, eps_min=eps)
    finite = np.isfinite(solution.f)
    assert np.abs(further.f[finite] - solution.f[finite]).max() < 1e-13  # ours converged too
    rows, cols = plan_marginals(solution)
    assert np.abs(rows.ravel() - plan.sum(axis=1)).max() < 1e-8
    assert np.abs(cols.ravel() - plan.sum(axis=0)).max() < 1e-8
    used = q.ravel() > 0  # POT's plan has no column for an empty image bin
    expected = plan[:, used].T @ grid_points(n) / plan[:, used].sum(axis=0)[:, None]
    assert np.abs(barycentric_map(solution).reshape(-1, 3)[used] - expected).max() < 1e-8
    assert rows.sum() == pytest.approx(plan.sum(), rel=1e-12)


@pytest.mark.parametrize("iterations", [1, 2, 7])
def test_solver_follows_pot_iteration_by_iteration(iterations):
    # same start (f = g = 0, i.e. POT's u = v = 1 on every bin) and the same order of updates
    rng = np.random.default_rng(20 + iterations)
    p, q, eps, lam = sparse_histogram(rng, 8), sparse_histogram(rng, 8), 0.05, 0.8
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="If reg_type = entropy", category=UserWarning)
        plan = ot.unbalanced.sinkhorn_unbalanced(
            p.ravel(),
            q.ravel(),
            dense_cost(8),
            eps,
            lam,
            reg_type="entropy",
            method="sinkhorn",
            numItermax=iterations,
            stopThr=0.0,
        )
    solution = sinkhorn_unbalanced(p, q, lam=lam, eps0=eps, stages=1, iters=iterations, eps_min=eps)
    rows, cols = plan_marginals(solution)
    assert np.abs(rows.ravel() - plan.sum(axis=1)).max() < 1e-10
    assert np.abs(cols.ravel() - plan.sum(axis=0)).max() < 1e-10


def test_empty_bins_have_minus_infinite_potentials_and_no_mass():
    rng = np.random.default_rng(3)
    p, q = sparse_histogram(rng, 8, density=0.2), sparse_histogram(rng, 8, density=0.2)
    solution = sinkhorn_unbalanced(p, q, stages=4, iters=20)
    assert np.array_equal(np.isneginf(solution.f), p == 0) and np.isfinite(solution.f[p > 0]).all()
    assert np.array_equal(np.isneginf(solution.g), q == 0) and np.isfinite(solution.g[q > 0]).all()
    rows, cols = plan_marginals(solution)
    assert (rows[p == 0] == 0).all() and (rows[p > 0] > 0).all()
    assert (cols[q == 0] == 0).all() and (cols[q > 0] > 0).all()
    mapped = barycentric_map(solution)  # defined on every bin, inside the unit cube
    assert np.isfinite(mapped).all() and mapped.min() >= 0 and mapped.max() <= 1


@pytest.mark.parametrize("factors", [(3.0, 3.0), (1000.0, 1000.0), (1 / 7, 1 / 7), (3.0, 1.0), (1.0, 0.25)])
def test_map_does_not_change_when_histograms_are_scaled(factors):
    # Scaling p (q) by s adds a constant to log p (log q); the updates carry constants
    # through (LSE_K(h + c) = LSE_K(h) + c), so the potentials move by constants, the
    # plan by one factor, and T, a ratio of plan sums, not at all: at every iteration.
    rng = np.random.default_rng(4)
    p, q = sparse_histogram(rng, 16, density=0.3, top=9), sparse_histogram(rng, 16, density=0.3, top=9)
    base = sinkhorn_unbalanced(p, q, iters=15)
    scaled = sinkhorn_unbalanced(factors[0] * p, factors[1] * q, iters=15)
    assert np.abs(barycentric_map(scaled) - barycentric_map(base)).max() < 1e-12
    rows, _ = plan_marginals(base)
    scaled_rows, _ = plan_marginals(scaled)
    ratio = scaled_rows[p > 0] / rows[p > 0]  # the plan scales by one factor
    assert np.ptp(ratio) < 1e-10 * ratio.mean()


def test_schedule_and_progress():
    assert eps_schedule() == [2.0**-k for k in range(10)]
    assert eps_schedule(1.0, 12, 1e-3) == [2.0**-k for k in range(10)] + [1e-3, 1e-3]
    seen = []
    rng = np.random.default_rng(5)
    sinkhorn_unbalanced(
        sparse_histogram(rng, 8),
        sparse_histogram(rng, 8),
        stages=3,
        iters=7,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(10, 21), (20, 21), (21, 21)]


def test_solver_refuses_bad_histograms():
    good = np.ones((8, 8, 8))
    for bad, message in [
        (np.ones((8, 8, 4)), "cube"),
        (-good, "counts >= 0"),
        (good * np.nan, "counts >= 0"),
        (np.zeros((8, 8, 8)), "empty"),
    ]:
        with pytest.raises(ValueError, match=message):
            sinkhorn_unbalanced(bad, good)
    with pytest.raises(ValueError, match="same shape"):
        sinkhorn_unbalanced(good, np.ones((16, 16, 16)))


# --- interpolation --------------------------------------------------------------------


def test_trilinear_interpolation_hand_checked():
    n = 8
    rng = np.random.default_rng(6)
    mapped = rng.random((n, n, n, 3))
    centres = bin_centres(n)  # 32 i + 15.5

    def level(t):  # unit-cube map value -> 0..255 units
        return (t * (n - 1) + 0.5) * 256 / n - 0.5

    at_centre = map_colours([[centres[2], centres[5], centres[7]]], mapped)
    assert np.allclose(at_centre, level(mapped[2, 5, 7]), atol=1e-12)
    midway = map_colours([[(centres[2] + centres[3]) / 2, centres[5], centres[1]]], mapped)
    assert np.allclose(midway, level((mapped[2, 5, 1] + mapped[3, 5, 1]) / 2), atol=1e-12)
    corner = map_colours(
        [[(centres[3] + centres[4]) / 2, (centres[0] + centres[1]) / 2, (centres[6] + centres[7]) / 2]], mapped
    )
    assert np.allclose(corner, level(mapped[3:5, 0:2, 6:8].mean(axis=(0, 1, 2))), atol=1e-12)
    quarter = map_colours([[centres[1] + 8, centres[4], centres[6]]], mapped)  # a quarter of a bin
    assert np.allclose(quarter, level(0.75 * mapped[1, 4, 6] + 0.25 * mapped[2, 4, 6]), atol=1e-12)


@pytest.mark.parametrize("bins", [8, 64, 100, 128])
def test_identity_map_gives_back_every_colour(bins):
    x = grid_coordinates(bins)
    identity = np.stack(np.meshgrid(x, x, x, indexing="ij"), axis=-1)
    levels = np.arange(256, dtype=np.float64)
    colours = np.stack([levels, levels[::-1], np.roll(levels, 77)], axis=-1)  # includes 0 and 255
    assert np.allclose(map_colours(colours, identity), colours, atol=1e-9)


# --- colour transfer ----------------------------------------------------------------------


def test_uot_transfer_moves_colours_towards_the_palette():
    rng = np.random.default_rng(7)
    image = smooth_image(rng)
    palette = np.clip(smooth_image(rng).astype(int)[..., ::-1] + 30, 0, 255).astype(np.uint8)  # other colours
    out = colour_transfer(image, palette, TransferSettings(bins=16, stages=6, iters=30))
    assert out.shape == image.shape and out.dtype == np.uint8
    before = w2_gaussian(gaussian_stats(image), gaussian_stats(palette))
    after = w2_gaussian(gaussian_stats(out), gaussian_stats(palette))
    assert after < 0.5 * before


def test_gaussian_transfer_is_the_identity_for_the_same_image():
    image = smooth_image(np.random.default_rng(8))
    assert np.array_equal(colour_transfer(image, image, TransferSettings(method="gaussian")), image)


def test_uot_transfer_is_close_to_the_identity_for_the_same_image():
    # the entropic map blurs at the final eps (kernel std sqrt(eps / 2) = 8 levels):
    # on a real photo (128 x 128 astronaut) the mean change is 1.5 levels, max 9
    image = smooth_image(np.random.default_rng(9), 32, 32)
    out = colour_transfer(image, image, TransferSettings(bins=32))
    change = np.abs(out.astype(int) - image)
    assert change.mean() < 2.0 and change.max() <= 12


@pytest.mark.parametrize("method", ["uot", "gaussian"])
def test_single_colour_palette_gives_a_single_colour(method):
    image = smooth_image(np.random.default_rng(10))
    palette = np.full((3, 5, 3), (200, 30, 90), np.uint8)
    out = colour_transfer(image, palette, TransferSettings(method=method, bins=64, stages=3, iters=10))
    if method == "gaussian":  # onto the palette's mean, spread only by the ridge (std sqrt(1e-5) = 0.8 levels)
        assert np.abs(out.reshape(-1, 3).astype(int) - (200, 30, 90)).max() <= 3
        assert np.abs(out.reshape(-1, 3).mean(axis=0) - (200, 30, 90)).max() < 0.2
        return
    # uot: every bin maps to the palette's bin centre 4 i + 1.5 = (201.5, 29.5, 89.5) (to rounding)
    solution = sinkhorn_unbalanced(colour_histogram(palette), colour_histogram(image), stages=3, iters=10)
    levels = map_colours(image.reshape(-1, 3), barycentric_map(solution))
    assert np.abs(levels - (201.5, 29.5, 89.5)).max() < 1e-9
    assert (np.abs(out.reshape(-1, 3) - np.array([201.5, 29.5, 89.5])) == 0.5).all()


@pytest.mark.parametrize("method", ["uot", "gaussian"])
def test_single_colour_image_works(method):
    image = np.full((4, 6, 3), (10, 120, 240), np.uint8)
    palette = smooth_image(np.random.default_rng(11))
    out = colour_transfer(image, palette, TransferSettings(method=method, bins=16, stages=4, iters=20))
    assert out.shape == image.shape and (out == out[0, 0]).all()  # one colour stays one colour
    if method == "gaussian":  # a zero-covariance image goes to the palette's mean
        assert np.abs(out[0, 0] - gaussian_stats(palette).mean * 255).max() <= 0.5 + 1e-9


@pytest.mark.parametrize("bins", [8, 128])
def test_smallest_and_largest_bin_counts(bins):
    rng = np.random.default_rng(12)
    image, palette = smooth_image(rng, 8, 8), smooth_image(rng, 8, 8)[::-1]
    out = colour_transfer(image, palette, TransferSettings(bins=bins, stages=2, iters=3))
    assert out.shape == image.shape and out.dtype == np.uint8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "ot"}, "method must be one of uot, gaussian"),
        ({"bins": 4}, "bins must be an integer from 8 to 128"),
        ({"bins": 256}, "bins must be an integer from 8 to 128"),
        ({"lam": 0.0}, "lambda must be a number from 1e-06 to 1e\\+06"),
        ({"lam": -1.0}, "lambda must be a number from 1e-06 to 1e\\+06"),
        ({"lam": float("inf")}, "lambda must be a number from 1e-06 to 1e\\+06"),
        ({"eps0": 0}, "eps0 must be a number from 1e-06 to 1e\\+06"),
        ({"stages": 0}, "stages must be an integer from 1 to 64"),
        ({"iters": 0}, "iters must be an integer from 1 to 100000"),
        ({"iters": 2.5}, "iters must be an integer from 1 to 100000"),
    ],
)
def test_transfer_refuses_bad_arguments(kwargs, message):
    image = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match=message):
        colour_transfer(image, image, TransferSettings(**kwargs))


def test_solver_refuses_a_bad_epsilon_floor():
    p = np.ones((8, 8, 8))
    with pytest.raises(ValueError, match="eps_min must be a finite number > 0"):
        sinkhorn_unbalanced(p, p, eps_min=-1e-3)


def test_transfer_refuses_bad_pixels():
    good = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="palette must be uint8"):
        colour_transfer(good, np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(ValueError, match="image must be uint8"):
        colour_transfer(good.astype(np.float32), good)


# --- colour path -----------------------------------------------------------------------------


def test_colour_path_is_exact_at_both_ends():
    rng = np.random.default_rng(13)
    source, target, frame = smooth_image(rng), smooth_image(rng)[::-1, ::-1] // 2, smooth_image(rng)
    path = ColourPath(source, target)
    for alpha in (0, 0.0, 1, 1.0):
        assert np.array_equal(path.apply(frame, alpha), frame)
    for alpha in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            path.apply(frame, alpha)


@pytest.mark.parametrize("refine", [0, 1])
def test_colour_path_puts_a_frame_on_the_geodesic(refine):
    rng = np.random.default_rng(14)
    source = smooth_image(rng, 48, 48)
    target = np.clip(source.astype(int)[..., ::-1] * 0.6 + 40, 0, 255).astype(np.uint8)
    blend = ((source.astype(int) + target) // 2).astype(np.uint8)  # a plain cross-fade: washed-out colours
    path = ColourPath(source, target, refine=refine)
    goal = path.goal(0.5)
    total = w2_gaussian(path.source, path.target)
    out = path.apply(blend, 0.5)
    assert out.shape == blend.shape and out.dtype == np.uint8
    assert w2_gaussian(gaussian_stats(blend), goal) > 0.05 * total  # the cross-fade is off the geodesic
    assert w2_gaussian(gaussian_stats(out), goal) < 0.02 * total
    assert isinstance(goal, Gaussian)
    assert w2_gaussian(path.source, goal) == pytest.approx(0.5 * total, rel=1e-2)  # to the ridge's effect


def test_colour_path_refuses_negative_refine():
    image = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="refine"):
        ColourPath(image, image, refine=-1)


def test_large_images_are_processed_in_chunks_without_changing_results():
    rng = np.random.default_rng(15)
    image = rng.integers(0, 256, (600, 500, 3), dtype=np.uint8)  # more pixels than one chunk (2^18)
    assert image.shape[0] * image.shape[1] > arrays.CHUNK
    stats = gaussian_stats(image)
    flat = image.reshape(-1, 3) / 255.0
    assert np.allclose(stats.mean, flat.mean(axis=0), rtol=0, atol=1e-14)
    assert np.allclose(stats.cov, np.cov(flat.T, bias=True), rtol=0, atol=1e-14)
    mapped = rng.random((8, 8, 8, 3))
    expected = np.clip(np.rint(map_colours(image.reshape(-1, 3), mapped)), 0, 255).astype(np.uint8)
    assert np.array_equal(colour.apply_colour_map(image, mapped).reshape(-1, 3), expected)
    hist = colour_histogram(image, bins=8)
    assert np.array_equal(
        hist.ravel(), np.bincount(((flat * 255).round().astype(int) // 32) @ [64, 8, 1], minlength=512)
    )
