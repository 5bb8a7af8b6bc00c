"""tools/benchlib.py (shared by every script in tools/) and quality_bench's helpers: no timing asserted."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from conftest import REPO
from tools import benchlib, quality_bench


def test_paths_and_child_environment_point_at_this_checkout():
    assert benchlib.REPO == REPO and (benchlib.IMAGES / "cat.jpg").is_file()
    env = benchlib.child_env(EXTRA="1")
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO) and env["EXTRA"] == "1"
    code = "import diffmorph, tools.benchlib, sys; print(diffmorph.__file__)"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd="/", capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith(str(REPO))
    assert benchlib.module_command("bench", "--size", 64) == [sys.executable, "-m", "tools.bench", "--size", "64"]


def test_resource_figures_grow_with_work():
    before = benchlib.usage()
    block = np.ones(20_000_000 // 8)  # 20 MB of fresh pages (numpy asks for huge pages: few faults)
    block[::512] = 2.0
    used = benchlib.usage_since(before)
    assert set(used) == {"user_s", "system_s", "minor_faults", "major_faults"}
    assert used["minor_faults"] > 0 and used["user_s"] >= 0 and used["system_s"] >= 0
    assert benchlib.peak_rss_mb() > 20 and benchlib.cpu_seconds() > 0
    assert benchlib.maxrss_mb(1000) == (1000 / 1e6 if sys.platform == "darwin" else 1.024)


def test_machine_info_names_the_cpu_and_its_simd_flags():
    machine = benchlib.machine_info()
    cpu = machine["cpu_info"]
    assert machine["cpu"] == cpu["model"] and machine["cpu"]
    assert set(cpu["simd"]) <= set(benchlib.SIMD_FLAGS)
    if sys.platform == "linux" and os.path.exists("/proc/cpuinfo"):
        flags = open("/proc/cpuinfo").read().split("\nflags", 1)[-1].split("\n", 1)[0].split()
        assert ("avx2" in cpu["simd"]) == ("avx2" in flags)
    line = benchlib.describe_cpu(machine)
    assert line.startswith(machine["cpu"]) and line.endswith(f"{machine['cpus_usable']} CPUs")
    assert machine["cpus_usable"] >= 1 and len(machine["load_average"]) == 3


def test_quality_bench_uses_the_package_metrics_inside_the_border():
    from diffmorph.core import metrics

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (60, 50, 3), dtype=np.uint8)
    b = a.copy()
    b[:2] = 0  # inside the 5 % border (round(2.5) = 2 pixels): not scored
    psnr, ssim = quality_bench.psnr_ssim(b, a)
    assert psnr == float("inf") and ssim == 1.0
    c = np.clip(a.astype(int) + rng.integers(-9, 10, a.shape), 0, 255).astype(np.uint8)
    inner = (slice(2, 58), slice(2, 48))
    assert quality_bench.psnr_ssim(c, a)[0] == metrics.psnr(a[inner], c[inner])
    assert quality_bench.sharpness(c) == metrics.sharpness(np.ascontiguousarray(c[inner]))
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 10, 20, 40)]  # steps 10, 10, 20
    steps = np.array([10.0, 10.0, 20.0])
    assert quality_bench.pace(frames) == steps.std() / steps.mean()


def test_custom_presets_take_schedules():
    assert quality_bench.split_top_level("preset=fast,size_schedule=[[128,0.6],[256,0.2]],seed=1") == [
        "preset=fast",
        "size_schedule=[[128,0.6],[256,0.2]]",
        "seed=1",
    ]
    args = type("Args", (), {"presets": ["faithful"], "custom": [["c2f", "preset=fast,size_schedule=[[64,0.5]]"]]})()
    presets = quality_bench.resolve_presets(args)
    assert presets["faithful"] == {} and presets["c2f"]["size_schedule"] == [[64, 0.5]]
    assert presets["c2f"]["lr_schedule"] == "cosine"
