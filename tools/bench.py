"""Speed and memory benchmark of diffmorph (a script beside the package, not a test).

Three modes:

Run from the repository root as a module (``python -m tools.bench``).

``python -m tools.bench --preset preview|default300|default|fast [--runs N] [--original PATH --original-python PY]``
    The whole job, end to end, through the public API (``diffmorph.morph``), each run
    in a fresh process: ``preview`` is the quick preview of docs/getting-started.md (working size 256, 200 train
    steps, 20 frames), ``default300`` working size 1024 with 300 train steps and 20
    frames, ``default`` the original's defaults (1024, 1000 steps, 100 frames), ``fast``
    the ``fast`` preset at 1024 with 100 frames, all on a 600 x 400 photo pair made from
    the bundled images. For each run it reports:

    * ``wall_s``: the process's wall time (Python start to exit), what a user waits;
    * the phase budget (:data:`PHASES`, printed as a table, ours beside the original's):
      ``python_s`` (interpreter start and exit), ``import_s`` (TensorFlow), ``package_s``
      (diffmorph), ``setup_s`` (images, checks, net), ``first_step_s`` (the first step at
      each working size: tracing, XLA compilation or loading it from the persistent
      cache; ``first_step_by_size``), ``train_s`` (the other steps, snapshots included),
      ``render_s`` (rendering), ``encode_s`` (inside the frame writers), ``publish_s``
      (maps files and renames); see :func:`child_end_to_end` and :func:`instrument_original`;
    * ``steps_per_s``: the steady rate of the steps after the first at each size;
    * ``peak_rss_mb``: the process's peak resident memory (``ru_maxrss``, 10^6 bytes);
    * ``minor_faults_per_step``, ``user_s_per_step``, ``system_s_per_step``: page faults
      and CPU time per train step over the steady steps (``getrusage``): fresh memory
      mapped each step shows as faults and system time.

    The first run starts with an empty compilation cache (``cold``), later runs reuse it
    (``warm``). With ``--original`` the original DiffMorph script (its own ``morph.py``,
    run by ``--original-python``, e.g. a venv with TensorFlow 2.15.1 and
    tensorflow-addons 0.23.0) runs the same job in turn with each of ours, from an
    instrumented temporary copy in a temporary folder (its working size, a constant in
    that script, substituted; timing marks written in; its final
    ``cv2.destroyAllWindows()``, which a headless OpenCV cannot run, skipped). Its
    steps/s are read from its progress bar, its phases from the marks.

``python -m tools.bench --interactive [--runs N]``
    The runs of one web session (:data:`INTERACTIVE_RUNS`) one after another in one fresh
    process per session: per run the wall time, the time to the first training snapshot
    on disk (what the web page shows first), the first step's time and the estimate
    (:func:`diffmorph.estimate_seconds`) made before it.

``python -m tools.bench --compare [--size S] [--epochs N] [--steps F]``
    The optimisation step alone, plain path against fast path, in one process each:
    steps/s, render frames/s, and a check that the two loss curves agree (same seed):
    the first step's loss within rtol 1e-5 and every step within 2e-3 (Adam amplifies
    rounding; the plain path compiled with XLA drifts as much from itself). FAIL makes
    the exit status 1. Also per train step: minor page faults, user and system CPU seconds.

The last line printed is one JSON object with every figure, the settings and the
machine (CPU model, family, SIMD flags, cores: :func:`tools.benchlib.machine_info`).
Timings on a shared machine are noisy: use ``--runs`` and give ranges.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.benchlib import (
    IMAGES,
    child_env,
    describe_cpu,
    machine_info,
    maxrss_mb,
    module_command,
    peak_rss_mb,
    usage,
    usage_since,
)

PAIR_SIZE = (600, 400)  # width, height of the benchmark's photo pair
PRESETS = {
    "preview": {"size": 256, "train_steps": 200, "frames": 20},
    "default300": {"size": 1024, "train_steps": 300, "frames": 20},  # the issue's default-size job
    "default": {"size": 1024, "train_steps": 1000, "frames": 100},
    "fast": {"preset": "fast", "size": 1024, "frames": 100},  # the fast preset's own train steps
}
LOSS_RTOL = 2e-3  # every step (Adam amplifies rounding; see the module docstring)
FIRST_LOSS_RTOL = 1e-5  # the first step: same weights, only rounding differs
CHILD = "--child"


def progress_line(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"bench: {message}", file=sys.stderr, flush=True)


def per_step(used: dict, steps: int) -> dict:
    """Page faults and CPU seconds per train step from a :func:`tools.benchlib.usage_since` span."""
    steps = max(steps, 1)
    return {
        "minor_faults_per_step": used["minor_faults"] / steps,
        "user_s_per_step": used["user_s"] / steps,
        "system_s_per_step": used["system_s"] / steps,
    }


def allocator_env(args) -> dict[str, str]:
    """``--allocator``: TensorFlow's CPU allocator for the children (default: what the package picks, BFC)."""
    choice = getattr(args, "allocator", None)
    return {} if choice is None else {"TF_CPU_ALLOCATOR_USE_BFC": "true" if choice == "bfc" else "false"}


def job_config(preset: str, **extra):
    """The MorphConfig of a benchmark job (:data:`PRESETS`)."""
    from diffmorph.config import preset_config

    settings = dict(PRESETS[preset])
    return preset_config(settings.pop("preset", "faithful"), **settings, **extra)


def make_pair(folder: Path) -> tuple[Path, Path]:
    """The benchmark's 600 x 400 photo pair: the bundled 256 x 256 photos resized (INTER_CUBIC)."""
    import cv2

    out = []
    for name in ("astronaut.jpg", "cat.jpg"):
        image = cv2.resize(cv2.imread(str(IMAGES / name)), PAIR_SIZE, interpolation=cv2.INTER_CUBIC)
        path = folder / f"{Path(name).stem}_600x400.png"
        cv2.imwrite(str(path), image)
        out.append(path)
    return out[0], out[1]


# ----------------------------------------------------------------------------- end to end (ours)


def child_end_to_end(args) -> int:
    """In a fresh process: one whole morph through ``diffmorph.morph``, timed by phase.

    Marks are wall-clock times (``time.time()``, so the parent can place them after its
    own launch time): TensorFlow imported, diffmorph imported, the optimise phase's start,
    every train step (the first step at each working size is the one that traces and
    compiles), the render phase's start and end, the morph's return. The time spent in
    the frame writers (MP4 pipe and ffmpeg's finish, GIF, PNGs) is summed by wrapping
    :func:`diffmorph.io.video.frame_writers` (this process only): it is ``encode_s``.
    """
    marks = {"child_start": time.time()}
    from diffmorph.app.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    marks["tf_imported"] = time.time()
    import diffmorph
    import diffmorph.app.morph  # noqa: F401 (the pipeline's own modules, imported by the call below anyway)
    from diffmorph.io import video

    marks["package_imported"] = time.time()
    used = {}
    first_at: dict[int, list[float]] = {}  # working size -> [time of the step before, time of its first step]
    steps: list[tuple[int, float]] = []  # (working size, time) of every step
    encode = [0.0]
    config = job_config(args.preset, seed=0)
    size_word = re.compile(r"\(working size (\d+)\)")

    class Clock(diffmorph.Progress):
        def start(self, phase, total, done=0):
            marks[f"{phase}_start"] = time.time()

        def update(self, done, status=None):
            now = time.time()
            if "render_start" in marks:
                return
            found = size_word.search(status or "")
            size = int(found.group(1)) if found else config.size
            before = steps[-1][1] if steps else marks["optimise_start"]
            first_at.setdefault(size, [before, now])
            steps.append((size, now))
            if done == 1:
                used.setdefault("start", usage())

        def end(self):
            now = time.time()
            if "render_start" in marks:
                marks.setdefault("render_end", now)
                return
            marks.setdefault("optimise_end", now)
            if "start" in used:
                used.setdefault("span", usage_since(used["start"]))

    original_writers = video.frame_writers

    @contextlib.contextmanager
    def timed_writers(*a, **k):
        with original_writers(*a, **k) as write:

            def timed(frame):
                clock = time.perf_counter()
                write(frame)
                encode[0] += time.perf_counter() - clock

            yield timed
            closing = time.perf_counter()
        encode[0] += time.perf_counter() - closing  # the writers' close: ffmpeg finishing, the GIF written

    video.frame_writers = timed_writers
    diffmorph.morph(args.source, args.target, args.out, config, progress=Clock())
    marks["done"] = time.time()
    print(json.dumps(phases_of_ours(marks, first_at, steps, encode[0], used, config.train_steps)))
    return 0


def phases_of_ours(marks: dict, first_at: dict, steps: list, encode_s: float, used: dict, train_steps: int) -> dict:
    """The phase budget (seconds) of one run of ours from its marks (see :func:`child_end_to_end`)."""
    first = {size: end - before for size, (before, end) in first_at.items()}
    optimise = marks["optimise_end"] - marks["optimise_start"]
    rest = len(steps) - len(first)
    render_all = marks["render_end"] - marks["render_start"]
    out = {
        "import_s": marks["tf_imported"] - marks["child_start"],
        "package_s": marks["package_imported"] - marks["tf_imported"],
        "setup_s": marks["optimise_start"] - marks["package_imported"],
        "first_step_s": sum(first.values()),
        "first_step_by_size": {str(size): seconds for size, seconds in first.items()},
        "train_s": optimise - sum(first.values()),
        "steps_per_s": rest / max(optimise - sum(first.values()), 1e-9) if rest else math.nan,
        "render_s": render_all - encode_s,
        "encode_s": encode_s,
        "publish_s": (marks["render_start"] - marks["optimise_end"]) + (marks["done"] - marks["render_end"]),
        "peak_rss_mb": peak_rss_mb(),
        "marks": marks,
    }
    if "span" in used:
        out.update(per_step(used["span"], max(train_steps - 1, 1)))
    return out


def run_ours(args, source: Path, target: Path, cache: Path, work: Path) -> dict:
    """One end-to-end run of ours in a fresh process, with ``cache`` as the compilation cache."""
    env = child_env(DIFFMORPH_CACHE_DIR=str(cache), **allocator_env(args))
    command = module_command(
        "bench", CHILD, "--preset", args.preset, "--source", source, "--target", target, "--out", work
    )
    launched, started = time.time(), time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"our run failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    marks = figures.pop("marks")
    # Python's own start (interpreter, tools.bench) before the child's first mark, and its exit after the last
    figures["python_s"] = (marks["child_start"] - launched) + max(wall - (marks["done"] - launched), 0.0)
    return {"wall_s": wall, **figures}


# ----------------------------------------------------------------------------- end to end (the original)


MARK = "BENCH-MARK"  # stderr lines "BENCH-MARK name time" from the instrumented copy of the original
ORIGINAL_MARKS = (  # (pattern, replacement) inserted into the copy: timing only, the computation is unchanged
    (r"^(from tqdm import tqdm\n)", r"\1_bench_mark('imported')\n"),
    (
        r"^(        train_step\(maps, origins, targets\)\n)",
        r"\1        if epoch == 1:\n            _bench_mark('first_step')\n",
    ),
    (
        r"^(    )(produce_warp_maps\(origins, targets\)\n)(    )(use_warp_maps\(.*\)\n)",
        r"\1_bench_mark('loaded')\n\1\2\1_bench_mark('optimised')\n\3\4\3_bench_mark('rendered')\n"
        r"\3_bench_mark('encode', _bench_encode[0])\n",
    ),
    (r"^(\s+)(video\.write\(output_img\)|video\.release\(\))\n", r"\1_bench_timed(lambda: \2)\n"),
)
ORIGINAL_PROLOGUE = (
    "import sys as _bench_sys, time as _bench_time\n"
    "def _bench_mark(name, value=None):\n"
    "    value = _bench_time.time() if value is None else value\n"
    f"    print('{MARK}', name, repr(value), file=_bench_sys.stderr, flush=True)\n"
    "_bench_encode = [0.0]\n"
    "def _bench_timed(call):\n"
    "    started = _bench_time.perf_counter()\n"
    "    call()\n"
    "    _bench_encode[0] += _bench_time.perf_counter() - started\n"
    "_bench_mark('start')\n"
)


def instrument_original(code: str, size: int) -> str:
    """The original's code with working size ``size`` and timing marks (:data:`ORIGINAL_MARKS`).

    The marks: ``start`` (first line run), ``imported`` (TensorFlow, tensorflow-addons,
    OpenCV, tqdm), ``loaded`` (images read and resized), ``first_step`` (after train step
    1: the Keras model built, the step traced and run), ``optimised`` (all train steps
    and snapshots), ``rendered`` (frames rendered and written), and ``encode``: the
    seconds inside ``VideoWriter.write`` and ``release`` (OpenCV's MP4 encoder, which
    the original calls in its render loop). A pattern that is not found leaves its marks
    out (their phases read NaN); the working size must be found.
    """
    code, count = re.subn(r"^im_sz = \d+", f"im_sz = {size}", code, flags=re.M)
    if count != 1:
        raise RuntimeError("no 'im_sz = ...' line to set the working size in")
    # its last call closes GUI windows, which a headless OpenCV build cannot (everything is written by then)
    code = code.replace("cv2.destroyAllWindows()", "pass")
    for pattern, replacement in ORIGINAL_MARKS:
        code = re.sub(pattern, replacement, code, flags=re.M)
    lines = code.splitlines(keepends=True)
    head = 1 if lines and lines[0].startswith("#!") else 0  # after the shebang line
    return "".join(lines[:head]) + ORIGINAL_PROLOGUE + "".join(lines[head:])


def original_phases(marks: dict, wall: float) -> dict:
    """The phase budget (seconds) of one run of the original from its marks (NaN where one is missing)."""

    def between(a, b):
        return marks[b] - marks[a] if a in marks and b in marks else math.nan

    out = {
        "python_s": between("launched", "start") + max(wall - between("launched", "rendered"), 0.0),
        "import_s": between("start", "imported"),
        "setup_s": between("imported", "loaded"),
        "first_step_s": between("loaded", "first_step"),
        "train_s": between("first_step", "optimised"),
        "render_s": between("optimised", "rendered") - marks.get("encode", math.nan),
        "encode_s": marks.get("encode", math.nan),
    }
    return out


def run_original(args, source: Path, target: Path, work: Path) -> dict:
    """One run of the original script (an instrumented temporary copy, :func:`instrument_original`) in ``work``."""
    size = PRESETS[args.preset]["size"]
    try:
        code = instrument_original(Path(args.original).read_text(), size)
    except RuntimeError as exc:
        raise RuntimeError(f"{args.original}: {exc}") from None
    work.mkdir(parents=True, exist_ok=True)
    for folder in ("train", "morph"):  # its repository ships them; without them its JPEGs and MP4 go nowhere, silently
        (work / folder).mkdir(exist_ok=True)
    script = work / "original_morph.py"
    script.write_text(code)
    steps, frames = job_config(args.preset).train_steps, PRESETS[args.preset]["frames"]
    wrapper = (
        "import resource, subprocess, sys, time\n"
        f"print('{MARK} launched', repr(time.time()), file=sys.stderr, flush=True)\n"
        "code = subprocess.call(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    command = [
        sys.executable,
        "-c",
        wrapper,
        args.original_python,
        str(script),
        "-s",
        str(source),
        "-t",
        str(target),
        "-e",
        str(steps),
        "--steps",
        str(frames),
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"the original failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    lines = proc.stderr.replace("\r", "\n").splitlines()
    # a mark may follow a progress bar's text on its line (tqdm ends its lines with no newline)
    marks = {name: float(value) for name, value in re.findall(MARK + r" (\w+) (\S+)", proc.stderr)}
    # the training bar's rate at its last update ("Epoch N, Loss: X: ...| 200/200 [..., 19.5it/s]")
    training = [line for line in lines if line.startswith("Epoch")]
    rates = re.findall(r"([\d.]+)(it/s|s/it)\]", training[-1]) if training else []
    rate = (float(rates[-1][0]) if rates[-1][1] == "it/s" else 1 / float(rates[-1][0])) if rates else math.nan
    return {
        "wall_s": wall,
        "steps_per_s": rate,
        "peak_rss_mb": maxrss_mb(int(proc.stderr.strip().splitlines()[-1])),
        **original_phases(marks, wall),
    }


def end_to_end(args) -> dict:
    rows = []
    with tempfile.TemporaryDirectory(prefix="diffmorph-bench-") as tmp:
        tmp = Path(tmp)
        source, target = make_pair(tmp)
        cache = tmp / "cache"
        for run in range(args.runs):
            label = "cold" if run == 0 else "warm"
            progress_line(args.quiet, f"{args.preset}: run {run + 1}/{args.runs}, ours ({label} compilation cache)")
            rows.append({"who": "ours", "cache": label, **run_ours(args, source, target, cache, tmp / f"ours{run}")})
            if args.original:
                progress_line(args.quiet, f"{args.preset}: run {run + 1}/{args.runs}, the original")
                rows.append({"who": "original", **run_original(args, source, target, tmp / f"orig{run}")})
    ours = [r for r in rows if r["who"] == "ours"]
    summary = {
        "benchmark": "diffmorph end to end",
        "preset": args.preset,
        **{key: value for key, value in PRESETS[args.preset].items() if key != "preset"},
        "train_steps": job_config(args.preset).train_steps,
        "pair": f"{PAIR_SIZE[0]}x{PAIR_SIZE[1]} (bundled photos, resized)",
        "rows": rows,
        "machine": machine_info(),
    }
    cold = [r for r in ours if r["cache"] == "cold"]
    warm = [r for r in ours if r["cache"] == "warm"]
    if cold and warm:
        start = [r["import_s"] + r["setup_s"] + r["first_step_s"] for r in (cold[0], *warm)]
        summary["warm_start_speedup"] = start[0] / min(start[1:])
    originals = [r for r in rows if r["who"] == "original"]
    if originals:
        pairs = list(zip(ours, originals))
        summary["speedup_wall"] = [o["wall_s"] / u["wall_s"] for u, o in pairs]
        summary["speedup_steps"] = [u["steps_per_s"] / o["steps_per_s"] for u, o in pairs]
    return summary


def e2e_table(summary: dict) -> str:
    lines = [
        f"{summary['preset']}: working size {summary['size']}, {summary['train_steps']} train steps, "
        f"{summary['frames']} frames, pair {summary['pair']}",
        f"machine: {describe_cpu(summary['machine'])}, {summary['machine']['system']}, {summary['machine']['date']}",
        "",
        f"{'run':<18}{'wall s':>8}{'import s':>10}{'setup s':>9}{'1st step s':>11}{'steps/s':>9}"
        f"{'render s':>10}{'peak MB':>9}{'faults/step':>12}{'sys s/step':>11}",
    ]
    for row in summary["rows"]:
        label = f"{row['who']} ({row['cache']})" if row["who"] == "ours" else "original"

        def cell(key, width, spec, row=row):
            return f"{row[key]:>{width}{spec}}" if key in row else f"{'-':>{width}}"

        lines.append(
            f"{label:<18}{cell('wall_s', 8, '.1f')}{cell('import_s', 10, '.2f')}{cell('setup_s', 9, '.2f')}"
            f"{cell('first_step_s', 11, '.2f')}{cell('steps_per_s', 9, '.2f')}{cell('render_s', 10, '.2f')}"
            f"{cell('peak_rss_mb', 9, '.0f')}{cell('minor_faults_per_step', 12, '.0f')}"
            f"{cell('system_s_per_step', 11, '.3f')}"
        )
    if "speedup_wall" in summary:
        lines += [
            "",
            "ours / original, run by run: wall "
            + ", ".join(f"x{x:.2f}" for x in summary["speedup_wall"])
            + "; steps/s "
            + ", ".join(f"x{x:.2f}" for x in summary["speedup_steps"]),
        ]
    if "warm_start_speedup" in summary:
        lines.append(f"start-up (import + setup + first step), cold / best warm: x{summary['warm_start_speedup']:.2f}")
    lines += ["", *phase_table(summary["rows"])]
    return "\n".join(lines)


PHASES = (  # key of a row's figures, label in the phase budget
    ("python_s", "Python start and exit"),
    ("import_s", "import TensorFlow (+ its Keras; original: + addons, OpenCV)"),
    ("package_s", "import diffmorph"),
    ("setup_s", "load images, checks, build the net"),
    ("first_step_s", "first train step per working size (trace, compile)"),
    ("train_s", "the other train steps (snapshots included)"),
    ("render_s", "render frames (strip, maps image)"),
    ("encode_s", "encode (MP4, GIF writers)"),
    ("publish_s", "publish (maps files, preds.npy, renames)"),
    ("wall_s", "end to end (wall)"),
)


def span(values: list[float]) -> str:
    """``min-max`` (or one value) of the finite ``values``, ``-`` if none."""
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low:.2f}" if len(values) == 1 or f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}"


def phase_table(rows: list[dict]) -> list[str]:
    """The phase budget: seconds per phase, ours (cold and warm compilation cache) beside the original.

    Ranges are min-max over the runs. The original's phases come from timing marks in
    an instrumented copy (:func:`instrument_original`); its rendering and MP4 encoding
    run in one loop and are split by timing its ``VideoWriter`` calls.
    """
    groups = {
        "ours, cold cache": [r for r in rows if r["who"] == "ours" and r.get("cache") == "cold"],
        "ours, warm cache": [r for r in rows if r["who"] == "ours" and r.get("cache") == "warm"],
        "original": [r for r in rows if r["who"] == "original"],
    }
    groups = {name: group for name, group in groups.items() if group}
    head = f"{'phase budget, seconds (min-max over runs)':<62}" + "".join(f"{name:>18}" for name in groups)
    lines = [head]
    for key, label in PHASES:
        lines.append(f"{label:<62}" + "".join(f"{span([r.get(key) for r in g]):>18}" for g in groups.values()))
        if key == "first_step_s":
            sizes = sorted({int(k) for g in groups.values() for r in g for k in r.get("first_step_by_size", {})})
            for size in sizes:
                cells = [span([r.get("first_step_by_size", {}).get(str(size)) for r in g]) for g in groups.values()]
                lines.append(f"{'    at working size ' + str(size):<62}" + "".join(f"{c:>18}" for c in cells))
    return lines


# ----------------------------------------------------------------------------- interactive: runs in one process

POINTS = [  # point pairs on the 600 x 400 pair (source x, y, target x, y), one more in each later run
    (300.0, 150.0, 300.0, 170.0),
    (200.0, 250.0, 220.0, 250.0),
    (420.0, 300.0, 400.0, 290.0),
    (150.0, 120.0, 160.0, 110.0),
]
INTERACTIVE_RUNS = (  # (label, preset, settings, point pairs): what a web session does, in order
    ("1: 256, 200 steps, 2 point pairs", "faithful", {"size": 256, "train_steps": 200, "frames": 20}, 2),
    ("2: same, a new point pair", "faithful", {"size": 256, "train_steps": 200, "frames": 20}, 3),
    ("3: preview preset, same pairs", "preview", {}, 3),
    ("4: preview preset, a new point pair", "preview", {}, 4),
)


def child_interactive(args) -> int:
    """In a fresh process: the :data:`INTERACTIVE_RUNS` one after another through ``diffmorph.morph``
    with the web app's outputs (MP4, GIF, frames, report), as the web app runs them on its
    worker thread. Per run: wall seconds, seconds to the first training snapshot on disk (what
    the page shows first), the first step's seconds, and the estimate made before the run."""
    import threading

    marks = {"child_start": time.time()}
    from diffmorph.app.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    marks["tf_imported"] = time.time()
    import numpy as np

    import diffmorph
    from diffmorph.app.estimate import estimate_seconds
    from diffmorph.app.fit import is_compiled
    from diffmorph.config import preset_config

    rows = []
    for number, (label, preset, settings, count) in enumerate(INTERACTIVE_RUNS):
        config = preset_config(preset, seed=0, **settings)
        out = Path(args.out) / f"run{number}"
        snapshot = out / "train" / "a_to_b_10.jpg"
        estimate = estimate_seconds(config, PAIR_SIZE[::-1], compiled=is_compiled(config))
        seen = {}
        stop = threading.Event()

        def watch(snapshot=snapshot, seen=seen, stop=stop):
            while not stop.is_set() and not snapshot.exists():
                time.sleep(0.02)
            seen.setdefault("snapshot", time.perf_counter())

        steps = []

        class Clock(diffmorph.Progress):
            def update(self, done, status=None, steps=steps):
                if len(steps) < 2:
                    steps.append(time.perf_counter())

        watcher = threading.Thread(target=watch, daemon=True)
        started = time.perf_counter()
        watcher.start()
        options = diffmorph.OutputOptions(formats=("mp4", "gif", "frames"), report=True)
        diffmorph.morph(
            args.source, args.target, out, config, points=np.array(POINTS[:count]), options=options, progress=Clock()
        )
        done = time.perf_counter()
        stop.set()
        watcher.join()
        rows.append(
            {
                "run": label,
                "wall_s": done - started,
                "first_snapshot_s": seen["snapshot"] - started if "snapshot" in seen else math.nan,
                "first_step_s": steps[0] - started if steps else math.nan,
                "estimate_s": estimate.total_s,
                "size": config.size,
                "train_steps": config.train_steps,
                "frames": config.frames,
                "points": count,
            }
        )
    print(json.dumps({"import_s": marks["tf_imported"] - marks["child_start"], "runs": rows}))
    return 0


def interactive(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="diffmorph-bench-") as tmp:
        tmp = Path(tmp)
        source, target = make_pair(tmp)
        env = child_env(DIFFMORPH_CACHE_DIR=str(tmp / "cache"), **allocator_env(args))
        results = []
        for run in range(args.runs):
            progress_line(args.quiet, f"interactive: session {run + 1}/{args.runs} (a fresh process)")
            command = module_command(
                "bench", CHILD, "--interactive", "--source", source, "--target", target, "--out", tmp / f"s{run}"
            )
            proc = subprocess.run(command, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"the interactive run failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {"benchmark": "diffmorph interactive", "sessions": results, "machine": machine_info()}


def interactive_table(summary: dict) -> str:
    lines = [
        "interactive: the runs of one web session in one process (the first session: empty compilation cache)",
        f"machine: {describe_cpu(summary['machine'])}, {summary['machine']['system']}, {summary['machine']['date']}",
        "",
        f"{'run':<40}{'wall s':>16}{'1st snapshot s':>16}{'1st step s':>14}{'estimate s':>12}",
    ]
    sessions = summary["sessions"]
    for index, row in enumerate(sessions[0]["runs"]):
        cells = [span([s["runs"][index][key] for s in sessions]) for key in ("wall_s", "first_snapshot_s")]
        cells.append(span([s["runs"][index]["first_step_s"] for s in sessions]))
        cells.append(span([s["runs"][index]["estimate_s"] for s in sessions]))
        lines.append(f"{row['run']:<40}{cells[0]:>16}{cells[1]:>16}{cells[2]:>14}{cells[3]:>12}")
    ratios = [s["runs"][1]["wall_s"] / s["runs"][0]["wall_s"] for s in sessions]
    lines.append(
        f"second run / first run (wall): {span(ratios)}; TensorFlow import: {span([s['import_s'] for s in sessions])} s"
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- step level: plain vs fast


def measure(path: str, args) -> dict:
    """Optimise and render with one path in this process; its figures and loss curve."""
    from diffmorph.app.inputs import load_pair
    from diffmorph.app.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    from diffmorph.config import MorphConfig
    from diffmorph.core.optimise import Trainer
    from diffmorph.core.render import FrameRenderer, to_working

    pair = load_pair(args.source, args.target)
    config = MorphConfig(
        size=args.size, seed=0, plain=(path == "plain"), train_steps=args.epochs + 1, frames=args.steps
    )
    trainer = Trainer(to_working(pair.source, config.size), to_working(pair.target, config.size), config)
    clock = time.perf_counter()
    losses = [trainer.step()]
    first_step_s = time.perf_counter() - clock
    clock, before = time.perf_counter(), usage()
    losses += [trainer.step() for _ in range(args.epochs)]
    steps_per_s = args.epochs / (time.perf_counter() - clock)
    used = usage_since(before)
    renderer = FrameRenderer(pair.source, pair.target, trainer.maps_low(), config)
    frames = renderer.frames()
    next(frames)  # the first frame compiles
    clock = time.perf_counter()
    count = sum(1 for _ in frames)
    frames_per_s = count / (time.perf_counter() - clock)
    return {
        "path": path,
        "first_step_s": first_step_s,
        "steps_per_s": steps_per_s,
        "frames_per_s": frames_per_s,
        "peak_rss_mb": peak_rss_mb(),
        **per_step(used, args.epochs),
        "allocator": os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", ""),
        "losses": losses,
    }


def compare_losses(plain: list[float], fast: list[float], rtol: float = LOSS_RTOL) -> dict:
    """Largest relative difference of two loss curves; they match when every step is
    within ``rtol`` and the first within :data:`FIRST_LOSS_RTOL`."""
    if len(plain) != len(fast) or not plain:
        return {"loss_max_rel_diff": math.inf, "losses_match": False}
    relative = [abs(f - p) / abs(p) if p else (0.0 if f == p else math.inf) for p, f in zip(plain, fast)]
    worst = max(relative)
    match = relative[0] <= FIRST_LOSS_RTOL and all(r <= rtol for r in relative)  # NaN fails both
    return {"loss_max_rel_diff": worst, "losses_match": bool(match)}


def step_compare(args) -> dict:
    runs = {}
    for path in ("plain", "fast"):
        progress_line(args.quiet, f"{path} path: size {args.size}, 1 + {args.epochs} steps")
        command = module_command(
            "bench", CHILD, "--path", path, "--size", args.size, "--epochs", args.epochs, "--steps", args.steps
        )
        command += ["--source", args.source, "--target", args.target]
        proc = subprocess.run(command, env=child_env(**allocator_env(args)), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"the {path} run failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
        runs[path] = json.loads(proc.stdout.strip().splitlines()[-1])
    comparison = compare_losses(runs["plain"]["losses"], runs["fast"]["losses"])
    return {
        "benchmark": "diffmorph step compare",
        "size": args.size,
        "epochs": args.epochs,
        "runs": runs,
        "fast_over_plain_steps_per_s": runs["fast"]["steps_per_s"] / runs["plain"]["steps_per_s"],
        **comparison,
        "loss_rtol": LOSS_RTOL,
        "machine": machine_info(),
    }


def compare_table(summary: dict) -> str:
    lines = [f"size {summary['size']}, 1 + {summary['epochs']} steps; {describe_cpu(summary['machine'])}"]
    for path, run in summary["runs"].items():
        lines.append(
            f"{path:<6} first step {run['first_step_s']:.2f} s, {run['steps_per_s']:.2f} steps/s, "
            f"{run['frames_per_s']:.1f} frames/s, peak {run['peak_rss_mb']:.0f} MB; per step "
            f"{run['minor_faults_per_step']:.0f} minor faults, {run['user_s_per_step']:.3f} s user, "
            f"{run['system_s_per_step']:.3f} s system"
        )
    verdict = "PASS" if summary["losses_match"] else "FAIL"
    lines.append(
        f"fast / plain steps/s x{summary['fast_over_plain_steps_per_s']:.2f}; loss curves: largest relative "
        f"difference {summary['loss_max_rel_diff']:.2e} (rtol {summary['loss_rtol']:g}): {verdict}"
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    opt = parser.add_argument
    opt("--preset", choices=tuple(PRESETS), help="the whole job end to end (see the docstring)")
    opt("--runs", type=int, default=3, help="end-to-end runs (the first with a cold compilation cache; default 3)")
    opt("--original", help="the original DiffMorph's morph.py, to run side by side")
    opt("--original-python", default="python3", help="the interpreter for --original (default python3)")
    opt("--compare", action="store_true", help="step level: plain against fast path, with the loss-curve check")
    opt("--interactive", action="store_true", help="the runs of one web session in one process (see the docstring)")
    opt("--size", type=int, default=256, help="--compare: working size (default 256)")
    opt("--epochs", type=int, default=20, help="--compare: timed steps after the first (default 20)")
    opt("--steps", type=int, default=10, help="--compare: frames to render (default 10)")
    opt(
        "--allocator",
        choices=("bfc", "malloc"),
        help="TensorFlow's CPU allocator in the runs: bfc (TF_CPU_ALLOCATOR_USE_BFC=true, what diffmorph sets "
        "unless the user did) or malloc (=false, TensorFlow's default); default: leave it to diffmorph",
    )
    opt("--source", type=Path, default=IMAGES / "astronaut.jpg", help=argparse.SUPPRESS)
    opt("--target", type=Path, default=IMAGES / "cat.jpg", help=argparse.SUPPRESS)
    opt("--out", type=Path, help=argparse.SUPPRESS)
    opt("--path", choices=("plain", "fast"), help=argparse.SUPPRESS)
    opt(CHILD, action="store_true", help=argparse.SUPPRESS)
    opt("--json-only", action="store_true", help="print only the JSON line")
    opt("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.child:
        if args.path:
            print(json.dumps(measure(args.path, args)))
            return 0
        return child_interactive(args) if args.interactive else child_end_to_end(args)
    if sum((bool(args.preset), args.compare, args.interactive)) != 1:
        parser.error("give one of --preset NAME, --compare or --interactive")
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    if args.original and not Path(args.original).is_file():
        parser.error(f"{args.original}: no such file")
    try:
        summary = end_to_end(args) if args.preset else interactive(args) if args.interactive else step_compare(args)
    except RuntimeError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    if not args.json_only:
        table = e2e_table if args.preset else interactive_table if args.interactive else compare_table
        print(table(summary))
    print(json.dumps(summary), flush=True)
    return 0 if summary.get("losses_match", True) else 1


if __name__ == "__main__":
    sys.exit(main())
