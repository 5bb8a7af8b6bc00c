"""Batches (:mod:`diffmorph.app.batch`): what "finished" means, the checks before any work, and a batch
followed and cancelled while it renders. Tiny sizes (working size 16, 2 train steps) in this process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import assert_one_line_error, make_test_image, read_gif, run_cli, write_rgb
from diffmorph.app.batch import batch_rows, morph_batch
from diffmorph.app.progress import Progress
from diffmorph.app.write import OutputOptions
from diffmorph.config import MorphConfig
from diffmorph.errors import Cancelled, InputError

CONFIG = MorphConfig(size=16, train_steps=2, frames=3, seed=0)
GIF = OutputOptions(formats=("gif",))


@pytest.fixture
def pair(tmp_path):
    return [write_rgb(tmp_path / f"img{k}.png", make_test_image(24, 16, seed=k)) for k in range(2)]


class Fits:
    """Counts the optimisations (Fitter.fit calls) of a run."""

    def __init__(self, monkeypatch):
        from diffmorph.app import fit

        self.count = 0
        real = fit.Fitter.fit

        def counted(fitter, *args, **kwargs):
            self.count += 1
            return real(fitter, *args, **kwargs)

        monkeypatch.setattr(fit.Fitter, "fit", counted)


def status(result) -> str:
    (row,) = result.rows
    return row.status


def test_a_row_is_finished_only_for_the_settings_asked_now(tmp_path, pair, monkeypatch):
    """Every render setting and output option asked differently renders the row again from its maps (no new
    fit); the same ones again skip it; a setting the maps depend on (the seed) fits it again."""
    fits = Fits(monkeypatch)
    rows, out = [(*pair, "r")], tmp_path / "out"
    gif = out / "r" / "morph" / "morph.gif"

    def run(config=CONFIG, options=GIF):
        return status(morph_batch(rows, out, config, options=options))

    assert run() == "done" and fits.count == 1
    assert run() == "skipped"
    changes = [
        (CONFIG.replace(frames=4), GIF),
        (CONFIG.replace(frames=4, fps=10), GIF),
        (CONFIG.replace(frames=4, fps=10, hold=2), GIF),
        (CONFIG.replace(frames=4, fps=10, hold=2), OutputOptions(formats=("gif",), gif_max_side=8)),
        (CONFIG.replace(frames=4, fps=10, hold=2), OutputOptions(formats=("gif",), gif_max_side=8, report=True)),
        (CONFIG.replace(frames=4, fps=10, hold=2), OutputOptions(formats=("gif", "frames"), gif_max_side=8)),
    ]
    for config, options in changes:
        assert run(config, options) == "done", (config, options)
        assert run(config, options) == "skipped", (config, options)
    assert fits.count == 1  # all rendered from the maps of the first fit
    config, options = changes[-1]
    frames, durations, _ = read_gif(gif)  # held frames merged: the same timing, fewer stored frames
    assert sum(durations) == (4 + 2 * 2) * 100 and max(frames[0].shape[:2]) == 8  # 8 frames at fps 10
    assert len(list((out / "r" / "morph" / "frames").iterdir())) == 8
    assert not (out / "r" / "morph" / "report.json").exists()  # retired: this run asked for no report
    assert run(config.replace(seed=1), options) == "done" and fits.count == 2


def test_a_deleted_output_renders_the_row_again(tmp_path, pair):
    rows, out = [(*pair, "r")], tmp_path / "out"
    assert status(morph_batch(rows, out, CONFIG, options=GIF)) == "done"
    (out / "r" / "morph" / "result.jpg").unlink()
    assert status(morph_batch(rows, out, CONFIG, options=GIF)) == "done"
    assert (out / "r" / "morph" / "result.jpg").is_file()


def test_a_cut_off_publish_is_rolled_back_before_the_row_is_judged(tmp_path, pair):
    """Killed after moving the old GIF aside and before moving the new one in: the next batch restores the old
    one from the journal, finds the row finished and skips it."""
    rows, out = [(*pair, "r")], tmp_path / "out"
    assert status(morph_batch(rows, out, CONFIG, options=GIF)) == "done"
    root = out / "r"
    gif, backup = root / "morph" / "morph.gif", root / "morph" / ".morph.gif.old-dead"
    before = gif.read_bytes()
    staged = root / "morph" / ".morph.gif.part-dead.gif"
    staged.write_bytes(b"half a new GIF")
    gif.replace(backup)
    journal = [{"final": str(gif), "staged": str(staged), "backup": str(backup)}]
    (root / ".morph.publish.json").write_text(json.dumps(journal))
    assert status(morph_batch(rows, out, CONFIG, options=GIF)) == "skipped"
    assert gif.read_bytes() == before and not backup.exists() and not staged.exists()


def test_a_strip_wider_than_jpeg_refuses_the_batch_before_any_work(tmp_path, pair, monkeypatch):
    """``--size 1024 --steps 700``: 70 strip tiles of 1024 pixels; refused at once (exit 2), nothing written."""
    fits = Fits(monkeypatch)
    with pytest.raises(InputError, match="result.jpg would be 71680 pixels wide"):
        morph_batch([(*pair, "r")], tmp_path / "out", MorphConfig(size=1024, train_steps=2, frames=700))
    assert fits.count == 0 and not (tmp_path / "out").exists()
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text("source,target\nimg0.png,img1.png\n")
    run = run_cli(["batch", csv_file, "-o", tmp_path / "out", "--size", 1024, "--steps", 700, "-e", 2, "-q"])
    assert_one_line_error(run, 2, "result.jpg", "71680 pixels wide")
    assert not (tmp_path / "out").exists()


def test_every_row_is_checked_as_morph_checks_before_any_work(tmp_path, pair, monkeypatch):
    """A row whose output would replace its input, and a row whose GIF with its held frames is over the memory
    budget, fail before anything is fitted; the good row is done."""
    fits = Fits(monkeypatch)
    out = tmp_path / "out"
    (out / "victim" / "morph").mkdir(parents=True)
    inside = write_rgb(out / "victim" / "morph" / "result.jpg", make_test_image(24, 16, seed=5))
    kept = inside.read_bytes()
    big = write_rgb(tmp_path / "big.png", make_test_image(512, 512, seed=3))
    rows = [(inside, pair[1], "victim"), (big, pair[1], "big"), (*pair, "good")]

    config = CONFIG.replace(hold=2000)  # 4003 frames of 512 x 512 in the GIF: over its 1 GB
    result = morph_batch(rows, out, config, options=GIF)
    reasons = {r.name: (r.status, r.reason) for r in result.rows}
    assert reasons["victim"][0] == "failed" and "is the input" in reasons["victim"][1]
    assert reasons["big"][0] == "failed" and "GIF of 4003 frames" in reasons["big"][1]
    assert reasons["good"][0] == "done" and fits.count == 1
    assert inside.read_bytes() == kept
    assert not (out / "big").exists()


def test_names_differing_only_in_case_are_refused():
    a = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(InputError, match=r"row 2: the name 'face' is already used by row 1 as 'Face'"):
        batch_rows([(a, a, "Face"), (a, a, "face")])


class CancelWhileRendering(Progress):
    """Records the phases; cancels at the first rendered frame."""

    def __init__(self):
        self.phases, self.open = [], []

    def notice(self, text):
        pass

    def start(self, phase, total, done=0):
        self.phases.append(phase)
        self.open.append(phase)

    def update(self, done, status=None):
        if self.open[-1] == "render" and done >= 1:
            self.cancel()

    def end(self):
        self.open.pop()


def test_a_batch_is_followed_and_cancelled_while_it_renders(tmp_path, pair):
    out = tmp_path / "out"
    progress = CancelWhileRendering()
    with pytest.raises(
        Cancelled, match=r"^cancelled while writing the outputs.*\(row 1 \(r\)\); finished rows are kept"
    ):
        morph_batch([(*pair, "r")], out, CONFIG, options=GIF, progress=progress)
    assert progress.phases == ["pairs", "optimise", "render"]
    assert not (out / "r" / "morph" / "morph.gif").exists()
    summary = json.loads((out / "batch.json").read_text())
    assert [r["status"] for r in summary["rows"]] == ["stopped"]


def test_a_pair_past_its_time_limit_fails_with_its_checkpoint_and_resumes_later(tmp_path, pair, monkeypatch):
    """``pair_time_limit``: a clock that advances 1 s at each look stops the fit after a few train steps; the row
    fails naming the setting, its checkpoint is saved, and a run without the limit resumes from it."""
    import itertools

    from diffmorph.app import progress as progress_module

    ticks = itertools.count()
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: float(next(ticks)))
    rows, out = [(*pair, "r")], tmp_path / "out"
    config = CONFIG.replace(train_steps=20)
    (row,) = morph_batch(rows, out, config, options=GIF, pair_time_limit=5).rows
    assert row.status == "failed"
    assert "stopped at its time limit of 5 s (pair_time_limit) at train step" in row.reason
    assert "checkpoint saved" in row.reason and (out / "r" / "morph" / "checkpoint.npz").is_file()
    monkeypatch.undo()
    (again,) = morph_batch(rows, out, config, options=GIF).rows
    assert again.status == "done" and 0 < again.resumed_from < 20


@pytest.mark.parametrize("limit", [0, -1, float("inf"), "10", True])
def test_a_bad_time_limit_is_refused_naming_the_setting(tmp_path, pair, limit):
    with pytest.raises(InputError, match="^pair_time_limit must be a number of seconds > 0"):
        morph_batch([(*pair, "r")], tmp_path / "out", CONFIG, pair_time_limit=limit)
    assert not (tmp_path / "out").exists()


def test_a_workers_temporary_folder_is_removed_when_its_pair_fails(tmp_path, monkeypatch):
    """A worker on a node that does not see the work folder fits in its own temporary folder: removed when the pair
    fails too (it was removed only on success), so failed pairs do not fill the node's disk."""
    import sys
    import tempfile
    import types

    from diffmorph.app import cluster
    from diffmorph.errors import NonFiniteLossError

    node = types.SimpleNamespace(get_node_id=lambda: "remote-node-0123")
    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(get_runtime_context=lambda: node))
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    made = []

    def diverging(pair, paths, config, guide=None, time_limit=None):
        (paths.root / "morph").mkdir(parents=True)
        (paths.root / "morph" / "checkpoint.npz").write_bytes(b"state")
        made.append(paths.root)
        raise NonFiniteLossError("the loss became NaN at train step 3")

    monkeypatch.setattr(cluster, "fit_in_folder", diverging)
    worker = cluster.PairWorker.__new__(cluster.PairWorker)  # no TensorFlow import: fit only
    worker.folder = None
    image = make_test_image(8, 8)
    from diffmorph.io.images import pixels_digest

    spec = {
        "files": (None, None),
        "shape": image.shape,
        "digests": (pixels_digest(image), pixels_digest(image)),
        "folder": str(tmp_path / "driver" / "r"),
        "shared": False,
        "driver_node": "driver-node",
        "key": "abc",
        "config": CONFIG,
        "guide": None,
        "time_limit": None,
    }
    answer = worker.fit(spec, image, image)
    assert isinstance(answer["error"], NonFiniteLossError)
    assert made == [tmp_path / "diffmorph-ray" / "abc"] and not made[0].exists()


def test_the_time_limit_flag_is_checked_before_any_work(tmp_path, pair):
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text("source,target\nimg0.png,img1.png\n")
    run = run_cli(["batch", csv_file, "-o", tmp_path / "out", "--pair-time-limit", 0, "-q"])
    assert_one_line_error(run, 2, "--pair-time-limit must be a number of seconds > 0")
    assert not (tmp_path / "out").exists()
