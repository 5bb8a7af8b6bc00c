"""Guided-morph benchmark: ``python -m tools.guided_bench``.

A benchmark script (it prints figures; it is not a test). It morphs pairs whose features
travel further than DiffMorph's local optimisation finds on its own, three ways: without
points (``unguided``), with the 9 true point pairs (``true``) and with automatic ones
(``auto``, :func:`diffmorph.find_points`), and scores the middle frame against the known
midpoint.

Large-displacement pairs (named ``SCENE-SHIFT``, e.g. ``astro-15``)
-------------------------------------------------------------------
Built with the helpers of ``tools/quality_bench.py`` (scenes, backward warp, gains)::

    F     = shift + smooth         (pixels, (H, W, 2), channel 0 = dy, 1 = dx)
    B     = round(clip(g * warp(A, F), 0, 255))
    truth = round(clip((1 + g) / 2 * warp(A, F / 2), 0, 255))

``shift`` is a constant displacement of ``SHIFT`` % of the width in a random direction
(10..20); ``smooth`` is quality_bench's random smooth field (15 cosine modes) scaled to
a largest displacement of ``SMOOTH`` (3 %) of min(H, W); ``g`` ~ U(0.8, 1.2) per
channel. Drawn from ``numpy.random.default_rng(7000 + 100 * index + pair seed)``.

True point pairs: target points ``b`` on a 3 x 3 grid (25, 50, 75 % of each side), each
paired with the source point ``a = b - F(b)`` it came from (``B(b) = A(b - F(b))``);
pairs whose source point falls outside A are dropped.

Figures per pair and way
------------------------
* ``psnr``: middle frame (alpha 0.5, bilinear render at the scene's size) against the
  truth, on the central crop (a border of ``CROP`` = 12.5 % of each side excluded, where
  the shift pulls clamped border pixels into the truth).
* ``ends``: whether the frames at alpha 0 and 1 equal A and B exactly.
* ``pts``: point pairs used; ``s``: wall seconds of the optimisation (auto: plus the
  matching), on this machine (noisy when it is shared).
* ``d``: PSNR minus the unguided PSNR of the same pair.

Picture (``--picture docs/guided.jpg``): images/astronaut.jpg -> images/cat.jpg with the
:data:`HAND_POINTS` (eyes, nose, mouth), middle frames unguided and guided, side by side.

Example (the README's table)::

    python -m tools.guided_bench --pairs astro-12 cat-15 texture-18 astro-20 --size 256 --train-steps 1000
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402

from diffmorph.config import MorphConfig  # noqa: E402
from tools import benchlib  # noqa: E402
from tools import quality_bench as qb  # noqa: E402

SCENES = ("astro", "cat", "texture")
SHIFTS = (10, 12, 15, 18, 20)  # percent of the width
FAMILY = tuple(f"{scene}-{shift}" for scene in SCENES for shift in SHIFTS)
DEFAULT_PAIRS = ("astro-12", "cat-15", "texture-18", "astro-20")
SMOOTH = 0.03  # largest smooth displacement, share of min(H, W)
GRID = (0.25, 0.5, 0.75)
CROP = 0.125
WAYS = ("unguided", "true", "auto")
# astronaut -> cat, placed by hand (each image's own pixels): eyes, nose tip, mouth
HAND_POINTS = np.array([[100, 107, 64, 97], [150, 107, 184, 115], [125, 137, 144, 207], [125, 160, 144, 234]], float)


def large_flow(height: int, width: int, shift: float, rng) -> np.ndarray:
    """``shift * width`` pixels in a random direction plus a smooth field up to SMOOTH * min(H, W)."""
    smooth = qb.smooth_flow(height, width, 1.0, rng)  # shift share 0.4 + field 0.6 of min(H, W)
    smooth -= smooth.mean(axis=(0, 1))  # drop quality_bench's own small shift
    smooth *= SMOOTH * min(height, width) / np.sqrt((smooth**2).sum(-1)).max()
    angle = rng.uniform(0, 2 * np.pi)
    return (smooth + shift * width * np.array([np.sin(angle), np.cos(angle)], np.float32)).astype(np.float32)


def make_pair(name: str, pair_seed: int = 0):
    """``(A, B, truth, true points (N, 4))`` of the pair called ``name``."""
    scene_name, shift = name.rsplit("-", 1)
    a = qb.scene(scene_name)
    height, width = a.shape[:2]
    rng = np.random.default_rng(7000 + 100 * FAMILY.index(name) + pair_seed)
    flow = large_flow(height, width, int(shift) / 100, rng)
    gain = rng.uniform(*qb.GAIN_RANGE, 3).astype(np.float32)
    b = qb.to_uint8(gain * qb.warp(a.astype(np.float32), flow, "lanczos"))
    truth = qb.to_uint8((1 + gain) / 2 * qb.warp(a.astype(np.float32), flow / 2, "lanczos"))
    rows = []
    for fy in GRID:
        for fx in GRID:
            by, bx = fy * (height - 1), fx * (width - 1)
            dy, dx = flow[round(by), round(bx)]
            ay, ax = by - dy, bx - dx
            if -0.5 <= ax <= width - 0.5 and -0.5 <= ay <= height - 0.5:
                rows.append((ax, ay, bx, by))
    return a, b, truth, np.asarray(rows, np.float64)


def central(image: np.ndarray) -> np.ndarray:
    my, mx = round(CROP * image.shape[0]), round(CROP * image.shape[1])
    return image[my : image.shape[0] - my, mx : image.shape[1] - mx]


def psnr(image: np.ndarray, truth: np.ndarray) -> float:
    mse = np.mean((central(image).astype(np.float64) - central(truth).astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def fit(a, b, points, config: MorphConfig, boost: float = 1.0, boost_share: float = 0.0):
    """Optimise a Trainer on ``a`` -> ``b`` (uint8 RGB), guided by ``points`` (``(N, 4)`` in
    each image's pixels; None or empty: unguided), the point loss times ``boost`` for the
    first ``boost_share`` of the train steps; returns ``(trainer, seconds optimising)``."""
    from diffmorph.core.optimise import Trainer, optimise
    from diffmorph.core.render import to_working
    from diffmorph.io.points import normalise

    trainer = Trainer(to_working(a, config.size), to_working(b, config.size), config)
    if points is not None and len(points):
        trainer.set_points(normalise(points, a.shape[:2], b.shape[:2]))
    start = time.perf_counter()
    trainer.point_scale.assign(boost)
    for step in optimise(trainer, config.train_steps):
        if step.step == round(boost_share * config.train_steps):
            trainer.point_scale.assign(1.0)
    return trainer, time.perf_counter() - start


def run_way(a, b, points, config: MorphConfig, boost: float, boost_share: float):
    """Optimise (guided by ``points`` unless None), render the middle and end frames."""
    from diffmorph.core.render import FrameRenderer

    trainer, seconds = fit(a, b, points, config, boost, boost_share)
    renderer = FrameRenderer(a, b, trainer.maps_low(), config)
    middle = renderer.render(1, 0.5).image
    ends = np.array_equal(renderer.render(0, 0.0).image, a) and np.array_equal(renderer.render(2, 1.0).image, b)
    return middle, ends, seconds


def picture(path: str, config: MorphConfig) -> None:
    """Write the README's picture: source and target with the hand-placed pairs, and the
    middle frames unguided and guided, in a row of four labelled tiles (JPEG)."""
    import cv2

    from diffmorph.app.markers import draw_points

    a, b = qb.read_rgb(qb.IMAGES / "astronaut.jpg"), qb.read_rgb(qb.IMAGES / "cat.jpg")
    drawn = draw_points(a, b, HAND_POINTS)
    unguided = run_way(a, b, None, config, 1.0, 0.0)[0]
    guided = run_way(a, b, HAND_POINTS, config, 1.0, 0.0)[0]
    tiles = [drawn[:, : a.shape[1]], unguided, guided, drawn[:, a.shape[1] :]]
    labels = ["source + 4 pairs", "middle frame, unguided", "middle frame, guided", "target + 4 pairs"]
    row = []
    for tile, label in zip(tiles, labels):
        head = np.full((24, tile.shape[1], 3), 255, np.uint8)
        cv2.putText(head, label, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        row.append(np.concatenate([head, tile], axis=0))
    image = np.concatenate(row, axis=1)
    cv2.imwrite(path, image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"# wrote {path} ({Path(path).stat().st_size // 1024} KB): size {config.size}, {config.train_steps} steps")


def step_times(config: MorphConfig, rounds: int) -> None:
    """Seconds per train step, unguided and with 9 pairs, measured in alternating blocks of
    10 steps (a shared machine's load then hits both alike); prints the medians."""
    from diffmorph.core.optimise import Trainer
    from diffmorph.core.render import to_working
    from diffmorph.io.points import normalise

    a, b, _, points = make_pair("astro-15")
    trainers = {}
    for way in ("unguided", "true"):
        trainers[way] = Trainer(to_working(a, config.size), to_working(b, config.size), config)
        if way == "true":
            trainers[way].set_points(normalise(points, a.shape[:2], b.shape[:2]))
    times = benchlib.alternating_step_times(trainers, rounds)
    for way, values in times.items():
        print(
            f"# step time {way:<9} median {np.median(values) * 1000:.1f} ms (min {min(values) * 1000:.1f}, "
            f"{rounds} blocks of 10 steps, size {config.size})"
        )


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip() + f", {os.cpu_count()} CPUs"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", nargs="+", default=list(DEFAULT_PAIRS), choices=FAMILY, metavar="PAIR")
    parser.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="the net's seed")
    parser.add_argument("--pair-seed", type=int, default=0)
    parser.add_argument("--point-weight", type=float, default=MorphConfig.point_weight)
    parser.add_argument("--boost", type=float, default=1.0, help="factor on the point weight early on (warm start)")
    parser.add_argument("--boost-share", type=float, default=0.0, help="share of the steps the boost lasts")
    parser.add_argument("--save", metavar="DIR", help="write each middle frame and the truth as PNG here")
    parser.add_argument("--picture", metavar="JPG", help="only write the README's astronaut -> cat picture here")
    parser.add_argument("--step-time", type=int, metavar="BLOCKS", help="only time train steps, guided vs not")
    args = parser.parse_args(argv)
    from diffmorph.core.matching import match_points

    config = MorphConfig(size=args.size, train_steps=args.train_steps, seed=args.seed, point_weight=args.point_weight)
    if args.picture:
        picture(args.picture, config)
        return 0
    if args.step_time:
        print(f"# {cpu_name()}")
        step_times(config, args.step_time)
        return 0
    print(
        f"# guided_bench: size {args.size}, {args.train_steps} train steps, point_weight {args.point_weight:g}, "
        f"boost {args.boost:g} for {args.boost_share:.0%} of the steps; {cpu_name()}"
    )
    print(f"{'pair':<12} {'way':<9} {'pts':>4} {'psnr':>7} {'d':>6} {'ends':>5} {'s':>7}")
    summary: dict[str, list] = {way: [] for way in args.ways}
    for name in args.pairs:
        a, b, truth, true_points = make_pair(name, args.pair_seed)
        base = None
        for way in args.ways:
            extra = 0.0
            points = None
            if way == "true":
                points = true_points
            elif way == "auto":
                start = time.perf_counter()
                points = match_points(a, b)
                extra = time.perf_counter() - start
                if len(points) < 4:
                    points = None
            middle, ends, seconds = run_way(a, b, points, config, args.boost, args.boost_share)
            value = psnr(middle, truth)
            base = value if way == "unguided" else base
            delta = value - base if base is not None else float("nan")
            count = 0 if points is None else len(points)
            summary[way].append((value, delta, seconds + extra))
            print(
                f"{name:<12} {way:<9} {count:>4} {value:>7.2f} {delta:>+6.2f} {'yes' if ends else 'NO':>5} "
                f"{seconds + extra:>7.1f}",
                flush=True,
            )
            if args.save:
                import cv2

                folder = Path(args.save)
                folder.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / f"{name}_{way}.png"), middle[..., ::-1])
                cv2.imwrite(str(folder / f"{name}_truth.png"), truth[..., ::-1])
    print("# mean over pairs")
    for way, rows in summary.items():
        if rows:
            values = np.asarray(rows)
            print(
                f"{'mean':<12} {way:<9} {'':>4} {values[:, 0].mean():>7.2f} {values[:, 1].mean():>+6.2f} "
                f"{'':>5} {values[:, 2].mean():>7.1f}   worst d {values[:, 1].min():+.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
