"""Tests of pairs on a Ray cluster (:mod:`diffmorph.app.cluster`) and of batches (:mod:`diffmorph.app.batch`).

The batch file's rules, bad input (bad CSV, missing Ray, unreachable address) and a
serial batch run without Ray. The tests marked ``cluster`` share one local Ray cluster
for the whole run (``num_cpus=2``; each worker imports TensorFlow: a few seconds and
~0.6 GB) and use tiny sizes: a sequence on 2 workers equals the serial one, a batch
whose worker is killed mid-pair (found through Ray's API, killed by its pid) still
finishes with the other rows and a bad row reported, and its re-run skips the rows.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, assert_one_line_error, free_port, make_test_image, run_cli, write_rgb
from diffmorph.app import batch as batch_module
from diffmorph.app import progress as diffmorph_progress
from diffmorph.app.batch import batch_rows, morph_batch, read_batch_csv
from diffmorph.app.write import OutputOptions
from diffmorph.config import MorphConfig
from diffmorph.errors import InputError

TINY = ["--size", 32, "-e", 12, "--steps", 3, "--seed", 0, "--formats", "gif", "-q"]
TINY_CONFIG = MorphConfig(size=32, train_steps=12, frames=3, seed=0)
GIFS = OutputOptions(formats=("gif",))


@pytest.fixture(autouse=True)
def no_ray_address(monkeypatch):
    """RAY_ADDRESS (Ray's convention, as --ray-address) from the developer's shell is not the tests'."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def images(folder: Path, count: int = 3) -> list[Path]:
    return [write_rgb(folder / f"img{k}.png", make_test_image(40, 32, seed=k)) for k in range(count)]


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------- the batch file


def test_csv_rows_paths_and_default_names(tmp_path):
    (tmp_path / "sub").mkdir()
    csv_file = write_csv(
        tmp_path / "sub" / "pairs.csv", "Target, source ,name\nb.png,a.png,\n\nimgs/c d.jpg,a.png,x-1\n"
    )
    rows = read_batch_csv(csv_file)
    assert [(r.row, r.name) for r in rows] == [(1, "a_to_b"), (2, "x-1")]
    assert rows[0].source == tmp_path / "sub" / "a.png" and rows[1].target == tmp_path / "sub" / "imgs" / "c d.jpg"


@pytest.mark.parametrize(
    "text, needle",
    [
        ("source,name\na.png,x\n", "missing column(s) target"),
        ("source,target,colour\na.png,b.png,red\n", "unknown column(s) 'colour'"),
        ("source,target,name\na.png,b.png,x\nc.png,d.png,x\n", "line 3: the name 'x' is already used by row 1"),
        ("source,target\na.png,b.png\na.png,b.png\n", "the name 'a_to_b' is already used by row 1"),
        ("source,target,name\na.png,b.png,../up\n", "not a plain folder name"),
        ("source,target,name\na.png,b.png,batch.json\n", "not a plain folder name"),
        ("source,target\na.png,\n", "line 2: no target"),
        ("", "empty"),
        ("source,target\n", "the batch has no rows"),
        ("source,target,source\na,b,c\n", "named twice"),
    ],
)
def test_bad_csv_is_refused(tmp_path, text, needle):
    with pytest.raises(InputError, match=None) as caught:
        read_batch_csv(write_csv(tmp_path / "pairs.csv", text))
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_points_column_is_read_from_the_csv_folder_and_guides_its_row(tmp_path):
    rows = read_batch_csv(write_csv(tmp_path / "pairs.csv", "source,target,points\na.png,b.png,p.csv\nb.png,c.png,\n"))
    assert rows[0].points == tmp_path / "p.csv" and rows[1].points is None  # an empty column is no points
    images(tmp_path)
    (tmp_path / "p.csv").write_text("source_x,source_y,target_x,target_y\n4,4,6,5\n10,8,9,7\n")
    csv_file = write_csv(tmp_path / "guided.csv", "source,target,name,points\nimg0.png,img1.png,g,p.csv\n")
    result = morph_batch(
        csv_file, tmp_path / "out", MorphConfig(size=16, train_steps=2, frames=2, seed=0), options=GIFS
    )
    assert [r.status for r in result.rows] == ["done"]
    morph = tmp_path / "out" / "g" / "morph"
    assert (morph / "points.jpg").is_file() and (morph / "points.csv").is_file()
    from diffmorph.io.mapsfile import load_maps

    assert load_maps(morph / "maps.npz").meta["points"] == 2


def test_python_rows():
    a = make_test_image(8, 8, seed=1)
    rows = batch_rows([("x/a.png", "y/b.png"), {"source": a, "target": a, "name": "arrays"}])
    assert [(r.row, r.name) for r in rows] == [(1, "a_to_b"), (2, "arrays")]
    with pytest.raises(InputError, match="row 1: no target"):
        batch_rows([{"source": "a.png"}])


def test_bad_csv_exits_2_before_any_work(tmp_path):
    csv_file = write_csv(tmp_path / "pairs.csv", "source\na.png\n")
    run = run_cli(["batch", csv_file, "-o", tmp_path / "out", *TINY])
    assert_one_line_error(run, 2, "missing column(s) target")
    assert not (tmp_path / "out").exists()


def test_missing_ray_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    a, b, c = images(tmp_path)
    csv_file = write_csv(tmp_path / "pairs.csv", "source,target\nimg0.png,img1.png\n")
    for args in (
        ["batch", csv_file, "-o", tmp_path / "out", "--workers", 2],
        ["sequence", a, b, c, "-o", tmp_path / "seq.mp4", "--workers", 2],
        ["batch", csv_file, "-o", tmp_path / "out", "--ray-address", "127.0.0.1:1"],
    ):
        run = run_cli([*args, *TINY])
        assert_one_line_error(run, 2, 'pip install "diffmorph[cluster]"')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img0.png", "img1.png", "img2.png", "pairs.csv"]


def test_workers_below_one_is_a_usage_error(tmp_path):
    csv_file = write_csv(tmp_path / "pairs.csv", "source,target\na.png,b.png\n")
    run = run_cli(["batch", csv_file, "-o", tmp_path / "out", "--workers", 0, *TINY])
    assert run.returncode == 2 and "--workers must be an integer >= 1 (got 0)" in run.stderr


def test_unreachable_address_fails_fast(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    csv_file = write_csv(tmp_path / "pairs.csv", "source,target\na.png,b.png\n")
    started = time.monotonic()
    run = run_cli(["batch", csv_file, "-o", tmp_path / "out", "--ray-address", f"127.0.0.1:{free_port()}", *TINY])
    assert time.monotonic() - started < 10
    assert_one_line_error(run, 2, "cannot reach the Ray cluster at 127.0.0.1:")
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("RAY_ADDRESS", "no-port-here")  # Ray's convention: as --ray-address
    run = run_cli(["batch", csv_file, "-o", tmp_path / "out", *TINY])
    assert_one_line_error(run, 2, "--ray-address must be host:port")


# ----------------------------------------------------------------------------- a batch in this process


def test_serial_batch_reports_a_bad_row_and_rerun_skips(tmp_path):
    images(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    csv_file = write_csv(
        tmp_path / "pairs.csv",
        "source,target,name\nimg0.png,img1.png,first\nbroken.png,img2.png,bad\nimg1.png,img2.png,\n",
    )
    out = tmp_path / "out"
    run = run_cli(["batch", csv_file, "-o", out, *TINY])
    assert run.returncode == 1, run.stderr
    table = run.stdout.splitlines()
    assert table[0].split() == ["row", "name", "status", "time", "output"]
    assert table[1].split()[:3] == ["1", "first", "done"] and table[3].split()[:3] == ["3", "img1_to_img2", "done"]
    assert table[2].split()[:3] == ["2", "bad", "failed"] and "broken.png" in table[2]
    summary = json.loads((out / "batch.json").read_text())
    assert summary["counts"] == {"done": 2, "skipped": 0, "failed": 1, "stopped": 0}
    assert [r["status"] for r in summary["rows"]] == ["done", "failed", "done"]
    for name in ("first", "img1_to_img2"):
        assert (out / name / "morph" / "morph.gif").is_file() and (out / name / "morph" / "maps.npz").is_file()
    assert not (out / "bad").exists()
    gif = (out / "first" / "morph" / "morph.gif").stat().st_mtime_ns
    again = run_cli(["batch", csv_file, "-o", out, *TINY])
    assert again.returncode == 1
    assert [line.split()[2] for line in again.stdout.splitlines()[1:4]] == ["skipped", "failed", "skipped"]
    assert (out / "first" / "morph" / "morph.gif").stat().st_mtime_ns == gif  # not written again


# ----------------------------------------------------------------------------- on a local Ray cluster


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster (2 CPUs) for the whole test run; the pipelines find it initialised."""
    ray = pytest.importorskip("ray")
    from diffmorph.app.cluster import NICENESS_ENV

    os.environ.setdefault(NICENESS_ENV, "0")  # workers at the tests' priority, as the pipelines start them
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )
    yield ray
    ray.shutdown()


@pytest.mark.cluster
def test_sequence_on_two_workers_equals_serial(tmp_path, ray_cluster):
    import diffmorph
    from diffmorph.io import mapsfile

    pictures = images(tmp_path)  # below the shared folder: the workers read them (the batch test sends pixels)
    frames = OutputOptions(formats=("frames",))
    serial = diffmorph.morph_sequence(pictures, tmp_path / "serial.mp4", TINY_CONFIG, options=frames)
    spread = diffmorph.morph_sequence(
        pictures, tmp_path / "spread.mp4", TINY_CONFIG, options=frames, workers=2, shared_dir=tmp_path
    )
    assert spread.frames == serial.frames == 6 and spread.pairs == 2 and spread.reused == 0
    assert len(list((tmp_path / "spread_frames").iterdir())) == 6
    for name in ("000_img0_to_img1", "001_img1_to_img2"):
        a = mapsfile.load_maps(serial.work_dir / name / "morph" / "maps.npz").maps_low
        b = mapsfile.load_maps(spread.work_dir / name / "morph" / "maps.npz").maps_low
        assert a.shape == b.shape and np.abs(a).max() > 0.01
        np.testing.assert_allclose(a, b, atol=1e-4)
        assert (spread.work_dir / name / "morph" / "checkpoint.npz").is_file()  # the worker wrote it there
    again = diffmorph.morph_sequence(pictures, tmp_path / "spread.mp4", TINY_CONFIG, options=frames, workers=2)
    assert again.reused == 2


def _workers(ray) -> list[dict]:
    """Each of this run's workers' ``{"pid", "folder"}`` (the pair it is fitting), asked through Ray."""
    from diffmorph.app.cluster import ACTOR_PREFIX

    names = [n for n in ray.util.list_named_actors() if n.startswith(ACTOR_PREFIX)]
    return ray.get([ray.get_actor(name).status.remote() for name in names], timeout=60)


def killed_batch_run(folder: Path, ray):
    """A batch of two rows (and one bad row) on 2 workers; the worker of the first row to write a
    checkpoint is SIGKILLed while it goes on with that pair."""
    images(folder)
    csv_file = write_csv(
        folder / "pairs.csv",
        "source,target,name\nimg0.png,img1.png,one\nmissing.png,img2.png,bad\nimg1.png,img2.png,two\n",
    )
    out = folder / "out"
    config = TINY_CONFIG.replace(train_steps=300)  # checkpoints at steps 10, 20... 100, 200, 300
    box, killed = {}, None

    def batch():
        try:
            box["result"] = morph_batch(csv_file, out, config, workers=2, options=GIFS)
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            box["error"] = exc

    thread = threading.Thread(target=batch)
    thread.start()
    deadline = time.monotonic() + 240
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
        for worker in _workers(ray) if list(out.glob("*/morph/checkpoint.npz")) else []:
            pair_dir = worker["folder"] and Path(worker["folder"])
            if pair_dir and (pair_dir / "morph" / "checkpoint.npz").is_file():
                killed = {"pid": worker["pid"], "name": pair_dir.name}
                os.kill(worker["pid"], signal.SIGKILL)
                break
    thread.join(300)
    return {"box": box, "killed": killed, "out": out, "csv": csv_file}


@pytest.mark.cluster
def test_batch_survives_a_killed_worker_and_a_bad_row_and_reruns(tmp_path, ray_cluster):
    """One test (one batch run): with ``-n 2`` only one test process pays for it."""
    killed_batch = killed_batch_run(tmp_path, ray_cluster)
    box = killed_batch["box"]
    assert "error" not in box, box.get("error")
    result = box["result"]
    assert killed_batch["killed"] is not None, "no worker was found fitting a pair"
    rows = {r.name: r for r in result.rows}
    assert rows["one"].status == rows["two"].status == "done"
    assert (killed_batch["out"] / "one" / "morph" / "morph.gif").is_file()
    # the row whose worker was killed ran again in a new process, from its checkpoint
    killed = killed_batch["killed"]
    again = rows[killed["name"]]
    assert int(again.worker.split()[1]) != killed["pid"]
    assert again.resumed_from >= 10
    assert result.workers["workers"] == 2 and result.workers["threads"] == 1

    # the bad row is reported; the others finished
    bad = rows["bad"]
    assert bad.status == "failed" and bad.reason.endswith("missing.png: no such file")
    assert result.failed == 1 and result.count("done") == 2
    summary = json.loads((killed_batch["out"] / batch_module.SUMMARY_FILE).read_text())
    assert [r["status"] for r in summary["rows"]] == ["done", "failed", "done"]
    assert all(r["peak_mb"] > 100 for r in summary["rows"] if r["status"] == "done")  # a worker with TensorFlow

    # a re-run on the cluster skips the finished rows
    run = run_cli(["batch", killed_batch["csv"], "-o", killed_batch["out"], "--workers", 2, *TINY, "-e", 300])
    assert run.returncode == 1, run.stderr
    assert [line.split()[2] for line in run.stdout.splitlines()[1:4]] == ["skipped", "failed", "skipped"]


class _Cancelled(diffmorph_progress.Progress):
    """A progress whose caller has cancelled the run (as a web app's Stop button would)."""

    cancelled = True


@pytest.mark.cluster
def test_cancel_stops_the_workers_and_keeps_the_summary(tmp_path, ray_cluster):
    from diffmorph.app.cluster import ACTOR_PREFIX
    from diffmorph.errors import Interrupted

    images(tmp_path)
    rows = [{"source": tmp_path / "img0.png", "target": tmp_path / "img1.png", "name": "one"}]
    with pytest.raises(Interrupted, match="finished rows are kept in"):
        morph_batch(rows, tmp_path / "out", TINY_CONFIG, workers=2, options=GIFS, progress=_Cancelled())
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert [r["status"] for r in summary["rows"]] == ["stopped"]
    deadline = time.monotonic() + 30
    while any(n.startswith(ACTOR_PREFIX) for n in ray_cluster.util.list_named_actors()):
        assert time.monotonic() < deadline, "the workers were not stopped"
        time.sleep(0.2)


def test_inputs_go_as_paths_only_below_the_shared_folder(tmp_path):
    from diffmorph.app.cluster import Cluster
    from diffmorph.app.inputs import load_pair
    from diffmorph.app.layout import MorphPaths
    from diffmorph.app.pairs import PairJob

    a, b, _ = images(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    inside = [write_rgb(shared / p.name, make_test_image(40, 32, seed=k)) for k, p in enumerate((a, b))]
    pair = load_pair(a, b)
    cluster = Cluster.__new__(Cluster)  # only the spec's logic: no Ray needed
    cluster.pair_time_limit = 30.0
    for shared_dir, files, work, as_files, shared_work in (
        (None, (a, b), tmp_path / "w", False, False),
        (shared, (a, b), shared / "w", False, True),
        (shared, tuple(inside), tmp_path / "w", True, False),
        (shared, (inside[0], None), shared / "w", False, True),
    ):
        cluster.shared_dir = shared_dir
        job = PairJob(0, pair, MorphPaths(work), "pair 1/1", files)
        spec, sent_as_files = cluster._spec(job, TINY_CONFIG, "node")
        assert sent_as_files == as_files and spec["shared"] == shared_work
        assert spec["files"] == (tuple(str(f) for f in files) if as_files else (None, None))
        assert spec["digests"] == pair.digests and spec["shape"] == (32, 40, 3)
        assert spec["time_limit"] == 30.0  # the worker stops the pair's fit after it
