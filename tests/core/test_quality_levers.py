"""Tests of the opt-in quality lever (the learning-rate schedule) and the presets.

The faithful defaults must stay the original's: the Trainer follows the specification's loop
(docs/algorithm.md) written out here in plain TensorFlow, and neutral lever values change no
bit; the schedule is checked
against its closed form; the ``best`` preset runs end to end through Trainer and
FrameRenderer.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from diffmorph.config import PRESETS, MorphConfig, preset_config
from diffmorph.core.optimise import Trainer, learning_rate_schedule, optimise
from diffmorph.core.render import FrameRenderer, to_working

S = 32


# ----------------------------------------------------------------------------- config and presets


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"lr_schedule": "linear"}, "lr_schedule"),
        ({"lr_schedule": None}, "lr_schedule"),
        ({"lr_schedule": "Cosine"}, "lr_schedule"),
        ({"lr_schedule": 1}, "lr_schedule"),
    ],
)
def test_new_fields_are_validated(changes, field):
    with pytest.raises(ValueError, match=f"^{field} must"):
        MorphConfig(**changes)
    with pytest.raises(ValueError, match=f"^{field} must"):
        preset_config("best", **changes)


def test_new_fields_default_to_the_original():
    config = MorphConfig()
    assert config.lr_schedule == "constant"
    assert preset_config("faithful") == config
    assert PRESETS["faithful"] == {}


def test_preset_config_explicit_settings_win():
    best = preset_config("best")
    assert best != MorphConfig()
    for name, value in PRESETS["best"].items():
        assert getattr(best, name) == value
    mine = preset_config("best", size=64, learning_rate=0.0005, mult_floor=0.1)
    assert (mine.size, mine.learning_rate, mine.mult_floor) == (64, 0.0005, 0.1)
    assert mine.lr_schedule == best.lr_schedule == "cosine"  # not given: the preset's value
    with pytest.raises(ValueError, match="^mult_floor must"):
        preset_config("best", mult_floor=-1.0)


def test_preset_config_refuses_unknown_names_and_settings():
    with pytest.raises(ValueError, match="preset must be one of faithful, best") as info:
        preset_config("fastest")
    assert "'fastest'" in str(info.value)
    with pytest.raises(ValueError, match="unknown setting 'sharpness'"):
        preset_config("best", sharpness=2)


# ----------------------------------------------------------------------------- closed forms


def test_cosine_learning_rate_at_given_steps():
    config = MorphConfig(size=S, train_steps=200, learning_rate=0.002, lr_schedule="cosine")
    schedule = learning_rate_schedule(config)
    for step in (0, 1, 50, 100, 150, 199):
        expected = 0.002 * 0.5 * (1 + math.cos(math.pi * step / 200))
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5, abs=1e-10)
    assert float(schedule(100)) == pytest.approx(0.001, rel=1e-5)
    assert learning_rate_schedule(MorphConfig(size=S)) == 0.0002  # constant: a plain number, as before


def test_trainer_uses_the_schedule(toy_working):
    config = MorphConfig(size=64, seed=0, train_steps=8, learning_rate=0.002, lr_schedule="cosine")
    trainer = Trainer(*toy_working, config)
    for _ in range(3):
        trainer.step()
    expected = 0.002 * 0.5 * (1 + math.cos(math.pi * 3 / 8))  # the rate of the next (4th) update
    assert float(trainer.optimizer.learning_rate) == pytest.approx(expected, rel=1e-5)


def test_resumed_trainer_continues_the_schedule(toy_working):
    config = MorphConfig(size=64, seed=0, train_steps=10, learning_rate=0.002, lr_schedule="cosine", plain=True)
    first = Trainer(*toy_working, config)
    for _ in range(4):
        first.step()
    second = Trainer(*toy_working, config.replace(seed=5))
    second.load_state(first.state())
    expected = 0.002 * 0.5 * (1 + math.cos(math.pi * 4 / 10))
    assert float(second.optimizer.learning_rate) == pytest.approx(expected, rel=1e-5)
    assert [first.step() for _ in range(2)] == [second.step() for _ in range(2)]


def test_schedule_changes_the_updates_not_the_first_loss(toy_working):
    """Same weights and the same first rate (cos 0 = 1): the first two losses agree; the second update's
    rate is lower, so the third loss differs."""
    a, b = (x[:, :S, :S] for x in toy_working)
    constant = Trainer(a, b, MorphConfig(size=S, seed=0, learning_rate=0.002, train_steps=20))
    cosine = Trainer(a, b, MorphConfig(size=S, seed=0, learning_rate=0.002, train_steps=20, lr_schedule="cosine"))
    assert [constant.step() for _ in range(2)] == [cosine.step() for _ in range(2)]
    assert constant.step() != cosine.step()


# ----------------------------------------------------------------------------- faithful unchanged


def spec_warp(image, flow):
    """docs/algorithm.md, "dense_image_warp semantics", in plain TensorFlow ops: output[n, y, x] =
    image[n, y - flow[..., 0], x - flow[..., 1]], bilinear; the 2 x 2 neighbourhood clamped inside."""
    n, h, w, c = image.shape
    rows, cols = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32), indexing="ij")

    def corner_and_weight(query, size):
        corner = tf.clip_by_value(tf.floor(query), 0.0, size - 2.0)
        return tf.cast(corner, tf.int32), tf.clip_by_value(query - corner, 0.0, 1.0)[..., None]

    y0, wy = corner_and_weight(rows - flow[..., 0], h)
    x0, wx = corner_and_weight(cols - flow[..., 1], w)
    flat = tf.reshape(image, [n, h * w, c])

    def pixels(y, x):  # (n, h, w, c)
        return tf.gather(flat, y * w + x, batch_dims=1)

    top = pixels(y0, x0) + wx * (pixels(y0, x0 + 1) - pixels(y0, x0))
    bottom = pixels(y0 + 1, x0) + wx * (pixels(y0 + 1, x0 + 1) - pixels(y0 + 1, x0))
    return top + wy * (bottom - top)


def spec_loss(maps, net_input, a, b):
    """docs/algorithm.md, "Idea" and "Loss and optimiser", with the original's constants written here
    (m_s = a_s = 0.4, w_s = 0.05, mult floor 0.1, weights 1.0 and 0.3): maps (1, S, S, 16)."""
    flow_scale = S * 0.05

    def direction(image, group):  # channels 0:3 mult, 3:6 add, 6:8 flow
        mult, add, flow = group[..., 0:3], group[..., 3:6], group[..., 6:8] * flow_scale
        return spec_warp(image * tf.maximum(0.1, 1 + mult * 0.4) + add * 2 * 0.4, flow), flow

    a2b, flow_ab = direction(a, maps[..., 0:8])
    b2a, flow_ba = direction(b, maps[..., 8:16])
    back = spec_warp(spec_warp(net_input, flow_ab), flow_ba)

    def mse(x, y):
        return tf.reduce_mean(tf.square(x - y))

    return 1.0 * mse(net_input, back) + 0.3 * mse(a2b, b) + 0.3 * mse(b2a, a)


def test_faithful_trainer_is_the_specification_loop(toy_working):
    """Plain path, default settings: the same losses and maps as the specification's loop written out
    here in plain TensorFlow (docs/algorithm.md: the net input, the net, the bilinear upsample, the
    warp, the loss, Adam(2e-4) with Keras's defaults). Only the initial weights come from the Trainer.
    Equal to float rounding (the order of operations differs: losses within 2e-10 here); a wrong detail
    (a scale, a channel, a flow sign) moves them by orders of magnitude more."""
    a, b = (x[:, :S, :S] for x in toy_working)
    trainer = Trainer(a, b, MorphConfig(size=S, seed=0, plain=True))
    weights = [tf.Variable(v.numpy()) for v in trainer.net.trainable_variables]  # kernel, bias x 3
    assert [tuple(w.shape) for w in weights] == [(5, 5, 8, 64), (64,), (5, 5, 64, 64), (64,), (5, 5, 64, 16), (16,)]
    losses = [trainer.step() for _ in range(4)]

    # "Net input": a grid (channel 0 the column, 1 the row, in [-1, 1]) and A * 0.1, B * 0.1
    line = np.linspace(-1, 1, S, dtype=np.float32)
    grid = np.stack(np.meshgrid(line, line, indexing="xy"), axis=-1)[None]  # [..., 0] varies along columns
    net_input = tf.constant(np.concatenate([grid, a * 0.1, b * 0.1], axis=-1))
    a, b = tf.constant(a), tf.constant(b)
    small = tf.image.resize(net_input, [96, 96])  # bilinear, no antialias

    def net():  # "The net": three 5x5 'valid' convolutions, LeakyReLU(0.2) between them; (1, 84, 84, 16)
        x = small
        for k in range(3):
            x = tf.nn.bias_add(tf.nn.conv2d(x, weights[2 * k], 1, "VALID"), weights[2 * k + 1])
            x = tf.nn.leaky_relu(x, 0.2) if k < 2 else x
        return x

    moments = [(tf.Variable(tf.zeros_like(w)), tf.Variable(tf.zeros_like(w))) for w in weights]
    count = tf.Variable(0.0)

    @tf.function
    def step():  # Adam: learning rate 2e-4, beta 0.9 / 0.999, epsilon 1e-7 (Keras's defaults)
        with tf.GradientTape() as tape:
            loss = spec_loss(tf.image.resize(net(), [S, S]), net_input, a, b)
        count.assign_add(1.0)
        rate = 0.0002 * tf.sqrt(1 - tf.pow(0.999, count)) / (1 - tf.pow(0.9, count))
        for w, g, (m, v) in zip(weights, tape.gradient(loss, weights), moments):
            m.assign_add((g - m) * (1 - 0.9))
            v.assign_add((tf.square(g) - v) * (1 - 0.999))
            w.assign_sub((m * rate) / (tf.sqrt(v) + 1e-7))
        return loss

    spec = [float(step()) for _ in range(4)]
    assert losses == pytest.approx(spec, rel=1e-6, abs=0)
    np.testing.assert_allclose(trainer.maps_low(), net().numpy(), rtol=0, atol=2e-6)  # seen: 3e-7
    assert len(set(spec)) == 4  # the loop moves: each step's loss differs


def test_neutral_lever_values_change_nothing(toy_working):
    """Fast path: the new field at its neutral value gives the default run, bit for bit."""
    a, b = (x[:, :S, :S] for x in toy_working)
    default = Trainer(a, b, MorphConfig(size=S, seed=0))
    neutral = Trainer(a, b, MorphConfig(size=S, seed=0, lr_schedule="constant"))
    assert [default.step() for _ in range(4)] == [neutral.step() for _ in range(4)]
    np.testing.assert_array_equal(default.maps_low(), neutral.maps_low())


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_tiny_best_run_end_to_end(toy_pair, fast):
    source, target = toy_pair
    config = preset_config("best", size=S, train_steps=6, frames=3, seed=0, plain=not fast)
    trainer = Trainer(to_working(source, S), to_working(target, S), config)
    progress = list(optimise(trainer, config.train_steps))
    assert [p.step for p in progress] == list(range(1, 7))
    assert all(math.isfinite(p.loss) for p in progress)
    maps_low = trainer.maps_low()
    assert maps_low.shape == (1, config.map_size - 12, config.map_size - 12, 16)
    assert np.isfinite(maps_low).all()
    frames = list(FrameRenderer(source, target, maps_low, config).frames())
    assert [f.alpha for f in frames] == [0.0, 0.5, 1.0]
    assert all(f.image.shape == source.shape and f.image.dtype == np.uint8 for f in frames)
    np.testing.assert_array_equal(frames[0].image, source)
    np.testing.assert_array_equal(frames[-1].image, target)


# ----------------------------------------------------------------------------- command line


@pytest.mark.slow
def test_cli_preset_best_records_its_settings_and_explicit_flags_win(tmp_path):
    from conftest import TOY_A, TOY_B, read_rgb, run_cli
    from diffmorph.io.mapsfile import load_maps

    out = tmp_path / "best"
    flags = ["-s", TOY_A, "-t", TOY_B, "--size", S, "-e", 3, "--seed", 0, "--steps", 3, "-q", "--formats", "frames"]
    run = run_cli([*flags, "--preset", "best", "-o", out])
    assert run.returncode == 0, run.stderr
    meta = load_maps(out / "morph" / "maps.npz").meta
    assert (meta["lr_schedule"], meta["learning_rate"], meta["mult_floor"]) == ("cosine", 0.002, 0.5)
    assert (meta["size"], meta["train_steps"]) == (S, 3)  # explicit flags over the preset's (default) values
    frames = [read_rgb(p) for p in sorted((out / "morph" / "frames").iterdir())]

    # Rendered again from its maps with the preset (its render settings), the frames repeat.
    again = tmp_path / "again"
    maps = ["-s", TOY_A, "-t", TOY_B, "--maps", out / "morph" / "maps.npz", "--steps", 3, "-q", "--formats", "frames"]
    run = run_cli([*maps, "--preset", "best", "-o", again])
    assert run.returncode == 0, run.stderr
    for a, b in zip(frames, sorted((again / "morph" / "frames").iterdir()), strict=True):
        np.testing.assert_array_equal(a, read_rgb(b))

    # Without the preset, the file's maps settings (its gain floor) still win over the base config.
    from diffmorph.app.saved_maps import settings_for_maps

    plain = settings_for_maps(load_maps(out / "morph" / "maps.npz"), MorphConfig(), explicit=())
    assert (plain.mult_floor, plain.size, plain.render_kernel, plain.pacing) == (0.5, S, "bilinear", "linear")

    # Resuming with other optimiser settings (no --preset) is refused: the schedule would change mid-run.
    run = run_cli([*flags[:6], "-e", 5, "--seed", 0, "-q", "--formats", "frames", "--resume", "-o", out])
    assert run.returncode == 2
    assert "learning_rate was 0.002, now 0.0002" in run.stderr and "Traceback" not in run.stderr


def test_cli_preset_faithful_is_the_default_and_unknown_presets_are_usage_errors(tmp_path):
    from conftest import TOY_A, TOY_B, assert_one_line_error, run_cli
    from diffmorph.cli.main import build_parser
    from diffmorph.cli.options import explicit_settings, make_config, preset_base

    def config_of(*argv):
        args = build_parser().parse_args(["morph", "-s", "a", "-t", "b", *argv])
        return make_config(preset_base(args), explicit_settings(args))

    assert config_of() == config_of("--preset", "faithful") == MorphConfig()
    assert config_of("--preset", "best", "-e", "7") == preset_config("best", train_steps=7)
    assert config_of("--preset", "best", "--size", "64").lr_schedule == "cosine"

    run = run_cli(["-s", TOY_A, "-t", TOY_B, "--preset", "sharpest", "-o", tmp_path / "out"])
    assert_one_line_error(run, 2, "--preset", "sharpest")
    assert not (tmp_path / "out").exists()
