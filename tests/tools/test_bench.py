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


@pytest.mark.slow
def test_original_runs_from_a_patched_copy_and_its_rate_is_read(bench, tmp_path):
    """A stand-in 'original' records its working size and prints tqdm-like bars as the real one does."""
    original = tmp_path / "morph.py"
    original.write_text(
        "import sys, json\n"
        "im_sz = 1024\n"
        "json.dump({'im_sz': im_sz, 'argv': sys.argv[1:]}, open('seen.json', 'w'))\n"
        "sys.stderr.write('Epoch 1, Loss: 0.5:  50%|##| 100/200 [00:05<00:05, 18.20it/s]\\r')\n"
        "sys.stderr.write('Epoch 200, Loss: 0.1: 100%|###| 200/200 [00:10<00:00, 19.50it/s]\\n')\n"
        "sys.stderr.write('100%|###| 20/20 [00:01<00:00, 97.00it/s]\\n')\n"
        "import cv2\n"
        "cv2.destroyAllWindows()\n"
    )
    args = type("Args", (), {"original": str(original), "original_python": sys.executable, "preset": "preview"})()
    result = bench.run_original(args, TOY_A, TOY_B, tmp_path / "work")
    seen = json.loads((tmp_path / "work" / "seen.json").read_text())
    assert seen["im_sz"] == 256  # the preview's working size, in the copy
    assert seen["argv"] == ["-s", str(TOY_A), "-t", str(TOY_B), "-e", "200", "--steps", "20"]
    assert result["steps_per_s"] == 19.5  # the training bar, not the render bar
    assert result["wall_s"] > 0 and result["peak_rss_mb"] > 0
    assert "im_sz = 1024" in original.read_text()  # the original itself is untouched


@pytest.mark.slow
def test_end_to_end_child_reports_the_start_up_split(bench, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(bench.PRESETS, "tiny", {"size": 32, "train_steps": 3, "frames": 2})
    args = type("Args", (), {"preset": "tiny", "source": TOY_A, "target": TOY_B, "out": tmp_path / "out"})()
    assert bench.child_end_to_end(args) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(figures) == {
        "import_s",
        "setup_s",
        "first_step_s",
        "steps_per_s",
        "render_s",
        "peak_rss_mb",
        "minor_faults_per_step",
        "user_s_per_step",
        "system_s_per_step",
    }
    assert all(math.isfinite(v) and v >= 0 for v in figures.values())
    assert figures["steps_per_s"] > 0 and figures["peak_rss_mb"] > 100
    assert (tmp_path / "out" / "morph" / "morph.mp4").is_file()


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


def test_jobs_are_built_from_the_presets(bench):
    from diffmorph.config import MorphConfig, preset_config

    fast = bench.job_config("fast", seed=0)
    assert fast == preset_config("fast", size=1024, frames=100, seed=0) and fast.size_schedule
    assert bench.job_config("default") == MorphConfig(size=1024, train_steps=1000, frames=100)
    assert bench.allocator_env(type("Args", (), {"allocator": "malloc"})()) == {"TF_CPU_ALLOCATOR_USE_BFC": "false"}
    assert bench.allocator_env(type("Args", (), {"allocator": None})()) == {}
