"""The benchmark script (``tools/bench.py``): its arithmetic and parsing, and a tiny end-to-end run.

No timing is asserted (speed is what the script prints, on a quiet machine).
"""

from __future__ import annotations

import importlib
import json
import math
import sys

import pytest

from conftest import TOY_A, TOY_B


@pytest.fixture(scope="module")
def bench():
    return importlib.import_module("tools.bench")  # the tools run as modules from the repository root


def test_compare_losses(bench):
    curve = [1.0, 0.9, 0.8]
    assert bench.compare_losses(curve, list(curve)) == {"loss_max_rel_diff": 0.0, "losses_match": True}
    drift = bench.compare_losses(curve, [1.0, 0.9 * (1 + 1e-3), 0.8])
    assert drift["losses_match"] and drift["loss_max_rel_diff"] == pytest.approx(1e-3)
    assert not bench.compare_losses(curve, [1.0, 0.9 * (1 + 3e-3), 0.8])["losses_match"]  # beyond 2e-3
    assert not bench.compare_losses(curve, [1.0 + 2e-5, 0.9, 0.8])["losses_match"]  # first step beyond 1e-5
    assert not bench.compare_losses(curve, [1.0, math.nan, 0.8])["losses_match"]
    assert bench.compare_losses(curve, curve[:2])["losses_match"] is False


ORIGINAL_LIKE = """#!/usr/bin/env python3

import json, sys, time
from tqdm import tqdm

im_sz = 1024


def produce_warp_maps(origins, targets):
    def train_step(maps, origins, targets):
        time.sleep(0.01)

    maps = None
    for i in range(3):
        epoch = i + 1
        train_step(maps, origins, targets)
    sys.stderr.write('Epoch 1, Loss: 0.5:  50%|##| 100/200 [00:05<00:05, 18.20it/s]\\r')
    sys.stderr.write('Epoch 200, Loss: 0.1: 100%|###| 200/200 [00:10<00:00, 19.50it/s]\\n')


def use_warp_maps(origins, targets, fps, steps):
    class Video:
        def write(self, image):
            time.sleep(0.01)

        def release(self):
            pass

    video = Video()
    for i in range(2):
        output_img = i
        video.write(output_img)
    sys.stderr.write('100%|###| 20/20 [00:01<00:00, 97.00it/s]\\n')
    import cv2
    cv2.destroyAllWindows()
    video.release()


if __name__ == "__main__":
    import os
    folders = [os.path.isdir('train'), os.path.isdir('morph')]
    json.dump({'im_sz': im_sz, 'argv': sys.argv[1:], 'folders': folders}, open('seen.json', 'w'))
    origins = targets = None
    produce_warp_maps(origins, targets)
    use_warp_maps(origins, targets, 45, 2)
"""


def test_the_original_is_instrumented_without_changing_what_it_computes(bench):
    code = bench.instrument_original(ORIGINAL_LIKE, 256)
    assert code.startswith("#!/usr/bin/env python3\n")  # the shebang stays first
    assert "im_sz = 256" in code and "im_sz = 1024" not in code
    assert "cv2.destroyAllWindows()" not in code
    for name in ("start", "imported", "first_step", "loaded", "optimised", "rendered", "encode"):
        assert f"_bench_mark('{name}'" in code
    assert "_bench_timed(lambda: video.write(output_img))" in code and "_bench_timed(lambda: video.release())" in code
    body = code.replace(bench.ORIGINAL_PROLOGUE, "").splitlines()
    stripped = [line for line in body if "_bench" not in line and line.strip() != "if epoch == 1:"]
    expected = ORIGINAL_LIKE.replace("im_sz = 1024", "im_sz = 256").replace("cv2.destroyAllWindows()", "pass")
    assert [line for line in stripped if "video." not in line] == [
        line for line in expected.splitlines() if "video." not in line
    ]
    with pytest.raises(RuntimeError, match="im_sz"):
        bench.instrument_original("print(1)\n", 256)


def test_original_phases_are_differences_of_marks(bench):
    marks = {"launched": 100.0, "start": 100.5, "imported": 103.0, "loaded": 103.25, "first_step": 105.0}
    marks.update({"optimised": 115.0, "rendered": 117.0, "encode": 0.5})
    phases = bench.original_phases(marks, wall=17.5)
    assert phases == {
        "python_s": 0.5 + 0.5,  # start before the first line, exit after the last
        "import_s": 2.5,
        "setup_s": 0.25,
        "first_step_s": 1.75,
        "train_s": 10.0,
        "render_s": 1.5,
        "encode_s": 0.5,
    }
    assert math.isnan(bench.original_phases({"launched": 1.0}, 2.0)["train_s"])


@pytest.mark.slow
def test_original_runs_from_an_instrumented_copy_and_its_phases_are_read(bench, tmp_path):
    """A stand-in 'original' records its working size and prints tqdm-like bars as the real one does."""
    original = tmp_path / "morph.py"
    original.write_text(ORIGINAL_LIKE)
    args = type("Args", (), {"original": str(original), "original_python": sys.executable, "preset": "preview"})()
    result = bench.run_original(args, TOY_A, TOY_B, tmp_path / "work")
    seen = json.loads((tmp_path / "work" / "seen.json").read_text())
    assert seen["im_sz"] == 256  # the preview's working size, in the copy
    assert seen["argv"] == ["-s", str(TOY_A), "-t", str(TOY_B), "-e", "200", "--steps", "20"]
    assert seen["folders"] == [True, True]  # train/ and morph/, where it writes, as in its repository
    assert result["steps_per_s"] == 19.5  # the training bar, not the render bar
    assert result["wall_s"] > 0 and result["peak_rss_mb"] > 0
    assert result["encode_s"] >= 0.02  # two writes of 10 ms
    assert result["train_s"] >= 0.02  # two steps after the first
    assert all(math.isfinite(result[key]) for key, _ in bench.PHASES if key not in ("package_s", "publish_s"))
    assert "im_sz = 1024" in original.read_text()  # the original itself is untouched


@pytest.mark.slow
def test_end_to_end_child_reports_the_phase_budget(bench, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(bench.PRESETS, "tiny", {"size": 32, "train_steps": 3, "frames": 2})
    args = type("Args", (), {"preset": "tiny", "source": TOY_A, "target": TOY_B, "out": tmp_path / "out"})()
    assert bench.child_end_to_end(args) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    marks = figures.pop("marks")
    assert list(figures.pop("first_step_by_size")) == ["32"]
    assert set(figures) == {
        "import_s",
        "package_s",
        "setup_s",
        "first_step_s",
        "train_s",
        "steps_per_s",
        "render_s",
        "encode_s",
        "publish_s",
        "peak_rss_mb",
        "minor_faults_per_step",
        "user_s_per_step",
        "system_s_per_step",
    }
    assert all(math.isfinite(v) and v >= 0 for v in figures.values())
    assert figures["steps_per_s"] > 0 and figures["peak_rss_mb"] > 100 and figures["encode_s"] > 0
    assert marks["child_start"] <= marks["optimise_start"] <= marks["render_start"] <= marks["done"]
    assert (tmp_path / "out" / "morph" / "morph.mp4").is_file()


def test_phases_of_a_staged_run_count_one_first_step_per_working_size(bench):
    marks = {"child_start": 0.0, "tf_imported": 3.0, "package_imported": 3.5, "optimise_start": 4.0}
    marks.update({"optimise_end": 10.0, "render_start": 10.5, "render_end": 12.5, "done": 13.0})
    first_at = {64: [4.0, 6.0], 128: [7.0, 8.5]}  # 2 s and 1.5 s
    steps = [(64, 6.0), (64, 6.5), (64, 7.0), (128, 8.5), (128, 9.0), (128, 10.0)]
    phases = bench.phases_of_ours(marks, first_at, steps, encode_s=0.5, used={}, train_steps=6)
    assert phases["first_step_s"] == 3.5 and phases["first_step_by_size"] == {"64": 2.0, "128": 1.5}
    assert phases["train_s"] == 6.0 - 3.5 and phases["steps_per_s"] == 4 / 2.5
    assert phases["render_s"] == 1.5 and phases["encode_s"] == 0.5 and phases["publish_s"] == 0.5 + 0.5
    assert phases["import_s"] == 3.0 and phases["package_s"] == 0.5 and phases["setup_s"] == 0.5


def test_tables_show_the_figures(bench):
    row = {
        "who": "ours",
        "cache": "cold",
        "wall_s": 11.7,
        "import_s": 2.36,
        "setup_s": 0.22,
        "first_step_s": 1.66,
        "steps_per_s": 34.74,
        "render_s": 1.08,
        "peak_rss_mb": 972.2,
    }
    summary = {
        "preset": "preview",
        "size": 256,
        "train_steps": 200,
        "frames": 20,
        "pair": "600x400",
        "machine": bench.machine_info(),
        "rows": [row, {"who": "original", "wall_s": 14.7, "steps_per_s": 17.37, "peak_rss_mb": 701.0}],
        "speedup_wall": [14.7 / 11.7],
        "speedup_steps": [34.74 / 17.37],
    }
    text = bench.e2e_table(summary)
    assert "ours (cold)" in text and "34.74" in text and "972" in text
    assert "original" in text and "x1.26" in text and "x2.00" in text
    # the phase budget: one line per phase, ours beside the original, "-" where a figure is missing
    budget = {line[:62].strip(): line[62:].split() for line in text.splitlines()[-12:]}
    assert budget["import TensorFlow (+ its Keras; original: + addons, OpenCV)"] == ["2.36", "-"]
    assert budget["end to end (wall)"] == ["11.70", "14.70"]
    assert bench.span([1.0, 2.5, math.nan]) == "1.00-2.50" and bench.span([]) == "-"


def test_jobs_are_built_from_the_presets(bench):
    from diffmorph.config import MorphConfig, preset_config

    fast = bench.job_config("fast", seed=0)
    assert fast == preset_config("fast", size=1024, frames=100, seed=0) and fast.size_schedule
    assert bench.job_config("default") == MorphConfig(size=1024, train_steps=1000, frames=100)
    assert bench.allocator_env(type("Args", (), {"allocator": "malloc"})()) == {"TF_CPU_ALLOCATOR_USE_BFC": "false"}
    assert bench.allocator_env(type("Args", (), {"allocator": None})()) == {}
