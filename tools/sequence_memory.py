"""Benchmark: peak memory of ``diffmorph sequence`` as the number of images grows.

A sequence reuses one optimiser (and its compiled programs) and one set of render
programs for all its pairs, so its memory should stay flat in the number of pairs.
This script makes N tiny images (textured 48 x 32 pictures), runs
``python -m diffmorph sequence IMG1 ... IMGN -o OUT.mp4 --size 32 -e 2 --steps 2
--formats mp4 -q`` in a fresh process for each N, and prints the wall time and the
child's peak resident memory (``ru_maxrss``), one row per N, then one JSON line.

Usage (from the repository root)::

    python -m tools.sequence_memory                 # N = 3, 60, 200
    python -m tools.sequence_memory --counts 3 20   # other counts
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tools.benchlib import child_env, maxrss_mb


def make_images(folder: Path, count: int) -> list[Path]:
    """``count`` small distinct PNG pictures (a gradient and a moving disc) in ``folder``."""
    import cv2

    paths = []
    yy, xx = np.mgrid[0:32, 0:48]
    for k in range(count):
        image = np.stack([(xx * 5 + k * 7) % 256, (yy * 7 + k * 3) % 256, np.full_like(xx, (k * 37) % 256)], -1)
        image = np.ascontiguousarray(image.astype(np.uint8))
        cv2.circle(image, (8 + (k * 5) % 32, 16), 6, (255, 255 - (k * 11) % 256, 0), -1)
        path = folder / f"{k:04d}.png"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def run_sequence(count: int, folder: Path) -> dict:
    """Run one sequence of ``count`` images in a child process; its time and peak RSS."""
    images = make_images(folder, count)
    command = [
        sys.executable,
        "-m",
        "diffmorph",
        "sequence",
        *map(str, images),
        "-o",
        str(folder / "out.mp4"),
        "--size",
        "32",
        "-e",
        "2",
        "--steps",
        "2",
        "--formats",
        "mp4",
        "--seed",
        "0",
        "-q",
    ]
    env = child_env()
    script = (
        "import resource, subprocess, sys\n"
        "code = subprocess.call(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script, *command], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"sequence of {count} images failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    kib = int(proc.stdout.strip().splitlines()[-1])
    return {
        "images": count,
        "pairs": count - 1,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(maxrss_mb(kib), 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[3, 60, 200], help="numbers of images")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'images':>7} {'pairs':>6} {'seconds':>8} {'peak RSS MB':>12}")
    for count in args.counts:
        with tempfile.TemporaryDirectory() as tmp:
            row = run_sequence(count, Path(tmp))
        rows.append(row)
        print(f"{row['images']:>7} {row['pairs']:>6} {row['seconds']:>8.1f} {row['peak_rss_mb']:>12.1f}", flush=True)
    print(json.dumps({"benchmark": "sequence_memory", "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
