"""Face benchmark: ``python -m tools.face_bench``.

A benchmark script (it prints figures; it is not a test). It morphs portraits of two
different people four ways and checks the frames with detectors that are not the
project's face points:

* ``unguided``: DiffMorph as it is (no points).
* ``faces``: ``points="faces"``, the landmark pairs of :func:`diffmorph.core.faces.face_pairs`
  (the ``MESH_PAIRS`` subset of MediaPipe's 468-landmark face mesh, Apache 2.0).
* ``faces5``: the 5 landmark pairs of dlib's CC0 5-point model (eye corners, bottom of
  the nose), the default of ``faces`` before the mesh.
* ``mesh468``: all 468 landmarks of the face mesh as pairs; ``mesh24``: 24 of them
  (``MESH24``), sparser than ``faces``' 47 (both: to choose the subset).
* ``faces34``: 34 of dlib's 68 landmarks as pairs (the even indices of iBUG 300-W's
  scheme), so that the other 34 can be held out.
* ``faces68``: ``points="faces68"``, all 68 landmarks as pairs (the 68-point model's
  licence excludes commercial use: opt-in).
* ``classic``: the classic landmark morph: both images warped to the in-between
  landmark geometry by a thin-plate spline through all 68 landmark pairs and the 8
  border points (SciPy's ``RBFInterpolator(kernel="thin_plate_spline")``, backward maps
  sampled with ``cv2.remap``, bilinear) and cross-dissolved. No optimisation.

Portrait pairs (public domain, on this machine): ``images/astronaut.jpg`` (Eileen
Collins, NASA) and matplotlib's bundled ``grace_hopper.jpg`` (US Navy), the latter cut to
the square ``[44:556, 0:512]`` and both at 256 x 256 (``INTER_AREA``): ``astronaut-hopper``,
``hopper-astronaut`` and ``mirror-hopper`` (the astronaut mirrored left to right).

Figures per pair and way
------------------------
* ``faces@.25/.5/.75``: faces that dlib's CNN face detector (MMOD,
  ``mmod_human_face_detector.dat`` from ``face-recognition-models``; the project's face
  points use the other, HOG detector; OpenCV 5 no longer ships the Haar cascades) finds
  in the frames at alpha 0.25, 0.5 and 0.75, upsampled once, faces of at least 1/8 of
  the side (target: 1 each).
* ``nme``: dlib's 68 landmarks found in the middle frame against the in-between
  geometry ``(L_A + L_B) / 2`` of the 68 landmarks found in the two images, mean
  distance over the 68 divided by the in-between inter-ocular distance (outer eye
  corners, 36 and 45); ``-`` when dlib finds no face (target: the classic morph's + 0.01).
* ``held``: held-out landmarks (68-point ones not used as pairs: all 68 for
  ``faces``, whose pairs come from another model, 63 for ``faces5``,
  the 34 odd ones for ``faces34``, all 68 for ``unguided``; for ``faces68``, which
  uses all 68, the same figure on its own pairs): where the A-side and the
  B-side of the middle frame put them, in % of the image diagonal. The A-side shows at
  p the source at ``p - 0.5 * flow_AB(p)``, so a source landmark a appears at the p
  solving ``p = a + 0.5 * flow_AB(p)`` (fixed-point iteration, bilinear flow); likewise
  the target landmark b at ``q = b + 0.5 * flow_BA(q)``; ``held`` is the mean of
  ``|p - q|``, ``held90`` its 90th percentile (target: mean <= 1.5 %). The classic
  morph puts every one of its 68 landmarks at the same place by construction (0).
* ``pts``: pairs used; ``s``: wall seconds of the optimisation (this machine, noisy
  when shared).

Example (the figures in docs/guides/guided.md)::

    python -m tools.face_bench --size 256 --train-steps 500
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from tools.benchlib import IMAGES, describe_cpu, machine_info  # noqa: E402

PAIRS = ("astronaut-hopper", "hopper-astronaut", "mirror-hopper")
WAYS = ("unguided", "faces", "faces5", "faces34", "faces68", "classic", "mesh468", "mesh24")
# mesh24: a sparser subset of the face mesh's landmarks than faces' 47 (every other one of each feature group)
MESH24 = (10, 284, 454, 397, 400, 176, 172, 234, 54, 70, 107, 300, 336, 33, 133, 263, 362, 168, 1, 98, 327, 61, 291, 17)
ALPHAS = (0.25, 0.5, 0.75)
SIDE = 256
HOPPER_CROP = (slice(44, 556), slice(0, 512))
FIVE_IN_68 = (45, 42, 36, 39, 33)  # the 5-point model's landmarks in the 68-point scheme


def portrait(name: str) -> np.ndarray:
    """uint8 ``(256, 256, 3)`` RGB portrait ``astronaut``, ``mirror`` or ``hopper``."""
    import matplotlib.cbook

    if name == "hopper":
        path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)[HOPPER_CROP]
    else:
        image = cv2.cvtColor(cv2.imread(str(IMAGES / "astronaut.jpg")), cv2.COLOR_BGR2RGB)
        image = image[:, ::-1] if name == "mirror" else image
    return np.ascontiguousarray(cv2.resize(image, (SIDE, SIDE), interpolation=cv2.INTER_AREA))


@functools.cache
def _cnn_detector():
    import dlib

    from diffmorph.core.faces import _models_folder

    return dlib.cnn_face_detection_model_v1(str(_models_folder() / "mmod_human_face_detector.dat"))


def count_faces(image: np.ndarray) -> int:
    """Faces dlib's CNN face detector (MMOD, ``mmod_human_face_detector.dat``; not the HOG
    detector the project's face points use) finds in uint8 RGB ``image``, upsampled once,
    at least 1/8 of the image's side across."""
    found = _cnn_detector()(np.ascontiguousarray(image), 1)
    side = min(image.shape[:2]) / 8
    return sum(1 for face in found if min(face.rect.width(), face.rect.height()) >= side)


def landmarks68(image: np.ndarray) -> np.ndarray | None:
    from diffmorph.core.faces import face_landmarks

    return face_landmarks(image, 68)


def nme(frame: np.ndarray, expected: np.ndarray) -> float:
    """Mean landmark error of dlib's 68 landmarks in ``frame`` over the inter-ocular distance (nan: no face)."""
    found = landmarks68(frame)
    if found is None:
        return float("nan")
    return float(np.linalg.norm(found - expected, axis=1).mean() / np.linalg.norm(expected[36] - expected[45]))


def tps_warp(image: np.ndarray, own: np.ndarray, geometry: np.ndarray) -> np.ndarray:
    """``image`` warped so its landmarks ``own`` (K, 2) land on ``geometry`` (K, 2): a thin-plate
    spline from geometry to own (the backward map) through the landmarks and 8 fixed border points."""
    from scipy.interpolate import RBFInterpolator

    height, width = image.shape[:2]
    xs, ys = (0, (width - 1) / 2, width - 1), (0, (height - 1) / 2, height - 1)
    border = np.array([(x, y) for x in xs for y in ys if (x, y) != (xs[1], ys[1])], np.float64)
    spline = RBFInterpolator(np.vstack([geometry, border]), np.vstack([own, border]), kernel="thin_plate_spline")
    grid = np.stack(np.meshgrid(np.arange(width), np.arange(height)), -1).reshape(-1, 2).astype(np.float64)
    source = spline(grid).reshape(height, width, 2).astype(np.float32)
    return cv2.remap(image, source[..., 0], source[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def classic_frame(a, b, land_a, land_b, alpha: float) -> np.ndarray:
    geometry = (1 - alpha) * land_a + alpha * land_b
    warped_a, warped_b = tps_warp(a, land_a, geometry), tps_warp(b, land_b, geometry)
    return np.rint((1 - alpha) * warped_a.astype(np.float32) + alpha * warped_b.astype(np.float32)).astype(np.uint8)


def flows_in_pixels(maps_low: np.ndarray, config, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The A->B and B->A flows of ``maps_low`` at ``height x width``: float32 ``(H, W, 2)`` (dy, dx) pixels."""
    from diffmorph.core.maps import FLOW_CHANNELS
    from diffmorph.core.model import upsample_maps
    from diffmorph.core.render import resize_maps_rows

    maps = upsample_maps(maps_low, config.size).numpy()[..., FLOW_CHANNELS]  # (1, S, S, 4)
    flows = resize_maps_rows(maps, height, width, 0, height)[0] * np.tile(config.flow_scale(height, width), 2)
    return flows[..., 0:2], flows[..., 2:4]


def placed(points: np.ndarray, flow: np.ndarray, strength: float, rounds: int = 60) -> np.ndarray:
    """Where a warp by ``strength * flow`` (backward: out(p) = in(p - strength * flow(p))) shows
    the input's ``points`` (K, 2) (x, y): the p solving ``p = point + strength * flow(p)``."""
    from scipy.ndimage import map_coordinates

    p = points.astype(np.float64).copy()
    for _ in range(rounds):
        where = [p[:, 1], p[:, 0]]  # (rows, columns)
        fy, fx = (map_coordinates(flow[..., c], where, order=1, mode="nearest") for c in (0, 1))
        p = points + strength * np.stack([fx, fy], axis=1)
    return p


def held_out(maps_low, config, land_a, land_b, keep: np.ndarray, shape) -> tuple[float, float]:
    """Mean and 90th percentile of |p - q| over the landmarks ``keep``, in % of the diagonal."""
    height, width = shape
    if config.geometry == "between":  # the in-between geometry: the project's own alignment measure
        from diffmorph.core.geometry import alignment
        from diffmorph.io.points import normalise

        pairs = normalise(np.concatenate([land_a[keep], land_b[keep]], axis=1), shape, shape)
        found = alignment(maps_low, config.size, config.warp_scale, "between", 0.5, held_out=pairs)["held_out"]
        return found["mean"], found["p90"]
    flow_ab, flow_ba = flows_in_pixels(maps_low, config, height, width)
    p = placed(land_a[keep], flow_ab, 0.5)
    q = placed(land_b[keep], flow_ba, 0.5)
    gaps = np.linalg.norm(p - q, axis=1) / np.hypot(height, width) * 100
    return float(gaps.mean()), float(np.percentile(gaps, 90))


def optimised(a, b, points, config):
    """``(maps_low, seconds)`` of an optimisation guided by ``points`` (None: unguided)."""
    from tools.guided_bench import fit

    trainer, seconds = fit(a, b, points, config)
    return trainer.maps_low(), seconds


def run_pair(name: str, ways, config, save: Path | None):
    from diffmorph.core.faces import face_pairs
    from diffmorph.core.render import FrameRenderer

    first, second = name.split("-")
    a, b = portrait(first), portrait(second)
    land_a, land_b = landmarks68(a), landmarks68(b)
    middle = (land_a + land_b) / 2
    rows = []
    for way in ways:
        seconds, count, held = 0.0, 0, (0.0, 0.0)
        if way == "classic":
            frames = {alpha: classic_frame(a, b, land_a, land_b, alpha) for alpha in ALPHAS}
            count = 68
        else:
            points, keep = None, np.arange(68)
            if way == "faces":
                points = face_pairs(a, b)  # the mesh's landmarks: all 68 of dlib's are held out
            elif way in ("mesh468", "mesh24"):
                from diffmorph.core.faces import face_landmarks

                both = [np.clip(face_landmarks(image), 0, SIDE - 1) for image in (a, b)]
                points = np.concatenate(both, axis=1)
                points = points[list(MESH24)] if way == "mesh24" else points
            elif way == "faces5":
                points = face_pairs(a, b, 5)
                keep = np.setdiff1d(keep, FIVE_IN_68)
            elif way == "faces34":
                points = np.concatenate([land_a, land_b], axis=1)[0::2]
                keep = keep[1::2]
            elif way == "faces68":
                points = face_pairs(a, b, 68)
            count = 0 if points is None else len(points)
            guided = config.for_guide(points is not None)
            maps_low, seconds = optimised(a, b, points, guided)
            renderer = FrameRenderer(a, b, maps_low, guided)
            frames = {alpha: renderer.render(k, alpha).image for k, alpha in enumerate(ALPHAS)}
            held = held_out(maps_low, guided, land_a, land_b, keep, a.shape[:2])
        faces = [count_faces(frames[alpha]) for alpha in ALPHAS]
        error = nme(frames[0.5], middle)
        rows.append((way, count, faces, error, held, seconds))
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            strip = np.concatenate([a, *frames.values(), b], axis=1)
            cv2.imwrite(str(save / f"{name}_{way}.jpg"), strip[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        print(_row(name, *rows[-1]), flush=True)
    return rows


def _row(name, way, count, faces, error, held, seconds) -> str:
    shown = "-" if np.isnan(error) else f"{error:.3f}"
    counts = "/".join(str(n) for n in faces)
    return f"{name:<17} {way:<9} {count:>4} {counts:>14} {shown:>6} {held[0]:>6.2f} {held[1]:>7.2f} {seconds:>7.1f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=PAIRS, metavar="PAIR")
    parser.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    parser.add_argument("--size", type=int, default=256, help="working size")
    parser.add_argument("--train-steps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0, help="the net's seed")
    parser.add_argument("--save", metavar="DIR", help="write each way's strip (A, 0.25, 0.5, 0.75, B) as JPEG here")
    parser.add_argument(
        "--figure", metavar="JPG", help="with --save: the first pair's strips, one row per way, at half size, as JPEG"
    )
    args = parser.parse_args(argv)
    from diffmorph.config import MorphConfig
    from diffmorph.core import faces

    if not faces.available():
        print(faces.MISSING, file=sys.stderr)
        return 2
    config = MorphConfig(size=args.size, train_steps=args.train_steps, seed=args.seed)
    machine = machine_info()
    print(
        f"# face_bench: size {args.size}, {args.train_steps} train steps, seed {args.seed}; "
        f"{describe_cpu(machine)}; load {machine['load_average']}"
    )
    print(
        f"{'pair':<17} {'way':<9} {'pts':>4} {'faces@.25/.5/.75':>14} {'nme':>6} {'held%':>6} {'held90%':>7} {'s':>7}"
    )
    summary: dict[str, list] = {way: [] for way in args.ways}
    for name in args.pairs:
        for way, _, faces_found, error, held, seconds in run_pair(
            name, args.ways, config, Path(args.save) if args.save else None
        ):
            summary[way].append((all(n == 1 for n in faces_found), error, held[0], seconds))
    if args.figure and args.save:
        rows = [cv2.imread(str(Path(args.save) / f"{args.pairs[0]}_{way}.jpg")) for way in args.ways]
        stacked = np.concatenate(rows, axis=0)
        small = cv2.resize(stacked, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        cv2.imwrite(args.figure, small, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print("# over pairs: one face at all three alphas (pairs), mean nme (no face counts as missing), mean held%")
    for way, rows in summary.items():
        if rows:
            ones = sum(r[0] for r in rows)
            errors = [r[1] for r in rows if not np.isnan(r[1])]
            mean_error = f"{np.mean(errors):.3f}" if errors else "-"
            print(
                f"{'mean':<17} {way:<9} one face {ones}/{len(rows)}  nme {mean_error} "
                f"(found in {len(errors)}/{len(rows)})  held {np.mean([r[2] for r in rows]):.2f} %  "
                f"s {np.mean([r[3] for r in rows]):.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
