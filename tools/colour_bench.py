"""Benchmark of the colour OT solver: ``python -m tools.colour_bench``.

What it measures: the full published schedule (10 stages x 100 iterations, eps 1 ..
1/512, lambda 0.8) of :func:`diffmorph.core.colour.sinkhorn_unbalanced` on the 64^3
colour histograms of the bundled pair (palette ``images/astronaut.jpg``, image
``images/cat.jpg``), for several back ends, each in a fresh subprocess (so each one's
memory is its own), side by side:

* ``numpy``: the module's solver (numpy; BLAS matrix products, OpenBLAS threads as the
  environment sets them, 2 on this machine).
* ``numpy-1thread``: the same with ``OPENBLAS_NUM_THREADS=1`` (a busy machine: other
  processes on the cores make BLAS threads wait for each other).
* ``tf``: the same algorithm in TensorFlow (float64, ``tf.function``, one
  ``tf.while_loop`` per stage; the same grouping of kernel passes), no XLA.
* ``tf-xla``: the same with ``jit_compile=True``.

The TensorFlow versions leave out the two savings of the numpy solver that do not
change results (skipping empty first-pass lines, computing only the wanted last-pass
lines) and the exact fallback (not reached for eps >= 1/600, which the schedule
keeps); they check their potentials against the numpy solver's (max abs difference).

Figures per back end: ``solve_s`` for each of ``--repeats`` solves (TensorFlow: the
first solve, which traces and compiles, is ``first_s`` and is left out of the range),
``cpu_s`` (process CPU time per solve, all threads), ``extra_rss_mb`` (peak resident
memory during the solves minus the resident memory just before them, MB of 10^6
bytes), ``tracemalloc_peak_mb`` (numpy only: the peak of Python/numpy allocations
during one more solve, run apart from the timed ones), ``import_s`` (importing the back end). The
last stdout line is one JSON object with every figure and the machine.

How to run (from the repository root)::

    python -m tools.colour_bench                   # all back ends, 3 solves each
    python -m tools.colour_bench --backends numpy --repeats 5
    python -m tools.colour_bench --json-only

Other processes on the machine change the figures; run it several times and quote
ranges.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tools.benchlib import IMAGES, child_env, machine_info, module_command, peak_rss_mb

BACKENDS = ("numpy", "numpy-1thread", "tf", "tf-xla")
DEFAULT_PALETTE = IMAGES / "astronaut.jpg"
DEFAULT_IMAGE = IMAGES / "cat.jpg"


def rss_mb() -> float:
    """Current resident set size in MB (10^6 bytes)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def histograms(args):
    from diffmorph.core.colour import colour_histogram
    from diffmorph.io.images import read_image

    return (
        colour_histogram(read_image(args.palette).pixels, args.bins),
        colour_histogram(read_image(args.image).pixels, args.bins),
    )


def run_numpy(args) -> dict:
    import tracemalloc

    start = time.perf_counter()
    import numpy as np

    from diffmorph.core.colour import sinkhorn_unbalanced

    import_s = time.perf_counter() - start
    p, q = histograms(args)
    before = rss_mb()
    times, cpus = [], []
    for _ in range(args.repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        solution = sinkhorn_unbalanced(p, q)
        times.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    extra = peak_rss_mb() - before
    tracemalloc.start()
    sinkhorn_unbalanced(p, q)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.save(args.out, solution.f)
    return {
        "solve_s": times,
        "cpu_s": cpus,
        "extra_rss_mb": extra,
        "tracemalloc_peak_mb": traced / 1e6,
        "import_s": import_s,
    }


def run_tf(args, jit: bool) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    import numpy as np
    import tensorflow as tf

    import_s = time.perf_counter() - start
    from diffmorph.core import colour
    from diffmorph.core.colour import lse, uot

    n = args.bins
    p, q = histograms(args)
    x = colour.grid_coordinates(n)
    sq = tf.constant((x[:, None] - x[None, :]) ** 2)
    floor = tf.constant(lse.FLOOR, tf.float64)

    def lse(h, kernel, plan):
        flat = tf.reshape(h, [-1])
        for size, _checked in plan:
            lines = n ** (3 - size)
            x2 = tf.reshape(flat, (n**size, lines))
            top = tf.reduce_max(x2, axis=0)
            shift = tf.where(tf.math.is_finite(top), top, tf.zeros_like(top))
            y = tf.exp(tf.maximum(x2 - shift, -floor))
            for _ in range(size):
                y = tf.matmul(tf.reshape(y, (n, -1)), kernel, transpose_a=True)
            flat = tf.reshape(tf.math.log(tf.reshape(y, (lines, n**size))) + top[:, None], [-1])
        return tf.reshape(flat, (n, n, n))

    @tf.function(jit_compile=jit, reduce_retracing=False)
    def stage(f_eps, g_eps, log_p, log_q, eps, kappa, iters, plan):
        kernel = tf.exp(-sq / eps)  # rebuilt at every eps

        def body(i, f_eps, g_eps):
            f_eps = kappa * (log_p - lse(g_eps, kernel, plan))
            g_eps = kappa * (log_q - lse(f_eps, kernel, plan))
            return i + 1, f_eps, g_eps

        _, f_eps, g_eps = tf.while_loop(lambda i, *_: i < iters, body, (tf.constant(0), f_eps, g_eps))
        return f_eps, g_eps

    log_p = tf.constant(uot.log_or_minus_inf(p))
    log_q = tf.constant(uot.log_or_minus_inf(q))
    lam = colour.DEFAULT_LAMBDA

    def solve():
        f_eps, g_eps, previous = tf.zeros_like(log_p), tf.zeros_like(log_q), None
        for eps in colour.eps_schedule():
            if previous is not None:
                f_eps, g_eps = f_eps * (previous / eps), g_eps * (previous / eps)
            previous = eps
            plan = tuple(lse.SeparableLSE([lse.log_kernel(n, eps)] * 3).plan)
            assert not any(checked for _, checked in plan), "the TF version has no exact fallback"
            f_eps, g_eps = stage(
                f_eps,
                g_eps,
                log_p,
                log_q,
                tf.constant(eps, tf.float64),
                tf.constant(lam / (lam + eps), tf.float64),
                tf.constant(colour.DEFAULT_ITERS),
                plan,
            )
        return (f_eps * previous).numpy()

    before = rss_mb()
    wall = time.perf_counter()
    solve()
    first_s = time.perf_counter() - wall
    times, cpus = [], []
    for _ in range(args.repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        f = solve()
        times.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    extra = peak_rss_mb() - before
    np.save(args.out, f)
    return {"solve_s": times, "cpu_s": cpus, "first_s": first_s, "extra_rss_mb": extra, "import_s": import_s}


def child(args) -> None:
    result = run_numpy(args) if args.child.startswith("numpy") else run_tf(args, jit=args.child == "tf-xla")
    print(json.dumps(result))


def spread(values) -> str:
    return f"{min(values):6.2f} - {max(values):6.2f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help=f"comma-separated subset of {BACKENDS}")
    parser.add_argument("--repeats", type=int, default=3, help="timed solves per back end")
    parser.add_argument("--bins", type=int, default=64)
    parser.add_argument("--palette", default=str(DEFAULT_PALETTE))
    parser.add_argument("--image", default=str(DEFAULT_IMAGE))
    parser.add_argument("--json-only", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    import tempfile

    import numpy as np

    backends = [b for b in args.backends.split(",") if b]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown back ends: {', '.join(sorted(unknown))}")
    results, reference = {}, None
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends:
            env = child_env()
            if backend == "numpy-1thread":
                env["OPENBLAS_NUM_THREADS"] = "1"
            out = Path(folder) / f"{backend}.npy"
            command = [
                *module_command("colour_bench"),
                "--child",
                backend,
                "--out",
                str(out),
                "--repeats",
                str(args.repeats),
                "--bins",
                str(args.bins),
                "--palette",
                args.palette,
                "--image",
                args.image,
            ]
            if not args.json_only:
                print(f"colour_bench: {backend} ...", file=sys.stderr, flush=True)
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
            f = np.load(out)
            if reference is None:
                reference = f
            finite = np.isfinite(reference)
            same_support = bool(np.array_equal(finite, np.isfinite(f)))
            results[backend]["max_abs_diff_f"] = float(np.abs(f[finite] - reference[finite]).max())
            results[backend]["same_support"] = same_support
    summary = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "bins": args.bins,
        "schedule": "10 x 100, eps 1 .. 1/512, lambda 0.8",
        "machine": machine_info(),
        "results": results,
    }
    if not args.json_only:
        print(
            f"{'back end':<15} {'solve s (range)':>17} {'cpu s (range)':>17} {'first s':>8} {'extra RSS MB':>13} "
            f"{'tracemalloc MB':>15} {'import s':>9} {'max|df|':>9}"
        )
        for backend, r in results.items():
            first = f"{r['first_s']:8.2f}" if "first_s" in r else f"{'-':>8}"
            traced = f"{r['tracemalloc_peak_mb']:15.1f}" if "tracemalloc_peak_mb" in r else f"{'-':>15}"
            print(
                f"{backend:<15} {spread(r['solve_s']):>17} {spread(r['cpu_s']):>17} {first} "
                f"{r['extra_rss_mb']:13.1f} {traced} {r['import_s']:9.2f} {r['max_abs_diff_f']:9.1e}"
            )
        print(
            f"load average {summary['machine']['load_average']}; {summary['machine']['cpu']}, "
            f"{summary['machine']['cpu_count']} CPUs"
        )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
