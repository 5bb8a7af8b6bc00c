"""Bad input: every wrong input either works or gives one clear line and exit 2.

The command-line tables call the ``diffmorph`` entry point in-process (``run_cli``)
on files each case makes in ``tmp_path``; bad inputs are refused before TensorFlow is
used, and accepted formats are rendered from the shared run's saved maps (``--maps
--force``: no optimisation) except one case that optimises. Unit tests on
:func:`~diffmorph.io.images.read_image` check the pixels of the formats that are accepted, and hypothesis
checks the number validation of the flags: the parsed values, and the one-line usage
error of the command itself.
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
import os
import pathlib
import shutil
import struct
import threading
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import (
    IMAGES,
    TOY_A,
    TOY_B,
    Unreadable,
    assert_one_line_error,
    file_bytes,
    make_test_image,
    part_files,
    read_video,
    run_cli,
    tiny_flags,
)

CAT = IMAGES / "cat.jpg"
QUICK = tiny_flags(train_steps=2, frames=2)  # one tiny optimising run


# --------------------------------------------------------------------------- helpers


def png_header_only(path, width: int, height: int) -> pathlib.Path:
    """A PNG whose header says ``width x height`` (8-bit gray) with a token IDAT.

    Pillow reads only the header on open, so this stands for a huge image without
    allocating it.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = pathlib.Path(path)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture(scope="module")
def maps_file(rendered_run):
    """The shared run's maps file (toy pair, --size 64): renders any pair with --force."""
    return rendered_run[1] / "morph" / "maps.npz"


# ------------------------------------------------------------------ input makers
# Each takes the case's folder and returns the path of the file it made.


def make_missing(d):
    return d / "does_not_exist.png"


def make_directory(d):
    (d / "a_folder.png").mkdir()
    return d / "a_folder.png"


def make_unreadable(d):
    p = d / "secret.png"
    p.write_bytes(TOY_A.read_bytes())
    return Unreadable(p)  # os.open refuses it (the deny_unreadable fixture): root ignores chmod 000


def make_empty(d):
    p = d / "empty.png"
    p.write_bytes(b"")
    return p


def make_truncated_jpeg(d):
    p = d / "cut.jpg"
    p.write_bytes(CAT.read_bytes()[:200])
    return p


def make_truncated_jpeg_half(d):
    data = CAT.read_bytes()
    p = d / "half.jpg"
    p.write_bytes(data[: len(data) // 2])
    return p


def make_truncated_png(d):
    data = TOY_A.read_bytes()
    p = d / "cut.png"
    p.write_bytes(data[: len(data) // 2])
    return p


def make_text_as_jpg(d):
    p = d / "notes.jpg"
    p.write_text("this is not a picture\n" * 20)
    return p


def make_random_xyz(d):
    p = d / "noise.xyz"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return p


def make_svg(d):
    p = d / "drawing.svg"
    p.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        '<rect width="64" height="64" fill="red"/></svg>\n'
    )
    return p


def make_pdf(d):
    p = d / "doc.pdf"
    p.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    return p


def make_1x1(d):
    from PIL import Image

    p = d / "dot.png"
    Image.new("RGB", (1, 1), (200, 10, 10)).save(p)
    return p


def make_1_wide(d):
    from PIL import Image

    p = d / "line.png"
    Image.new("RGB", (1, 64), (200, 10, 10)).save(p)
    return p


def make_huge(d):
    """12000 x 9000 (108 MP > 50 MP): zeros compress to a few hundred KB."""
    from PIL import Image

    p = d / "huge.png"
    image = Image.new("L", (12000, 9000))
    image.save(p, compress_level=1)
    del image
    return p


def make_bomb(d):
    """20000 x 10000 (200 MP): above Pillow's own decompression-bomb limit too."""
    return png_header_only(d / "bomb.png", 20000, 10000)


def make_gray(d):
    from PIL import Image

    p = d / "gray.png"
    Image.fromarray(make_test_image(48, 40)[..., 0], "L").save(p)
    return p


def make_gray16(d):
    from PIL import Image

    p = d / "gray16.png"
    ramp = (np.arange(48 * 40, dtype=np.uint32).reshape(40, 48) * 34).astype(np.uint16)
    Image.fromarray(ramp).save(p)  # mode I;16
    return p


def make_rgba(d):
    from PIL import Image

    p = d / "alpha.png"
    rgba = np.zeros((40, 48, 4), np.uint8)
    rgba[:, 24:] = (220, 30, 30, 255)
    Image.fromarray(rgba, "RGBA").save(p)
    return p


def make_la(d):
    from PIL import Image

    p = d / "la.png"
    la = np.zeros((40, 48, 2), np.uint8)
    la[:, :, 0] = 60
    la[:, 24:, 1] = 255
    Image.fromarray(la, "LA").save(p)
    return p


def make_palette(d):
    from PIL import Image

    p = d / "palette.png"
    Image.fromarray(make_test_image(48, 40)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(p)
    return p


def make_palette_transparent(d):
    from PIL import Image

    p = d / "palette_t.png"
    index = np.zeros((40, 48), np.uint8)
    index[:, 24:] = 1
    image = Image.fromarray(index, "P")
    image.putpalette([0, 0, 0, 30, 160, 60] + [0, 0, 0] * 254)
    image.save(p, transparency=0)
    return p


def make_cmyk_jpeg(d):
    from PIL import Image

    p = d / "cmyk.jpg"
    Image.new("CMYK", (48, 40), (0, 255, 255, 0)).save(p, quality=95)
    return p


def make_exif_rotated(d):
    from PIL import Image

    p = d / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(make_test_image(48, 32)).save(p, exif=exif, quality=95)
    return p


def make_animated_gif(d):
    from PIL import Image

    p = d / "anim.gif"
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return p


def make_unicode_path(d):
    folder = d / "Fotos ä"
    folder.mkdir()
    p = folder / "bild 1 ✓.png"
    p.write_bytes(TOY_A.read_bytes())
    return p


def save_test_image(d, name: str, width: int, height: int):
    """Save :func:`gradient_rgb` of ``width`` x ``height`` as ``d / name``; return the path."""
    from PIL import Image

    p = d / name
    Image.fromarray(make_test_image(width, height)).save(p)
    return p


def make_tiny(d):
    return save_test_image(d, "tiny.png", 8, 8)


def make_thin(d):
    return save_test_image(d, "thin.png", 31, 500)


def make_wide(d):
    return save_test_image(d, "wide.png", 96, 24)


def make_source_40x30(d):
    return save_test_image(d, "src_40x30.png", 40, 30)


def make_long_component(d):
    """A source whose folder name is 260 bytes (130 two-byte characters): over NAME_MAX (255)."""
    return d / ("é" * 130) / "a.png"


# --------------------------------------------------------------------- CLI table


# (id, bad side, maker, expected substring) -> exit 2, one "diffmorph: error:" line naming the file.
# More variants (half a JPEG, 1x64, PDF, a 200 MP header) are unit tests on read_image below.
ERROR_CASES = [
    ("missing", "source", make_missing, "no such file"),
    ("directory", "source", make_directory, "is a directory"),
    ("unreadable", "source", make_unreadable, "cannot be read"),
    ("empty", "target", make_empty, "empty"),
    ("truncated-jpeg", "source", make_truncated_jpeg, "truncated or corrupt"),
    ("truncated-png", "target", make_truncated_png, "truncated or corrupt"),
    ("text-named-jpg", "source", make_text_as_jpg, "not an image file"),
    ("random-bytes-xyz", "target", make_random_xyz, "not an image file"),
    ("svg", "source", make_svg, "not an image file"),
    ("1x1", "source", make_1x1, "too small"),
    ("12000x9000", "target", make_huge, "108 megapixels"),
    ("component-over-255-bytes", "source", make_long_component, "é" * 130),
]


@pytest.mark.usefixtures("deny_unreadable")
@pytest.mark.parametrize("case, side, make, expected", [pytest.param(*c, id=c[0]) for c in ERROR_CASES])
def test_cli_refuses_bad_image(tmp_path, case, side, make, expected):
    bad = make(tmp_path)
    source, target = (bad, TOY_B) if side == "source" else (TOY_A, bad)
    out = tmp_path / "out"
    run = run_cli(["-s", source, "-t", target, *QUICK, "-o", out])
    assert_one_line_error(run, 2, expected, str(bad.name))  # says which file
    assert not out.exists()  # refused before any folder was made


# (id, source maker, target maker, expected notices, optimise): each run tries two formats
# (source and target). The pixels are checked by the read_image units.
RESIZED = "resizing the target to the source's size"
WORKING_CASES = [
    ("grayscale+gray-16bit", make_gray, make_gray16, ("16-bit samples scaled 0..65535 to 0..255",), False),
    ("la+rgba-transparent", make_la, make_rgba, (), False),
    ("palette+palette-transparent", make_palette, make_palette_transparent, (), False),
    (
        "cmyk-jpeg+exif-rotated-jpeg",
        make_cmyk_jpeg,
        make_exif_rotated,
        ("target is 32x48, source 48x40: " + RESIZED,),
        False,
    ),
    (
        "animated-gif+tiny-8x8",
        make_animated_gif,
        make_tiny,
        ("anim.gif: has 3 frames; using the first", "target is 8x8, source 40x40: " + RESIZED),
        False,
    ),
    (
        "unicode-space-path+thin-31x500",
        make_unicode_path,
        make_thin,
        ("target is 31x500, source 256x256: " + RESIZED,),
        False,
    ),
    ("different-size-and-aspect", make_source_40x30, make_wide, ("target is 96x24, source 40x30: " + RESIZED,), True),
]


@pytest.mark.parametrize(
    "case, make_source, make_target, expected, optimise", [pytest.param(*c, id=c[0]) for c in WORKING_CASES]
)
def test_cli_accepts_image(tmp_path, maps_file, case, make_source, make_target, expected, optimise):
    """Exit 0, the outputs at the source's size, and on stderr only the expected notice."""
    from diffmorph.io.images import read_image

    (tmp_path / "s").mkdir()
    (tmp_path / "t").mkdir()
    source = make_source(tmp_path / "s")
    target = make_target(tmp_path / "t")
    out = tmp_path / "out dir ü"
    how = QUICK if optimise else ["--maps", maps_file, "--force", "--steps", 2, "-q", "--plain", "--formats", "mp4"]
    run = run_cli(["-s", source, "-t", target, *how, "-o", out])
    assert run.returncode == 0, run.stderr
    assert len(run.lines) == len(expected), run.stderr  # the notices, no library noise
    for line, notice in zip(run.lines, expected):
        assert line.startswith("diffmorph: ") and line.endswith(notice), (line, notice)
    for name in ("morph/morph.mp4", "morph/result.jpg", "morph/maps.npz", "morph/maps.jpg", "preds.npy"):
        assert (out / name).is_file(), name
    assert not part_files(out)
    height, width = read_image(source).pixels.shape[:2]
    frames, meta = read_video(out / "morph" / "morph.mp4")
    assert len(frames) == 2
    assert tuple(meta["size"]) == (width + width % 2, height + height % 2)  # odd sides padded for yuv420p
    if case == "different-size-and-aspect":
        assert tuple(meta["size"]) == (40, 30)
        assert (out / "train" / "a_to_b_2.jpg").is_file()  # this case optimised


# (id, argv fragment, flag the message must name): one "diffmorph morph: error:" line, exit 2.
NUMBER_CASES = [
    ("epochs-0", ["-e", "0"], "--train_epochs"),
    ("epochs-negative", ["-e", "-5"], "--train_epochs"),
    ("epochs-over-1e6", ["-e", "1000001"], "--train_epochs"),
    ("size-8", ["--size", "8"], "--size"),
    ("size-4096", ["--size", "4096"], "--size"),
    ("add-nan", ["-a", "nan"], "--add_scale"),
    ("mult-inf", ["-m", "inf"], "--mult_scale"),
    ("warp-negative", ["-w", "-1"], "--warp_scale"),
    ("fps-0", ["--fps", "0"], "--fps"),
    ("fps-0.001", ["--fps", "0.001", "--formats", "gif"], "--fps"),  # what neither H.264 nor GIF can hold
    ("fps-1e300", ["--fps", "1e300"], "--fps"),
    ("steps-1", ["--steps", "1"], "--steps"),
    ("steps-100001", ["--steps", "100001"], "--steps"),
    ("steps-abc", ["--steps", "abc"], "--steps"),
    ("size-float", ["--size", "32.5"], "--size"),
    ("formats-bogus", ["--formats", "avi"], "avi"),
    ("gif-max-side-1", ["--gif-max-side", "1"], "--gif-max-side"),
    ("seed-too-big", ["--seed", str(2**63 - 1)], "--seed"),  # used to overflow in the net's initialiser
    ("seed-negative", ["--seed=-1"], "--seed"),
    ("add-first-maybe", ["-add_first", "maybe"], "add_first"),
    ("unknown-flag", ["--bogus"], "--bogus"),
]


@pytest.mark.parametrize("case, fragment, flag", [pytest.param(*c, id=c[0]) for c in NUMBER_CASES])
def test_cli_refuses_bad_number(tmp_path, case, fragment, flag):
    out = tmp_path / "out"
    run = run_cli(["-s", TOY_A, "-t", TOY_B, "--size", 32, "-e", 2, "--steps", 2, "-q", "-o", out, *fragment])
    line = assert_one_line_error(run, 2, flag)
    assert line.startswith("diffmorph morph: error: ") and line.endswith("(see 'diffmorph morph --help')"), line
    assert not out.exists()  # refused before anything was written


# -------------------------------------------------------------------- outputs


def test_output_dir_is_a_file(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("keep me\n")
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *QUICK, "-o", out])
    assert_one_line_error(run, 2, "is not a folder", "out.txt")
    assert out.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_output_dir_below_a_file(tmp_path):
    """``-o FILE/sub``: a file where a folder must be is bad input, as for every command (exit 2)."""
    (tmp_path / "plain").write_text("x")
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *QUICK, "-o", tmp_path / "plain" / "sub"])
    assert_one_line_error(run, 2, "plain exists and is not a folder", "sub would be inside it")
    assert (tmp_path / "plain").read_text() == "x"


def test_frames_dir_is_a_file(tmp_path):
    frames = tmp_path / "frames.txt"
    frames.write_text("keep me\n")
    out = tmp_path / "out"
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *QUICK, "--formats", "mp4,frames", "--frames-dir", frames, "-o", out])
    assert_one_line_error(run, 2, str(frames), "is not a folder")
    assert frames.read_text() == "keep me\n"
    assert not out.exists()  # refused before any work (fail fast)


@pytest.mark.parametrize("which", ["output", "frames-dir", "maps"])
def test_path_component_over_255_bytes(tmp_path, which):
    """A name the file system cannot hold is bad input: exit 2, one line, nothing written."""
    long = tmp_path / ("x" * 300)
    extra = {
        "output": ["-o", long],
        "frames-dir": ["-o", tmp_path / "out", "--formats", "frames", "--frames-dir", long],
        "maps": ["-o", tmp_path / "out", "--maps", long / "maps.npz"],
    }[which]
    run = run_cli(["-s", TOY_A, "-t", TOY_B, "--size", 32, "-e", 2, "--steps", 2, "-q", *extra])
    assert_one_line_error(run, 2, "x" * 255)
    assert list(tmp_path.iterdir()) == []


def test_output_dir_not_writable(tmp_path, monkeypatch):
    out = tmp_path / "locked"
    out.mkdir()
    real_access = os.access
    # a read-only folder, as a normal user sees it (root, who runs CI, may write anywhere)
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if path == out else real_access(path, mode, **kw))
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *QUICK, "-o", out])
    assert_one_line_error(run, 1, str(out), "is not writable")
    assert list(out.iterdir()) == []


class FailingEncoder:
    """imageio-ffmpeg's frame writer whose ``send`` fails after ``good`` frames (ffmpeg died: EPIPE)."""

    def __init__(self, real, good: int, sent: list):
        self.real, self.good, self.sent = real, good, sent

    def send(self, frame):
        if frame is not None:
            self.sent.append(1)
            if len(self.sent) > self.good:
                raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        return self.real.send(frame)

    def close(self):
        self.real.close()


def test_earlier_outputs_survive_failed_runs(tmp_path, monkeypatch, rendered_run):
    import imageio_ffmpeg

    out = tmp_path / "out"
    shutil.copytree(rendered_run[1], out)
    maps = out / "morph" / "maps.npz"
    before = file_bytes(out)
    rerender = ["--maps", maps, "--steps", 5, "-q", "--plain", "--formats", "mp4", "-o", out]
    # a later run with a bad target fails before any work
    run = run_cli(["-s", TOY_A, "-t", make_truncated_png(tmp_path), *rerender])
    assert_one_line_error(run, 2, "truncated or corrupt")
    assert file_bytes(out) == before
    # a later run whose encoder fails in the middle of the video (after 2 of its 5 frames)
    real, sent = imageio_ffmpeg.write_frames, []
    monkeypatch.setattr(imageio_ffmpeg, "write_frames", lambda *a, **k: FailingEncoder(real(*a, **k), 2, sent))
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *rerender])
    assert len(sent) == 3, "the encoder never failed"
    line = assert_one_line_error(run, 1, "video encoding failed", "morph.mp4", "Broken pipe")
    assert file_bytes(out) == before  # the whole previous set, byte for byte
    assert not part_files(out)
    assert ".part" not in line, f"the message names a temporary file, not the output: {line}"


# --------------------------------------------------------------- read_image units


def test_load_image_transparent_is_white(tmp_path):
    from diffmorph.io.images import read_image

    for maker in (make_rgba, make_la, make_palette_transparent):
        pixels = read_image(maker(tmp_path)).pixels
        assert pixels.shape == (40, 48, 3) and pixels.dtype == np.uint8
        assert (pixels[:, :24] == 255).all(), maker.__name__  # fully transparent half
        assert (pixels[:, 24:] != 255).any(), maker.__name__  # opaque half keeps its colour
    rgba = read_image(tmp_path / "alpha.png").pixels
    assert (rgba[:, 24:] == (220, 30, 30)).all()


def test_load_image_exif_orientation(tmp_path):
    from PIL import Image

    from diffmorph.io.images import read_image

    path = make_exif_rotated(tmp_path)
    with Image.open(path) as raw:
        stored = np.asarray(raw.convert("RGB")).astype(int)
    assert stored.shape == (32, 48, 3)
    pixels = read_image(path).pixels.astype(int)
    assert pixels.shape == (48, 32, 3)  # width and height swapped
    rotated = np.rot90(stored, k=-1)  # orientation 6: rotate 90 degrees clockwise to display
    assert np.abs(pixels - rotated).mean() < 1.0
    assert np.abs(pixels - np.rot90(stored, k=1)).mean() > 20  # not the other way round


def test_load_image_gray16_is_scaled(tmp_path):
    from diffmorph.io.images import read_image

    pixels = read_image(make_gray16(tmp_path)).pixels
    ramp = (np.arange(48 * 40, dtype=np.uint32).reshape(40, 48) * 34).astype(np.float64)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 0] == pixels[..., 2]).all()
    assert np.abs(pixels[..., 0] - ramp * 255 / 65535).max() <= 0.5 + 1e-9
    assert pixels.max() > 200  # a 16-bit ramp reaches near white, not clipped to black/white


def test_load_image_formats(tmp_path):
    from diffmorph.io.images import read_image

    gray = read_image(make_gray(tmp_path)).pixels
    assert gray.shape == (40, 48, 3) and (gray[..., 0] == gray[..., 2]).all()
    palette = read_image(make_palette(tmp_path)).pixels
    assert palette.shape == (40, 48, 3)
    assert np.abs(palette.astype(int) - make_test_image(48, 40)).mean() < 16
    cmyk = read_image(make_cmyk_jpeg(tmp_path)).pixels
    assert cmyk.shape == (40, 48, 3)
    assert np.abs(cmyk.reshape(-1, 3).mean(0) - (255, 0, 0)).max() < 12  # C=0 M=Y=100%: red
    gif = read_image(make_animated_gif(tmp_path))
    assert gif.pixels.shape == (40, 40, 3)
    assert np.abs(gif.pixels.reshape(-1, 3).mean(0) - (255, 0, 0)).max() < 2  # the first frame
    assert len(gif.notices) == 1 and "has 3 frames; using the first" in gif.notices[0]
    tiny = read_image(make_tiny(tmp_path))
    assert tiny.pixels.shape == (8, 8, 3) and tiny.notices == ()
    two = tmp_path / "two.png"
    from PIL import Image

    Image.new("RGB", (2, 2)).save(two)
    assert read_image(two).pixels.shape == (2, 2, 3)  # MIN_SIDE itself is accepted


@pytest.mark.parametrize(
    "make, expected",
    [
        (make_missing, "no such file"),
        (make_directory, "is a directory"),
        (make_empty, "empty"),
        (make_truncated_jpeg, "truncated or corrupt"),
        (make_truncated_jpeg_half, "truncated or corrupt"),
        (make_truncated_png, "truncated or corrupt"),
        (make_text_as_jpg, "not an image file"),
        (make_random_xyz, "not an image file"),
        (make_svg, "not an image file"),
        (make_pdf, "not an image file"),
        (make_1x1, "too small"),
        (make_1_wide, "too small"),
        pytest.param(make_bomb, "megapixels", id="make_bomb-megapixels"),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_load_image_refuses(tmp_path, make, expected):
    from diffmorph.errors import InputError
    from diffmorph.io.images import read_image

    path = make(tmp_path)
    with pytest.raises(InputError) as info:
        read_image(path)
    message = str(info.value)
    assert expected in message and "\n" not in message and str(path) in message


def test_load_image_pixel_limit_before_decoding(tmp_path):
    from diffmorph.errors import InputError
    from diffmorph.io.images import MAX_PIXELS, read_image

    path = png_header_only(tmp_path / "big.png", 10000, MAX_PIXELS // 10000 + 1)  # no real pixel data
    with pytest.raises(InputError, match="megapixels; the limit is 50"):
        read_image(path)
    with pytest.raises(InputError, match="2000x1000 is 2 megapixels; the limit is 1 "):
        read_image(png_header_only(tmp_path / "m.png", 2000, 1000), max_pixels=1_000_000)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_load_image_fifo_does_not_hang(tmp_path):
    from diffmorph.errors import InputError
    from diffmorph.io.images import read_image

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome = {}

    def load():
        try:
            read_image(fifo)
            outcome["result"] = "loaded"
        except InputError as exc:
            outcome["result"] = str(exc)
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["result"] = repr(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(2)
    hung = worker.is_alive()
    if hung:  # unblock the reader: open the write end and close it (the reader then sees EOF)
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        worker.join(5)
    assert not hung, "read_image blocked on a FIFO"
    assert str(fifo) in outcome["result"]


# ------------------------------------------------------- hypothesis: number validation


def _try(kind, text):
    try:
        return kind(text)
    except (ValueError, OverflowError):
        return None


FLAG_RULES = {
    # flag: (config field, converter, is valid) -- the documented ranges
    "--size": ("size", int, lambda v: 16 <= v <= 2048),
    "--train_epochs": ("train_steps", int, lambda v: 1 <= v <= 1_000_000),
    "--steps": ("frames", int, lambda v: 2 <= v <= 100_000),
    "--fps": ("fps", float, lambda v: 0.1 <= v <= 1000),
    "--add_scale": ("add_scale", float, lambda v: math.isfinite(v) and v >= 0),
    "--mult_scale": ("mult_scale", float, lambda v: math.isfinite(v) and v >= 0),
    "--warp_scale": ("warp_scale", float, lambda v: math.isfinite(v) and v >= 0),
    "--seed": ("seed", int, lambda v: 0 <= v < 2**32),
}
SHORT = {"--train_epochs": "-e", "--add_scale": "-a", "--mult_scale": "-m", "--warp_scale": "-w"}

values = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=-100, max_value=100).map(repr),
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e400",
            "0",
            "-0",
            "-0.0",
            "1_000",
            " 17 ",
            "",
            "abc",
            "2.0",
            "0x10",
            "1e3",
            "16",
            "15",
            "2048",
            "2049",
            "100000",
            "100001",
            "1000000",
            "1000001",
            "0.1",
            "0.09",
            "1000",
            "1000.5",
            "4294967295",
            "4294967296",
            "2",
            "1",
        ]
    ),
)


def _parse(argv):
    """The morph command's settings for ``argv``: ``(config, None)`` or ``(None, failure text)``."""
    from diffmorph.cli.main import build_parser
    from diffmorph.cli.options import UsageError, explicit_settings, make_config
    from diffmorph.config import MorphConfig

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = build_parser().parse_args(["morph", *argv])
        except SystemExit as exc:
            assert exc.code == 2, (argv, exc.code)
            return None, err.getvalue()
    try:
        return make_config(MorphConfig(), explicit_settings(args)), None
    except UsageError as exc:
        return None, str(exc)


def _command(argv):
    """The command itself on ``argv`` with missing images: a flag it accepts gets as far as the images."""
    return run_cli(["-s", "missing_source.png", "-t", "missing_target.png", *argv])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flag=st.sampled_from(sorted(FLAG_RULES)), text=values, short=st.booleans())
def test_number_validation_property(flag, text, short):
    field, kind, valid = FLAG_RULES[flag]
    argv = [SHORT.get(flag, flag), text] if short and not text.startswith("-") else [f"{flag}={text}"]
    config, failure = _parse(argv)
    run = _command(argv)
    value = _try(kind, text)
    if value is not None and valid(value):
        assert failure is None, (argv, failure)
        got = getattr(config, field)
        assert got == value and type(got) is kind, (argv, got)
        assert_one_line_error(run, 2, "missing_source.png: no such file")  # the flag was accepted
    else:
        assert config is None, (argv, config)
        line = assert_one_line_error(run, 2, flag)  # the message names the flag
        assert line.startswith("diffmorph morph: error: ") and line.endswith("(see 'diffmorph morph --help')")


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(-50, 5000),
    epochs=st.integers(-5, 2 * 10**6),
    steps=st.integers(-5, 2 * 10**5),
    fps=st.floats(allow_nan=True, allow_infinity=True),
    add=st.floats(allow_nan=True, allow_infinity=True),
)
def test_number_validation_combined(size, epochs, steps, fps, add):
    argv = [f"--size={size}", f"-e{epochs}", f"--steps={steps}", f"--fps={fps!r}", f"--add_scale={add!r}"]
    config, failure = _parse(argv)
    ok = (
        16 <= size <= 2048
        and 1 <= epochs <= 10**6
        and 2 <= steps <= 10**5
        and 0.1 <= fps <= 1000
        and math.isfinite(add)
        and add >= 0
    )
    if ok:
        assert failure is None, failure
        assert (config.size, config.train_steps, config.frames, config.fps, config.add_scale) == (
            size,
            epochs,
            steps,
            fps,
            add,
        )
    else:
        assert config is None and failure, (argv, config)
        assert "\n" not in failure.strip(), failure
