"""Tests of the loss and the Adam loop (``diffmorph.core.optimise``) at a small working size."""

from __future__ import annotations

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from diffmorph.config import MorphConfig  # noqa: E402
from diffmorph.core.model import build_net_input  # noqa: E402
from diffmorph.core.optimise import (  # noqa: E402
    LEGACY_KEYS,
    NonFiniteLossError,
    StepRecord,
    Trainer,
    is_snapshot_step,
    morph_loss,
    morph_loss_fused,
    optimise,
)
from diffmorph.core.warp import dense_image_warp  # noqa: E402

S = 64
TRAIN_STEPS = 60


def _config(**changes):
    return MorphConfig(**{"size": S, "seed": 0, **changes})


# ----------------------------------------------------------------------------- the loss


def _random_maps(seed=0, scale=0.4):
    rng = np.random.default_rng(seed)
    return rng.normal(0, scale, (1, S, S, 16)).astype(np.float32)


def _spec_loss(maps, net_input, a, b, config):
    """The loss as the reference describes it, written independently of diffmorph.core.maps."""
    px = S * config.warp_scale  # pixels per flow unit at the working size

    def direction(image, maps8):
        mult, add, flow = maps8[..., 0:3], maps8[..., 3:6], maps8[..., 6:8]
        gain = np.maximum(0.1, 1 + mult * config.mult_scale)
        offset = add * 2 * config.add_scale
        colour = (image + offset) * gain if config.add_first else image * gain + offset
        return np.asarray(
            dense_image_warp(tf.constant(colour, tf.float32), tf.constant(flow * px, tf.float32)), np.float64
        )

    a2b = direction(a, maps[..., 0:8])
    b2a = direction(b, maps[..., 8:16])
    there = dense_image_warp(tf.constant(net_input), tf.constant(maps[..., 6:8] * px))
    back = np.asarray(dense_image_warp(there, tf.constant(maps[..., 14:16] * px)), np.float64)

    def mse(x, y):
        return np.mean((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2)

    return 1.0 * mse(net_input, back) + 0.3 * mse(a2b, b) + 0.3 * mse(b2a, a)


@pytest.mark.parametrize("add_first", [False, True])
def test_loss_plain_fused_and_spec_agree(toy_working, add_first):
    a, b = toy_working
    config = _config(add_first=add_first)
    net_input = build_net_input(a, b)
    maps = _random_maps()
    plain = float(morph_loss(tf.constant(maps), tf.constant(net_input), tf.constant(a), tf.constant(b), config))
    fused = float(morph_loss_fused(tf.constant(maps), tf.constant(net_input), tf.constant(a), tf.constant(b), config))
    spec = _spec_loss(maps, net_input, a, b, config)
    assert plain > 0.01
    assert fused == pytest.approx(plain, rel=1e-6)
    assert plain == pytest.approx(spec, rel=1e-5)


def test_loss_add_first_changes_the_value(toy_working):
    a, b = toy_working
    net_input = build_net_input(a, b)
    maps = tf.constant(_random_maps(1))
    plain = float(morph_loss(maps, net_input, a, b, _config()))
    first = float(morph_loss(maps, net_input, a, b, _config(add_first=True)))
    assert abs(plain - first) > 1e-4


def test_loss_of_zero_maps(toy_working):
    """Zero maps: no warp, no colour change, so only the image terms remain."""
    a, b = toy_working
    net_input = build_net_input(a, b)
    zero = tf.zeros((1, S, S, 16))
    expected = 0.3 * np.mean((a - b) ** 2) * 2
    for fn in (morph_loss, morph_loss_fused):
        assert float(fn(zero, net_input, a, b, _config())) == pytest.approx(expected, rel=1e-5)


# ----------------------------------------------------------------------------- snapshot schedule


def _snapshots(last):
    return {step for step in range(1, last + 1) if is_snapshot_step(step, last)}


def test_snapshot_schedule_of_the_original():
    expected = set(range(10, 100, 10)) | set(range(100, 1000, 100)) | {1000, 2000}
    assert _snapshots(2000) == expected
    assert _snapshots(1000) == expected - {2000}
    assert _snapshots(2500) == expected | {2500}


@pytest.mark.parametrize(
    "last, expected",
    [
        (12, {10, 12}),
        (5, {5}),
        (1, {1}),
        (10, {10}),
        (100, set(range(10, 101, 10))),
        (105, set(range(10, 101, 10)) | {105}),
    ],
)
def test_snapshot_schedule_plus_last(last, expected):
    assert _snapshots(last) == expected


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(toy_working):
    """A 60-step run at size 64, seed 0 (fast path), recording what optimise() yields."""
    a, b = toy_working
    trainer = Trainer(a, b, _config())
    progress, live_maps = [], {}
    for p in optimise(trainer, TRAIN_STEPS):
        progress.append(p)
        if p.maps_low is not None:
            live_maps[p.step] = trainer.maps_low()
    return trainer, progress, live_maps


def test_training_reduces_the_loss(trained):
    _, progress, _ = trained
    losses = [p.loss for p in progress]
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.7 * losses[0]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_optimize_progress(trained):
    trainer, progress, live_maps = trained
    assert all(isinstance(p, StepRecord) for p in progress)
    assert [p.step for p in progress] == list(range(1, TRAIN_STEPS + 1))
    assert trainer.step_count == TRAIN_STEPS
    running = 0.0
    for p in progress:
        running += p.loss
        assert p.mean_loss == pytest.approx(running / p.step, rel=1e-9)
    with_maps = {p.step for p in progress if p.maps_low is not None}
    assert with_maps == _snapshots(TRAIN_STEPS) == {10, 20, 30, 40, 50, 60}
    for p in progress:
        if p.maps_low is not None:
            assert p.maps_low.shape == (1, 84, 84, 16)
            assert p.maps_low.dtype == np.float32
            # the maps after this step's update
            np.testing.assert_array_equal(p.maps_low, live_maps[p.step])
    assert not np.array_equal(progress[9].maps_low, progress[-1].maps_low)
    final = trainer.maps()
    assert final.shape == (1, S, S, 16)
    np.testing.assert_allclose(final, tf.image.resize(progress[-1].maps_low, [S, S]).numpy(), atol=1e-6)


def test_optimize_on_finished_trainer_yields_nothing(trained):
    trainer, _, _ = trained
    assert list(optimise(trainer, TRAIN_STEPS)) == []


def _losses(trainer, n):
    return [trainer.step() for _ in range(n)]


@pytest.fixture(scope="module")
def fast_ten(toy_working):
    """A second fast-path trainer with seed 0, 10 steps: (losses, low maps)."""
    trainer = Trainer(*toy_working, _config())
    losses = _losses(trainer, 10)
    return losses, trainer.maps_low()


def test_same_seed_is_repeatable(trained, fast_ten):
    _, progress, _ = trained
    losses, low = fast_ten
    assert losses == [p.loss for p in progress[:10]]
    np.testing.assert_array_equal(low, progress[9].maps_low)


def test_different_seed_differs(toy_working, trained):
    _, progress, _ = trained
    trainer = Trainer(*toy_working, MorphConfig(size=S, seed=1, plain=True))
    losses = _losses(trainer, 3)
    assert losses != [p.loss for p in progress[:3]]
    assert abs(losses[0] - progress[0].loss) > 1e-6


def test_plain_and_fast_paths_agree(toy_working, fast_ten):
    fast_losses, fast_low = fast_ten
    trainer = Trainer(*toy_working, _config(plain=True))
    plain_losses = _losses(trainer, 10)
    np.testing.assert_allclose(plain_losses, fast_losses, rtol=1e-4)
    np.testing.assert_allclose(trainer.maps_low(), fast_low, rtol=1e-3, atol=1e-4)


def test_state_round_trip(toy_working):
    config = _config(plain=True)
    first = Trainer(*toy_working, config)
    _losses(first, 5)
    state = first.state()
    assert int(state["step"]) == 5
    second = Trainer(*toy_working, config.replace(seed=7))  # other weights until loaded
    second.load_state(state)
    assert second.step_count == 5
    assert second.loss_sum == pytest.approx(first.loss_sum, rel=1e-12)
    np.testing.assert_array_equal(second.maps_low(), first.maps_low())
    assert _losses(first, 3) == _losses(second, 3)
    np.testing.assert_array_equal(second.maps_low(), first.maps_low())
    # optimise() resumes from the loaded step count
    steps = [p.step for p in optimise(second, 10)]
    assert steps == [9, 10]


def test_state_keys_are_stable_variable_names(toy_working):
    first = Trainer(*toy_working, _config(plain=True)).state()
    second = Trainer(*toy_working, _config(plain=True, seed=3)).state()  # a second net in this process
    assert sorted(first) == sorted(second)
    assert first["map_net/conv1/kernel"].shape == (5, 5, 8, 64)
    assert first["map_net/conv_out/bias"].shape == (16,)
    assert first["adam/map_net_conv2_kernel_momentum"].shape == (5, 5, 64, 64)
    assert first["adam/map_net_conv2_kernel_velocity"].shape == (5, 5, 64, 64)
    assert "adam/iteration" in first and not any(key.endswith("learning_rate") for key in first)
    assert not any(key.startswith(("net_", "adam_")) for key in first)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update({"map_net/conv1/kernel": np.zeros((3, 3, 8, 64), np.float32)}), "shape"),
        (lambda s: s.pop("map_net/conv2/bias"), "no map_net/conv2/bias"),
        (lambda s: s.pop("adam/map_net_conv1_kernel_velocity"), "velocity"),
        (lambda s: s.update({"step": np.asarray(-1)}), "step"),
        (lambda s: s.update({"step": np.asarray([1, 2])}), "step"),
    ],
)
def test_load_state_refuses_a_mismatch(toy_working, change, message):
    trainer = Trainer(*toy_working, _config(plain=True))
    state = dict(trainer.state())
    change(state)
    with pytest.raises(ValueError, match=message):
        trainer.load_state(state)


def test_legacy_positional_checkpoint_loads_by_name(toy_working):
    """diffmorph 0.1 keyed variables by position; the legacy table maps them to names."""
    config = _config(plain=True)
    first = Trainer(*toy_working, config)
    _losses(first, 4)
    named = first.state()
    legacy = {key: named[name] for key, name in LEGACY_KEYS.items() if name in named}
    legacy["adam_1"] = np.asarray(config.learning_rate, np.float32)  # 0.1 also stored the learning rate
    legacy.update(step=named["step"], loss_sum=named["loss_sum"])
    assert sorted(legacy) == sorted([*LEGACY_KEYS, "loss_sum", "step"])
    # the positional order is Keras 3's: each conv's kernel then bias, Adam's momentum then velocity
    assert legacy["net_4"].shape == (5, 5, 64, 16) and legacy["adam_2"].shape == (5, 5, 8, 64)
    second = Trainer(*toy_working, config.replace(seed=9))
    second.load_state(legacy)
    assert second.step_count == 4
    assert _losses(first, 3) == _losses(second, 3)


def test_trainer_refuses_wrong_shapes(toy_working):
    a, b = toy_working
    with pytest.raises(ValueError):
        Trainer(a[:, :32, :32], b[:, :32, :32], _config())


def test_huge_scales_raise_non_finite_loss(toy_working):
    trainer = Trainer(*toy_working, _config(plain=True, add_scale=1e38, mult_scale=1e38))
    seen = []
    with pytest.raises(NonFiniteLossError) as info:
        for p in optimise(trainer, 5):
            seen.append(p)
    assert seen == []  # the very first step already fails
    message = str(info.value)
    assert "step 1" in message
    assert "scale" in message
    assert "1e+38" in message
    assert "add" in message and "mult" in message and "warp" in message


def test_nan_loss_raises(toy_working, monkeypatch):
    trainer = Trainer(*toy_working, _config(plain=True))
    calls = []

    def fake_step(self):
        calls.append(1)
        self.step_count += 1
        return float("nan") if len(calls) == 3 else 0.5

    monkeypatch.setattr(Trainer, "step", fake_step)
    seen = []
    with pytest.raises(NonFiniteLossError, match="nan"):
        for p in optimise(trainer, 10):
            seen.append(p.step)
    assert seen == [1, 2]


# ----------------------------------------------------------------------------- gradients
# Adam's update is nearly invariant to the gradient's scale, so matching loss curves
# alone would not catch a fast path whose gradient is off by a factor: compare the
# gradients themselves.


def _loss_grad(fn, maps, net_input, a, b, config):
    maps = tf.constant(maps)
    with tf.GradientTape() as tape:
        tape.watch(maps)
        loss = fn(maps, tf.constant(net_input), tf.constant(a), tf.constant(b), config)
    return float(loss), tape.gradient(loss, maps).numpy()


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "xla"])
def test_fused_loss_gradient_matches_plain(toy_working, jit):
    a, b = toy_working
    config = _config()
    net_input = build_net_input(a, b)
    maps = _random_maps(2)
    plain_loss, plain_grad = _loss_grad(morph_loss, maps, net_input, a, b, config)
    fused = tf.function(morph_loss_fused, jit_compile=True) if jit else morph_loss_fused
    fused_loss, fused_grad = _loss_grad(fused, maps, net_input, a, b, config)
    assert fused_loss == pytest.approx(plain_loss, rel=1e-5)
    assert np.abs(plain_grad).max() > 0
    for name, channels in (("mult", [0, 1, 2, 8, 9, 10]), ("add", [3, 4, 5, 11, 12, 13]), ("flow", [6, 7, 14, 15])):
        p, f = plain_grad[..., channels], fused_grad[..., channels]
        assert np.abs(p).max() > 0, name
        np.testing.assert_allclose(f, p, rtol=1e-3, atol=1e-4 * np.abs(p).max(), err_msg=name)


def test_fast_upsampler_matches_resize():
    from diffmorph.core import model

    rng = np.random.default_rng(4)
    low = tf.constant(rng.normal(0, 1, (1, 84, 84, 16)).astype(np.float32))
    weights = tf.constant(rng.normal(0, 1, (1, S, S, 16)).astype(np.float32))
    up = model.FastUpsampler(84, S)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(low)
        fast = up(low)
        reference = model.upsample_maps(low, S)
        fast_loss = tf.reduce_sum(fast * weights)
        reference_loss = tf.reduce_sum(reference * weights)
    np.testing.assert_allclose(fast.numpy(), reference.numpy(), atol=1e-5)
    np.testing.assert_allclose(
        tape.gradient(fast_loss, low).numpy(), tape.gradient(reference_loss, low).numpy(), rtol=1e-4, atol=1e-4
    )


def test_fast_trainer_gradient_matches_plain(toy_working):
    """The whole fast step (upsample, fused loss, chained gradient) against the plain one.

    After one Adam step from the same weights, Adam's first moment is ``0.1 * gradient``
    for every variable, so comparing the moments compares the gradients.
    """
    moments = {}
    for fast in (False, True):
        trainer = Trainer(*toy_working, _config(plain=not fast))
        trainer.step()
        moments[fast] = [np.asarray(v) for v in trainer.optimizer.variables if v.path.endswith("_momentum")]
    assert len(moments[False]) == len(moments[True]) == 6
    for p, f in zip(moments[False], moments[True]):
        assert np.abs(p).max() > 0
        np.testing.assert_allclose(f, p, rtol=1e-3, atol=1e-4 * np.abs(p).max())
