"""Benchmark of the optimisation and the rendering: ``python tools/bench.py``.

What it measures, for each path (``fast``: the fused, XLA-compiled step; ``plain``:
four separate autodiff warps, no XLA; see :class:`diffmorph.core.optimize.Trainer`):

* ``setup_s``: building the :class:`~diffmorph.core.optimize.Trainer` (net, Adam).
* ``first_step_s``: the first optimisation step alone, i.e. tracing, XLA compiling
  (fast path) and one step. Reported apart, never folded into the rate.
* ``snapshot_s``: one training snapshot (both directions at full strength, as the
  CLI writes to ``train/`` every 10 steps early on), compile included; it runs
  between the first step and the timed ones, so its memory counts in the peak as
  in a real run.
* ``steps_per_s``: ``--epochs`` further steps, timed together (each step reads its
  loss back, so the clock covers the whole work).
* ``render_first_s``: building a :class:`~diffmorph.core.render.FrameRenderer` from the
  trainer's final maps plus rendering frame 0 (tracing / compiling).
* ``frames_per_s``: the remaining ``--steps - 1`` frames, rendered as the CLI does
  (``FrameRenderer.frames()``, strip tiles included), without any encoding or writing.
* ``est_1000_100_s``: extrapolated wall time of the default morph (1000 steps and 100
  frames), compile times included: ``first_step_s + 999 / steps_per_s +
  render_first_s + 99 / frames_per_s``.
* ``peak_rss_mb``: the process's peak resident memory, ``ru_maxrss`` (KiB on Linux),
  in MB of 10^6 bytes.
* ``losses``: the loss of every step (the first and the ``--epochs`` timed ones).

How to run (from the repository root; the default images are the bundled pair
``images/astronaut.jpg`` and ``images/cat.jpg``)::

    python tools/bench.py                      # fast path, size 1024, 20 steps, 100 frames
    python tools/bench.py --compare            # plain and fast side by side, with ratios
    python tools/bench.py --size 256 --epochs 10 --steps 20 --compare
    python tools/bench.py --path plain --render working
    python tools/bench.py --compare --json-only  # only the JSON line

With ``--compare`` each path runs in a fresh subprocess, one after the other
(``--isolate``, the default there), so each path's peak RSS is its own; the parent
collects their JSON lines and prints them side by side, with the ratios fast / plain
for steps/s and frames/s, and checks the two loss curves (same seed): the first
step's loss (same weights) must agree within ``rtol = 1e-5`` and every step within
``rtol = 2e-3`` (it prints the largest relative difference and PASS or FAIL; FAIL
makes the exit status 1). Why 2e-3: Adam amplifies float rounding over the steps.
The plain path compiled with XLA (the same graph, only the compiler's rounding
differs) drifts from the plain path by 5.2e-4 over 60 steps at size 256 on this
machine, the fast path by 5.2e-4: the fast path stays inside that envelope.
``--compare --no-isolate`` measures both in this process instead: then the peak RSS
of the path measured second (fast) is the peak over both paths. A single path runs
in-process unless ``--isolate`` is given.

How to read it: the output is a fixed-width table, a few lines of ratios and, last,
ONE line of JSON (``json.loads`` of the last stdout line) with every figure, the
settings and the machine (CPU, core count, TensorFlow version, date). Progress goes
to stderr (``-q`` silences it). Higher steps/s and frames/s are better; the first-step
and first-frame times are one-off costs per run.

Reference: the original DiffMorph (TF 2.15 + tensorflow-addons), measured on a
2-core machine at size 1024, ran 1.35-1.40 steps/s, rendered 7.35 frames/s and
peaked at 2.52 GB RSS. The table shows it as the "baseline" row, and the ratios vs
the baseline use the midpoint 1.375 steps/s. Those figures are only comparable at
``--size 1024`` on a similar machine (the ratios are left out at other sizes); the
original rendered at the working size and resized each frame, which is
``--render working`` here (the default ``native`` renders at the source's own size,
256 x 256 for the bundled pair).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a clone: the package beside this script

from diffmorph.config import DEFAULT_SIZE, DEFAULT_STEPS, MIN_SIZE, MIN_STEPS, RENDER_MODES

DEFAULT_SOURCE = REPO / "images" / "astronaut.jpg"
DEFAULT_TARGET = REPO / "images" / "cat.jpg"
DEFAULT_EPOCHS = 20  # timed steps (after the first)
PATHS = ("plain", "fast")
LOSS_RTOL = 2e-3  # every step (Adam amplifies rounding; see the module docstring)
FIRST_LOSS_RTOL = 1e-5  # the first step: same weights, only rounding differs
EXTRAPOLATE_STEPS, EXTRAPOLATE_FRAMES = 1000, 100

BASELINE = {
    "label": "baseline (original, TF 2.15 + tfa)",
    "size": 1024,
    "cpus": 2,
    "steps_per_s_range": [1.35, 1.40],
    "steps_per_s": 1.375,  # midpoint, used for the ratios
    "frames_per_s": 7.35,
    "peak_rss_mb": 2520.0,
}
BASELINE["est_1000_100_s"] = round(EXTRAPOLATE_STEPS / BASELINE["steps_per_s"]
                                   + EXTRAPOLATE_FRAMES / BASELINE["frames_per_s"], 1)


def _progress(args, message: str) -> None:
    if not args.quiet:
        print(f"bench: {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (10^6 bytes); ru_maxrss is KiB on Linux."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes
    return kib * scale / 1e6


def machine_info() -> dict:
    """CPU model, core counts, OS and Python: where the figures were taken."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    uname = platform.uname()
    return {"cpu": cpu or uname.machine, "cpu_count": os.cpu_count(), "cpus_usable": usable,
            "machine": uname.machine, "system": f"{uname.system} {uname.release}",
            "python": platform.python_version()}


def estimate_s(first_step_s, steps_per_s, render_first_s, frames_per_s) -> float:
    """Extrapolated wall time of 1000 steps and 100 frames, first-call costs included."""
    return (first_step_s + (EXTRAPOLATE_STEPS - 1) / steps_per_s
            + render_first_s + (EXTRAPOLATE_FRAMES - 1) / frames_per_s)


def measure(path: str, args) -> dict:
    """Optimise and render with one path in this process; returns its figures."""
    from diffmorph.app.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf

    from diffmorph.app.inputs import load_pair
    from diffmorph.config import MorphConfig
    from diffmorph.core.optimise import Trainer
    from diffmorph.core.render import FrameRenderer, SnapshotRenderer, to_working

    a, b, _ = load_pair(args.source, args.target)
    config = MorphConfig(size=args.size, seed=args.seed, fast=(path == "fast"), train_steps=args.epochs + 1,
                         frames=args.steps, render=args.render)
    working_a, working_b = to_working(a, config.size), to_working(b, config.size)

    clock = time.perf_counter()
    trainer = Trainer(working_a, working_b, config)
    setup_s = time.perf_counter() - clock

    _progress(args, f"{path}: first step (trace{' + XLA compile' if config.fast else ''})")
    clock = time.perf_counter()
    losses = [trainer.step()]
    first_step_s = time.perf_counter() - clock

    _progress(args, f"{path}: first step {first_step_s:.2f} s; one training snapshot")
    clock = time.perf_counter()
    SnapshotRenderer(working_a, working_b, config)(trainer.low_maps())
    snapshot_s = time.perf_counter() - clock

    _progress(args, f"{path}: snapshot {snapshot_s:.2f} s; timing {args.epochs} steps")
    clock = time.perf_counter()
    for _ in range(args.epochs):
        losses.append(trainer.step())
    train_s = time.perf_counter() - clock
    steps_per_s = args.epochs / train_s

    _progress(args, f"{path}: {steps_per_s:.3f} steps/s; rendering {args.steps} frames ({args.render})")
    maps_low = trainer.maps_low()
    clock = time.perf_counter()
    renderer = FrameRenderer(a, b, maps_low, config)
    frames = renderer.frames()
    first = next(frames)
    render_first_s = time.perf_counter() - clock
    clock = time.perf_counter()
    rendered = 1
    for frame in frames:
        rendered += 1
    render_s = time.perf_counter() - clock
    frames_per_s = (rendered - 1) / render_s
    _progress(args, f"{path}: {frames_per_s:.2f} frames/s")

    return {
        "path": path,
        "size": config.size,
        "epochs": args.epochs,
        "steps": args.steps,
        "render": config.render,
        "output_size": list(first.image.shape[:2]),
        "seed": args.seed,
        "setup_s": setup_s,
        "first_step_s": first_step_s,
        "snapshot_s": snapshot_s,
        "train_s": train_s,
        "steps_per_s": steps_per_s,
        "render_first_s": render_first_s,
        "render_s": render_s,
        "frames_per_s": frames_per_s,
        "est_1000_100_s": estimate_s(first_step_s, steps_per_s, render_first_s, frames_per_s),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "losses": losses,
        "tf_version": tf.__version__,
        **machine_info(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def child_args(path: str, args) -> list[str]:
    """The command line that measures ``path`` in a fresh interpreter."""
    return [sys.executable, str(Path(__file__).resolve()), "--json-only", "--no-isolate", "--path", path,
            "--size", str(args.size), "--epochs", str(args.epochs), "--steps", str(args.steps),
            "--render", args.render, "--seed", str(args.seed), "-s", str(args.source),
            "-t", str(args.target)] + (["-q"] if args.quiet else [])


def measure_isolated(path: str, args) -> dict:
    """Measure ``path`` in a subprocess (its own peak RSS); returns its figures.

    Raises:
      RuntimeError: if the child fails or prints no JSON.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(child_args(path, args), stdout=subprocess.PIPE, text=True, env=env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the {path} run failed (exit status {proc.returncode})")
    return json.loads(lines[-1])["runs"][path]


def compare_losses(plain: list[float], fast: list[float], rtol: float = LOSS_RTOL) -> dict:
    """Largest relative difference of two loss curves; they match when every step is
    within ``rtol`` and the first within :data:`FIRST_LOSS_RTOL`."""
    if len(plain) != len(fast):
        return {"loss_max_rel_diff": math.inf, "loss_rtol": rtol, "losses_match": False}
    worst, match = 0.0, True
    if plain and not abs(fast[0] - plain[0]) <= FIRST_LOSS_RTOL * abs(plain[0]):
        match = False
    for p, f in zip(plain, fast):
        diff = abs(f - p)
        rel = diff / abs(p) if p else (0.0 if diff == 0 else math.inf)
        if not diff <= rtol * abs(p):  # NaN fails too
            match = False
        worst = rel if math.isnan(rel) else max(worst, rel)
    return {"loss_max_rel_diff": worst, "loss_rtol": rtol, "losses_match": match}


def summarise(runs: dict, args, isolated: bool) -> dict:
    """Everything in one JSON-able dict: settings, runs, ratios, baseline."""
    out = {
        "benchmark": "diffmorph",
        "settings": {"size": args.size, "epochs": args.epochs, "steps": args.steps, "render": args.render,
                     "seed": args.seed, "source": str(args.source), "target": str(args.target),
                     "isolated": isolated},
        "runs": runs,
        "baseline": BASELINE,
    }
    if "plain" in runs and "fast" in runs:
        plain, fast = runs["plain"], runs["fast"]
        out["comparison"] = {
            "fast_over_plain_steps_per_s": fast["steps_per_s"] / plain["steps_per_s"],
            "fast_over_plain_frames_per_s": fast["frames_per_s"] / plain["frames_per_s"],
            **compare_losses(plain["losses"], fast["losses"]),
        }
    if args.size == BASELINE["size"]:
        out["vs_baseline"] = {
            path: {"steps_per_s": run["steps_per_s"] / BASELINE["steps_per_s"],
                   "frames_per_s": run["frames_per_s"] / BASELINE["frames_per_s"],
                   "peak_rss": run["peak_rss_mb"] / BASELINE["peak_rss_mb"]}
            for path, run in runs.items()}
    return out


COLUMNS = (("path", 36, "{}"), ("first step s", 13, "{:.2f}"), ("steps/s", 10, "{:.3f}"),
           ("render 1st s", 13, "{:.2f}"), ("frames/s", 10, "{:.2f}"), ("est 1000+100 s", 15, "{:.1f}"),
           ("peak RSS MB", 12, "{:.0f}"))


def _row(values) -> str:
    cells = []
    for (_, width, fmt), value in zip(COLUMNS, values):
        text = value if isinstance(value, str) else fmt.format(value)
        cells.append(text.ljust(width) if width == COLUMNS[0][1] else text.rjust(width))
    return "  ".join(cells).rstrip()


def table(summary: dict) -> str:
    """The human-readable report (fixed-width columns)."""
    settings, runs = summary["settings"], summary["runs"]
    any_run = next(iter(runs.values()))
    height, width = any_run["output_size"]
    lines = [
        f"DiffMorph benchmark: size {settings['size']}, 1 + {settings['epochs']} steps, "
        f"{settings['steps']} frames (render {settings['render']}, output {width}x{height}), "
        f"seed {settings['seed']}",
        f"machine: {any_run['cpu']}, {any_run['cpus_usable']} usable CPUs ({any_run['cpu_count']} total), "
        f"{any_run['system']}, TF {any_run['tf_version']}, Python {any_run['python']}, {any_run['date']}",
        "",
        _row([name for name, _, _ in COLUMNS]),
    ]
    for path, run in runs.items():
        lines.append(_row([path, run["first_step_s"], run["steps_per_s"], run["render_first_s"],
                           run["frames_per_s"], run["est_1000_100_s"], run["peak_rss_mb"]]))
    low, high = BASELINE["steps_per_s_range"]
    lines.append(_row([BASELINE["label"], "-", f"{low:.2f}-{high:.2f}", "-", BASELINE["frames_per_s"],
                       BASELINE["est_1000_100_s"], BASELINE["peak_rss_mb"]]))
    lines.append("")
    comparison = summary.get("comparison")
    if comparison:
        lines.append(f"fast / plain: steps/s x{comparison['fast_over_plain_steps_per_s']:.2f}, "
                     f"frames/s x{comparison['fast_over_plain_frames_per_s']:.2f}")
        verdict = "PASS" if comparison["losses_match"] else "FAIL"
        lines.append(f"loss curves plain vs fast ({len(runs['plain']['losses'])} steps, same seed): "
                     f"max rel diff {comparison['loss_max_rel_diff']:.3g} "
                     f"(rtol {comparison['loss_rtol']:g}): {verdict}")
    if "vs_baseline" in summary:
        for path, ratios in summary["vs_baseline"].items():
            lines.append(f"{path} / baseline: steps/s x{ratios['steps_per_s']:.2f} (vs 1.375), "
                         f"frames/s x{ratios['frames_per_s']:.2f}, peak RSS x{ratios['peak_rss']:.2f}")
        if any_run["cpus_usable"] != BASELINE["cpus"]:
            lines.append(f"(the baseline was measured on {BASELINE['cpus']} cores; this machine has "
                         f"{any_run['cpus_usable']} usable)")
    else:
        lines.append(f"(no ratios vs the baseline: it was measured at size {BASELINE['size']}, "
                     f"this run is at {settings['size']})")
    if len(runs) > 1:
        lines.append("peak RSS: each path in its own process" if settings["isolated"] else
                     "peak RSS: one process for both paths; a later row's figure is the peak over "
                     "the paths measured so far")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python tools/bench.py",
        description="Time DiffMorph's optimisation steps and frame rendering (plain and/or fast path).")
    opt = parser.add_argument
    opt("--size", type=int, default=DEFAULT_SIZE, help=f"working resolution S (default {DEFAULT_SIZE})")
    opt("--epochs", type=int, default=DEFAULT_EPOCHS,
        help=f"timed optimisation steps after the first (default {DEFAULT_EPOCHS})")
    opt("--steps", type=int, default=DEFAULT_STEPS, help=f"frames to render (default {DEFAULT_STEPS})")
    opt("--render", choices=RENDER_MODES, default="native",
        help="native: frames at the source's size (default); working: at S x S, then resized "
             "(the original's path)")
    opt("-s", "--source", type=Path, default=DEFAULT_SOURCE, help="source image (default images/astronaut.jpg)")
    opt("-t", "--target", type=Path, default=DEFAULT_TARGET, help="target image (default images/cat.jpg)")
    opt("--path", choices=PATHS, default=None, help="the path to measure without --compare (default fast)")
    opt("--compare", action="store_true",
        help="measure the plain and the fast path, print them side by side with the ratios fast/plain "
             "and check that their loss curves agree")
    opt("--isolate", action=argparse.BooleanOptionalAction, default=None,
        help="measure each path in a fresh subprocess, so each peak RSS is its own "
             "(default: on with --compare, off otherwise)")
    opt("--seed", type=int, default=0, help="seed of the net's initial weights (default 0)")
    opt("--json-only", action="store_true", help="print only the JSON line")
    opt("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.size < MIN_SIZE:
        parser.error(f"--size must be >= {MIN_SIZE}")
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.steps < MIN_STEPS:
        parser.error(f"--steps must be >= {MIN_STEPS}")
    if args.compare and args.path:
        parser.error("--path and --compare cannot be combined")
    for image in (args.source, args.target):
        if not image.is_file():
            parser.error(f"{image}: no such file")
    args.source, args.target = args.source.resolve(), args.target.resolve()
    paths = PATHS if args.compare else (args.path or "fast",)
    isolated = args.compare if args.isolate is None else args.isolate

    try:
        runs = {path: (measure_isolated if isolated else measure)(path, args) for path in paths}
    except RuntimeError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    summary = summarise(runs, args, isolated)
    if not args.json_only:
        print(table(summary))
    print(json.dumps(summary), flush=True)
    return 0 if summary.get("comparison", {}).get("losses_match", True) else 1


if __name__ == "__main__":
    sys.exit(main())
