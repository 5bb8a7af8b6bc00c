import os
import sys

# Quieten TensorFlow's C++ logging; must happen before tensorflow is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Make the in-repo package importable under plain `pytest` too (not only `python -m pytest`).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ---------------------------------------------------------------------------
# Shared fixtures for the package tests (maps/model, optimiser, renderer, CLI).
# Heavy imports (TensorFlow, OpenCV) happen inside the fixtures so that collecting
# test_warp.py alone stays as it was.

import pathlib  # noqa: E402
import subprocess  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
IMAGES = REPO / "images"
TOY_A = IMAGES / "toy_a.png"
TOY_B = IMAGES / "toy_b.png"
SMALL_SIZE = 64  # working resolution used by the fast tests


def read_rgb(path) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB (OpenCV reads BGR)."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, f"cannot read {path}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_rgb(path, rgb: np.ndarray) -> pathlib.Path:
    """Write uint8 (H, W, 3) RGB with OpenCV (PNG/JPEG by extension); returns the path."""
    import cv2

    path = pathlib.Path(path)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), f"cannot write {path}"
    return path


def read_video(path):
    """All frames of a video as uint8 (H, W, 3) arrays, and its metadata (imageio-ffmpeg)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]
    return frames, meta


def make_test_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 (height, width, 3) RGB picture: gradient plus a disc."""
    import cv2

    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1),
                    np.full_like(xx, 40 + 50 * seed)], axis=-1).astype(np.uint8)
    img = np.ascontiguousarray(img)
    cv2.circle(img, (width // 2 + seed, height // 2), max(2, min(width, height) // 4),
               (250, 30 + 60 * seed, 200), -1)
    return img


def run_cli(args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """``python REPO/morph.py ARGS`` as a subprocess in ``cwd`` (default the repo), text captured."""
    import sys

    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user runs it: the CLI quietens TensorFlow itself
    env.pop("PYTHONPATH", None)  # morph.py must find the package beside itself
    return subprocess.run([sys.executable, str(REPO / "morph.py"), *map(str, args)],
                          cwd=str(cwd or REPO), env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def toy_pair():
    """The toy images as uint8 (256, 256, 3) RGB: (source, target)."""
    return read_rgb(TOY_A), read_rgb(TOY_B)


@pytest.fixture(scope="session")
def toy_working(toy_pair):
    """The toy pair at the small working size: float32 (1, 64, 64, 3) each, in [-1, 1]."""
    from diffmorph.core.render import to_working

    return to_working(toy_pair[0], SMALL_SIZE), to_working(toy_pair[1], SMALL_SIZE)


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory):
    """One end-to-end CLI run on the toy pair, shared by the CLI assertions.

    ``--size 64 -e 12 --steps 12 --seed 0 -q -o OUT``; returns (CompletedProcess, OUT).
    """
    out = tmp_path_factory.mktemp("cli_e2e") / "out"
    proc = run_cli(["-s", TOY_A, "-t", TOY_B, "--size", SMALL_SIZE, "-e", 12, "--steps", 12,
                    "--seed", 0, "-q", "-o", out])
    return proc, out
