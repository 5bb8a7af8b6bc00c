"""Tests of ``diffmorph.core.warp.dense_image_warp``: parity with tfa 0.23.0 and its semantics.

Convention under test: ``out[n, y, x, c] = image[n, y - flow[..., 0], x - flow[..., 1], c]``
(flow channel 0 = dy along rows, channel 1 = dx along columns, in pixels), bilinear,
with the border value outside the image.

The reference values in ``tests/fixtures/warp_tfa.npz`` were written by
``tools/make_warp_fixtures.py`` with TF 2.15.1 + tensorflow-addons 0.23.0. Their loss is
``reduce_sum(out * weights)`` with the stored ``weights``.

Every test runs against each entry of ``IMPLEMENTATIONS``; to test another warp with the
same signature, add one ``pytest.param`` there.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from conftest import FIXTURES  # noqa: E402
from diffmorph.core.warp import dense_image_warp, dense_image_warp_fast  # noqa: E402

IMPLEMENTATIONS = [
    pytest.param(dense_image_warp, id="eager"),
    pytest.param(tf.function(dense_image_warp, jit_compile=True), id="xla"),
    pytest.param(dense_image_warp_fast, id="fast-eager"),
    pytest.param(tf.function(dense_image_warp_fast, jit_compile=True), id="fast-xla"),
]

FIXTURE_PATH = FIXTURES / "warp_tfa.npz"
with np.load(FIXTURE_PATH) as _data:
    FIXTURE = {key: _data[key] for key in _data.files}
NUM_CASES = int(FIXTURE["num_cases"])
CASE_IDS = [f"case{k}" for k in range(NUM_CASES)]


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def warp(request):
    return request.param


def _run(warp, image, flow):
    out = warp(tf.constant(image, tf.float32), tf.constant(flow, tf.float32))
    return np.asarray(out)


def _run_with_grads(warp, image, flow, weights):
    image_t = tf.constant(image, tf.float32)
    flow_t = tf.constant(flow, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([image_t, flow_t])
        out = warp(image_t, flow_t)
        loss = tf.reduce_sum(out * tf.constant(weights, tf.float32))
    grad_image, grad_flow = tape.gradient(loss, [image_t, flow_t])
    return np.asarray(out), np.asarray(grad_image), np.asarray(grad_flow)


def _constant_flow(shape, dy, dx):
    n, h, w = shape[:3]
    flow = np.zeros((n, h, w, 2), np.float32)
    flow[..., 0] = dy
    flow[..., 1] = dx
    return flow


def _dyadic_image(rng, shape):
    """Values k/64 in [-4, 4]: every a + w * (b - a) with w in {0, 1} is then exact."""
    return (rng.integers(-256, 257, size=shape) / 64.0).astype(np.float32)


def _shift_reference(image, flow):
    """Integer-flow warp computed with numpy: clip the source indices (edge replication)."""
    n, h, w, _ = image.shape
    ys = np.arange(h)[None, :, None] - flow[..., 0].astype(np.int64)
    xs = np.arange(w)[None, None, :] - flow[..., 1].astype(np.int64)
    ys = np.clip(ys, 0, h - 1)
    xs = np.clip(xs, 0, w - 1)
    batch = np.arange(n)[:, None, None]
    return image[batch, ys, xs]


# ---------------------------------------------------------------------------------------
# Parity with tensorflow-addons 0.23.0
# ---------------------------------------------------------------------------------------


def test_fixture_provenance():
    assert str(FIXTURE["tfa_version"]) == "0.23.0"
    assert str(FIXTURE["tf_version"]).startswith("2.15")
    assert NUM_CASES >= 8
    shapes = {FIXTURE[f"case{k}_image"].shape for k in range(NUM_CASES)}
    assert {(1, 8, 8, 3), (2, 7, 11, 5), (1, 16, 9, 1), (1, 32, 32, 8), (1, 2, 2, 1)} <= shapes
    # The integer-flow case must pin tfa's zero flow-gradient where the weight is exactly 0.
    assert np.count_nonzero(FIXTURE["case5_grad_flow"] == 0) > 0


@pytest.mark.parametrize("case", range(NUM_CASES), ids=CASE_IDS)
def test_matches_tfa(warp, case):
    prefix = f"case{case}_"
    image, flow, weights = (FIXTURE[prefix + k] for k in ("image", "flow", "weights"))
    out, grad_image, grad_flow = _run_with_grads(warp, image, flow, weights)

    assert out.shape == image.shape and out.dtype == np.float32
    assert grad_image.shape == image.shape
    assert grad_flow.shape == flow.shape
    np.testing.assert_allclose(out, FIXTURE[prefix + "out"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(grad_image, FIXTURE[prefix + "grad_image"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(grad_flow, FIXTURE[prefix + "grad_flow"], rtol=0, atol=1e-4)


def test_integer_flow_zero_gradient_pattern(warp):
    """Where tfa's flow gradient is exactly 0 (weight clamped at 0), ours must be too."""
    for case in (5, 6):
        prefix = f"case{case}_"
        _, _, grad_flow = _run_with_grads(
            warp, FIXTURE[prefix + "image"], FIXTURE[prefix + "flow"], FIXTURE[prefix + "weights"]
        )
        expected = FIXTURE[prefix + "grad_flow"]
        np.testing.assert_array_equal(grad_flow == 0, expected == 0)


# ---------------------------------------------------------------------------------------
# Semantics pinned by hand
# ---------------------------------------------------------------------------------------


def test_zero_flow_is_identity(warp):
    rng = np.random.default_rng(0)
    image = _dyadic_image(rng, (2, 5, 7, 3))
    out = _run(warp, image, np.zeros((2, 5, 7, 2), np.float32))
    assert out.shape == image.shape
    np.testing.assert_array_equal(out, image)


def test_zero_flow_is_identity_arbitrary_values(warp):
    """Interior pixels are bit-exact; the last row/column go through a + 1 * (b - a)."""
    rng = np.random.default_rng(1)
    image = rng.standard_normal((1, 6, 5, 2)).astype(np.float32)
    out = _run(warp, image, np.zeros((1, 6, 5, 2), np.float32))
    np.testing.assert_array_equal(out[:, :-1, :-1], image[:, :-1, :-1])
    np.testing.assert_allclose(out, image, rtol=1e-6, atol=1e-6)


def test_impulse_moves_by_dy_dx(warp):
    """A 1 at (y=3, x=4) warped by dy=+1, dx=+2 lands at (4, 6): sign and channel order."""
    image = np.zeros((1, 9, 10, 2), np.float32)
    image[0, 3, 4, 1] = 1.0
    out = _run(warp, image, _constant_flow(image.shape, dy=1.0, dx=2.0))
    expected = np.zeros_like(image)
    expected[0, 4, 6, 1] = 1.0
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "dy, dx, target",
    [
        (0.0, 2.0, (3, 6)),  # dx alone moves along columns
        (0.0, -3.0, (3, 1)),
        (2.0, 0.0, (5, 4)),  # dy alone moves along rows
        (-1.0, 0.0, (2, 4)),
    ],
)
def test_single_axis_shift(warp, dy, dx, target):
    image = np.zeros((1, 8, 8, 1), np.float32)
    image[0, 3, 4, 0] = 1.0
    out = _run(warp, image, _constant_flow(image.shape, dy=dy, dx=dx))
    assert np.count_nonzero(out) == 1
    assert out[0, target[0], target[1], 0] == 1.0


@pytest.mark.parametrize(
    "dy, dx, source",
    [
        (0.0, 100.0, "first_col"),
        (0.0, -100.0, "last_col"),
        (100.0, 0.0, "first_row"),
        (-100.0, 0.0, "last_row"),
        (100.0, 100.0, "top_left"),
        (-1e4, -1e4, "bottom_right"),
    ],
)
def test_border_clamp(warp, dy, dx, source):
    rng = np.random.default_rng(2)
    image = _dyadic_image(rng, (2, 5, 6, 3))
    out = _run(warp, image, _constant_flow(image.shape, dy=dy, dx=dx))
    expected = {
        "first_col": np.broadcast_to(image[:, :, :1], image.shape),
        "last_col": np.broadcast_to(image[:, :, -1:], image.shape),
        "first_row": np.broadcast_to(image[:, :1], image.shape),
        "last_row": np.broadcast_to(image[:, -1:], image.shape),
        "top_left": np.broadcast_to(image[:, :1, :1], image.shape),
        "bottom_right": np.broadcast_to(image[:, -1:, -1:], image.shape),
    }[source]
    np.testing.assert_array_equal(out, expected)


def test_half_pixel_flow_hand_checked(warp):
    image = np.array([[0.0, 2.0, 4.0, 10.0], [1.0, 3.0, 7.0, 5.0], [8.0, 6.0, 2.0, 0.0]], np.float32)
    image = image[None, :, :, None]  # (1, 3, 4, 1)

    # dx = +0.5: sample half a pixel to the left; column 0 clamps to itself.
    out = _run(warp, image, _constant_flow(image.shape, dy=0.0, dx=0.5))[0, :, :, 0]
    np.testing.assert_allclose(out, [[0.0, 1.0, 3.0, 7.0], [1.0, 2.0, 5.0, 6.0], [8.0, 7.0, 4.0, 1.0]], atol=1e-6)

    # dy = -0.5: sample half a pixel below; the last row clamps to itself.
    out = _run(warp, image, _constant_flow(image.shape, dy=-0.5, dx=0.0))[0, :, :, 0]
    np.testing.assert_allclose(out, [[0.5, 2.5, 5.5, 7.5], [4.5, 4.5, 4.5, 2.5], [8.0, 6.0, 2.0, 0.0]], atol=1e-6)

    # dy = dx = -0.5: mean of the 2x2 block below-right.
    out = _run(warp, image, _constant_flow(image.shape, dy=-0.5, dx=-0.5))[0, :, :, 0]
    np.testing.assert_allclose(out, [[1.5, 4.0, 6.5, 7.5], [4.5, 4.5, 3.5, 2.5], [7.0, 4.0, 1.0, 0.0]], atol=1e-6)


def test_compute_gradient_numeric_vs_analytic(warp):
    rng = np.random.default_rng(3)
    shape = (1, 3, 4, 2)
    image = tf.constant(rng.standard_normal(shape), tf.float32)
    # Integer part in {-1, 0, 1}, fraction in [0.2, 0.8]: every query stays >= 0.2 px away
    # from an integer, so a 1e-2 finite difference never crosses a cell or clamp boundary.
    frac = rng.uniform(0.2, 0.8, size=shape[:3] + (2,))
    flow = tf.constant(rng.integers(-1, 2, size=frac.shape) + frac, tf.float32)

    theo, num = tf.test.compute_gradient(lambda f: warp(image, f), [flow], delta=1e-2)
    assert theo[0].shape == num[0].shape == (np.prod(shape), np.prod(flow.shape))
    assert np.abs(theo[0]).max() > 0.1  # the flow Jacobian is not trivially zero
    np.testing.assert_allclose(theo[0], num[0], rtol=0, atol=2e-3)

    theo, num = tf.test.compute_gradient(lambda im: warp(im, flow), [image], delta=1e-2)
    assert theo[0].shape == num[0].shape == (np.prod(shape), np.prod(shape))
    assert np.abs(theo[0]).max() > 0.1
    np.testing.assert_allclose(theo[0], num[0], rtol=0, atol=2e-3)


@pytest.mark.parametrize(
    "image_shape, flow_shape, match",
    [
        ((8, 8, 3), (8, 8, 2), "rank 4"),
        ((1, 8, 8, 3), (8, 8, 2), "rank 4"),
        ((1, 1, 8, 8, 3), (1, 8, 8, 2), "rank 4"),
        ((1, 8, 8, 3), (1, 8, 8, 3), "2 channels"),
        ((1, 8, 8, 3), (1, 8, 8, 1), "2 channels"),
        ((1, 8, 8, 3), (1, 8, 7, 2), "does not match"),
        ((1, 8, 8, 3), (1, 9, 8, 2), "does not match"),
        ((1, 1, 8, 3), (1, 1, 8, 2), ">= 2"),
        ((1, 8, 1, 3), (1, 8, 1, 2), ">= 2"),
        ((1, 1, 1, 1), (1, 1, 1, 2), ">= 2"),
    ],
)
def test_bad_shapes_raise(warp, image_shape, flow_shape, match):
    image = np.zeros(image_shape, np.float32)
    flow = np.zeros(flow_shape, np.float32)
    with pytest.raises(ValueError, match=match):
        warp(image, flow)


# ---------------------------------------------------------------------------------------
# Property tests
# ---------------------------------------------------------------------------------------

# A fixed set of small shapes bounds the number of XLA compilations per test.
SHAPES = [(1, 2, 2, 1), (2, 3, 5, 2), (1, 5, 4, 3), (1, 6, 6, 1), (2, 4, 2, 1)]
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def image_and_flow(draw, values, flows):
    shape = draw(st.sampled_from(SHAPES))
    image = draw(hnp.arrays(np.float32, shape, elements=values))
    flow = draw(hnp.arrays(np.float32, shape[:3] + (2,), elements=flows))
    return image, flow


FINITE_VALUES = st.floats(-1e3, 1e3, width=32)
DYADIC_VALUES = st.integers(-256, 256).map(lambda k: k / 64.0)
INT_FLOWS = st.integers(-8, 8).map(float)
FINITE_FLOWS = st.floats(-1e4, 1e4, width=32)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_property_zero_flow_identity(warp, data):
    shape = data.draw(st.sampled_from(SHAPES))
    image = data.draw(hnp.arrays(np.float32, shape, elements=DYADIC_VALUES))
    out = _run(warp, image, np.zeros(shape[:3] + (2,), np.float32))
    np.testing.assert_array_equal(out, image)


@PROPERTY_SETTINGS
@given(case=image_and_flow(DYADIC_VALUES, INT_FLOWS))
def test_property_integer_flow_is_clipped_shift(warp, case):
    image, flow = case
    out = _run(warp, image, flow)
    assert out.shape == image.shape
    np.testing.assert_array_equal(out, _shift_reference(image, flow))


@PROPERTY_SETTINGS
@given(case=image_and_flow(FINITE_VALUES, INT_FLOWS))
def test_property_integer_flow_arbitrary_values(warp, case):
    image, flow = case
    out = _run(warp, image, flow)
    np.testing.assert_allclose(out, _shift_reference(image, flow), rtol=1e-5, atol=1e-3)


@PROPERTY_SETTINGS
@given(case=image_and_flow(FINITE_VALUES, FINITE_FLOWS), seed=st.integers(0, 2**32 - 1))
def test_property_gradients_finite(warp, case, seed):
    image, flow = case
    weights = np.random.default_rng(seed).standard_normal(image.shape).astype(np.float32)
    out, grad_image, grad_flow = _run_with_grads(warp, image, flow, weights)
    assert grad_image.shape == image.shape and grad_flow.shape == flow.shape
    assert np.all(np.isfinite(out))
    assert np.all(np.isfinite(grad_image))
    assert np.all(np.isfinite(grad_flow))


@PROPERTY_SETTINGS
@given(case=image_and_flow(FINITE_VALUES, FINITE_FLOWS))
def test_property_output_within_image_range(warp, case):
    image, flow = case
    out = _run(warp, image, flow)
    lo, hi = float(image.min()), float(image.max())
    slack = 1e-5 * max(1.0, abs(lo), abs(hi))  # float32 rounding of a + w * (b - a)
    assert out.min() >= lo - slack
    assert out.max() <= hi + slack


@pytest.mark.parametrize("case", CASE_IDS)
def test_fast_warp_constant_channels_match_tfa(case):
    """``dense_image_warp_fast(image, flow, constant=...)``: the constant channels are
    warped by the same taps and feed the flow gradient, but get no gradient."""
    k = int(case[4:])
    image, flow = FIXTURE[f"case{k}_image"], FIXTURE[f"case{k}_flow"]
    weights = FIXTURE[f"case{k}_weights"]
    keep = max(1, image.shape[-1] // 2)
    image_t, flow_t = tf.constant(image), tf.constant(flow)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([image_t, flow_t])
        head, tail = image_t[..., :keep], image_t[..., keep:]
        warped, rest = dense_image_warp_fast(head, flow_t, constant=tail)
        out = tf.concat([warped, rest], -1)
        loss = tf.reduce_sum(out * weights)
    np.testing.assert_allclose(out.numpy(), FIXTURE[f"case{k}_out"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(tape.gradient(loss, flow_t).numpy(), FIXTURE[f"case{k}_grad_flow"], atol=1e-4, rtol=0)
    grad_image = tape.gradient(loss, image_t).numpy()
    np.testing.assert_allclose(grad_image[..., :keep], FIXTURE[f"case{k}_grad_image"][..., :keep], atol=1e-4, rtol=0)
    if image.shape[-1] > keep:
        assert not np.any(grad_image[..., keep:]), "constant channels must get no gradient"
