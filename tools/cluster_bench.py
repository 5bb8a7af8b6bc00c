"""Cluster benchmark: a batch of pairs fitted one after another against ``--workers N`` on Ray.

Runs the same batch (``--pairs`` pairs made from the bundled images, resized to
``--side`` pixels, default outputs MP4 + GIF) twice, each in a fresh Python process so
that peak memory is that run's own:

* ``serial``: ``diffmorph.morph_batch(rows, out)``: one process fits and renders every pair;
* ``workers``: ``diffmorph.morph_batch(rows, out, workers=N)``: a local Ray cluster with N
  workers fits the pairs; this process (the driver) renders and publishes them.

and prints, side by side: wall time (start-up included: Ray, the workers' TensorFlow
import and compilation), per-pair fit time (median and range, on the worker), the
driver's render-and-publish time per pair, the peak resident memory of the driver and
of each worker (MB), the CPU (``lscpu``), and the estimate of a 100-pair sequence on M
machines that docs/guides/batches.md, "Scaling out", explains::

    100-pair time ~ start-up + ceil(100 / (M x workers per machine)) x fit time per pair
                    + 100 x render time per pair (the driver renders after the fits)

Run from the repository root (needs the cluster extra)::

    python -m tools.cluster_bench [--pairs 8] [--workers 2] [--size 64] [--train-steps 100] [--frames 10]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tools.benchlib import REPO, describe_cpu, machine_info, module_command


def make_inputs(folder: Path, count: int, side: int) -> list[tuple[Path, Path]]:
    """``count`` pairs of the bundled images, resized to ``side`` x ``side`` (PNG)."""
    import cv2

    sources = sorted(p for p in (REPO / "images").iterdir() if p.suffix.lower() in (".jpg", ".png"))
    files = []
    for k, path in enumerate(sources):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        files.append(folder / f"image{k}.png")
        cv2.imwrite(str(files[-1]), cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA))
    return [(files[k % len(files)], files[(k + 1 + k // len(files)) % len(files)]) for k in range(count)]


def run_mode(args) -> None:
    """One mode in this process; its figures go to ``args.json``."""
    import resource

    import diffmorph

    pairs = make_inputs(Path(args.folder), args.pairs, args.side)
    rows = [{"source": a, "target": b, "name": f"pair{k}"} for k, (a, b) in enumerate(pairs)]
    config = diffmorph.MorphConfig(size=args.size, train_steps=args.train_steps, frames=args.frames, seed=0)
    workers = args.workers if args.mode == "workers" else None
    started = time.perf_counter()
    result = diffmorph.morph_batch(rows, Path(args.folder) / f"out_{args.mode}", config, workers=workers)
    wall = time.perf_counter() - started
    done = [r for r in result.rows if r.status == "done"]
    peaks: dict = {}
    for r in done:
        peaks[r.worker] = max(peaks.get(r.worker, 0.0), r.peak_mb)
    figures = {
        "mode": args.mode,
        "wall_s": wall,
        "done": len(done),
        "fit_s": [r.seconds - r.render_seconds for r in done],
        "render_s": [r.render_seconds for r in done],
        "driver_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_peak_mb": peaks,
        "plan": result.workers,
    }
    Path(args.json).write_text(json.dumps(figures))


def spread(values) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=64, help="working size (default 64)")
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--side", type=int, default=128, help="side of the input images in pixels (default 128)")
    parser.add_argument("--mode", choices=("serial", "workers"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        run_mode(args)
        return
    print(f"CPU: {describe_cpu(machine_info())}")
    print(
        f"{args.pairs} pairs of {args.side}x{args.side} images, working size {args.size}, {args.train_steps} train "
        f"steps, {args.frames} frames, MP4 + GIF; serial vs --workers {args.workers} (local Ray cluster)"
    )
    results = {}
    with tempfile.TemporaryDirectory(prefix="diffmorph-cluster-bench-") as folder:
        for mode in ("serial", "workers"):
            out = Path(folder) / f"{mode}.json"
            command = module_command("cluster_bench", "--mode", mode, "--folder", folder, "--json", str(out))
            command += ["--pairs", str(args.pairs), "--workers", str(args.workers), "--size", str(args.size)]
            command += ["--train-steps", str(args.train_steps), "--frames", str(args.frames), "--side", str(args.side)]
            subprocess.run(command, check=True, cwd=REPO)
            results[mode] = json.loads(out.read_text())
    print(f"{'':28}{'serial':>28}{f'--workers {args.workers}':>28}")
    rows = [
        ("wall time (start-up incl.)", lambda r: f"{r['wall_s']:.1f} s"),
        ("pairs done", lambda r: str(r["done"])),
        ("fit per pair (median, range)", lambda r: spread(r["fit_s"])),
        ("driver render per pair", lambda r: spread(r["render_s"])),
        ("driver peak memory", lambda r: f"{r['driver_peak_mb']:.0f} MB"),
        (
            "worker peak memory",
            lambda r: ", ".join(f"{v:.0f}" for v in r["worker_peak_mb"].values()) + " MB" if r["plan"] else "(driver)",
        ),
    ]
    for label, cell in rows:
        print(f"{label:28}{cell(results['serial']):>28}{cell(results['workers']):>28}")
    spread_run = results["workers"]
    fit = statistics.median(spread_run["fit_s"])
    render = statistics.median(spread_run["render_s"])
    # the batch renders each pair while the workers fit the next ones: the last render is what adds
    startup = max(0.0, spread_run["wall_s"] - math.ceil(args.pairs / args.workers) * fit - render)
    print(f"speed-up of the wall time: {results['serial']['wall_s'] / spread_run['wall_s']:.2f}x")
    print(
        f"estimate, 100-pair sequence (start-up {startup:.0f} s, fit {fit:.2f} s a pair on {args.workers} "
        f"workers a machine, driver render {render:.2f} s a pair):"
    )
    for machines in (1, 2, 4, 8):
        total = startup + math.ceil(100 / (machines * args.workers)) * fit + 100 * render
        print(f"  {machines} machine(s): {total / 60:.1f} min")


if __name__ == "__main__":
    main()
