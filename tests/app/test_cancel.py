"""One progress interface with cancel: ``Progress.cancel()`` stops every long operation at
its next train step, frame, measured frame, pair or Sinkhorn check, with ``Cancelled``."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

import diffmorph
from conftest import RENDERED_TRAIN_STEPS, SMALL_SIZE, TOY_A, TOY_B, make_test_image, run_cli
from diffmorph.app.progress import SILENT, Progress
from diffmorph.errors import Cancelled, Interrupted, stopped

CONFIG = diffmorph.MorphConfig(size=SMALL_SIZE, train_steps=RENDERED_TRAIN_STEPS, frames=3, seed=0, plain=True)
MP4 = diffmorph.OutputOptions(formats=("mp4",))


class CancelAt(Progress):
    """Cancels itself when ``phase`` reaches ``done`` units (like a Stop button pressed then)."""

    def __init__(self, phase: str, done: int):
        self.phase_name, self.at, self.current = phase, done, []
        self.seen = []

    def start(self, phase, total, done=0):
        self.current.append(phase)

    def update(self, done, status=None):
        self.seen.append((self.current[-1], done))
        if self.current[-1] == self.phase_name and done >= self.at:
            self.cancel()

    def end(self):
        self.current.pop()


def test_progress_cancel_flag_and_check():
    progress = Progress()
    assert not progress.cancelled
    progress.check_cancelled()  # nothing asked: no error
    progress.cancel()
    assert progress.cancelled
    with pytest.raises(Cancelled, match="^cancelled$") as info:
        progress.check_cancelled()
    assert isinstance(info.value, Interrupted) and isinstance(info.value, KeyboardInterrupt)
    assert not info.value.resumable
    progress.reset()
    assert not progress.cancelled
    progress.check_cancelled()


def test_subclass_without_super_init_can_cancel_and_silent_cannot():
    class Mine(Progress):
        def __init__(self):  # no super().__init__()
            self.n = 0

    mine = Mine()
    threading.Thread(target=mine.cancel).start()  # from another thread
    for _ in range(1000):
        if mine.cancelled:
            break
        threading.Event().wait(0.01)
    assert mine.cancelled
    with pytest.raises(TypeError, match=r"pass your own Progress\(\) as progress="):
        SILENT.cancel()
    assert not SILENT.cancelled


def test_stopped_keeps_the_kind_of_stop():
    assert type(stopped(Cancelled(), "at x", True)) is Cancelled
    assert str(stopped(Cancelled(), "while writing")) == "cancelled while writing"
    plain = stopped(KeyboardInterrupt(), "while writing", True)
    assert type(plain) is Interrupted and plain.message == "interrupted while writing" and plain.resumable


def test_cancel_during_optimisation_saves_a_checkpoint_and_resume_finishes(tmp_path, rendered_run):
    out = tmp_path / "out"
    progress = CancelAt("optimise", 4)
    with pytest.raises(Cancelled) as info:
        diffmorph.morph(TOY_A, TOY_B, out, CONFIG, options=MP4, progress=progress)
    checkpoint = out / "morph" / "checkpoint.npz"
    assert str(info.value) == f"cancelled at train step 4; checkpoint saved in {checkpoint}"
    assert info.value.resumable
    assert [done for phase, done in progress.seen if phase == "optimise"] == [1, 2, 3, 4]
    assert checkpoint.is_file() and not (out / "morph" / "morph.mp4").exists()

    progress.reset()  # the same Progress serves the next run
    result = diffmorph.morph(TOY_A, TOY_B, out, CONFIG, options=MP4, resume=True, progress=Progress())
    assert result.train_steps == RENDERED_TRAIN_STEPS and (out / "morph" / "morph.mp4").is_file()
    from diffmorph.io.mapsfile import load_maps

    # resumed from step 4, the maps equal the uninterrupted run's (same seed, same steps)
    uninterrupted = load_maps(rendered_run[1] / "morph" / "maps.npz").maps_low
    np.testing.assert_allclose(result.maps_low, uninterrupted, rtol=0, atol=1e-6)


def test_cancel_from_another_thread_stops_a_running_morph(tmp_path):
    started = threading.Event()

    class Signals(Progress):
        def update(self, done, status=None):
            started.set()

    progress, box = Signals(), {}

    def run():
        try:
            diffmorph.morph(
                TOY_A,
                TOY_B,
                tmp_path / "out",
                dataclasses.replace(CONFIG, train_steps=100_000),
                options=MP4,
                progress=progress,
            )
        except BaseException as exc:  # the test inspects it
            box["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(120)
    progress.cancel()
    worker.join(120)
    assert not worker.is_alive()
    assert isinstance(box.get("error"), Cancelled) and box["error"].resumable
    assert "cancelled at train step" in str(box["error"])


def test_cancel_while_rendering_publishes_nothing(tmp_path):
    out = tmp_path / "out"
    first = diffmorph.morph(TOY_A, TOY_B, out, dataclasses.replace(CONFIG, train_steps=2), options=MP4)
    before = (out / "morph" / "morph.mp4").read_bytes()
    with pytest.raises(Cancelled, match="^cancelled while writing the outputs; the previous outputs are unchanged"):
        diffmorph.morph(TOY_A, TOY_B, out, maps=first.maps_low, config=first.config, progress=CancelAt("render", 1))
    assert (out / "morph" / "morph.mp4").read_bytes() == before
    assert not [p for p in out.rglob("*") if ".part" in p.name or p.name.startswith(".tmp")]


def test_cancel_stops_a_sequence_before_the_next_pair(tmp_path):
    images = [make_test_image(24, 16, seed=k) for k in range(3)]

    class CancelAfterFirstPair(Progress):
        def __init__(self):
            self.phases = []

        def start(self, phase, total, done=0):
            self.phases.append(phase)

        def update(self, done, status=None):
            if self.phases[-1] == "pairs" and done == 1:
                self.cancel()

        def end(self):
            self.phases.pop()

    config = diffmorph.MorphConfig(size=16, train_steps=2, frames=2, seed=0)
    with pytest.raises(Cancelled, match=r"^cancelled before pair 2/2; finished pairs are kept in "):
        diffmorph.morph_sequence(images[:3], tmp_path / "s.mp4", config, progress=CancelAfterFirstPair())
    assert not (tmp_path / "s.mp4").exists()
    assert len(list((tmp_path / "s_pairs").glob("*/morph/maps.npz"))) == 1


def test_cancel_report_and_colour_transfer(tmp_path, rendered_run):
    with pytest.raises(Cancelled):
        diffmorph.app.report.report(rendered_run[1], out_dir=tmp_path / "r", progress=CancelAt("measure", 2))
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())

    from diffmorph.app.colour_transfer import transfer_file

    with pytest.raises(Cancelled):
        transfer_file(TOY_A, TOY_B, tmp_path / "c.png", progress=CancelAt("colour", 1))
    assert not (tmp_path / "c.png").exists()


def test_command_line_exits_130_on_cancelled(tmp_path, monkeypatch):
    import diffmorph.app.morph as app_morph

    def cancelled(*args, **kwargs):
        raise Cancelled("cancelled at train step 3; checkpoint saved in X", resumable=True)

    monkeypatch.setattr(app_morph, "morph", cancelled)
    run = run_cli(["-s", TOY_A, "-t", TOY_B, "--size", 16, "-q", "-o", tmp_path / "o"])
    assert run.returncode == 130
    assert run.lines[0].startswith("diffmorph: cancelled at train step 3; checkpoint saved in X; ")
