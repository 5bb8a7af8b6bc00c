"""Coarse-to-fine optimisation (``MorphConfig.size_schedule``) and the ``fast`` preset.

Tiny sizes (stages 16 -> 32); values compared with hand-run Trainers, not constants.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import TOY_A, TOY_B
from diffmorph.config import PRESETS, MorphConfig, preset_config

SCHEDULE = ((16, 0.5),)


def pair_images(height=40, width=48):
    rng = np.random.default_rng(3)
    source = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return source, np.roll(source, 3, axis=1)


# ----------------------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    ("config", "stages"),
    [
        (MorphConfig(size=512, train_steps=1000), ((512, 1000),)),
        (MorphConfig(size=512, train_steps=1000, size_schedule=((128, 0.8),)), ((128, 800), (512, 1000))),
        (
            MorphConfig(size=512, train_steps=1000, size_schedule=((128, 0.6), (256, 0.2))),
            ((128, 600), (256, 800), (512, 1000)),
        ),
        # 0.7 + 0.1 is 0.7999...: rounded, not truncated
        (MorphConfig(size=64, train_steps=10, size_schedule=((16, 0.7), (32, 0.1))), ((16, 7), (32, 8), (64, 10))),
        # a stage at or above size runs at size (merged with the last stage)
        (MorphConfig(size=128, train_steps=100, size_schedule=((128, 0.8),)), ((128, 100),)),
        (MorphConfig(size=64, train_steps=100, size_schedule=((32, 0.5), (128, 0.2))), ((32, 50), (64, 100))),
        # too few steps: the last stage at size always gets at least one
        (MorphConfig(size=64, train_steps=2, size_schedule=((16, 0.8),)), ((16, 1), (64, 2))),
        (MorphConfig(size=64, train_steps=1, size_schedule=((16, 0.8),)), ((64, 1),)),
    ],
)
def test_stages(config, stages):
    assert config.stages() == stages


def test_lists_are_stored_as_tuples_and_the_config_stays_hashable():
    config = MorphConfig(size_schedule=[[128, 0.8]])  # as JSON gives it back
    assert config.size_schedule == ((128, 0.8),)
    assert config == MorphConfig(size_schedule=((128, 0.8),)) and hash(config) == hash(
        MorphConfig(size_schedule=((128, 0.8),))
    )
    assert config.stage_config(128) == dataclasses.replace(config, size=128, size_schedule=())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "size_schedule must be a tuple of (working size, fraction of train_steps) pairs (got 5)"),
        (((128,),), "size_schedule must be a tuple of (working size, fraction of train_steps) pairs"),
        (((8, 0.5),), "size_schedule stage sizes must be integers from 16 to 2048 (got ((8, 0.5),))"),
        (((128.0, 0.5),), "size_schedule stage sizes must be integers from 16 to 2048"),
        (((128, 0),), "size_schedule stage fractions must be numbers between 0 and 1 (exclusive)"),
        (((128, 1.0),), "size_schedule stage fractions must be numbers between 0 and 1 (exclusive)"),
        (((128, float("nan")),), "size_schedule stage fractions must be numbers between 0 and 1"),
        (((128, True),), "size_schedule stage fractions must be numbers between 0 and 1"),
        (((256, 0.5), (128, 0.2)), "size_schedule stage sizes must increase"),
        (((128, 0.5), (128, 0.2)), "size_schedule stage sizes must increase"),
        (((128, 0.5), (256, 0.5)), "size_schedule stage fractions must add up to less than 1"),
        (tuple((16 * (i + 1), 0.01) for i in range(9)), "size_schedule must have at most 8 stages"),
    ],
)
def test_invalid_schedules_are_refused_naming_the_setting(value, message):
    with pytest.raises(ValueError) as info:
        MorphConfig(size_schedule=value)
    assert str(info.value).startswith(message)


# ----------------------------------------------------------------------------- presets


def test_fast_preset_is_coarse_to_fine_with_the_cosine_rate_and_faithful_rendering():
    fast = preset_config("fast")
    assert fast.size_schedule and fast.stages()[-1] == (fast.size, fast.train_steps)
    assert fast.stages()[0][0] < fast.size
    assert (fast.lr_schedule, fast.learning_rate, fast.mult_floor) == ("cosine", 0.002, 0.5)
    defaults = MorphConfig()
    assert (fast.render_kernel, fast.pacing, fast.render) == (defaults.render_kernel, defaults.pacing, defaults.render)
    assert preset_config("fast", size=256, train_steps=100).stages() == ((128, 80), (256, 100))


def test_faithful_is_the_defaults_without_a_schedule():
    assert PRESETS["faithful"] == {}
    assert preset_config("faithful") == MorphConfig() and MorphConfig().size_schedule == ()
    assert MorphConfig().stages() == ((MorphConfig().size, MorphConfig().train_steps),)


# ----------------------------------------------------------------------------- the core


def working(images, size):
    from diffmorph.core.render import to_working

    return [to_working(image, size) for image in images]


def test_staged_trainer_hands_weights_and_adam_state_from_stage_to_stage():
    """Stages 16 (3 steps) -> 32 (3 steps) equal two hand-run Trainers joined by state()/load_state()."""
    from diffmorph.core.optimise import StagedTrainer, Trainer

    images = pair_images()
    config = MorphConfig(size=32, train_steps=6, seed=4, size_schedule=SCHEDULE)
    made = []

    def trainer_at(size):
        made.append(size)
        return Trainer(*working(images, size), config.stage_config(size))

    staged = StagedTrainer(Trainer(*working(images, 32), config), trainer_at)
    records = list(staged.run())
    assert made == [16]
    assert [r.step for r in records] == [1, 2, 3, 4, 5, 6]
    assert [r.maps_low is not None for r in records] == [False] * 5 + [True]  # the last step's snapshot
    assert staged.current is staged.final and staged.final.step_count == 6
    assert [staged.stage_size(step) for step in (1, 3, 4, 6)] == [16, 16, 32, 32]

    coarse = Trainer(*working(images, 16), config.stage_config(16))
    by_hand = [coarse.step() for _ in range(3)]
    fine = Trainer(*working(images, 32), config)
    fine.load_state(coarse.state())
    by_hand += [fine.step() for _ in range(3)]
    assert [r.loss for r in records] == by_hand
    np.testing.assert_array_equal(staged.final.maps_low(), fine.maps_low())
    # the coarse stage ran at 16: its losses differ from three steps at 32
    at_32 = Trainer(*working(images, 32), config.replace(size_schedule=()))
    assert [at_32.step() for _ in range(3)] != by_hand[:3]


def test_without_a_schedule_the_staged_trainer_is_the_plain_loop():
    from diffmorph.core.optimise import StagedTrainer, Trainer, optimise

    images = pair_images()
    config = MorphConfig(size=32, train_steps=4, seed=2)
    staged = StagedTrainer(Trainer(*working(images, 32), config), lambda size: pytest.fail("no coarse stage"))
    plain = Trainer(*working(images, 32), config)
    assert [r.loss for r in staged.run()] == [r.loss for r in optimise(plain, 4)]
    np.testing.assert_array_equal(staged.final.maps_low(), plain.maps_low())


# ----------------------------------------------------------------------------- the app: morph, resume, maps


class StopAt:
    """A Progress that presses Ctrl-C when the optimisation reports ``step``."""

    def __new__(cls, step):
        from diffmorph.app.progress import Progress

        class _Stop(Progress):
            def update(self, done, status=None):
                if done == step:
                    raise KeyboardInterrupt

        return _Stop()


def test_morph_resumes_mid_schedule_and_records_the_schedule(tmp_path):
    import diffmorph
    from diffmorph.app.fit import clear_compiled
    from diffmorph.errors import InputError, Interrupted
    from diffmorph.io import mapsfile

    source, target = pair_images()
    config = MorphConfig(size=32, train_steps=8, frames=3, seed=5, size_schedule=SCHEDULE)
    options = diffmorph.OutputOptions(formats=("frames",))
    whole = diffmorph.morph(source, target, tmp_path / "whole", config, options=options)
    maps = mapsfile.load_maps(tmp_path / "whole" / "morph" / "maps.npz")
    assert maps.meta["size_schedule"] == [[16, 0.5]] and maps.meta["steps_done"] == 8
    assert sorted(p.name for p in (tmp_path / "whole" / "train").iterdir()) == ["a_to_b_8.jpg", "b_to_a_8.jpg"]

    clear_compiled()  # a fresh process's view: nothing compiled is kept
    out = tmp_path / "stopped"
    with pytest.raises(Interrupted) as info:
        diffmorph.morph(source, target, out, config, options=options, progress=StopAt(3))
    assert info.value.resumable
    meta, state = mapsfile.load_checkpoint(out / "morph" / "checkpoint.npz")
    assert int(state["step"]) == 3 and int(state["stage_size"]) == 16  # in the coarse stage (steps 1-4)

    with pytest.raises(InputError, match="size_schedule was \\[\\[16, 0.5\\]\\], now \\(\\(16, 0.25\\),\\)"):
        diffmorph.morph(source, target, out, config.replace(size_schedule=((16, 0.25),)), resume=True, options=options)
    with pytest.raises(InputError, match="size_schedule was \\[\\[16, 0.5\\]\\], now \\(\\)"):
        diffmorph.morph(source, target, out, config.replace(size_schedule=()), resume=True, options=options)

    resumed = diffmorph.morph(source, target, out, config, resume=True, options=options)
    np.testing.assert_allclose(resumed.maps_low, whole.maps_low, rtol=0, atol=1e-6)
    assert resumed.maps_low.shape == (1, 84, 84, 16)


def test_a_checkpoint_from_another_stage_is_refused(tmp_path):
    import diffmorph
    from diffmorph.errors import InputError
    from diffmorph.io import mapsfile

    source, target = pair_images()
    config = MorphConfig(size=32, train_steps=4, frames=3, seed=5, size_schedule=SCHEDULE)
    options = diffmorph.OutputOptions(formats=("frames",))
    diffmorph.morph(source, target, tmp_path, config, options=options)
    checkpoint = tmp_path / "morph" / "checkpoint.npz"
    meta, state = mapsfile.load_checkpoint(checkpoint)
    assert int(state["stage_size"]) == 32  # the last step runs at size
    mapsfile.save(checkpoint, meta, **{**state, "step": np.asarray(1, np.int64)})  # step 1 runs at 16
    with pytest.raises(InputError, match="was saved at working size 32, but train step 1 runs at 16"):
        diffmorph.morph(source, target, tmp_path, config, resume=True, options=options)


# ----------------------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("128:1.5", "--size-schedule stage fractions must be numbers between 0 and 1 (exclusive)"),
        ("64:0.5,32:0.2", "--size-schedule stage sizes must increase"),
        ("12x", "argument --size-schedule: expected SIZE:FRACTION stages separated by commas"),
    ],
)
def test_bad_schedule_flags_get_one_line(tmp_path, flag, message):
    from conftest import TOY_A, TOY_B, assert_one_line_error, run_cli

    run = run_cli(["-s", TOY_A, "-t", TOY_B, "--size-schedule", flag, "-o", tmp_path])
    assert_one_line_error(run, 2, message)
    assert not any(tmp_path.iterdir())


def test_preset_fast_on_the_command_line_with_an_explicit_schedule(tmp_path):
    from conftest import TOY_A, TOY_B, run_cli
    from diffmorph.io import mapsfile

    args = ["-s", TOY_A, "-t", TOY_B, "--preset", "fast", "--size", 32, "-e", 4, "--steps", 2, "--seed", 0, "-q"]
    run = run_cli([*args, "--size-schedule", "16:0.5", "--formats", "frames", "-o", tmp_path])
    assert run.returncode == 0, run.stderr
    meta = mapsfile.load_maps(tmp_path / "morph" / "maps.npz").meta
    assert meta["size_schedule"] == [[16, 0.5]] and meta["lr_schedule"] == "cosine" and meta["mult_floor"] == 0.5
    assert meta["train_steps"] == 4 and meta["size"] == 32


def test_maps_file_stores_the_schedule_and_reads_it_back_as_tuples(tmp_path):
    from diffmorph.io import mapsfile

    config = MorphConfig(size=64, train_steps=10, size_schedule=((16, 0.5), (32, 0.25)))
    low = np.zeros((1, 84, 84, 16), np.float32)
    mapsfile.save_maps(tmp_path / "maps.npz", low, config, ("a" * 64, "b" * 64), steps_done=10)
    saved = mapsfile.load_maps(tmp_path / "maps.npz")
    assert saved.meta["size_schedule"] == [[16, 0.5], [32, 0.25]]  # JSON
    assert mapsfile.stored_settings(saved.meta, saved.path)["size_schedule"] == ((16, 0.5), (32, 0.25))
    assert mapsfile.mismatches(saved.meta, config, "a" * 64, "b" * 64, optimiser=True) == []
    other = config.replace(size_schedule=((16, 0.5),))
    assert mapsfile.mismatches(saved.meta, other, "a" * 64, "b" * 64, optimiser=True) == [
        "size_schedule was [[16, 0.5], [32, 0.25]], now ((16, 0.5),)"
    ]
    assert mapsfile.mismatches(saved.meta, other, "a" * 64, "b" * 64) == []  # rendering does not depend on it


@pytest.mark.parametrize("schedule", [(), ((16, 0.5),)])
def test_resume_with_more_train_steps_in_the_same_process_runs_them(tmp_path, schedule):
    """The compiled optimiser kept from the first run holds its train_steps; the resumed run
    must follow its own (a regression: it once did no step and kept the old checkpoint)."""
    import diffmorph
    from diffmorph.io import mapsfile

    class Steps(diffmorph.Progress):
        def __init__(self):
            self.steps = []

        def update(self, done, status=None):
            if status and status.startswith("loss"):
                self.steps.append(done)

    out, gif = tmp_path / "out", diffmorph.OutputOptions(formats=("gif",))
    config = MorphConfig(size=32, train_steps=4, frames=2, seed=1, size_schedule=schedule)
    diffmorph.morph(TOY_A, TOY_B, out, config, options=gif)
    progress = Steps()
    longer = dataclasses.replace(config, train_steps=6)
    result = diffmorph.morph(TOY_A, TOY_B, out, longer, resume=True, options=gif, progress=progress)
    assert progress.steps == [5, 6] and result.train_steps == 6
    assert int(mapsfile.load_checkpoint(out / "morph" / "checkpoint.npz")[1]["step"]) == 6
