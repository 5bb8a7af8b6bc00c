"""Large-deformation benchmark: ``python -m tools.deform_bench``.

A benchmark script (it prints figures; it is not a test). Four ways to morph a pair
whose point pairs move far, scored on the middle frame (alpha 0.5):

* ``unguided``: DiffMorph as the original (no points).
* ``guided-old``: with the point pairs as guided morphs were before the
  large-deformation work: ``point_prior="none"``, ``geometry="scaled"``,
  ``colour_maps="on"``, ``point_consistency_weight=1``.
* ``guided``: with the point pairs and the defaults for them (``"auto"``):
  ``point_prior="tps"``, ``geometry="between"``, ``colour_maps="off"``, consistency
  weight 100 (:mod:`diffmorph.core.geometry`).
* ``tps``: a classic morph from the same pairs: SciPy's
  ``RBFInterpolator(kernel="thin_plate_spline")`` maps the in-between geometry
  (each pair at ``(a + b) / 2``, the image's corners and edge midpoints pinned) back to
  each image, OpenCV's ``remap`` warps both, and they are cross-dissolved.
* ablations (``--ways prior-only between-only colour-on consistency-1``): the prior or
  the geometry alone on the old settings; the new ones with the colour maps on, or the
  original consistency weight.

Pairs
-----
* ``astronaut-cat``: images/astronaut.jpg -> images/cat.jpg with
  images/astronaut_cat_points.csv (8 pairs: pupils, nose tip, mouth, forehead, face
  sides, chin). No known midpoint; held-out pairs (images/astronaut_cat_held_out.csv:
  inner eye corners and mouth corners, placed by hand) are measured, not used.
* ``zoom-2x``: a scene and the same scene zoomed 2x about a point that moves a quarter
  of the image: ``B(y) = g * A(c0 + (y - c1) / 2)`` with ``c0 = 0.4 S``, ``c1 = c0 +
  S / 4``; the true midpoint is the in-between similarity (zoom 1.5x, moved S / 8) with
  gain ``(1 + g) / 2``. True pairs: a 3 x 3 grid of source points (30..70 %) and their
  images.
* ``astro-15`` (and the other names of ``tools/guided_bench.py``): a shift of 15 % of
  the width plus a smooth field, with its 9 true pairs and midpoint.

Figures per pair and way: ``psnr`` of the middle frame against the truth (central crop,
12.5 % border excluded, as guided_bench), ``d`` the PSNR minus unguided's;
``align``/``p90`` where the two halves of the middle frame put the same content
(:func:`diffmorph.core.geometry.alignment`, % of the image diagonal, dense), ``pts`` the
same at the point pairs, ``held`` at held-out pairs; ``s`` seconds of optimisation. The
TPS morph's halves agree by construction (0). ``--step-time N`` times train steps,
unguided against guided (with the prior), in N alternating blocks of 10.

Example (the guide's table)::

    python -m tools.deform_bench --size 256 --train-steps 500 --step-time 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from diffmorph.config import MorphConfig  # noqa: E402
from tools import benchlib  # noqa: E402
from tools import guided_bench as gb  # noqa: E402
from tools import quality_bench as qb  # noqa: E402

WAYS = ("unguided", "guided-old", "guided", "tps")
ABLATIONS = ("prior-only", "between-only", "colour-on", "consistency-1")  # one change alone or left out
PAIRS = ("astronaut-cat", "zoom-2x", "astro-15")
POINTS_CSV = benchlib.IMAGES / "astronaut_cat_points.csv"
HELD_OUT_CSV = benchlib.IMAGES / "astronaut_cat_held_out.csv"  # inner eye corners, mouth corners: not given
ZOOM, ZOOM_CENTRE, ZOOM_MOVE = 2.0, 0.4, 0.25
OLD = {"point_prior": "none", "geometry": "scaled", "colour_maps": "on", "point_consistency_weight": 1.0}
SETTINGS = {
    "unguided": {},
    "guided-old": OLD,
    "guided": {},  # the guided defaults ("auto")
    "prior-only": {**OLD, "point_prior": "tps"},
    "between-only": {**OLD, "geometry": "between"},
    "colour-on": {"colour_maps": "on"},
    "consistency-1": {"point_consistency_weight": 1.0},
}


def zoom_pair(size: int = 256):
    """``(A, B, truth, pairs)``: the zoom-2x pair (module docstring)."""
    a = cv2.resize(qb.scene("astro"), (size, size), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(7)
    gain = rng.uniform(*qb.GAIN_RANGE, 3).astype(np.float32)
    c0 = np.full(2, ZOOM_CENTRE * size)
    c1 = c0 + ZOOM_MOVE * size
    ramp = np.arange(size, dtype=np.float32)
    ys, xs = np.meshgrid(ramp, ramp, indexing="ij")

    def at(t):  # the scene at the in-between similarity t (zoom 1 + t (k - 1), centre c0 + t (c1 - c0))
        scale, centre = 1 + t * (ZOOM - 1), c0 + t * (c1 - c0)
        map_y = (c0[0] + (ys - centre[0]) / scale).astype(np.float32)
        map_x = (c0[1] + (xs - centre[1]) / scale).astype(np.float32)
        return cv2.remap(a.astype(np.float32), map_x, map_y, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)

    b = qb.to_uint8(gain * at(1.0))
    truth = qb.to_uint8((1 + gain) / 2 * at(0.5))
    grid = np.array([(x, y) for y in (0.3, 0.5, 0.7) for x in (0.3, 0.5, 0.7)]) * size
    source = grid[:, ::-1]  # (y, x)
    target = c1 + ZOOM * (source - c0)
    pairs = np.concatenate([source[:, ::-1], target[:, ::-1]], axis=1)  # x, y pixels
    return a, b, truth, pairs


def load_pair(name: str):
    """``(A, B, truth or None, pairs, held-out pairs or None)``."""
    from diffmorph.io.points import read_points

    if name == "astronaut-cat":
        a, b = qb.read_rgb(qb.IMAGES / "astronaut.jpg"), qb.read_rgb(qb.IMAGES / "cat.jpg")
        return a, b, None, read_points(POINTS_CSV), read_points(HELD_OUT_CSV)
    if name == "zoom-2x":
        return (*zoom_pair(), None)
    a, b, truth, pairs = gb.make_pair(name)
    return a, b, truth, pairs, None


def tps_middle(a: np.ndarray, b: np.ndarray, pairs: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """A classic thin-plate-spline morph's frame at ``alpha`` from ``pairs`` (x, y pixels, both images one size)."""
    from scipy.interpolate import RBFInterpolator

    height, width = a.shape[:2]
    pins = np.array([(x, y) for y in (0, 0.5, 1) for x in (0, 0.5, 1) if (x, y) != (0.5, 0.5)])
    pins = pins * [width - 1, height - 1]
    src, dst = pairs[:, :2], pairs[:, 2:]
    mid = (1 - alpha) * src + alpha * dst
    ys, xs = np.mgrid[0:height, 0:width]
    where = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    halves = []
    for image, ends in ((a, src), (b, dst)):
        spline = RBFInterpolator(np.concatenate([mid, pins]), np.concatenate([ends, pins]), kernel="thin_plate_spline")
        sample = spline(where).astype(np.float32).reshape(height, width, 2)
        halves.append(
            cv2.remap(
                image.astype(np.float32), sample[..., 0], sample[..., 1], cv2.INTER_LINEAR, None, cv2.BORDER_REPLICATE
            )
        )
    return qb.to_uint8((1 - alpha) * halves[0] + alpha * halves[1])


def run_net(a, b, pairs, config: MorphConfig):
    """Optimise and render the middle frame; ``(middle, maps_low, seconds)``."""
    from diffmorph.core.render import FrameRenderer

    trainer, seconds = gb.fit(a, b, pairs, config)
    maps_low = trainer.maps_low()
    middle = FrameRenderer(a, b, maps_low, config).render(1, 0.5).image
    return middle, maps_low, seconds


def step_times(config: MorphConfig, rounds: int) -> dict:
    """Median seconds per train step on astronaut -> cat, unguided and guided (prior and
    point loss), in alternating blocks of 10 steps (a shared machine's load hits both)."""
    from diffmorph.core.optimise import Trainer
    from diffmorph.core.render import to_working
    from diffmorph.io.points import normalise

    a, b, _, pairs, _ = load_pair("astronaut-cat")
    trainers = {}
    for way in ("unguided", "guided"):
        trainers[way] = Trainer(
            to_working(a, config.size), to_working(b, config.size), config.for_guide(way != "unguided")
        )
        if way == "guided":
            trainers[way].set_points(normalise(pairs, a.shape[:2], b.shape[:2]))
    times = benchlib.alternating_step_times(trainers, rounds)
    return {way: float(np.median(values)) for way, values in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), metavar="PAIR")
    parser.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS + ABLATIONS)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--train-steps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0, help="the net's seed")
    parser.add_argument("--step-time", type=int, default=0, metavar="BLOCKS", help="also time train steps")
    parser.add_argument("--save", metavar="DIR", help="write each middle frame (and truth) as PNG here")
    args = parser.parse_args(argv)
    from diffmorph.core.geometry import alignment
    from diffmorph.io.points import normalise

    machine = benchlib.machine_info()
    print(
        f"# deform_bench: size {args.size}, {args.train_steps} train steps, seed {args.seed}; "
        f"{benchlib.describe_cpu(machine)}; load {machine['load_average']}"
    )
    print(f"{'pair':<14} {'way':<11} {'psnr':>6} {'d':>6} {'align':>6} {'p90':>6} {'pts':>6} {'held':>6} {'s':>6}")
    for name in args.pairs:
        a, b, truth, pairs, held = load_pair(name)
        u = normalise(pairs, a.shape[:2], b.shape[:2])
        held_u = None if held is None else normalise(held, a.shape[:2], b.shape[:2])
        base = None
        for way in args.ways:
            row = {"psnr": float("nan"), "align": 0.0, "p90": 0.0, "pts": 0.0, "held": float("nan"), "s": 0.0}
            if way == "tps":
                start = time.perf_counter()
                middle = tps_middle(a, b, pairs)
                row["s"] = time.perf_counter() - start
                row["held"] = 0.0 if held is not None else float("nan")
            else:
                config = MorphConfig(size=args.size, train_steps=args.train_steps, seed=args.seed, **SETTINGS[way])
                config = config.for_guide(way != "unguided")
                middle, maps_low, row["s"] = run_net(a, b, None if way == "unguided" else pairs, config)
                measured = alignment(maps_low, config.size, config.warp_scale, config.geometry, 0.5, u, held_u)
                row.update(align=measured["dense"]["mean"], p90=measured["dense"]["p90"])
                row["pts"] = measured["points"]["mean"]
                if measured["held_out"] is not None:
                    row["held"] = measured["held_out"]["mean"]
            if truth is not None:
                row["psnr"] = gb.psnr(middle, truth)
            base = row["psnr"] if way == "unguided" else base
            delta = row["psnr"] - base if base is not None else float("nan")
            print(
                f"{name:<14} {way:<11} {row['psnr']:>6.2f} {delta:>+6.2f} {row['align']:>6.2f} {row['p90']:>6.2f} "
                f"{row['pts']:>6.2f} {row['held']:>6.2f} {row['s']:>6.1f}",
                flush=True,
            )
            if args.save:
                os.makedirs(args.save, exist_ok=True)
                cv2.imwrite(os.path.join(args.save, f"{name}_{way}.png"), middle[..., ::-1])
                if truth is not None:
                    cv2.imwrite(os.path.join(args.save, f"{name}_truth.png"), truth[..., ::-1])
    if args.step_time:
        config = MorphConfig(size=args.size, seed=args.seed)
        times = step_times(config, args.step_time)
        ratio = times["guided"] / times["unguided"]
        print(
            f"# step time at {args.size}: unguided {times['unguided'] * 1000:.1f} ms, "
            f"guided {times['guided'] * 1000:.1f} ms (x{ratio:.3f}); "
            f"medians of {args.step_time} alternating blocks of 10 steps"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
