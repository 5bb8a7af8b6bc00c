"""Pacing and report benchmark: even pacing against the original's, its cost, and the report's speed.

Prints, per image pair (the bundled photos, the toy pair, a generated pair of shapes):

* the scale-free pace evenness ``std/mean`` of the step distances (and PDV = variance)
  of 100-frame morphs rendered at native size with linear pacing (the original's) and
  with uniform pacing driven by each distance, measured by the report's metrics
  (``1 - MS-SSIM`` on copies at most 256 px, and MAD) on the final frames;
* whether the end frames are exactly the inputs;
* the middle frame's sharpness relative to the inputs', its colour variance against the
  Bures geodesic midpoint's, and the colour path (largest deviation from the geodesic and
  length, relative to W2(first, last); largest step relative to the mean step);
* the time of the dense pass (its renderer on the inputs at most 256 px on the long
  side, as the app builds it, plus ``dense + 1`` frames and their distances) against
  rendering the 100 frames at native size (renderer built, frames rendered), over
  ``--runs`` runs, side by side;

and the time of ``report`` on a 100-frame 1024 x 1024 MP4 (made once from the photo
pair upscaled to 1024): in this process, and end to end in a fresh Python process
(imports included).

Maps come from a real optimisation (``Trainer`` at working size 256, seed 0); they are
cached as ``.npy`` in ``--cache`` so a second run does not train again. Run from the
repository root::

    python -m tools.pacing_bench [--train-steps 1000] [--dense 24] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import cv2  # noqa: E402  (after TF_CPP_MIN_LOG_LEVEL: TensorFlow may load with it)
import numpy as np  # noqa: E402

from tools.benchlib import IMAGES, child_env  # noqa: E402

PAIRS = ("photo", "toy", "shapes")
SIZE = 256  # working size of the optimisation
FRAMES = 100


def synthetic_pair(size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A generated pair: an orange ellipse on a striped blue gradient, a green box on a pale one."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    a = np.stack([40 + 60 * yy, 50 + 40 * xx, 120 + 100 * yy], -1) + 12 * np.sin(xx * 40)[..., None]
    a = np.ascontiguousarray(np.clip(a, 0, 255).astype(np.uint8))
    cv2.ellipse(a, (size * 3 // 8, size // 2), (size // 5, size // 8), 30, 0, 360, (240, 140, 40), -1)
    cv2.circle(a, (size * 3 // 8, size // 2), size // 20, (250, 230, 200), -1)
    b = np.stack([230 - 40 * xx, 220 - 30 * yy, 150 + 40 * xx], -1) + 10 * np.sin(yy * 30)[..., None]
    b = np.ascontiguousarray(np.clip(b, 0, 255).astype(np.uint8))
    cv2.rectangle(b, (size * 9 // 16, size // 4), (size * 13 // 16, size * 5 // 8), (40, 150, 60), -1)
    cv2.circle(b, (size * 11 // 16, size * 7 // 16), size // 16, (20, 60, 30), -1)
    return a, b


def load_pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (H, W, 3) source and target of a named pair."""
    from diffmorph.io.images import read_image

    if name == "shapes":
        return synthetic_pair()
    files = {"photo": ("astronaut.jpg", "cat.jpg"), "toy": ("toy_a.png", "toy_b.png")}[name]
    return tuple(read_image(IMAGES / f).pixels for f in files)


def maps_for(name: str, pair, steps: int, cache: pathlib.Path) -> np.ndarray:
    """maps_low (1, 84, 84, 16) of a Trainer at size 256, seed 0, cached as .npy."""
    path = cache / f"{name}_s{SIZE}_e{steps}_seed0.npy"
    if path.exists():
        return np.load(path)
    from diffmorph.config import MorphConfig
    from diffmorph.core.optimise import Trainer
    from diffmorph.core.render import to_working

    config = MorphConfig(size=SIZE, train_steps=steps, seed=0)
    start = time.perf_counter()
    trainer = Trainer(to_working(pair[0], SIZE), to_working(pair[1], SIZE), config)
    for _ in range(steps):
        trainer.step()
    maps_low = trainer.maps_low()
    np.save(path, maps_low)
    print(f"  trained {name}: {steps} steps in {time.perf_counter() - start:.0f} s -> {path}", flush=True)
    return maps_low


def small(image: np.ndarray, side: int = 256) -> np.ndarray:
    """The image with its long side at most ``side`` (INTER_AREA), as the app's dense renderer takes it."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return image
    return cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)


def render_all(renderer, alphas):
    return [renderer.render(i, a).image for i, a in enumerate(alphas)]


def bench_pair(name: str, args, config) -> dict:
    from diffmorph.core import meter, pacing
    from diffmorph.core.render import FrameRenderer

    source, target = load_pair(name)
    maps_low = maps_for(name, (source, target), args.train_steps, args.cache)
    full = FrameRenderer(source, target, maps_low, config)
    dense_renderer = FrameRenderer(small(source), small(target), maps_low, config)
    schedules = {"linear": pacing.alphas_for(FRAMES)}
    for distance in args.distances:
        schedules[f"uniform/{distance}"] = pacing.alphas_for(
            FRAMES, "uniform", renderer=dense_renderer, dense=args.dense, distance=distance
        )
    print(f"\n{name}: {source.shape[1]}x{source.shape[0]}, {FRAMES} frames, dense pass {args.dense + 1} frames")
    print(
        f"  {'schedule':<18}{'std/mean d':>11}{'PDV d':>11}{'PPL d':>8}{'std/mean MAD':>14}{'PDV MAD':>9}"
        f"{'  ends exact':>12}"
    )
    rows, middles = {}, {}
    for label, alphas in schedules.items():
        frames = render_all(full, alphas)
        result = meter.measure(frames, source, target)
        d, mad = result["distance"], result["mad"]
        exact = (
            alphas[0] == 0.0
            and alphas[-1] == 1.0
            and result["endpoints"]["source"]["exact"]
            and result["endpoints"]["target"]["exact"]
        )
        rows[label] = (d["cv"], mad["cv"])
        middles[label] = (result["sharpness"]["middle_ratio"], result["colour"])
        print(
            f"  {label:<18}{d['cv']:>11.4f}{d['pdv']:>11.3g}{d['path_length']:>8.3f}{mad['cv']:>14.4f}"
            f"{mad['pdv']:>9.3g}{exact!s:>12}"
        )
    for label in schedules:
        if label != "linear":
            print(
                f"  {label}: std/mean d {rows[label][0] / rows['linear'][0]:.3f} of linear's, "
                f"MAD {rows[label][1] / rows['linear'][1]:.3f} of linear's"
            )

    print(
        f"  {'middle frame, colour path':<26}{'sharpness':>10}{'colour var':>11}{'geodesic':>9}"
        f"{'max dev':>8}{'length':>8}{'max step':>9}"
    )
    for label, (sharp, colour) in middles.items():
        print(
            f"  {label:<26}{sharp:>10.3f}{colour['middle_variance']:>11.4f}{colour['geodesic_mid_variance']:>9.4f}"
            f"{colour['max_deviation_ratio']:>8.3f}{colour['path_length_ratio']:>8.3f}{colour['max_step_ratio']:>9.2f}"
        )

    render_times, reused_times, own_times = [], [], []
    for _ in range(args.runs):  # side by side: each run times all three
        start = time.perf_counter()
        renderer = FrameRenderer(source, target, maps_low, config)
        for i, alpha in enumerate(schedules["linear"]):
            renderer.render(i, alpha)
        render_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        pacing.measure_path(renderer, args.dense, args.distances[0])  # inputs <= 256 px: the same frames
        reused_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        renderer = FrameRenderer(small(source), small(target), maps_low, config)
        pacing.measure_path(renderer, args.dense, args.distances[0])
        own_times.append(time.perf_counter() - start)

    def span(times, scale=1.0, unit=" s", digits=2):
        return f"{min(times) * scale:.{digits}f}-{max(times) * scale:.{digits}f}{unit}"

    reused = [d / r for d, r in zip(reused_times, render_times)]
    own = [d / r for d, r in zip(own_times, render_times)]
    print(f"  render phase ({FRAMES} frames, native, renderer built): {span(render_times)}")
    print(
        f"  dense pass ({args.distances[0]}, {args.dense + 1} frames) with the morph's renderer: "
        f"{span(reused_times)} = {span(reused, 100, '%', 0)} of the render phase"
    )
    print(
        f"  dense pass with its own renderer (<= 256 px, built and compiled): {span(own_times)} = "
        f"{span(own, 100, '%', 0)}"
    )
    return rows


def upscaled_photo(args):
    """The photo pair upscaled to 1024 x 1024 (INTER_CUBIC) and its maps (trained at 256)."""
    source, target = load_pair("photo")
    up = [cv2.resize(x, (1024, 1024), interpolation=cv2.INTER_CUBIC) for x in (source, target)]
    return up[0], up[1], maps_for("photo", (source, target), args.train_steps, args.cache)


def bench_large(args, config) -> None:
    """Dense-pass overhead for a 1024 x 1024 output: render phase at 1024 against the pass at 256."""
    from diffmorph.core import pacing
    from diffmorph.core.render import FrameRenderer

    source, target, maps_low = upscaled_photo(args)
    start = time.perf_counter()
    renderer = FrameRenderer(source, target, maps_low, config)
    for i, alpha in enumerate(pacing.alphas_for(FRAMES)):
        renderer.render(i, alpha)
    render = time.perf_counter() - start
    start = time.perf_counter()
    renderer = FrameRenderer(small(source), small(target), maps_low, config)
    pacing.measure_path(renderer, args.dense, args.distances[0])
    dense = time.perf_counter() - start
    print(
        f"\nphoto pair upscaled to 1024x1024: render phase ({FRAMES} frames, native) {render:.1f} s; dense pass "
        f"with its own renderer at 256 px {dense:.2f} s = {100 * dense / render:.1f}% of it"
    )


def make_video(path: pathlib.Path, args, config) -> None:
    """100 frames of the photo pair upscaled to 1024 x 1024, rendered natively, as an MP4."""
    from diffmorph.core.render import FrameRenderer
    from diffmorph.io.video import Mp4Writer

    source, target, maps_low = upscaled_photo(args)
    renderer = FrameRenderer(source, target, maps_low, config)
    writer = Mp4Writer(path, (1024, 1024), 45)
    for frame in renderer.frames():
        writer.write(frame.image)
    writer.close()


REPORT_SNIPPET = """
import time; start = time.perf_counter()
from diffmorph.app.report import report
report({video!r}, out_dir={out!r}, **{inputs!r})
print(time.perf_counter() - start)
"""


def bench_report(args, config) -> None:
    """report() on the 1024 x 1024 MP4, without and with the inputs, in this process and in fresh ones."""
    from diffmorph.app.report import format_table, report
    from diffmorph.io.files import save_image

    video = args.cache / "photo_1024x1024_100.mp4"
    if not video.exists():
        print("\nmaking the 1024 x 1024 test video...", flush=True)
        make_video(video, args, config)
    source, target, _ = upscaled_photo(args)
    inputs = {"source": str(args.cache / "photo_source_1024.png"), "target": str(args.cache / "photo_target_1024.png")}
    save_image(inputs["source"], source)
    save_image(inputs["target"], target)
    print(f"\nreport on {video.name} (100 frames 1024x1024: decode, metrics, png, json), {args.runs} runs:")
    with tempfile.TemporaryDirectory() as tmp:
        for label, given in (("frames only", {}), ("with --source/--target", inputs)):
            result = report(video, out_dir=tmp, **given)  # warm-up: imports, traced programs
            warm, fresh, inner, cpu = [], [], [], []
            for _ in range(args.runs):  # side by side
                start = time.perf_counter()
                report(video, out_dir=tmp, **given)
                warm.append(time.perf_counter() - start)
                start, used = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
                code = REPORT_SNIPPET.format(video=str(video), out=tmp, inputs=given)
                out = subprocess.run(
                    [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, check=True
                )
                fresh.append(time.perf_counter() - start)
                now = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu.append(now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime)
                inner.append(float(out.stdout.split()[-1]))
            print(f"  {label}:")
            print(f"    in this process (imports done, programs traced): {min(warm):.2f}-{max(warm):.2f} s")
            print(
                f"    first call in a fresh process (TensorFlow's import included): {min(inner):.2f}-{max(inner):.2f} s"
            )
            print(
                f"    whole fresh process (interpreter start and exit included): {min(fresh):.2f}-{max(fresh):.2f} s "
                f"wall, {min(cpu):.2f}-{max(cpu):.2f} s CPU"
            )
        tracemalloc.start()  # numpy's arrays are traced (not TensorFlow's buffers): what the report holds at once
        report(video, out_dir=tmp, **inputs)
        held = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(
            f"  peak of Python and numpy memory during one report: {held:.0f} MB (one frame is 3 MB, the 100 "
            f"frames 300 MB)"
        )
        print(format_table(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", default=",".join(PAIRS), help="comma-separated: photo, toy, shapes")
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--dense", type=int, default=None, help="dense-pass intervals (default pacing's)")
    parser.add_argument(
        "--distances", default="mad,msssim", help="distances driving uniform pacing; the first is timed"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", type=pathlib.Path, default=pathlib.Path(tempfile.gettempdir()) / "dm_pacing")
    parser.add_argument("--no-report", action="store_true", help="skip the report timing")
    parser.add_argument("--no-large", action="store_true", help="skip the 1024 x 1024 render-overhead figure")
    args = parser.parse_args()
    from diffmorph.config import MorphConfig
    from diffmorph.core import pacing

    args.dense = pacing.DEFAULT_DENSE if args.dense is None else args.dense
    args.distances = args.distances.split(",")
    args.cache.mkdir(parents=True, exist_ok=True)
    config = MorphConfig(size=SIZE, train_steps=args.train_steps, frames=FRAMES, seed=0)
    print(
        f"pacing bench: {FRAMES} frames, working size {SIZE}, {args.train_steps} train steps, seed 0, "
        f"dense {args.dense}, {os.cpu_count()} CPUs"
    )
    for name in filter(None, args.pairs.split(",")):
        bench_pair(name, args, config)
    if not args.no_large:
        bench_large(args, config)
    if not args.no_report:
        bench_report(args, config)


if __name__ == "__main__":
    main()
