"""Write ``tests/fixtures/warp_tfa.npz``: reference outputs of ``tfa.image.dense_image_warp``.

Run this ONLY in a reference environment that still has tensorflow-addons, e.g.::

    python -m venv /tmp/tfa \
        && /tmp/tfa/bin/pip install tensorflow==2.15.1 tensorflow-addons==0.23.0 \
        && /tmp/tfa/bin/python -m tools.make_warp_fixtures

It deliberately does not import ``diffmorph``: the fixture must record what tfa does,
independently of the port under test (``tests/core/test_warp.py`` compares against it).

For every case ``k`` the file holds, all float32:

* ``case{k}_image``  ``(N, H, W, C)``  the input image;
* ``case{k}_flow``   ``(N, H, W, 2)``  the flow (channel 0 = dy, channel 1 = dx);
* ``case{k}_weights`` ``(N, H, W, C)`` fixed random weights of the scalar loss;
* ``case{k}_out``    ``(N, H, W, C)``  ``tfa.image.dense_image_warp(image, flow)``;
* ``case{k}_grad_image``, ``case{k}_grad_flow``: gradients of
  ``loss = reduce_sum(out * weights)`` with respect to ``image`` and ``flow``.

plus ``case_names`` (one description per case, in case order), ``num_cases``,
``tf_version``, ``tfa_version`` and ``numpy_version`` (string arrays; load with the
default ``allow_pickle=False``).

The data come from ``numpy.random.default_rng(SEED)``, so rerunning the script gives
the same inputs; the outputs may differ in the last bits on another CPU.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_addons as tfa  # noqa: E402

from tools.benchlib import REPO  # noqa: E402  (paths only: diffmorph is not imported)

SEED = 20240521
OUT_PATH = str(REPO / "tests" / "fixtures" / "warp_tfa.npz")


def make_cases(rng: np.random.Generator):
    """Return a list of ``(name, image, flow)``; images in [0, 1), flows float32."""

    def image(shape):
        return rng.random(shape, dtype=np.float32)

    def uniform_flow(shape, low, high):
        n, h, w = shape[:3]
        return rng.uniform(low, high, size=(n, h, w, 2)).astype(np.float32)

    cases = []

    s = (1, 8, 8, 3)
    cases.append(("small flow, 1x8x8x3", image(s), uniform_flow(s, -1.5, 1.5)))

    s = (2, 7, 11, 5)
    cases.append(("medium flow, non-square, batch 2, 2x7x11x5", image(s), uniform_flow(s, -3.0, 3.0)))

    s = (1, 16, 9, 1)
    n, h, w, _ = s
    flow = np.empty((n, h, w, 2), np.float32)  # +-3x the size along each axis: mostly outside
    flow[..., 0] = rng.uniform(-3 * h, 3 * h, size=(n, h, w))
    flow[..., 1] = rng.uniform(-3 * w, 3 * w, size=(n, h, w))
    cases.append(("large flow, +-3x size, 1x16x9x1", image(s), flow))

    s = (1, 32, 32, 8)
    cases.append(("medium flow, 1x32x32x8", image(s), uniform_flow(s, -4.0, 4.0)))

    s = (1, 2, 2, 1)
    cases.append(("minimum size, 1x2x2x1", image(s), uniform_flow(s, -3.0, 3.0)))

    s = (1, 8, 8, 3)
    flow = rng.integers(-3, 4, size=(1, 8, 8, 2)).astype(np.float32)
    flow[0, :2] = 0.0  # two rows of exactly zero flow
    flow[0, -1, :, 1] = 10.0  # integer queries far outside (clamped)
    cases.append(("exact integer flow incl. zeros, 1x8x8x3", image(s), flow))

    s = (2, 7, 11, 5)
    flow = rng.integers(-30, 31, size=(2, 7, 11, 2)).astype(np.float32)
    flow[1] = 0.0  # second batch item: zero flow everywhere
    cases.append(("integer flow incl. far outside and all-zero item, 2x7x11x5", image(s), flow))

    s = (1, 6, 5, 2)
    flow = (rng.integers(-4, 5, size=(1, 6, 5, 2)) + 0.5).astype(np.float32)
    cases.append(("half-integer flow, 1x6x5x2", image(s), flow))

    return cases


def run_tfa(image: np.ndarray, flow: np.ndarray, weights: np.ndarray):
    image_t = tf.constant(image)
    flow_t = tf.constant(flow)
    with tf.GradientTape() as tape:
        tape.watch([image_t, flow_t])
        out = tfa.image.dense_image_warp(image_t, flow_t)
        loss = tf.reduce_sum(out * tf.constant(weights))
    grad_image, grad_flow = tape.gradient(loss, [image_t, flow_t])
    return out.numpy(), grad_image.numpy(), grad_flow.numpy()


def main() -> int:
    rng = np.random.default_rng(SEED)
    arrays = {}
    names = []
    for k, (name, image, flow) in enumerate(make_cases(rng)):
        weights = rng.standard_normal(image.shape).astype(np.float32)
        out, grad_image, grad_flow = run_tfa(image, flow, weights)
        assert out.shape == image.shape and grad_flow.shape == flow.shape
        for key, value in [
            ("image", image),
            ("flow", flow),
            ("weights", weights),
            ("out", out),
            ("grad_image", grad_image),
            ("grad_flow", grad_flow),
        ]:
            arrays[f"case{k}_{key}"] = np.asarray(value, dtype=np.float32)
        names.append(name)
        print(f"case{k}: {name}: image {image.shape}, |out| max {np.abs(out).max():.4f}")
    arrays["case_names"] = np.array(names)
    arrays["num_cases"] = np.array(len(names), dtype=np.int64)
    arrays["tf_version"] = np.array(tf.__version__)
    arrays["tfa_version"] = np.array(tfa.__version__)
    arrays["numpy_version"] = np.array(np.__version__)
    path = os.path.normpath(OUT_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, **arrays)
    print(f"wrote {path} ({os.path.getsize(path)} bytes), tf {tf.__version__}, tfa {tfa.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
