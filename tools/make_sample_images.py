"""Write the sample image pairs in ``images/`` (next to the repository root).

Run from anywhere::

    python -m tools.make_sample_images

The output folder is found from this file's location, not the working directory.
Two pairs are written; see ``images/README.md`` for provenance and licences.

1. ``toy_a.png`` / ``toy_b.png`` (256x256 RGB, white background), like the toy
   example of the original DiffMorph. A has a red circle, a green triangle and a
   blue square. In B the circle is unchanged, the triangle is moved and rotated
   by 30 degrees, and the square is moved, rotated by 45 degrees and now black.
   The shapes are drawn at 4x size and shrunk with ``cv2.INTER_AREA``, which
   gives anti-aliased edges without the randomness of a renderer.

2. ``astronaut.jpg`` / ``cat.jpg`` (256x256 RGB JPEG, quality 95): head crops of
   ``skimage.data.astronaut()`` (NASA, public domain) and ``skimage.data.chelsea()``
   (CC0, Stefan van der Walt). Both originals come inside the scikit-image wheel
   (``skimage/data/*.png``), so this needs no network access; the files are read
   directly from that folder, and the script stops if one is missing, rather
   than letting scikit-image download it. The crops put both heads at about the
   same place and size. 256 px is the native resolution of the astronaut head
   crop, so that image is only enlarged slightly (224 -> 256 px); the cat is
   shrunk from 300 px.

The output is deterministic: rerunning the script with the same OpenCV build
writes byte-identical files (PNG and JPEG encoding store no timestamps).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from tools.benchlib import IMAGES as IMAGES_DIR
from tools.benchlib import REPO as REPO_ROOT

TOY_SIZE = 256  # output side of the toy images, px
SUPERSAMPLE = 4  # the toy shapes are drawn at SUPERSAMPLE * TOY_SIZE, then shrunk

# Colours are RGB; they are converted to OpenCV's BGR only when saving.
WHITE = (255, 255, 255)
RED = (220, 20, 20)
GREEN = (20, 170, 40)
BLUE = (20, 40, 220)
BLACK = (0, 0, 0)

PHOTO_SIZE = 256  # output side of the square photo crops, px
JPEG_QUALITY = 95

# (bundled file in skimage/data, crop as (top, bottom, left, right) in its pixels)
PHOTO_SOURCES = {
    "astronaut.jpg": ("astronaut.png", (6, 230, 116, 340)),  # 512x512 -> 224x224 head crop
    "cat.jpg": ("chelsea.png", (0, 300, 95, 395)),  # 300x451 -> 300x300 face crop
}


# --------------------------------------------------------------------------- toy pair


def regular_polygon(center, circumradius, sides, angle_deg):
    """Vertices ``(sides, 2)`` (x, y) of a regular polygon; angle 0 puts a vertex straight up."""
    cx, cy = center
    angles = np.deg2rad(angle_deg) - np.pi / 2 + 2 * np.pi * np.arange(sides) / sides
    return np.stack([cx + circumradius * np.cos(angles), cy + circumradius * np.sin(angles)], axis=1)


def triangle(center, side, angle_deg):
    """Equilateral triangle with the given side length, pointing up when ``angle_deg`` is 0."""
    return regular_polygon(center, side / math.sqrt(3), 3, angle_deg)


def square(center, side, angle_deg):
    """Square with the given side length, axis-aligned when ``angle_deg`` is 0."""
    return regular_polygon(center, side / math.sqrt(2), 4, angle_deg + 45)


def fill_polygon(canvas, vertices, color):
    """Fill a polygon given in output pixel coordinates on the supersampled canvas."""
    pts = np.round(np.asarray(vertices) * SUPERSAMPLE).astype(np.int32)
    cv2.fillPoly(canvas, [pts], color)


def fill_circle(canvas, center, radius, color):
    """Fill a circle given in output pixel coordinates on the supersampled canvas."""
    c = tuple(int(round(v * SUPERSAMPLE)) for v in center)
    cv2.circle(canvas, c, int(round(radius * SUPERSAMPLE)), color, thickness=-1)


def render_toy(shapes):
    """Draw ``shapes`` (list of ``(kind, params, rgb)``) on white; return a TOY_SIZE RGB image."""
    big = TOY_SIZE * SUPERSAMPLE
    canvas = np.full((big, big, 3), WHITE, dtype=np.uint8)
    for kind, params, color in shapes:
        if kind == "circle":
            fill_circle(canvas, params["center"], params["radius"], color)
        elif kind == "triangle":
            fill_polygon(canvas, triangle(params["center"], params["side"], params["angle"]), color)
        elif kind == "square":
            fill_polygon(canvas, square(params["center"], params["side"], params["angle"]), color)
        else:
            raise ValueError(f"unknown shape {kind!r}")
    return cv2.resize(canvas, (TOY_SIZE, TOY_SIZE), interpolation=cv2.INTER_AREA)


def toy_shapes():
    """Shape lists of the toy pair ``(a, b)``, coordinates in 256x256 output pixels."""
    circle = ("circle", {"center": (70, 72), "radius": 32}, RED)  # identical in A and B
    a = [
        circle,
        ("triangle", {"center": (182, 80), "side": 68, "angle": 0}, GREEN),
        ("square", {"center": (78, 184), "side": 58, "angle": 0}, BLUE),
    ]
    b = [
        circle,
        # moved by (+22, +26), about 34 px, and rotated by 30 degrees
        ("triangle", {"center": (204, 106), "side": 68, "angle": 30}, GREEN),
        # moved by (+36, +10), about 37 px, rotated by 45 degrees, now black
        ("square", {"center": (114, 194), "side": 58, "angle": 45}, BLACK),
    ]
    return a, b


# ------------------------------------------------------------------------- photo pair


def skimage_data_file(name):
    """Path of a sample image bundled inside the installed scikit-image wheel."""
    import skimage  # imported here so the toy pair needs only OpenCV and NumPy

    path = Path(skimage.__file__).resolve().parent / "data" / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: this scikit-image build does not bundle {name}, and this script does not download data"
        )
    return path


def resize_square(image, size):
    """Resize a square image to ``size``; INTER_AREA when shrinking, INTER_CUBIC when enlarging."""
    interp = cv2.INTER_AREA if image.shape[0] >= size else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interp)


def load_photo_crop(filename, box):
    """Read a bundled skimage photo, crop ``box`` = (top, bottom, left, right), resize; return RGB."""
    bgr = cv2.imread(str(skimage_data_file(filename)), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"could not read {filename}")
    top, bottom, left, right = box
    crop = bgr[top:bottom, left:right]
    if crop.shape[0] != crop.shape[1]:
        raise ValueError(f"crop of {filename} is not square: {crop.shape}")
    return cv2.cvtColor(resize_square(crop, PHOTO_SIZE), cv2.COLOR_BGR2RGB)


# ----------------------------------------------------------------------------- output


def save_rgb(path, rgb):
    """Write an RGB uint8 image as PNG or JPEG (by suffix), deterministically."""
    params = []
    if path.suffix.lower() in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    elif path.suffix.lower() == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 9]
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
        raise OSError(f"could not write {path}")
    print(f"wrote {path.relative_to(REPO_ROOT)}  {rgb.shape[1]}x{rgb.shape[0]}  {path.stat().st_size} bytes")


def main():
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    shapes_a, shapes_b = toy_shapes()
    save_rgb(IMAGES_DIR / "toy_a.png", render_toy(shapes_a))
    save_rgb(IMAGES_DIR / "toy_b.png", render_toy(shapes_b))
    for out_name, (src_name, box) in PHOTO_SOURCES.items():
        save_rgb(IMAGES_DIR / out_name, load_photo_crop(src_name, box))


if __name__ == "__main__":
    main()
