"""The file-level colour transfer (:func:`diffmorph.app.colour_transfer.transfer_file`):
writes the recoloured image, reports W2 before and after, refuses bad inputs with
one-line :class:`InputError` / :class:`OutputError` and then writes nothing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from conftest import Calls, one_line
from diffmorph.app.colour_transfer import transfer_file
from diffmorph.core.colour import TransferSettings, gaussian_stats, w2_gaussian
from diffmorph.errors import InputError, OutputError

pytestmark = pytest.mark.filterwarnings("error")

FAST = TransferSettings(bins=16, stages=4, iters=20)  # a short schedule: tiny images, seconds


def gradient(height, width, colours) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    rng = np.random.default_rng(sum(colours))
    base = np.stack([colours[0] + 80 * xx, colours[1] + 60 * yy, colours[2] + 40 * xx * yy], axis=-1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).round().astype(np.uint8)


@pytest.fixture
def pair(tmp_path):
    image, palette = tmp_path / "image.png", tmp_path / "palette.png"
    Image.fromarray(gradient(20, 30, (40, 60, 150))).save(image)
    Image.fromarray(gradient(24, 16, (170, 90, 30))).save(palette)
    return image, palette


def files_in(folder) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("method", ["uot", "gaussian"])
def test_writes_the_recoloured_image_and_reports_w2(pair, tmp_path, method):
    image, palette = pair
    out = tmp_path / "out.png"
    calls = []
    report = transfer_file(image, palette, out, dataclasses.replace(FAST, method=method), progress=Calls(calls))
    written = np.asarray(Image.open(out).convert("RGB"))
    assert written.shape == (20, 30, 3)
    assert set(report) == {"w2_before", "w2_after", "seconds"}
    goal = gaussian_stats(np.asarray(Image.open(palette).convert("RGB")))
    assert report["w2_before"] == pytest.approx(w2_gaussian(gaussian_stats(np.asarray(Image.open(image))), goal))
    assert report["w2_after"] == pytest.approx(w2_gaussian(gaussian_stats(written), goal))  # PNG is lossless
    assert report["w2_after"] < 0.5 * report["w2_before"]
    assert report["seconds"] > 0
    total = 80 if method == "uot" else None
    assert calls[0] == ("start", "colour", total) and calls[-1] == ("end",)
    assert calls[-2] == ((80, total) if method == "uot" else (1, total))
    assert files_in(tmp_path) == {"image.png", "palette.png", "out.png"}  # no temporary left behind


def test_jpeg_output_by_extension(pair, tmp_path):
    image, palette = pair
    transfer_file(image, palette, tmp_path / "out.JPG", dataclasses.replace(FAST, method="gaussian"))
    assert (tmp_path / "out.JPG").read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG stream


def refused(call, tmp_path, error, match, out_name="out.png"):
    out = tmp_path / out_name
    with pytest.raises(error, match=match) as info:
        call(out)
    one_line(info)
    assert not out.exists()
    assert not [name for name in files_in(tmp_path) if name.startswith(".")]  # no temporary files


def test_unreadable_palette_writes_nothing(pair, tmp_path):
    image, _ = pair
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    refused(
        lambda out: transfer_file(image, bad, out, FAST),
        tmp_path,
        InputError,
        "bad.png: the file is text, not an image file",
    )
    refused(lambda out: transfer_file(image, tmp_path / "missing.png", out, FAST), tmp_path, InputError, "no such file")


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"bins": 4}, "bins must be an integer from 8 to 128"),
        ({"bins": 129}, "bins must be an integer from 8 to 128"),
        ({"lam": 0.0}, "lambda must be a number from 1e-06 to 1e\\+06"),
        ({"stages": 0}, "stages must be an integer from 1 to 64"),
        ({"iters": -5}, "iters must be an integer from 1 to 100000"),
        ({"method": "nearest"}, "method must be one of"),
    ],
)
def test_bad_settings_are_refused_before_any_work(settings, match):
    with pytest.raises(ValueError, match=match):
        TransferSettings(**{"bins": 16, "stages": 4, "iters": 20, **settings})


@pytest.mark.parametrize("name", ["out.xyz", "out", "out.exr"])
def test_unknown_output_extension_is_refused_before_reading(tmp_path, name):
    # the inputs do not exist: the extension is checked first, before any work
    missing = tmp_path / "missing.png"
    refused(
        lambda out: transfer_file(missing, missing, out, FAST),
        tmp_path,
        InputError,
        "unknown image format",
        out_name=name,
    )


def test_missing_output_folder_is_an_output_error(pair, tmp_path):
    image, palette = pair
    out = tmp_path / "no" / "such" / "out.png"
    with pytest.raises(OutputError, match="no such folder"):
        transfer_file(image, palette, out, FAST)
    assert not (tmp_path / "no").exists()


def test_an_existing_output_survives_a_failed_run(pair, tmp_path):
    image, _ = pair
    out = tmp_path / "out.png"
    out.write_bytes(b"previous result")
    with pytest.raises(InputError):
        transfer_file(image, tmp_path / "missing.png", out, FAST)
    assert out.read_bytes() == b"previous result"


def test_tiny_images_are_refused(pair, tmp_path):
    image, _ = pair
    one = tmp_path / "one.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(one)
    refused(lambda out: transfer_file(image, one, out, FAST), tmp_path, InputError, "too small")
