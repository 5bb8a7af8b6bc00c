"""Weight-free morph measures (:mod:`diffmorph.core.metrics`) against closed forms and POT.

Closed forms: PSNR of a known error, SSIM and MS-SSIM of flat images (only the
luminance term is left), the Laplacian variance of a checkerboard, equal steps of a
brightness ramp, zero distance between identical frames, zero deviation of points on
the Bures geodesic; POT's ``ot.gaussian.bures_wasserstein_distance`` for W2.
"""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

from conftest import import_pot, random_gaussian
from diffmorph.core import metrics
from diffmorph.core.colour import bures_geodesic, gaussian_stats, w2_gaussian
from diffmorph.core.colour.geodesic import GEODESIC_TOL, Geodesic
from diffmorph.core.meter import PathMeter, measure
from diffmorph.core.report_layout import W2_FLOOR

SIDE = 24  # frames of the streaming tests: 2 MS-SSIM scales


def textured(seed: int = 0, size: int = SIDE, top: int = 200) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, top, (size, size + 8, 3), dtype=np.uint8)


def flat(value: int, size: int = SIDE) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def checkerboard(size: int = SIDE) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return np.repeat((((yy + xx) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)


def test_psnr_of_a_known_error():
    a = flat(128)
    signs = np.random.default_rng(0).choice([-5, 5], size=a.shape)
    b = (a.astype(int) + signs).astype(np.uint8)  # every element off by exactly 5: MSE 25
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 25), abs=1e-12)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.mean_abs_diff(a, b) == 5.0


def test_ssim_of_flat_images_is_the_luminance_term():
    c1 = (0.01 * 255) ** 2  # small levels: float32 variances of flat images stay ~1e-4 (c2 is 58.5)
    expected = (2 * 10 * 20 + c1) / (10**2 + 20**2 + c1)  # variances 0: contrast-structure term 1
    assert metrics.ssim(flat(10), flat(20)) == pytest.approx(expected, rel=1e-5)
    assert metrics.ssim(textured(), textured()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("size, scales", [(161, 5), (40, 2)])
def test_msssim_of_flat_images_uses_the_coarsest_weight(size, scales):
    c1 = (0.01 * 255) ** 2
    luminance = (2 * 10 * 20 + c1) / (10**2 + 20**2 + c1)
    weights = metrics.MSSSIM_WEIGHTS[:scales]
    assert metrics.msssim_scales(size, size) == scales
    assert metrics.power_factors(scales) == pytest.approx([w / sum(weights) for w in weights])
    expected = luminance ** (weights[-1] / sum(weights))  # cs = 1 at every scale for flat images
    assert metrics.msssim(flat(10, size), flat(20, size)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "side, scales", [(161, 5), (160, 4), (81, 4), (80, 3), (41, 3), (40, 2), (21, 2), (20, 1), (5, 1)]
)
def test_msssim_scales_fit_the_window(side, scales):
    assert metrics.msssim_scales(side, side + 100) == scales  # the short side decides


def test_identical_frames_have_distance_zero():
    frame = textured()
    assert metrics.msssim_distance(frame, frame) == 0.0
    assert metrics.mean_abs_diff(frame, frame) == 0.0
    result = measure([frame] * 4)
    assert result["distance"]["distances"] == [0.0, 0.0, 0.0]
    assert result["mad"]["path_length"] == 0.0 and result["mad"]["pdv"] == 0.0
    assert result["distance"]["cv"] is None  # std / mean undefined for a still morph
    colour = result["colour"]
    assert colour["w2_ends"] < W2_FLOOR and colour["distances"] == pytest.approx([0, 0, 0], abs=W2_FLOOR)
    assert colour["path_length_ratio"] is None and colour["max_deviation_ratio"] is None


def test_distance_copy_keeps_aspect_and_never_upscales():
    frame = np.zeros((300, 600, 3), np.uint8)
    assert metrics.distance_copy(frame, 256).shape == (128, 256, 3)
    small = textured()
    assert metrics.distance_copy(small, 256) is small


def test_brightness_ramp_has_equal_steps():
    base = textured(top=150)
    frames = [base + np.uint8(7 * k) for k in range(6)]  # no clipping: every pixel moves by 7 per frame
    result = measure(frames)
    assert result["mad"]["distances"] == [7.0] * 5
    assert result["mad"]["pdv"] == 0.0 and result["mad"]["cv"] == 0.0
    assert result["mad"]["path_length"] == 35.0


def test_grey_ramp_follows_the_colour_geodesic_in_equal_steps():
    frames = [flat(20 + 30 * k) for k in range(5)]  # colour Gaussians: means on a line, covariance 0
    colour = measure(frames)["colour"]
    step = math.sqrt(3) * 30 / 255
    assert colour["distances"] == pytest.approx([step] * 4, rel=1e-9)
    assert colour["w2_ends"] == pytest.approx(4 * step, rel=1e-9)
    assert colour["path_length_ratio"] == pytest.approx(1.0, abs=1e-9)
    assert colour["max_step_ratio"] == pytest.approx(1.0, abs=1e-9)
    assert colour["max_deviation"] == pytest.approx(0.0, abs=1e-9)
    assert colour["geodesic_s"] == pytest.approx([0, 0.25, 0.5, 0.75, 1], abs=1e-6)


def test_w2_steps_match_pot():
    frames = [textured(seed) for seed in range(3)]
    colour = measure(frames)["colour"]

    ot = import_pot()

    def pot_w2(a, b):
        fits = []
        for frame in (a, b):
            x = frame.reshape(-1, 3) / 255.0
            fits.append((x.mean(0), np.cov(x.T, bias=True)))
        return float(ot.gaussian.bures_wasserstein_distance(fits[0][0], fits[1][0], fits[0][1], fits[1][1]))

    assert colour["distances"] == pytest.approx([pot_w2(frames[0], frames[1]), pot_w2(frames[1], frames[2])], rel=1e-6)
    assert colour["w2_ends"] == pytest.approx(pot_w2(frames[0], frames[2]), rel=1e-6)


def test_points_on_the_geodesic_deviate_by_zero():
    rng = np.random.default_rng(3)
    a, b = random_gaussian(rng, 0.1, 1e-3), random_gaussian(rng, 0.1, 1e-3)
    geodesic = Geodesic(a, b)
    for s in (0.0, 0.13, 0.5, 0.871, 1.0):
        point = bures_geodesic(a, b, s) if s < 1 else b
        distance, found = geodesic.distance(point)
        assert distance <= GEODESIC_TOL * geodesic.length  # the refinement stops at |ds| < 1e-5
        assert found == pytest.approx(s, abs=2 * GEODESIC_TOL)


def test_distance_to_the_geodesic_is_the_minimum_over_s():
    rng = np.random.default_rng(4)
    a, b, off = (random_gaussian(rng, 0.1, 1e-3) for _ in range(3))
    distance, found = Geodesic(a, b).distance(off)
    grid = np.linspace(0, 1, 2001)
    brute = [w2_gaussian(off, bures_geodesic(a, b, s)) for s in grid]
    assert distance <= min(brute) + 1e-12  # never worse than a fine grid...
    assert distance >= min(brute) - 1e-6  # ...and not below the true minimum (the grid is 5e-4 apart)
    assert w2_gaussian(off, bures_geodesic(a, b, found)) == pytest.approx(distance, abs=1e-12)


def test_sharpness_of_a_checkerboard():
    assert metrics.sharpness(checkerboard()) == pytest.approx(1020.0**2)  # Laplacian +-4 * 255 everywhere
    assert metrics.sharpness(flat(77)) == 0.0


def test_middle_frame_for_even_and_odd_counts_and_its_measures():
    frames = [checkerboard(), flat(60), flat(90), checkerboard()]  # even: the middle is frame 1
    for count in (4, None):
        meter = PathMeter(count)
        for frame in frames:
            meter.add(frame)
        result = meter.result(truth=flat(60))
        assert result["middle_index"] == 1
        assert result["truth"] == {
            "frame": 1,
            "psnr": None,
            "ssim": pytest.approx(1.0),
            "max_abs_diff": 0,
            "exact": True,
        }
        assert result["sharpness"]["middle_ratio"] == 0.0
        assert result["sharpness"]["reference_of"] == "end frames"
    assert measure(frames[:3])["middle_index"] == 1  # odd: the exact middle


def test_endpoints_against_the_inputs():
    source, target = textured(0), textured(1)
    noisy = source.copy()
    noisy[0, 0, 0] += 10
    result = measure([source, textured(2), target], source=noisy, target=target)
    assert result["endpoints"]["target"]["exact"] is True and result["endpoints"]["target"]["psnr"] is None
    entry = result["endpoints"]["source"]
    assert entry["exact"] is False and entry["max_abs_diff"] == 10
    assert entry["psnr"] == pytest.approx(metrics.psnr(source, noisy))
    assert result["sharpness"]["reference_of"] == "inputs"


def test_result_is_strict_json_with_one_number_per_step():
    frames = [textured(seed) for seed in range(5)]
    result = measure(frames, source=frames[0], target=frames[-1], truth=frames[2])
    loaded = json.loads(json.dumps(result, allow_nan=False))
    assert loaded["frames"] == 5 and loaded["size"] == [SIDE, SIDE + 8]
    assert len(loaded["distance"]["distances"]) == len(loaded["mad"]["distances"]) == 4
    assert len(loaded["colour"]["deviation"]) == len(loaded["sharpness"]["frames"]) == 5
    d = np.array(loaded["distance"]["distances"])
    assert loaded["distance"]["pdv"] == pytest.approx(d.var()) and loaded["distance"]["cv"] == pytest.approx(
        d.std() / d.mean()
    )


def test_colour_stats_subsample_large_frames():
    frame = textured(5)
    step = math.ceil(math.sqrt(frame.shape[0] * frame.shape[1] / 50))
    sub = metrics.colour_stats(frame, max_pixels=50)
    expected = gaussian_stats(frame[::step, ::step])
    assert np.array_equal(sub.mean, expected.mean) and np.array_equal(sub.cov, expected.cov)


def test_meter_refuses_bad_frames():
    meter = PathMeter()
    meter.add(textured())
    with pytest.raises(ValueError, match="first frame"):
        meter.add(flat(0))
    with pytest.raises(ValueError, match="uint8"):
        meter.add(textured().astype(np.float32))
    with pytest.raises(ValueError, match="at least 2 frames"):
        meter.result()
    meter.add(textured(1))
    with pytest.raises(ValueError, match="truth"):
        meter.result(truth=flat(0))
    far = PathMeter(9)  # the frame kept for the middle (4) never came
    far.add(textured())
    far.add(textured())
    assert far.result()["middle_index"] == 0
    with pytest.raises(ValueError, match="told 9 frames"):
        far.result(truth=textured())


def test_a_wrong_count_compares_the_kept_frame():
    meter = PathMeter(3)  # keeps frame 1
    frames = [flat(10), flat(40), flat(70), flat(100)]
    for frame in frames:
        meter.add(frame)
    result = meter.result(truth=flat(40))
    assert result["middle_index"] == 1 and result["truth"]["frame"] == 1 and result["truth"]["exact"]


def test_close_ends_the_background_thread():
    """What a caller sees (threading.enumerate): adding frames starts a thread; close() ends it."""
    before = set(threading.enumerate())
    meter = PathMeter()
    for seed in range(3):
        meter.add(textured(seed))
    started = set(threading.enumerate()) - before
    assert [t.name for t in started] == ["diffmorph-msssim"]
    meter.close()
    assert not [t for t in started if t.is_alive()]  # joined by close(), not left to die later
