"""io.images.read_image against hostile and unusual inputs: one-line errors, scaled pixels, no library noise.

Every input is made here in ``tmp_path`` (Pillow, OpenCV, numpy or raw bytes; a few
pixels each). Each call goes through :func:`load_quietly`, which fails the test if a
Python warning escapes or anything reaches the stderr file descriptor (libpng and
OpenCV write there directly).
"""

from __future__ import annotations

import errno
import io
import os
import struct
import warnings
import zipfile
import zlib

import numpy as np
import pytest

from conftest import Unreadable, one_line
from diffmorph.errors import InputError, display_path
from diffmorph.io.images import MIN_SIDE, read_image

# --------------------------------------------------------------------------- helpers


def load_quietly(path, capfd, **kwargs):
    """``read_image(path)``; asserts that no warning escaped and nothing reached stderr."""
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return read_image(path, **kwargs)
        finally:
            err = capfd.readouterr().err
            assert err == "", f"stderr: {err!r}"
            assert not caught, [str(w.message) for w in caught]


def refusal(path, capfd, **kwargs) -> str:
    """The InputError message for ``path``, checked to be one printable line starting with the
    file's name; returned without that name (so that words are not found in the path)."""
    with pytest.raises(InputError) as info:
        load_quietly(path, capfd, **kwargs)
    message = one_line(info)  # printable, no line breaks
    prefix = display_path(path) + ": "
    assert message.startswith(prefix), message
    return message[len(prefix) :]


def chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    """A PNG chunk (correct CRC unless ``crc`` is given)."""
    crc = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bytes(width, height, depth, colour_type, rows: bytes, before_idat=b"", after_idat=b"") -> bytes:
    """A PNG from raw scanlines (each starting with its filter byte)."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + before_idat
        + chunk(b"IDAT", zlib.compress(rows))
        + after_idat
        + chunk(b"IEND", b"")
    )


def insert_before_idat(data: bytes, extra: bytes) -> bytes:
    at = data.index(b"IDAT") - 4
    return data[:at] + extra + data[at:]


def write(d, name, data: bytes):
    path = d / name
    path.write_bytes(data)
    return path


def write_cv2(d, name, array):
    """Write with OpenCV; ``array`` in RGB(A) channel order (flipped to OpenCV's BGR(A))."""
    import cv2

    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[..., [2, 1, 0, 3][: array.shape[2]]]
    path = d / name
    assert cv2.imwrite(str(path), np.ascontiguousarray(array))
    return path


def save_pil(d, name, image, **kwargs):
    path = d / name
    image.save(path, **kwargs)
    return path


def exif_bytes(orientation: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def tiff_tags(tags: dict):
    """A Pillow ``tiffinfo`` with explicit tag types: ``{tag: (value, type)}``."""
    from PIL import TiffImagePlugin

    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    for tag, (value, kind) in tags.items():
        ifd[tag] = value
        ifd.tagtype[tag] = kind
    return ifd


def rgb8(width=6, height=4):
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 40, yy * 60, np.full_like(xx, 90)], -1).astype(np.uint8)


# ------------------------------------------------------------- inputs refused


def make_dangling(d):
    (d / "link.png").symlink_to("gone.png")
    return d / "link.png"


def make_loop(d):
    (d / "loop.png").symlink_to("loop.png")
    return d / "loop.png"


def make_long_name(d):
    return d / ("x" * 300 + ".png")


def make_below_file(d):
    (d / "file.png").write_bytes(b"x")
    return d / "file.png" / "inner.png"


def make_directory(d):
    (d / "folder.png").mkdir()
    return d / "folder.png"


def make_fifo(d):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(d / "pipe.png")
    return d / "pipe.png"


def make_unreadable(d):
    return Unreadable(write(d, "secret.png", png_bytes(2, 2, 8, 0, b"\0\0\0" * 2)))


def make_empty(d):
    return write(d, "empty.png", b"")


def make_text_jpg(d):
    return write(d, "notes.jpg", b"shopping list\nmilk\nbread\n" * 10)


def make_html_jpg(d):
    return write(
        d, "photo.jpg", b"\xef\xbb\xbf\n<!DOCTYPE html>\n<html><head><title>x</title></head><body></body></html>"
    )


def make_html_with_inline_svg(d):
    return write(d, "saved.png", b"<html><body><svg width='9'><rect/></svg></body></html>\n")


def make_random(d):
    return write(d, "noise.bin", np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes())


def make_random_heic_name(d):
    return write(d, "IMG_0001.HEIC", b"\x00\x01" + np.random.default_rng(1).bytes(500))


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\0\0\0\0" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + bytes(200)


def make_heic(d):
    return write(d, "photo.jpg", ftyp(b"heic", b"mif1", b"heic"))


def make_heif(d):
    return write(d, "photo.png", ftyp(b"mif1", b"mif1"))


def make_avif_broken(d):
    return write(d, "pic.avif", ftyp(b"avif", b"avif", b"mif1", b"miaf"))


def make_jxl(d):
    return write(d, "pic.png", b"\xff\x0a" + bytes(100))


def make_jxl_container(d):
    return write(d, "pic.jxl", b"\0\0\0\x0cJXL \r\n\x87\n" + bytes(100))


def make_svg(d):
    return write(d, "logo.png", b'<?xml version="1.0"?>\n<!-- drawn -->\n<svg xmlns="http://www.w3.org/2000/svg"/>\n')


def make_pdf(d):
    return write(d, "scan.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << >> endobj\n%%EOF\n")


def make_eps(d):
    return write(d, "figure.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")


def make_psb(d):
    return write(d, "big.psd", b"8BPS\0\x02" + bytes(40))


def make_psd_broken(d):
    return write(d, "layers.psd", b"8BPS\0\x01" + bytes(20))


def make_exr(d):
    return write(d, "render.exr", b"v/1\x01\x02\0\0\0" + bytes(100))


def make_hdr(d):
    return write(d, "sky.hdr", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 2 +X 2\n" + bytes(16))


def make_cr2(d):
    return write(d, "IMG_1.tif", b"II*\0\x10\0\0\0CR\x02\0\0\0\0\0" + bytes(100))


def make_cr3(d):
    return write(d, "IMG_2.jpg", ftyp(b"crx ", b"crx ", b"isom"))


def make_raf(d):
    return write(d, "DSCF1.jpg", b"FUJIFILMCCD-RAW 0201FF383501" + bytes(100))


def make_dng(d):
    from PIL import Image, TiffTags

    info = tiff_tags({50706: (b"\x01\x04\x00\x00", TiffTags.BYTE)})
    return save_pil(d, "photo.tif", Image.new("RGB", (4, 4), (1, 2, 3)), tiffinfo=info)


def make_nef_by_name(d):
    from PIL import Image

    return save_pil(d, "DSC_1.NEF", Image.new("RGB", (4, 4), (1, 2, 3)), format="TIFF")


def make_raw_preview_tiff(d):
    """A TIFF whose first image is a reduced-resolution preview, the photo in SubIFDs (NEF, ARW...)."""
    from PIL import Image, TiffTags

    info = tiff_tags({254: (1, TiffTags.LONG), 330: ((1000,), TiffTags.LONG), 271: ("NIKON CORPORATION", 2)})
    return save_pil(d, "DSC_2.tif", Image.new("RGB", (4, 4), (1, 2, 3)), tiffinfo=info)


def make_mp4(d):
    return write(d, "clip.png", ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"))


def make_mov(d):
    return write(d, "clip.jpg", ftyp(b"qt  ", b"qt  "))


def make_mkv(d):
    return write(d, "clip.jpg", b"\x1a\x45\xdf\xa3" + bytes(100))


def make_zip(d):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "x")
    return write(d, "photos.jpg", buffer.getvalue())


def make_xcf(d):
    return write(d, "art.png", b"gimp xcf v011\0" + bytes(100))


def make_wmf(d):
    return write(d, "clipart.png", b"\xd7\xcd\xc6\x9a" + bytes(100))


def make_ztxt_bomb(d):
    bomb = chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"a" * (8 << 20)))
    return write(d, "bomb.png", png_bytes(2, 2, 8, 0, b"\0\0\0" * 2, before_idat=bomb))


def make_itxt_bomb_after_idat(d):
    bomb = chunk(b"iTXt", b"Comment\0\1\0\0\0" + zlib.compress(b"a" * (8 << 20)))
    return write(d, "bomb2.png", png_bytes(2, 2, 8, 0, b"\0\0\0" * 2, after_idat=bomb))


def make_float_nan(d):
    from PIL import Image

    samples = np.full((3, 4), 0.5, np.float32)
    samples[1, 2] = np.nan
    return save_pil(d, "nan.tif", Image.fromarray(samples, "F"))


def make_float_rgb_inf(d):
    samples = np.full((3, 4, 3), 0.5, np.float32)
    samples[0, 0, 1] = np.inf
    samples[2, 3, 0] = -np.inf
    return write_cv2(d, "inf.tif", samples)


def make_png16_truncated(d):
    import cv2

    data = cv2.imencode(".png", np.full((16, 16, 3), 900, np.uint16))[1].tobytes()
    return write(d, "cut16.png", data[: len(data) // 2])


def make_float_tiff_truncated(d):
    import cv2

    data = cv2.imencode(".tiff", np.full((8, 8, 3), 0.5, np.float32))[1].tobytes()
    return write(d, "cutf.tif", data[:-40])


def make_png_bad_crc(d):
    bad = chunk(b"tEXt", b"Comment\0hi", crc=0)
    return write(d, "crc.png", png_bytes(2, 2, 8, 0, b"\0\0\0" * 2, before_idat=bad))


def make_jpeg_12bit(d):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 9, 9)).save(buffer, "JPEG")
    data = buffer.getvalue()
    sof = data.index(b"\xff\xc0")
    return write(d, "deep.jpg", data[: sof + 4] + bytes([12]) + data[sof + 5 :])


def make_1x1(d):
    return write(d, "dot.png", png_bytes(1, 1, 8, 0, b"\0\0"))


def make_huge_header(d):
    """A PNG header claiming 9000 x 6000 (54 MP) with a token IDAT: never decoded."""
    return write(d, "huge.png", png_bytes(9000, 6000, 8, 0, b"\0" * 64))


# (id, maker, words the message must contain, case-insensitively)
REFUSED = [
    ("missing", lambda d: d / "nope.png", ["no such file"]),
    ("dangling-symlink", make_dangling, ["symbolic link to a missing file", "gone.png"]),
    ("symlink-loop", make_loop, ["symbolic link loop"]),
    ("name-over-255-bytes", make_long_name, ["304 bytes", "255"]),
    ("below-a-file", make_below_file, ["not a folder"]),
    ("directory", make_directory, ["is a directory"]),
    ("fifo", make_fifo, ["FIFO", "not a regular file"]),
    ("unreadable", make_unreadable, ["cannot be read", "permission denied"]),
    ("empty", make_empty, ["empty"]),
    ("text-as-jpg", make_text_jpg, ["the file is text, not an image"]),
    ("html-as-jpg", make_html_jpg, ["HTML", "not an image file"]),
    ("html-with-inline-svg", make_html_with_inline_svg, ["HTML", "not an image file"]),
    ("random-bytes", make_random, ["not an image file"]),
    ("random-bytes-named-heic", make_random_heic_name, ["HEIC", "by its name", "PNG or JPEG"]),
    ("heic", make_heic, ["HEIC", "not supported here", "PNG or JPEG"]),
    ("heif-mif1", make_heif, ["HEIF", "not supported here"]),
    ("avif-broken", make_avif_broken, ["AVIF"]),
    ("jpeg-xl", make_jxl, ["JPEG XL", "not supported here"]),
    ("jpeg-xl-container", make_jxl_container, ["JPEG XL", "not supported here"]),
    ("svg", make_svg, ["SVG", "not supported here", "not an image file", "PNG"]),
    ("pdf", make_pdf, ["PDF", "not supported here", "not an image file"]),
    ("eps", make_eps, ["PostScript", "not supported here"]),
    ("psb", make_psb, ["PSB", "not supported here"]),
    ("psd-broken", make_psd_broken, ["Photoshop PSD"]),
    ("openexr", make_exr, ["OpenEXR", "not supported here"]),
    ("radiance-hdr", make_hdr, ["Radiance HDR", "not supported here"]),
    ("canon-cr2", make_cr2, ["camera RAW", "CR2"]),
    ("canon-cr3", make_cr3, ["camera RAW", "CR3"]),
    ("fuji-raf", make_raf, ["camera RAW", "RAF"]),
    ("dng-tag", make_dng, ["camera RAW", "DNG"]),
    ("nef-by-name", make_nef_by_name, ["camera RAW", "NEF"]),
    ("raw-preview-first", make_raw_preview_tiff, ["camera RAW"]),
    ("mp4-video", make_mp4, ["MP4 video", "frame"]),
    ("mov-video", make_mov, ["MOV", "video"]),
    ("matroska-video", make_mkv, ["Matroska", "video"]),
    ("zip", make_zip, ["ZIP", "archive"]),
    ("gimp-xcf", make_xcf, ["GIMP XCF"]),
    ("wmf", make_wmf, ["WMF"]),
    ("ztxt-bomb", make_ztxt_bomb, ["decompression bomb", "text chunk"]),
    ("itxt-bomb-after-idat", make_itxt_bomb_after_idat, ["decompression bomb", "text chunk"]),
    ("float-nan", make_float_nan, ["1 NaN or infinite"]),
    ("float-rgb-inf-opencv", make_float_rgb_inf, ["2 NaN or infinite"]),
    ("png16-truncated", make_png16_truncated, ["truncated or corrupt"]),
    ("float-tiff-truncated", make_float_tiff_truncated, ["truncated or corrupt"]),
    ("png-bad-crc", make_png_bad_crc, ["truncated or corrupt PNG", "checksum"]),
    ("jpeg-12-bit", make_jpeg_12bit, ["12-bit JPEG", "not supported here"]),
    ("1x1", make_1x1, ["too small", str(MIN_SIDE)]),
    ("54-megapixels", make_huge_header, ["9000x6000 is 54 megapixels", "limit is 50"]),
]


@pytest.mark.parametrize("folder", ["plain", "new\nline ü"], ids=["plain", "newline-folder"])
@pytest.mark.usefixtures("deny_unreadable")
@pytest.mark.parametrize("case, make, words", [pytest.param(*c, id=c[0]) for c in REFUSED])
def test_refused(tmp_path, capfd, folder, case, make, words):
    d = tmp_path / folder
    d.mkdir()
    path = make(d)
    message = refusal(path, capfd)  # checks the name is shown first, quoted where it has a newline
    if "\n" in folder:
        assert display_path(path) == repr(str(path))
    for word in words:
        assert word.lower() in message.lower(), (word, message)
    assert "Traceback" not in message


def test_refused_the_same_with_bytes_and_undecodable_names(tmp_path, capfd):
    name = os.fsencode(tmp_path) + b"/caf\xe9\xff.png"  # not UTF-8
    with open(name, "wb"):
        pass
    assert refusal(os.fsdecode(name), capfd) == "the file is empty"
    with pytest.raises(InputError) as info:
        read_image(name)  # bytes
    message = str(info.value)
    assert message.startswith("'") and "\\udcff" in message and "\n" not in message
    message.encode("utf-8")


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.EIO, ["cannot be read", "input/output"]),
        (errno.EACCES, ["cannot be read", "permission denied"]),
        (errno.ELOOP, ["symbolic link loop"]),
        (errno.ENAMETOOLONG, ["too long"]),
        (errno.ESTALE, ["cannot be read", os.strerror(errno.ESTALE).lower()]),
    ],
    ids=["EIO", "EACCES", "ELOOP", "ENAMETOOLONG", "ESTALE"],
)
def test_any_oserror_from_stat_is_one_line(tmp_path, capfd, monkeypatch, code, words):
    path = write(tmp_path, "a.png", png_bytes(2, 2, 8, 0, b"\0\0\0" * 2))
    real_stat = os.stat

    def failing_stat(target, *args, **kwargs):
        if os.fspath(target) == str(path):
            raise OSError(code, os.strerror(code), str(path))
        return real_stat(target, *args, **kwargs)

    monkeypatch.setattr(os, "stat", failing_stat)
    message = refusal(path, capfd)
    for word in words:
        assert word in message.lower(), message


def test_oserror_while_reading_is_one_line(tmp_path, capfd, monkeypatch):
    path = write(tmp_path, "a.png", png_bytes(2, 2, 8, 0, b"\0\0\0" * 2))
    real_fdopen = os.fdopen

    class Failing(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    def fdopen(fd, *args, **kwargs):
        if os.fstat(fd).st_ino == path.stat().st_ino:
            os.close(fd)
            return io.BufferedReader(Failing())
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", fdopen)
    message = refusal(path, capfd)
    assert "cannot be read" in message and "input/output" in message.lower()


# ------------------------------------------------------------- inputs accepted


def make_float_half(d):
    from PIL import Image

    return save_pil(d, "half.tif", Image.fromarray(np.full((4, 6), 0.5, np.float32), "F"))


def make_float_ramp(d):
    from PIL import Image

    return save_pil(d, "ramp.tif", Image.fromarray(np.linspace(0, 1, 24, dtype=np.float32).reshape(4, 6), "F"))


def make_float64(d):
    return write_cv2(d, "f64.tif", np.full((4, 6), 0.25, np.float64))


def make_float_rgb(d):
    return write_cv2(d, "frgb.tif", np.broadcast_to(np.float32([0.2, 0.4, 0.6]), (4, 6, 3)))


def make_float_rgba(d):
    return write_cv2(d, "frgba.tif", np.broadcast_to(np.float32([1, 0, 0, 0.5]), (4, 6, 4)))


def make_float_0_4(d):
    samples = np.zeros((4, 6), np.float32)
    samples[0, 1], samples[0, 2] = 2.0, 4.0
    return write_cv2(d, "f04.tif", samples)


def make_float_signed(d):
    samples = np.zeros((4, 6), np.float32)
    samples[0, 1], samples[0, 2] = -1.0, 1.0
    return write_cv2(d, "fsigned.tif", samples)


def make_float_extreme(d):  # the span does not fit in float32
    samples = np.zeros((4, 6), np.float32)
    samples[0, 1], samples[0, 2] = -3e38, 3e38
    return write_cv2(d, "fextreme.tif", samples)


def make_float_constant(d):
    return write_cv2(d, "fconst.tif", np.full((4, 6), 3.0, np.float32))


def make_float_multipage(d):
    import cv2

    path = d / "pages.tif"
    assert cv2.imwritemulti(str(path), [np.full((4, 6, 3), 0.5, np.float32)] * 2)
    return path


def make_gray16(d):
    samples = np.zeros((4, 6), np.uint16)
    samples[0, 1], samples[0, 2] = 32768, 65535
    return write_cv2(d, "g16.png", samples)


def make_rgb16_png(d):
    samples = np.zeros((4, 6, 3), np.uint16)
    samples[0, 0] = (65535, 200, 32768)  # 200 -> 1 when rounded; Pillow's high byte alone gives 0
    return write_cv2(d, "rgb16.png", samples)


def make_rgba16_png(d):
    samples = np.zeros((4, 6, 4), np.uint16)
    samples[..., 3] = 65535
    samples[0, 0] = (0, 0, 0, 32768)  # half transparent black over white
    samples[0, 1] = (200, 65535, 0, 65535)
    return write_cv2(d, "rgba16.png", samples)


def make_la16_png(d):
    row = b"\0" + struct.pack(">HH", 200, 65535) + struct.pack(">HH", 65535, 0)
    return write(d, "la16.png", png_bytes(2, 2, 16, 4, row * 2))


def make_pgm16(d):  # Pillow opens it as 32-bit mode I
    return write(d, "deep.pgm", b"P5\n3 2\n65535\n" + struct.pack(">6H", 0, 32768, 65535, 200, 0, 0))


def make_pgm10(d):  # maxval 1023: Pillow scales it to 0..65535
    return write(d, "ten.pgm", b"P5\n3 2\n1023\n" + struct.pack(">6H", 0, 512, 1023, 0, 0, 0))


def make_gray16_trns(d):
    row = b"\0" + struct.pack(">HH", 1000, 5000)
    return write(d, "trns16.png", png_bytes(2, 2, 16, 0, row * 2, before_idat=chunk(b"tRNS", struct.pack(">H", 1000))))


def make_rgb16_trns(d):
    row = b"\0" + struct.pack(">HHH", 1000, 2000, 3000) + struct.pack(">HHH", 65535, 0, 200)
    tRNS = chunk(b"tRNS", struct.pack(">HHH", 1000, 2000, 3000))
    return write(d, "trnsrgb16.png", png_bytes(2, 2, 16, 2, row * 2, before_idat=tRNS))


def make_rgb16_tiff(d):
    samples = np.zeros((4, 6, 3), np.uint16)
    samples[0, 0] = (200, 65535, 0)
    return write_cv2(d, "rgb16.tif", samples)


def make_rgba16_tiff(d):  # OpenCV's TIFF reader warns on stderr about its ExtraSamples
    samples = np.full((4, 6, 4), 65535, np.uint16)
    samples[0, 0] = (200, 0, 0, 65535)
    return write_cv2(d, "rgba16.tif", samples)


def make_gray16_dark(d):
    samples = np.zeros((4, 6), np.uint16)
    samples[0, 1] = 4000
    return write_cv2(d, "dark16.png", samples)


def make_png16_bad_iccp(d):  # libpng prints "iCCP: too short" on stderr when OpenCV decodes it
    import cv2

    data = cv2.imencode(".png", np.full((4, 6, 3), 65535, np.uint16))[1].tobytes()
    return write(d, "iccp16.png", insert_before_idat(data, chunk(b"iCCP", b"bad\0\0" + zlib.compress(b"xy" * 9))))


def make_png_mentioning_pdf_and_svg(d):  # metadata text must not make it a PDF or an SVG
    text = chunk(b"tEXt", b"Comment\0%PDF-1.4 <svg xmlns='x'>")
    return write(d, "meta.png", png_bytes(2, 2, 8, 0, b"\0\x10\x20" * 2, before_idat=text))


def make_png16_invalid_exif(d):  # libpng rejects an eXIf chunk starting "Exif\0\0" (on stderr)
    import cv2

    data = cv2.imencode(".png", np.full((4, 6, 3), 65535, np.uint16))[1].tobytes()
    return write(d, "exif16.png", insert_before_idat(data, chunk(b"eXIf", exif_bytes(1))))


def make_ico_wrong_size(d):  # Pillow warns "Image was not the expected size"
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(png, "PNG")
    entry = struct.pack("<BBBBHHII", 32, 32, 0, 0, 1, 32, len(png.getvalue()), 22)  # says 32 x 32
    return write(d, "icon.ico", struct.pack("<HHH", 0, 1, 1) + entry + png.getvalue())


def make_int32_wide(d):
    samples = np.zeros((4, 6), np.int32)
    samples[0, 1], samples[0, 2] = 50000, 100000
    return write_cv2(d, "i32.tif", samples)


def make_int16_signed(d):
    samples = np.zeros((4, 6), np.int16)
    samples[0, 1], samples[0, 2] = -100, 100
    return write_cv2(d, "i16s.tif", samples)


def make_int32_small(d):
    samples = np.zeros((4, 6), np.int32)
    samples[0, 1] = 200
    return write_cv2(d, "i32small.tif", samples)


def make_corrupt_exif(d):
    from PIL import Image

    broken = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 5) + struct.pack("<HHII", 0x0112, 3, 1, 6)
    return save_pil(d, "exif.jpg", Image.new("RGB", (6, 4), (10, 120, 200)), exif=b"Exif\0\0" + broken, quality=95)


def gray(*values):
    return [(v, v, v) for v in values]


# (id, maker, {(row, col): expected RGB}, tolerance, words in the notices (None: no notices))
ACCEPTED = [
    ("float32-half", make_float_half, {(0, 0): (128, 128, 128), (3, 5): (128, 128, 128)}, 1, ["float", "0..1"]),
    (
        "float32-ramp",
        make_float_ramp,
        {(0, 0): (0, 0, 0), (3, 5): (255, 255, 255), (1, 5): gray(122)[0]},
        1,
        ["float", "0..1"],
    ),
    ("float64-opencv", make_float64, {(0, 0): gray(64)[0]}, 0, ["64-bit float"]),
    ("float32-rgb-opencv", make_float_rgb, {(0, 0): (51, 102, 153), (3, 5): (51, 102, 153)}, 0, ["float", "0..1"]),
    ("float32-rgba-over-white", make_float_rgba, {(0, 0): (255, 128, 128)}, 0, ["float"]),
    (
        "float-range-0-4",
        make_float_0_4,
        {(0, 0): gray(0)[0], (0, 1): gray(128)[0], (0, 2): gray(255)[0]},
        0,
        ["0..4", "stretched"],
    ),
    (
        "float-signed",
        make_float_signed,
        {(0, 0): gray(128)[0], (0, 1): gray(0)[0], (0, 2): gray(255)[0]},
        0,
        ["-1..1", "stretched"],
    ),
    (
        "float-extreme-range",
        make_float_extreme,
        {(0, 0): gray(128)[0], (0, 1): gray(0)[0], (0, 2): gray(255)[0]},
        0,
        ["-3e+38..3e+38", "stretched"],
    ),
    ("float-constant-3", make_float_constant, {(0, 0): gray(255)[0]}, 0, ["constant", "clipped"]),
    ("float-two-pages", make_float_multipage, {(0, 0): gray(128)[0]}, 0, ["more than one page"]),
    ("gray16-png", make_gray16, {(0, 0): gray(0)[0], (0, 1): gray(128)[0], (0, 2): gray(255)[0]}, 0, ["16-bit"]),
    ("rgb16-png", make_rgb16_png, {(0, 0): (255, 1, 128), (0, 1): (0, 0, 0)}, 0, ["16-bit"]),
    ("rgba16-png", make_rgba16_png, {(0, 0): gray(127)[0], (0, 1): (1, 255, 0)}, 0, ["16-bit"]),
    ("la16-png", make_la16_png, {(0, 0): gray(1)[0], (0, 1): gray(255)[0]}, 0, ["16-bit"]),
    ("pgm-16-bit", make_pgm16, {(0, 1): gray(128)[0], (0, 2): gray(255)[0], (1, 0): gray(1)[0]}, 0, ["16-bit"]),
    ("pgm-maxval-1023", make_pgm10, {(0, 1): gray(128)[0], (0, 2): gray(255)[0]}, 0, []),
    ("gray16-transparent-value", make_gray16_trns, {(0, 0): gray(255)[0], (0, 1): gray(19)[0]}, 0, ["16-bit"]),
    ("rgb16-transparent-colour", make_rgb16_trns, {(0, 0): gray(255)[0], (1, 1): (255, 0, 1)}, 0, ["16-bit"]),
    ("rgb16-tiff", make_rgb16_tiff, {(0, 0): (1, 255, 0)}, 0, ["16-bit"]),
    ("rgba16-tiff", make_rgba16_tiff, {(0, 0): (1, 0, 0), (0, 1): (255, 255, 255)}, 0, ["16-bit"]),
    ("gray16-dark", make_gray16_dark, {(0, 1): gray(16)[0]}, 0, ["16-bit", "4000 of 65535", "dark"]),
    ("png16-broken-iccp", make_png16_bad_iccp, {(0, 0): gray(255)[0]}, 0, ["16-bit"]),
    ("png-text-mentions-pdf", make_png_mentioning_pdf_and_svg, {(1, 1): gray(32)[0]}, 0, None),
    ("png16-invalid-exif-chunk", make_png16_invalid_exif, {(0, 0): gray(255)[0]}, 0, ["16-bit", "EXIF", "corrupt"]),
    ("ico-wrong-size", make_ico_wrong_size, {(15, 15): (10, 200, 30)}, 0, ["decoder warning", "expected size"]),
    (
        "int32-beyond-16-bit",
        make_int32_wide,
        {(0, 0): gray(0)[0], (0, 1): gray(128)[0], (0, 2): gray(255)[0]},
        0,
        ["32-bit signed integer", "0..100000", "stretched"],
    ),
    (
        "int16-signed",
        make_int16_signed,
        {(0, 0): gray(128)[0], (0, 1): gray(0)[0], (0, 2): gray(255)[0]},
        0,
        ["16-bit signed integer", "-100..100", "stretched"],
    ),
    ("int32-within-8-bit", make_int32_small, {(0, 1): gray(200)[0]}, 0, ["within 0..255", "8-bit"]),
    ("corrupt-exif", make_corrupt_exif, {(0, 0): (10, 120, 200), (3, 3): (10, 120, 200)}, 3, ["EXIF", "corrupt"]),
]


@pytest.mark.parametrize("case, make, expected, tolerance, words", [pytest.param(*c, id=c[0]) for c in ACCEPTED])
def test_accepted(tmp_path, capfd, case, make, expected, tolerance, words):
    d = tmp_path / "new\nline"
    d.mkdir()
    path = make(d)
    loaded = load_quietly(path, capfd)
    pixels = loaded.pixels
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    for (row, col), rgb in expected.items():
        got = pixels[row, col].astype(int)
        assert np.abs(got - rgb).max() <= tolerance, (case, (row, col), got.tolist(), rgb)
    for notice in loaded.notices:
        assert "\n" not in notice and notice.startswith(display_path(path) + ": "), notice
        assert "error" not in notice.lower()  # the CLI tests read "error" as a failure
    if case != "ico-wrong-size":
        assert not any("decoder warning" in notice for notice in loaded.notices), loaded.notices
    if words is None:
        assert loaded.notices == ()
    else:
        text = " ".join(loaded.notices).lower()
        for word in words:
            assert word.lower() in text, (word, loaded.notices)


def test_float_ramp_is_v_times_255(tmp_path, capfd):
    path = make_float_ramp(tmp_path)
    pixels = load_quietly(path, capfd).pixels[..., 0].astype(float)
    assert np.abs(pixels - np.linspace(0, 1, 24).reshape(4, 6) * 255).max() <= 0.5 + 1e-6


def test_gray16_is_v_times_255_over_65535(tmp_path, capfd):
    ramp = (np.arange(24, dtype=np.uint32).reshape(4, 6) * 2849).astype(np.uint16)
    pixels = load_quietly(write_cv2(tmp_path, "ramp16.png", ramp), capfd).pixels[..., 0].astype(float)
    assert np.abs(pixels - ramp * 255.0 / 65535).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_colour_png_orientation_matches_8bit(tmp_path, capfd, orientation):
    """16-bit colour goes through OpenCV: its EXIF orientation must equal Pillow's for 8-bit."""
    import cv2
    from PIL import Image

    picture = rgb8(6, 4)
    exif = chunk(b"eXIf", exif_bytes(orientation).removeprefix(b"Exif\0\0"))  # PNG holds the bare TIFF block
    eight = save_pil(tmp_path, "eight.png", Image.fromarray(picture), exif=exif_bytes(orientation))
    data = cv2.imencode(".png", np.ascontiguousarray(picture[..., ::-1].astype(np.uint16) * 257))[1].tobytes()
    sixteen = write(tmp_path, "sixteen.png", insert_before_idat(data, exif))
    reference = load_quietly(eight, capfd).pixels
    assert reference.shape == ((4, 6, 3) if orientation <= 4 else (6, 4, 3))
    np.testing.assert_array_equal(load_quietly(sixteen, capfd).pixels, reference)


def test_float_tiff_orientation_applied(tmp_path, capfd):
    from PIL import Image, TiffTags

    samples = np.zeros((4, 6), np.float32)
    samples[0, 0] = 1.0  # top-left -> top-right after a clockwise quarter turn (orientation 6)
    path = save_pil(tmp_path, "o6.tif", Image.fromarray(samples, "F"), tiffinfo=tiff_tags({274: (6, TiffTags.SHORT)}))
    pixels = load_quietly(path, capfd).pixels
    assert pixels.shape == (6, 4, 3)
    assert (pixels[0, 3] == 255).all() and pixels.sum() == 3 * 255


def test_avif_is_read_where_pillow_can(tmp_path, capfd):
    from PIL import Image, features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF support")
    path = save_pil(tmp_path, "red.avif", Image.new("RGB", (8, 8), (200, 30, 30)), quality=95)
    pixels = load_quietly(path, capfd).pixels
    assert np.abs(pixels.reshape(-1, 3).mean(0) - (200, 30, 30)).max() < 6


def test_pixel_limit_applies_to_the_opencv_path(tmp_path, capfd):
    path = make_float_rgb(tmp_path)  # 6 x 4 = 24 pixels, read by OpenCV
    assert "limit" in refusal(path, capfd, max_pixels=20)
