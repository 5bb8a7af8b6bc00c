"""Smoke test of the benchmark script (``python tools/bench.py``): it runs and its
JSON line is complete and sane. No timing is asserted."""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
RUN_KEYS = {"path", "size", "epochs", "steps", "render", "output_size", "seed", "setup_s", "first_step_s",
            "snapshot_s", "train_s", "steps_per_s", "render_first_s", "render_s", "frames_per_s", "est_1000_100_s",
            "peak_rss_mb", "peak_rss_kib", "losses", "tf_version", "cpu", "cpu_count", "cpus_usable",
            "machine", "system", "python", "date"}
POSITIVE = ("setup_s", "first_step_s", "snapshot_s", "train_s", "steps_per_s", "render_first_s", "render_s",
            "frames_per_s", "est_1000_100_s", "peak_rss_mb", "peak_rss_kib", "cpu_count")


def test_bench_compare_smoke():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "bench.py"), "--size", "32", "--epochs", "2",
                           "--steps", "3", "--compare", "-q"],
                          cwd=str(REPO), env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "baseline (original, TF 2.15 + tfa)" in proc.stdout  # the reference row of the table
    assert "PASS" in proc.stdout
    summary = json.loads(lines[-1])

    assert summary["settings"]["size"] == 32 and summary["settings"]["isolated"] is True
    runs = summary["runs"]
    assert set(runs) == {"plain", "fast"}
    for path, run in runs.items():
        assert RUN_KEYS <= set(run), RUN_KEYS - set(run)
        assert run["path"] == path and run["size"] == 32 and run["steps"] == 3 and run["epochs"] == 2
        for key in POSITIVE:
            assert isinstance(run[key], (int, float)) and math.isfinite(run[key]) and run[key] > 0, (path, key)
        assert len(run["losses"]) == 3  # the first step and the two timed ones
        assert all(math.isfinite(x) and x > 0 for x in run["losses"])
    assert runs["plain"]["losses"] != [] and len(runs["plain"]["losses"]) == len(runs["fast"]["losses"])

    comparison = summary["comparison"]
    assert comparison["losses_match"] is True
    assert 0 <= comparison["loss_max_rel_diff"] <= comparison["loss_rtol"] == 2e-3
    assert comparison["fast_over_plain_steps_per_s"] > 0 and comparison["fast_over_plain_frames_per_s"] > 0
    assert summary["baseline"]["steps_per_s_range"] == [1.35, 1.40]
    assert "vs_baseline" not in summary  # the baseline is at 1024 only
