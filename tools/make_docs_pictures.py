"""Make the documentation's pictures in ``docs/`` from the bundled photo pair: ``python -m tools.make_docs_pictures``.

Everything goes through the public API (what the command line runs), at working size
256 with 300 train steps and seed 0, so the pictures take a few minutes on a laptop CPU:

* ``docs/report.png``: the ``report.png`` of ``morph(..., options=OutputOptions(report=True))``
  (the command line: ``diffmorph -s images/astronaut.jpg -t images/cat.jpg --size 256
  -e 300 --steps 41 --seed 0 --report``).
* ``docs/preset_best.jpg``: source, the middle frame (alpha 0.5) of the ``faithful`` and
  of the ``best`` preset, target; below, the same four enlarged 3x around the eyes
  (nearest neighbour, so the pixels are the frames' own).
* ``docs/colour_path.jpg``: the faithful morph's middle frame without and with
  ``colour_path="bures"`` (the same maps), with the W2 of each frame's colour Gaussian
  to the Bures geodesic's midpoint in the caption printed here.
* ``docs/colour_transfer.jpg``: the toy image, the palette (the cat), and the result of
  the unbalanced-OT colour transfer; W2 before/after printed here.

The numbers for the captions are printed on stdout.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import cv2  # noqa: E402
import numpy as np  # noqa: E402

import diffmorph  # noqa: E402
from diffmorph.app.colour_transfer import transfer_file  # noqa: E402
from diffmorph.core.colour import bures_geodesic, gaussian_stats, w2_gaussian  # noqa: E402
from tools.benchlib import IMAGES, REPO  # noqa: E402

DOCS = REPO / "docs"
SOURCE, TARGET = IMAGES / "astronaut.jpg", IMAGES / "cat.jpg"
SETTINGS = dict(size=256, train_steps=300, frames=41, seed=0)
EYES = (slice(70, 140), slice(60, 200))  # rows, columns of the 256 x 256 frames: both heads' eyes
ZOOM = 3


def label(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` (uint8 RGB) with ``text`` on a white band above it."""
    band = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(band, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([band, image])


def row(images: list[np.ndarray], gap: int = 4) -> np.ndarray:
    spacer = np.full((images[0].shape[0], gap, 3), 255, np.uint8)
    parts = [x for image in images for x in (image, spacer)][:-1]
    return np.hstack(parts)


def save_jpeg(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size // 1024} KB)")


def middle(maps: Path, config) -> np.ndarray:
    return next(diffmorph.render_frames(maps, SOURCE, TARGET, config, alphas=[0.5]))


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    source, target = diffmorph.load_image(SOURCE), diffmorph.load_image(TARGET)
    with tempfile.TemporaryDirectory() as tmp:
        options = diffmorph.OutputOptions(formats=("frames",), report=True)
        faithful = diffmorph.preset_config("faithful", **SETTINGS)
        best = diffmorph.preset_config("best", **SETTINGS)
        runs = {}
        for name, config in (("faithful", faithful), ("best", best)):
            result = diffmorph.morph(SOURCE, TARGET, Path(tmp) / name, config, options=options)
            runs[name] = Path(tmp) / name / "morph"
            print(f"{name}: {result.frames} frames")
        (DOCS / "report.png").write_bytes((runs["faithful"] / "report.png").read_bytes())
        print("wrote docs/report.png")

        mids = {name: middle(runs[name] / "maps.npz", cfg) for name, cfg in (("faithful", faithful), ("best", best))}
        tiles = [source, mids["faithful"], mids["best"], target]
        names = ["source", "faithful, alpha 0.5", "best, alpha 0.5", "target"]
        top = row([label(t, n) for t, n in zip(tiles, names, strict=True)])
        zoomed = [cv2.resize(t[EYES], None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_NEAREST) for t in tiles[1:3]]
        bottom = row([label(z, f"{n}, eyes x{ZOOM}") for z, n in zip(zoomed, names[1:3], strict=True)])
        pad = np.full((bottom.shape[0], top.shape[1] - bottom.shape[1], 3), 255, np.uint8)
        save_jpeg(
            DOCS / "preset_best.jpg",
            np.vstack([top, np.full((6, top.shape[1], 3), 255, np.uint8), np.hstack([bottom, pad])]),
        )

        bures = middle(runs["faithful"] / "maps.npz", faithful.replace(colour_path="bures"))
        goal = bures_geodesic(gaussian_stats(source), gaussian_stats(target), 0.5)
        w2 = {name: w2_gaussian(gaussian_stats(x), goal) for name, x in (("none", mids["faithful"]), ("bures", bures))}
        ends = w2_gaussian(gaussian_stats(source), gaussian_stats(target))
        variance = {
            name: round(float(np.trace(gaussian_stats(x).cov)), 4)
            for name, x in (("none", mids["faithful"]), ("bures", bures))
        }
        variance["geodesic"] = round(float(np.trace(goal.cov)), 4)
        save_jpeg(
            DOCS / "colour_path.jpg",
            row([label(mids["faithful"], "middle frame"), label(bures, "--colour-path bures")]),
        )
        print(
            f"colour path: W2(source, target) {ends:.4f}; middle frame to the geodesic midpoint: "
            f"none {w2['none']:.4f}, bures {w2['bures']:.4f}; colour variance (trace) {variance}"
        )

        out = Path(tmp) / "toy_as_cat.png"
        toy = IMAGES / "toy_a.png"
        figures = transfer_file(toy, TARGET, out)
        result = diffmorph.load_image(out)
        save_jpeg(
            DOCS / "colour_transfer.jpg",
            row(
                [
                    label(diffmorph.load_image(toy), "image"),
                    label(target, "palette"),
                    label(result, "colour-transfer (uot)"),
                ]
            ),
        )
        print(
            f"colour transfer: W2 {figures['w2_before']:.4f} -> {figures['w2_after']:.4f} in {figures['seconds']:.1f} s"
        )


if __name__ == "__main__":
    main()
