"""The face benchmark (``tools/face_bench.py``): its geometry by hand (where a warp puts a
point, the classic thin-plate-spline warp), the portraits, and a tiny end-to-end run."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from diffmorph.core import faces


@pytest.fixture(scope="module")
def bench():
    return importlib.import_module("tools.face_bench")


def test_a_point_is_placed_where_the_backward_warp_shows_it(bench):
    flow = np.zeros((40, 50, 2), np.float32)
    flow[..., 0], flow[..., 1] = 4.0, -6.0  # (dy, dx) pixels
    # out(p) = in(p - 0.5 * flow): the input point (20, 10) shows at (20 - 3, 10 + 2)
    np.testing.assert_allclose(bench.placed(np.array([[20.0, 10.0]]), flow, 0.5), [[17.0, 12.0]], atol=1e-6)
    # a flow growing along x (dx = 0.2 * x): p = a + 0.5 * 0.2 * p, so p = a / 0.9
    flow[..., 0], flow[..., 1] = 0.0, 0.2 * np.arange(50)[None, :]
    np.testing.assert_allclose(bench.placed(np.array([[18.0, 5.0]]), flow, 0.5), [[20.0, 5.0]], atol=1e-3)


def test_the_classic_warp_moves_landmarks_onto_the_geometry(bench):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 80, 3)).astype(np.uint8)
    own = np.array([[20.0, 20.0], [60.0, 20.0], [40.0, 45.0], [30.0, 35.0]])
    np.testing.assert_array_equal(bench.tps_warp(image, own, own), image)  # the identity
    geometry = own + [3.0, -2.0]  # the landmarks moved by (3, -2); the border stays
    warped = bench.tps_warp(image, own, geometry)
    for (x, y), (gx, gy) in zip(own.astype(int), geometry.astype(int)):
        np.testing.assert_array_equal(warped[gy, gx], image[y, x])  # exact at the landmarks
    frame = bench.classic_frame(image, image, own, own, 0.5)
    np.testing.assert_array_equal(frame, image)


def test_the_portraits_are_256_squares(bench):
    for name in ("astronaut", "mirror", "hopper"):
        portrait = bench.portrait(name)
        assert portrait.shape == (256, 256, 3) and portrait.dtype == np.uint8
    np.testing.assert_array_equal(bench.portrait("mirror"), bench.portrait("astronaut")[:, ::-1])


@pytest.mark.slow
@pytest.mark.skipif(not faces.available(), reason="the faces extra is not installed")
def test_a_tiny_run_prints_every_way(bench, capsys):
    ways = ["faces", "classic"]
    assert bench.main(["--pairs", "astronaut-hopper", "--size", "32", "--train-steps", "2", "--ways", *ways]) == 0
    out = capsys.readouterr().out
    for way in ways:
        assert f"astronaut-hopper  {way}" in out
    assert "Xeon" in out or "CPU" in out
