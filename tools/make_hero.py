"""Make the first pictures people see, from the bundled pair and its points: ``python -m tools.make_hero``.

Everything goes through the public API, as the command line runs it, at working size 256,
seed 0 (``--train-steps``, default 500):

* ``docs/hero.gif``: the guided morph images/astronaut.jpg -> images/cat.jpg with
  images/astronaut_cat_points.csv (``point_prior`` and ``geometry`` at their defaults for
  a guided morph: ``"tps"`` and ``"between"``), 30 frames at 20 fps, there and back,
  176 pixels on a side (about 0.9 MB). The command line::

      diffmorph -s images/astronaut.jpg -t images/cat.jpg --points images/astronaut_cat_points.csv \\
          --size 256 -e 500 --seed 0 --steps 30 --fps 20 --boomerang --formats gif --gif-max-side 176

* ``docs/hero_strip.jpg``: six frames of that morph (alpha 0, 0.2, ..., 1) side by side.
* ``docs/guided_compare.jpg``: the middle frames (alpha 0.5) of the unguided morph (the
  same command without ``--points``), of the guided morph, and of a classic
  thin-plate-spline morph from the same 8 pairs (``tools.deform_bench.tps_middle``),
  labelled, between the source and the target with the pairs drawn.

Sizes and the alignment of each morph's middle frame are printed on stdout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import diffmorph  # noqa: E402
from tools.benchlib import IMAGES, REPO  # noqa: E402

DOCS = REPO / "docs"
SOURCE, TARGET = IMAGES / "astronaut.jpg", IMAGES / "cat.jpg"
POINTS = IMAGES / "astronaut_cat_points.csv"
GIF_SIDE = 176
STRIP_ALPHAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
MAX_GIF_BYTES = 1_500_000


def labelled(tile: np.ndarray, text: str) -> np.ndarray:
    """``tile`` with a white band above it holding ``text``."""
    head = np.full((24, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(head, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([head, tile], axis=0)


def save_jpg(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"# wrote {path.relative_to(REPO)} ({path.stat().st_size // 1024} KB, {rgb.shape[1]}x{rgb.shape[0]})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-steps", type=int, default=500)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    from diffmorph.app.report import alignment_entry
    from diffmorph.io.points import draw_points, normalise, read_points
    from tools.deform_bench import tps_middle

    pairs = read_points(POINTS)
    source, target = (cv2.imread(str(p))[..., ::-1].copy() for p in (SOURCE, TARGET))
    u = normalise(pairs, source.shape[:2], target.shape[:2])
    config = diffmorph.MorphConfig(size=args.size, train_steps=args.train_steps, seed=0, frames=30, fps=20)
    middles = {}
    with tempfile.TemporaryDirectory() as work:
        for way, points in (("unguided", None), ("guided", POINTS)):
            out = Path(work) / way
            options = diffmorph.OutputOptions(formats=("gif",), gif_max_side=GIF_SIDE, boomerang=True)
            result = diffmorph.morph(SOURCE, TARGET, out, config, points=points, options=options)
            aligned = alignment_entry(result.maps_low, result.config, u)
            print(
                f"# {way}: geometry {result.config.geometry}, prior {result.config.point_prior}; halves apart "
                f"{aligned['dense']['mean']:.2f} % (p90 {aligned['dense']['p90']:.2f} %) dense, "
                f"{aligned['points']['mean']:.2f} % at the pairs"
            )
            maps = out / "morph" / "maps.npz"
            middles[way] = next(iter(diffmorph.render_frames(maps, SOURCE, TARGET, alphas=[0.5])))
            if way == "guided":
                gif = DOCS / "hero.gif"
                shutil.copyfile(out / "morph" / "morph.gif", gif)
                size = gif.stat().st_size
                print(f"# wrote docs/hero.gif ({size // 1024} KB)")
                if size > MAX_GIF_BYTES:
                    print(f"# hero.gif is over {MAX_GIF_BYTES} bytes", file=sys.stderr)
                    return 1
                strip = list(diffmorph.render_frames(maps, SOURCE, TARGET, alphas=list(STRIP_ALPHAS)))
                tiles = [labelled(f, f"alpha {a:g}") for f, a in zip(strip, STRIP_ALPHAS)]
                row = [x for tile in tiles for x in (tile, np.full((tile.shape[0], 4, 3), 255, np.uint8))][:-1]
                save_jpg(DOCS / "hero_strip.jpg", np.concatenate(row, axis=1))
    middles["tps"] = tps_middle(source, target, pairs)
    drawn = draw_points(source, target, pairs)
    width = source.shape[1]
    tiles = [
        labelled(drawn[:, :width], "source + 8 pairs"),
        labelled(middles["unguided"], "unguided (alpha 0.5)"),
        labelled(middles["guided"], "guided (alpha 0.5)"),
        labelled(middles["tps"], "classic TPS (alpha 0.5)"),
        labelled(drawn[:, width:], "target + 8 pairs"),
    ]
    spaced = [x for tile in tiles for x in (tile, np.full((tile.shape[0], 4, 3), 255, np.uint8))][:-1]
    save_jpg(DOCS / "guided_compare.jpg", np.concatenate(spaced, axis=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
