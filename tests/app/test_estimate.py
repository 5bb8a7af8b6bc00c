"""Run-time estimates (:mod:`diffmorph.app.estimate`): the model's arithmetic, its fit to the
step and frame times a process records, and that a morph records them. No timing is asserted."""

from __future__ import annotations

import numpy as np
import pytest

import diffmorph
from diffmorph import MorphConfig, preset_config
from diffmorph.app import estimate
from diffmorph.app.estimate import Timing, current_timing, estimate_seconds, record_frame, record_step

FIXED = Timing(
    step_s=0.05, step_s_per_megapixel=0.3, first_step_s=2.0, render_start_s=1.0, frame_s=0.01, frame_s_per_megapixel=0.2
)


@pytest.fixture(autouse=True)
def no_records():
    estimate.clear_records()
    yield
    estimate.clear_records()


def test_the_estimate_adds_stages_start_and_frames():
    staged = MorphConfig(size=1000, train_steps=100, frames=5, size_schedule=((500, 0.5),))
    e = estimate_seconds(staged, (400, 500), timing=FIXED)
    assert e.train_s == pytest.approx(50 * (0.05 + 0.3 * 0.25) + 50 * (0.05 + 0.3 * 1.0))
    assert e.start_s == pytest.approx(2 * 2.0 + 1.0)  # two working sizes to compile, the render programs
    assert e.render_s == pytest.approx(5 * (0.01 + 0.2 * 0.2))
    assert e.total_s == pytest.approx(e.start_s + e.train_s + e.render_s)
    assert estimate_seconds(staged, (400, 500), compiled=True, timing=FIXED).start_s == 0
    held = estimate_seconds(MorphConfig(size=1000, frames=5, hold=2), (400, 500), timing=FIXED)
    assert held.render_s == pytest.approx(9 * (0.01 + 0.2 * 0.2))  # holds are frames of the video too
    assert "min" in estimate_seconds(MorphConfig(), timing=FIXED).text()  # faithful at 1024: minutes


def test_a_preview_is_estimated_far_below_faithful():
    quick = estimate_seconds(preset_config("preview"), (400, 600), timing=FIXED)
    full = estimate_seconds(preset_config("faithful"), (400, 600), timing=FIXED)
    assert quick.total_s * 20 < full.total_s


def test_recorded_steps_fit_the_line_and_one_size_scales_the_default():
    assert current_timing(FIXED) == FIXED  # nothing recorded
    for _ in range(3):
        record_step(100, 0.1)  # 0.01 megapixels
    one = current_timing(FIXED)  # one size: the default line scaled through it
    assert one.step_seconds(100) == pytest.approx(0.1)
    assert one.step_s / one.step_s_per_megapixel == pytest.approx(FIXED.step_s / FIXED.step_s_per_megapixel)
    record_step(1000, 0.5)  # 1 megapixel
    record_step(1000, 0.5)
    record_step(1000, 99.0)  # an outlier: the median ignores it
    two = current_timing(FIXED)
    assert two.step_seconds(100) == pytest.approx(0.1) and two.step_seconds(1000) == pytest.approx(0.5)
    assert "1000" in two.source and two.first_step_s == FIXED.first_step_s
    record_step(10, float("nan"))  # ignored
    record_step(10, -1.0)
    assert current_timing(FIXED) == two
    record_frame(1000, 1000, 0.3)
    record_frame(500, 400, 0.1)
    frames = current_timing(FIXED)
    assert frames.frame_seconds(1000, 1000) == pytest.approx(0.3)
    assert frames.frame_seconds(500, 400) == pytest.approx(0.1)


@pytest.mark.slow
def test_a_morph_records_its_step_and_frame_times(tmp_path):
    source = np.zeros((24, 32, 3), np.uint8)
    target = np.full((24, 32, 3), 200, np.uint8)
    config = MorphConfig(size=32, train_steps=5, frames=4, seed=0)
    diffmorph.morph(source, target, tmp_path, config, options=diffmorph.OutputOptions(formats=("gif",)))
    assert len(estimate._STEPS[32]) == 3  # steps 2-4: the first traces, the last is a snapshot step
    assert [mp for mp, _ in estimate._FRAMES] == [24 * 32 / 1e6] * 3  # frames 2-4
    assert diffmorph.is_compiled(config) and diffmorph.is_compiled(config.replace(frames=9))
    assert not diffmorph.is_compiled(config.replace(size=48))
    timing = current_timing()
    assert timing.source.startswith("measured") and timing.step_s > 0


@pytest.mark.slow
def test_calibrate_measures_steps_at_its_sizes():
    timing = estimate.calibrate(sizes=(16, 32), steps=2)
    assert sorted(estimate._STEPS) == [16, 32] and all(len(t) == 2 for t in estimate._STEPS.values())
    assert timing.source.startswith("measured") and timing.step_s >= 0 and timing.first_step_s >= 0
    assert timing.step_seconds(32) > 0
