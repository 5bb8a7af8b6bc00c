"""Tests of the opt-in quality lever (the learning-rate schedule) and the presets.

The faithful defaults must stay the original's, bit for bit; the schedule is checked
against its closed form; the ``best`` preset runs end to end through Trainer and
FrameRenderer.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from diffmorph.config import PRESETS, MorphConfig, preset_config
from diffmorph.core.model import build_map_net, build_net_input, shrink_input, upsample_maps
from diffmorph.core.optimise import Trainer, learning_rate_schedule, morph_loss, optimise
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
    config = MorphConfig(size=64, seed=0, train_steps=10, learning_rate=0.002, lr_schedule="cosine", fast=False)
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


def test_faithful_trainer_is_the_original_loop_bit_for_bit(toy_working):
    """Plain path, default settings: the same losses as Adam(2e-4) on the original loss, written out here."""
    a, b = (x[:, :S, :S] for x in toy_working)
    config = MorphConfig(size=S, seed=0, fast=False)
    trainer = Trainer(a, b, config)
    losses = [trainer.step() for _ in range(4)]

    net = build_map_net(config)  # same seed: same initial weights
    optimizer = keras.optimizers.Adam(learning_rate=0.0002)
    net_input = tf.constant(build_net_input(a, b))
    small = shrink_input(net_input, config)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = morph_loss(upsample_maps(net(small), S), net_input, tf.constant(a), tf.constant(b), config)
        optimizer.apply_gradients(zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables))
        return loss

    assert losses == [float(step()) for _ in range(4)]


def test_neutral_lever_values_change_nothing(toy_working):
    """Fast path: the new field at its neutral value gives the default run, bit for bit."""
    a, b = (x[:, :S, :S] for x in toy_working)
    default = Trainer(a, b, MorphConfig(size=S, seed=0))
    neutral = Trainer(a, b, MorphConfig(size=S, seed=0, lr_schedule="constant"))
    assert [default.step() for _ in range(4)] == [neutral.step() for _ in range(4)]
    np.testing.assert_array_equal(default.maps_low(), neutral.maps_low())


# ----------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_tiny_best_run_end_to_end(toy_pair, fast):
    source, target = toy_pair
    config = preset_config("best", size=S, train_steps=6, frames=3, seed=0, fast=fast)
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
    from diffmorph.app.progress import Progress
    from diffmorph.cli.morph import config_for_maps

    plain = config_for_maps(load_maps(out / "morph" / "maps.npz"), MorphConfig(), {}, False, Progress())
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
