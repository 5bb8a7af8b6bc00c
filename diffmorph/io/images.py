"""Reading input images as 8-bit RGB, with one-line errors and notices for anything odd.

Convention:
  - Output: uint8 ``(H, W, 3)`` RGB, 0..255, rows top to bottom, EXIF orientation applied.
  - Decoder: Pillow; OpenCV (``cv2.imdecode(..., IMREAD_UNCHANGED)``) only for what
    Pillow cannot read exactly: 16-bit colour PNG/TIFF (Pillow keeps the high byte
    only) and TIFFs Pillow does not identify (float colour, float64...).
  - Sample scaling, to 0..255 rounded to the nearest integer:

    * 8-bit: as stored;
    * 16-bit unsigned: ``v * 255 / 65535`` (the format's full range, whatever range the
      data uses), with a notice;
    * float: NaN or infinite samples are refused; if every sample is in [0, 1],
      ``v * 255``; otherwise ``[lo, max]`` is stretched to 0..255 with
      ``lo = min(0, data minimum)`` (non-negative data is scaled by its own maximum,
      data with negatives by its full range; a constant image is clipped to [0, 1]);
      always with a notice naming the range;
    * other integers (signed 16-bit, 32-bit): data within 0..255 is taken as 8-bit,
      within 0..65535 as 16-bit, anything else as float data outside [0, 1];
      with a notice;
    * alpha: scaled like the colour for integers, clipped to [0, 1] for floats,
      composited over white.
  - Library warnings (Python warnings and what C decoders print on stderr) never
    reach the user as such: meaningful ones become notices, noise is dropped.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError, display_path

MAX_PIXELS = 50_000_000  # larger inputs are refused (about 8660 x 5773)
MIN_SIDE = 2  # smallest accepted width and height, in pixels
HEADER_BYTES = 4096  # read first to recognise the format by its magic bytes
ORIENTATION_TAG = 0x0112  # EXIF / TIFF Orientation
MAX_NOTICES_PER_SOURCE = 3  # decoder warnings shown per file (the rest are counted)


class LoadedImage(NamedTuple):
    """``pixels``: uint8 ``(H, W, 3)`` RGB. ``notices``: one-line remarks for the user."""

    pixels: np.ndarray
    notices: tuple[str, ...]


def load_image(path, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Read an image file as 8-bit RGB.

    Handles what Pillow reads: 8/16-bit grayscale and colour, float and 32-bit integer
    images (scaled as the module docstring says, with a notice), palette, CMYK
    (converted to RGB), transparency (composited over white), EXIF orientation
    (applied), and multi-frame files (first frame, with a notice). 16-bit colour PNG
    and TIFF and TIFFs Pillow cannot read (float colour, float64) are decoded with
    OpenCV. Formats that are not images with pixels, or that neither library reads,
    are named in the error (HEIC, JPEG XL, SVG, PDF, camera RAW, OpenEXR, video,
    text or HTML...).

    Args:
      path: the file (str, bytes or path-like).
      max_pixels: images with more pixels are refused before decoding.

    Returns:
      :class:`LoadedImage`: uint8 ``(H, W, 3)`` RGB pixels and one-line notices (each
      starting with the path) for the user.

    Raises:
      InputError (one line, the path shown with :func:`diffmorph.errors.display_path`):
        missing (or a dangling symbolic link), a symbolic link loop, a name too long,
        a directory or other non-regular file, unreadable (permission, I/O error),
        empty, an unsupported format (named), text or HTML, truncated or corrupt,
        a PNG metadata decompression bomb, NaN or infinite float samples, too small
        (< 2 x 2) or too large (> ``max_pixels``).
    """
    name = os.fsdecode(os.fspath(path))
    shown, suffix = display_path(name), Path(name).suffix.lower()
    notices: list[str] = []
    with _open_regular(path, shown) as handle:
        try:
            header = handle.read(HEADER_BYTES)
        except OSError as exc:
            raise InputError(f"{shown}: cannot be read ({_reason(exc)})") from None
        if not header:
            raise InputError(f"{shown}: the file is empty")
        kind = _sniff(header, suffix)
        if kind is not None and kind.early:
            raise InputError(kind.message(shown))
        with _quiet() as caught:
            pixels = _decode(handle, header, kind, shown, suffix, max_pixels, notices)
        notices.extend(_warning_notices(caught, shown))
    if min(pixels.shape[:2]) < MIN_SIDE:
        raise InputError(
            f"{shown}: {pixels.shape[1]}x{pixels.shape[0]} pixels is too small; "
            f"width and height must be at least {MIN_SIDE}"
        )
    return LoadedImage(pixels, tuple(notices))


def pixels_digest(pixels: np.ndarray) -> str:
    """SHA-256 hex digest of an image's shape and pixels (identifies an input)."""
    digest = hashlib.sha256(str(pixels.shape).encode())
    digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()


# ----------------------------------------------------------------- opening the file


def _reason(exc: OSError) -> str:
    """A short lower-case reason for an OSError (``permission denied``)."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


@contextlib.contextmanager
def _open_regular(path, shown: str):
    """Open ``path`` for reading if it is a regular file; every OSError becomes an InputError."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise InputError(_stat_message(path, shown, exc)) from None
    except ValueError:  # an embedded NUL character
        raise InputError(f"{shown}: the path contains a NUL character") from None
    _check_regular(info.st_mode, shown)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)  # non-blocking: a FIFO swapped in after the stat cannot hang us
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise InputError(f"{shown}: cannot be read (permission denied)") from None
        raise InputError(_stat_message(path, shown, exc)) from None
    try:
        _check_regular(os.fstat(fd).st_mode, shown)  # the file opened is the one checked
    except OSError as exc:
        os.close(fd)
        raise InputError(f"{shown}: cannot be read ({_reason(exc)})") from None
    except InputError:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        yield handle


def _check_regular(mode: int, shown: str) -> None:
    if stat.S_ISDIR(mode):
        raise InputError(f"{shown}: is a directory, not an image file")
    if not stat.S_ISREG(mode):  # a FIFO or device would block or never end
        what = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a special file"
        )
        raise InputError(f"{shown}: is {what}, not a regular file")


def _stat_message(path, shown: str, exc: OSError) -> str:
    """The one-line message for an OSError from stat/open on ``path``."""
    code = exc.errno
    if code == errno.ENOENT:
        try:
            is_link = stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError:
            is_link = False
        if is_link:
            try:
                target = display_path(os.readlink(path))
            except OSError:
                target = "?"
            return f"{shown}: is a symbolic link to a missing file ({target})"
        return f"{shown}: no such file"
    if code == errno.ELOOP:
        return f"{shown}: symbolic link loop (a link that points back to itself, directly or through others)"
    if code == errno.ENAMETOOLONG:
        parts = [os.fsencode(part) for part in Path(os.fsdecode(os.fspath(path))).parts]
        longest = max((len(part) for part in parts), default=0)
        if longest > 255:
            return (
                f"{shown}: a name in the path is {longest} bytes long; "
                f"file systems allow 255 (rename the file or folder)"
            )
        return f"{shown}: the path is too long for the file system ({len(os.fsencode(os.fspath(path)))} bytes)"
    if code == errno.ENOTDIR:
        return f"{shown}: a part of the path is a file, not a folder"
    if code in (errno.EACCES, errno.EPERM):
        return f"{shown}: cannot be read (permission denied on the file or a folder of its path)"
    if code == errno.EIO:
        return f"{shown}: cannot be read (input/output error: check the disk or network share)"
    return f"{shown}: cannot be read ({_reason(exc)})"


# ------------------------------------------------------------ recognising formats


class _Kind(NamedTuple):
    """A format this module names in its refusal."""

    label: str  # "HEIC"
    detail: str  # " (a vector drawing, not an image file)" or ""
    advice: str  # "convert it to PNG or JPEG"
    early: bool = False  # refuse before Pillow tries (it would misread it, or it is not an image)
    feature: str = ""  # the optional Pillow feature that reads it (``avif``), if any
    pillow: str = ""  # Pillow's name for the format, where Pillow may read it

    def message(self, shown: str, by_name: bool = False) -> str:
        if by_name and self.feature and _pillow_has(self.feature):
            return f"{shown}: its name says {self.label}, but its content is not recognised (truncated or corrupt?)"
        if by_name:
            return (
                f"{shown}: content not recognised; by its name it is {self.label}, which is not supported "
                f"here{'' if self.feature else self.detail}; {self.advice}"
            )
        return f"{shown}: {self.label} is not supported here{self.detail}; {self.advice}"


_TO_PNG = "convert it to PNG or JPEG"
_RAW_ADVICE = "develop it to JPEG or 16-bit TIFF first (camera software, darktable, RawTherapee)"
_VIDEO = " (a video, not an image file)"
_VIDEO_ADVICE = "extract one frame as PNG first (e.g. ffmpeg -i VIDEO -frames:v 1 frame.png)"
_ARCHIVE = " (an archive, not an image file)"
_ARCHIVE_ADVICE = "extract the picture and pass it as PNG or JPEG"

HEIC = _Kind("HEIC/HEIF", "", _TO_PNG + " (e.g. heif-convert, or export from Photos)")
AVIF = _Kind("AVIF", " by this Pillow build", _TO_PNG, feature="avif", pillow="AVIF")
JXL = _Kind("JPEG XL", "", _TO_PNG + " (e.g. djxl)")
JPEG2000 = _Kind("JPEG 2000", " by this Pillow build", _TO_PNG, feature="jpg_2000", pillow="JPEG2000")
WEBP = _Kind("WebP", " by this Pillow build", _TO_PNG, feature="webp", pillow="WEBP")
SVG = _Kind(
    "SVG", " (a vector drawing, not an image file)", "export it as PNG (e.g. Inkscape or rsvg-convert)", early=True
)
PDF = _Kind("PDF", " (a document, not an image file)", "export the page as PNG (e.g. pdftoppm -png)", early=True)
EPS = _Kind("PostScript/EPS", " (a vector drawing, not an image file)", "export it as PNG", early=True)
WMF = _Kind("WMF/EMF", " (a vector drawing, not an image file)", "export it as PNG", early=True)
PSD = _Kind("Photoshop PSD", " in this variant (Pillow reads 8-bit PSDs)", "save a flattened copy as PNG or TIFF")
PSB = _Kind("Photoshop large document (PSB)", "", "save a flattened copy as PNG or TIFF")
XCF = _Kind("GIMP XCF", " (a layered project, not an image file)", "export it as PNG (File > Export As)", early=True)
EXR = _Kind("OpenEXR", " (HDR)", "tone-map it and save as PNG or 16-bit TIFF")
HDR = _Kind("Radiance HDR", "", "tone-map it and save as PNG or 16-bit TIFF")
BPG = _Kind("BPG", "", _TO_PNG)
FLIF = _Kind("FLIF", "", _TO_PNG)
DJVU = _Kind("DjVu", " (a document, not an image file)", "export the page as PNG", early=True)
KTX = _Kind("KTX texture", "", _TO_PNG)


def _raw(name: str) -> _Kind:
    return _Kind(f"Camera RAW ({name})", "", _RAW_ADVICE, early=True)


def _video(name: str) -> _Kind:
    return _Kind(name, _VIDEO, _VIDEO_ADVICE, early=True)


def _archive(name: str) -> _Kind:
    return _Kind(name, _ARCHIVE, _ARCHIVE_ADVICE, early=True)


# Camera RAW files built on TIFF (Pillow would read their small preview, not the photo).
RAW_SUFFIXES = {
    ".cr2": "Canon CR2",
    ".nef": "Nikon NEF",
    ".nrw": "Nikon NRW",
    ".arw": "Sony ARW",
    ".sr2": "Sony SR2",
    ".srf": "Sony SRF",
    ".dng": "DNG",
    ".pef": "Pentax PEF",
    ".srw": "Samsung SRW",
    ".3fr": "Hasselblad 3FR",
    ".erf": "Epson ERF",
    ".kdc": "Kodak KDC",
    ".dcr": "Kodak DCR",
    ".mos": "Leaf MOS",
    ".iiq": "Phase One IIQ",
    ".rwl": "Leica RWL",
    ".mef": "Mamiya MEF",
    ".orf": "Olympus ORF",
    ".rw2": "Panasonic RW2",
    ".raf": "Fujifilm RAF",
    ".cr3": "Canon CR3",
    ".crw": "Canon CRW",
    ".x3f": "Sigma X3F",
    ".mrw": "Minolta MRW",
}
SUFFIX_KINDS = {
    **{suffix: _raw(name) for suffix, name in RAW_SUFFIXES.items()},
    ".heic": HEIC,
    ".heif": HEIC,
    ".hif": HEIC,
    ".avif": AVIF,
    ".jxl": JXL,
    ".svg": SVG,
    ".svgz": SVG,
    ".pdf": PDF,
    ".eps": EPS,
    ".ps": EPS,
    ".ai": PDF,
    ".wmf": WMF,
    ".emf": WMF,
    ".psd": PSD,
    ".psb": PSB,
    ".xcf": XCF,
    ".exr": EXR,
    ".hdr": HDR,
    ".bpg": BPG,
    ".flif": FLIF,
    ".djvu": DJVU,
    ".kra": _archive("Krita KRA"),
    ".ora": _archive("OpenRaster ORA"),
    ".mp4": _video("MP4 video"),
    ".mov": _video("QuickTime MOV video"),
    ".mkv": _video("Matroska video"),
    ".webm": _video("WebM video"),
    ".avi": _video("AVI video"),
}
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_VIDEO_BRANDS = {
    b"isom",
    b"iso2",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"dash",
    b"M4V ",
    b"M4A ",
    b"3gp4",
    b"3gp5",
    b"3gp6",
    b"3g2a",
    b"MSNV",
    b"f4v ",
}
_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
# Formats Pillow reads: when it fails on one of them, the file is damaged or an odd variant.
_PILLOW_FORMATS = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\0", "TIFF"),
    (b"MM\0*", "TIFF"),
    (b"II+\0", "TIFF"),
    (b"MM\0+", "TIFF"),
)


def _iso_brands(header: bytes) -> set[bytes]:
    """Major and compatible brands of an ISO base media (``ftyp``) file."""
    size = int.from_bytes(header[:4], "big")
    end = min(max(size, 16), len(header))
    return {header[8:12]} | {header[i : i + 4] for i in range(16, end - 3, 4)}


def _sniff(header: bytes, suffix: str) -> _Kind | None:
    """The named kind of a file from its first bytes, or None (then Pillow decides)."""
    if header.startswith(tuple(magic for magic, name in _PILLOW_FORMATS if name != "BMP")):
        # a plain image (metadata may mention "%PDF-" or "<svg"): only Canon's CR2 dresses as TIFF
        return _raw("Canon CR2") if header.startswith(b"II*\0") and header[8:10] == b"CR" else None
    if header[4:8] == b"ftyp":
        brands = _iso_brands(header)
        if brands & {b"avif", b"avis"}:
            return AVIF
        if b"crx " in brands:
            return _raw("Canon CR3")
        if brands & _HEIC_BRANDS or brands & {b"mif1", b"msf1"}:
            return HEIC
        if b"qt  " in brands:
            return _video("QuickTime MOV video")
        if brands & _VIDEO_BRANDS:
            return _video("MP4 video")
        return None
    if header.startswith((b"\xff\x0a", b"\0\0\0\x0cJXL \r\n\x87\n")):
        return JXL
    if header.startswith((b"\0\0\0\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return JPEG2000
    if header.startswith(b"RIFF") and header[8:12] == b"WEBP":
        return WEBP
    if header.startswith(b"RIFF") and header[8:12] == b"AVI ":
        return _video("AVI video")
    if header.startswith(b"\x1a\x45\xdf\xa3"):
        return _video("Matroska/WebM video")
    if header.startswith((b"\0\0\x01\xba", b"\0\0\x01\xb3")):
        return _video("MPEG video")
    if header.startswith(b"OggS"):
        return _video("Ogg media")
    if header.startswith(b"v/1\x01"):
        return EXR
    if header.startswith((b"#?RADIANCE", b"#?RGBE")):
        return HDR
    if header.startswith(b"8BPS"):
        return PSB if header[4:6] == b"\0\x02" else PSD
    if header.startswith(b"gimp xcf"):
        return XCF
    if header.startswith(b"FUJIFILMCCD-RAW"):
        return _raw("Fujifilm RAF")
    if header.startswith((b"IIRO", b"IIRS", b"MMOR")):
        return _raw("Olympus ORF")
    if header.startswith(b"IIU\0"):
        return _raw("Panasonic RW2")
    if header.startswith(b"FOVb"):
        return _raw("Sigma X3F")
    if header.startswith(b"\0MRM"):
        return _raw("Minolta MRW")
    if header.startswith(b"II\x1a\0\0\0HEAPCCDR"):
        return _raw("Canon CRW")
    if b"%PDF-" in header[:1024]:
        return PDF
    if header.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        return EPS
    if header.startswith((b"\xd7\xcd\xc6\x9a", b"\x01\0\x09\0\0\x03", b"\x02\0\x09\0\0\x03")) or (
        header.startswith(b"\x01\0\0\0") and header[40:44] == b" EMF"
    ):
        return WMF
    if header.startswith(b"BPG\xfb"):
        return BPG
    if header.startswith(b"FLIF"):
        return FLIF
    if header.startswith(b"AT&TFORM"):
        return DJVU
    if header.startswith(b"\xabKTX"):
        return KTX
    if header.startswith(b"PK\x03\x04"):
        if b"application/x-krita" in header:
            return _archive("Krita KRA")
        if b"image/openraster" in header:
            return _archive("OpenRaster ORA")
        return _archive("ZIP")
    if header.startswith(b"\x1f\x8b"):
        return SVG if suffix == ".svgz" else _archive("gzip")
    for magic, name in (
        (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
        (b"Rar!\x1a\x07", "RAR"),
        (b"BZh", "bzip2"),
        (b"\xfd7zXZ\0", "xz"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
    ):
        if header.startswith(magic):
            return _archive(name)
    text = _as_text(header)
    if text is not None and re.search(r"<svg[\s>]", text, re.IGNORECASE) and not _is_html(text):
        return SVG
    return None


def _is_html(text: str) -> bool:
    """Whether text looks like a web page (which may hold inline SVG, but is no SVG file)."""
    start = text.lstrip("\ufeff \t\r\n").lower()
    return start.startswith(("<!doctype html", "<html")) or bool(re.search(r"<(html|head|body)[\s>]", start[:2048]))


def _as_text(header: bytes) -> str | None:
    """``header`` as text if it looks like text (UTF-8/UTF-16, no NULs, few control characters)."""
    if header.startswith((b"\xff\xfe", b"\xfe\xff")):
        with contextlib.suppress(UnicodeDecodeError):
            return header[: len(header) // 2 * 2].decode("utf-16")
    if b"\0" in header:
        return None
    for cut in range(4):  # the header may end inside a multi-byte character
        try:
            text = header[: len(header) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    else:
        return None
    controls = sum(1 for char in text if ord(char) < 32 and char not in "\t\n\r\f\b\x1b")
    return text if controls <= len(text) // 50 else None


def _not_identified(handle, header: bytes, kind: _Kind | None, shown: str, suffix: str) -> str:
    """The message for a file Pillow does not identify as an image."""
    if kind is not None:
        if kind.feature and _pillow_has(kind.feature):  # Pillow reads the format, but not this file
            reason = _pillow_reason(handle, kind.pillow)
            return f"{shown}: truncated or corrupt {kind.label} file{f' ({reason})' if reason else ''}"
        return kind.message(shown)
    for magic, name in _PILLOW_FORMATS:
        if header.startswith(magic):
            reason = _pillow_reason(handle, name) or ""
            bits = re.search(r"cannot handle (\d+)-bit", reason)
            if bits:
                return (
                    f"{shown}: {bits.group(1)}-bit {name} is not supported here (Pillow reads 8-bit {name} only); "
                    f"convert it to PNG or 16-bit TIFF"
                )
            return f"{shown}: truncated or corrupt {name} file{f' ({reason})' if reason else ''}"
    text = _as_text(header)
    if text is not None:
        if _is_html(text):
            return (
                f"{shown}: the file is an HTML web page (text), not an image file; "
                f"save the picture itself, not the page"
            )
        return f"{shown}: the file is text, not an image file"
    if suffix in SUFFIX_KINDS:
        return SUFFIX_KINDS[suffix].message(shown, by_name=True)
    return f"{shown}: not an image file in a format Pillow can read (PNG, JPEG, TIFF, WebP, BMP, GIF...)"


def _pillow_reason(handle, name: str) -> str | None:
    """Why Pillow's ``name`` plugin rejects the file (``cannot handle 12-bit layers``), if it says."""
    from PIL import Image

    try:
        Image.init()
        factory = Image.OPEN[name][0]
        handle.seek(0)
        factory(handle, "").close()
    except Exception as exc:  # noqa: BLE001 - only a hint for the message
        return _first_line(exc)
    return None


def _pillow_has(feature: str) -> bool:
    from PIL import features

    try:
        return bool(features.check(feature))
    except Exception:  # noqa: BLE001 - an unknown feature: not available
        return False


def _first_line(error: BaseException) -> str:
    """The first non-empty line of an error's message, printable and at most 200 characters."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return _printable(lines[0][:200]) if lines else type(error).__name__


def _printable(text: str) -> str:
    """``text`` with whitespace runs as one space and other unprintable characters as ``?``."""
    return "".join(char if char.isprintable() else "?" for char in " ".join(text.split()))


# ----------------------------------------------------------------------- decoding


def _decode(handle, header: bytes, kind, shown: str, suffix: str, max_pixels: int, notices: list) -> np.ndarray:
    """Decode an opened file to uint8 ``(H, W, 3)`` RGB; InputError for anything unusable."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    ifd = None
    if header.startswith(_TIFF_MAGIC):
        ifd = _tiff_ifd0(handle, header)
        raw = _camera_raw(ifd, suffix)
        if raw is not None:
            raise InputError(raw.message(shown))
    try:
        handle.seek(0)
        image = Image.open(handle)
    except UnidentifiedImageError:
        if ifd is not None:  # float colour, float64...: OpenCV reads those TIFFs
            return _decode_tiff_with_opencv(handle, ifd, shown, max_pixels, notices, None)
        raise InputError(_not_identified(handle, header, kind, shown, suffix)) from None
    except Exception as exc:  # noqa: BLE001 - mapped to one line
        raise InputError(_decode_failure(exc, kind, shown, max_pixels)) from None
    with image:
        width, height = image.size
        _check_pixels(width, height, shown, max_pixels)
        try:
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                notices.append(f"{shown}: has {frames} frames; using the first")
            image.seek(0)
            rawmode = _rawmode(image)
            if image.mode in ("RGB", "RGBA") and ";16" in rawmode:  # Pillow would keep the high byte only
                orientation = image.getexif().get(ORIENTATION_TAG, 1)
                return _decode_with_opencv(
                    handle, shown, notices, orientation, (height, width), premultiplied=_premultiplied(ifd)
                )
            codec = image.tile[0][0] if image.tile else ""
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image, shown, notices, rawmode, codec)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to one line
            if ifd is not None and getattr(exc, "errno", None) is None:
                with contextlib.suppress(InputError):  # an odd TIFF variant OpenCV may read
                    return _decode_tiff_with_opencv(handle, ifd, shown, max_pixels, notices, exc)
            raise InputError(_decode_failure(exc, kind, shown, max_pixels)) from None


def _decode_failure(exc: BaseException, kind, shown: str, max_pixels: int) -> str:
    """The one-line message for an exception Pillow raised while opening or decoding."""
    from PIL import Image

    text = _first_line(exc)
    if isinstance(exc, Image.DecompressionBombError):  # Pillow's own limit (> 2 x 89 MP) fired first
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "too many megapixels"
        return f"{shown}: image is {size}; the limit is {max_pixels / 1e6:.0f} (downscale it first)"
    if re.search(r"decompressed data too large|too much memory used in text chunks", text, re.IGNORECASE):
        return (
            f"{shown}: a compressed PNG text chunk (zTXt/iTXt/iCCP metadata) expands beyond Pillow's "
            f"safety limit (a decompression bomb); refused: re-save the image without metadata"
        )
    if isinstance(exc, MemoryError):
        return f"{shown}: not enough memory to decode this image; downscale it first"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{shown}: cannot be read ({_reason(exc)})"
    if kind is not None:
        return f"{shown}: {kind.label} could not be decoded ({text}); {kind.advice}"
    return f"{shown}: truncated or corrupt image ({text})"


def _check_pixels(width: int, height: int, shown: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InputError(
            f"{shown}: {width}x{height} is {width * height / 1e6:.0f} megapixels; "
            f"the limit is {max_pixels / 1e6:.0f} (downscale it first)"
        )


def _rawmode(image) -> str:
    """The raw mode of an unloaded Pillow image's first tile (``RGB;16B``), or ``""``."""
    tile = getattr(image, "tile", None) or []
    if not tile:
        return ""
    args = tile[0][3]
    rawmode = args[0] if isinstance(args, tuple) and args else args
    return rawmode if isinstance(rawmode, str) else ""


def _tiff_ifd0(handle, header: bytes) -> dict:
    """The tags of a TIFF's first directory (parsed by Pillow), or ``{}`` if unreadable."""
    from PIL import TiffImagePlugin

    try:
        ifd = TiffImagePlugin.ImageFileDirectory_v2(
            header[:16] if header[2:3] == b"+" or header[3:4] == b"+" else header[:8]
        )
        handle.seek(ifd.next)
        ifd.load(handle)
        tags = dict(ifd)
        tags["next"] = ifd.next
        return tags
    except Exception:  # noqa: BLE001 - a damaged directory: Pillow's own open will say so
        return {}


def _camera_raw(ifd: dict, suffix: str) -> _Kind | None:
    """A TIFF-based camera RAW file (its first image is only a preview), or None."""
    if 50706 in ifd:  # DNGVersion
        return _raw("DNG")
    photometric = ifd.get(262)
    if photometric in (32803, 34892):  # colour filter array, linear raw
        return _raw(RAW_SUFFIXES.get(suffix, "sensor data"))
    if suffix in RAW_SUFFIXES:
        return _raw(RAW_SUFFIXES[suffix])
    reduced = isinstance(ifd.get(254), int) and ifd[254] & 1
    if reduced and 330 in ifd:  # a reduced-resolution first image with the real ones in SubIFDs
        return _raw(str(ifd.get(271, "camera")).strip("\0 ") or "camera")
    return None


def _premultiplied(ifd) -> bool:
    extra = (ifd or {}).get(338)
    return (extra[0] if isinstance(extra, tuple) and extra else extra) == 1  # ExtraSamples: associated alpha


def _decode_tiff_with_opencv(handle, ifd: dict, shown: str, max_pixels: int, notices: list, error) -> np.ndarray:
    """A TIFF Pillow cannot read, through OpenCV (first page only)."""
    width, height = ifd.get(256), ifd.get(257)
    if not isinstance(width, int) or not isinstance(height, int):
        reason = f" ({_first_line(error)})" if error else ""
        raise InputError(f"{shown}: truncated or corrupt TIFF file{reason}")
    _check_pixels(width, height, shown, max_pixels)
    photometric = ifd.get(262, 1)
    if photometric not in (1, 2):  # OpenCV would misread CMYK, Lab, YCbCr or white-is-zero data
        reason = f" ({_first_line(error)})" if error else ""
        raise InputError(
            f"{shown}: a TIFF variant neither Pillow nor OpenCV can decode (photometric "
            f"interpretation {photometric}){reason}; convert it to PNG or 8/16-bit RGB TIFF"
        )
    pixels = _decode_with_opencv(
        handle, shown, notices, ifd.get(274, 1), (height, width), premultiplied=_premultiplied(ifd), error=error
    )
    if ifd.get("next"):  # the offset of a second directory: more pages follow
        notices.append(f"{shown}: has more than one page; using the first")
    return pixels


def _decode_with_opencv(
    handle, shown: str, notices: list, orientation, size: tuple[int, int], *, premultiplied: bool = False, error=None
) -> np.ndarray:
    """Decode the whole file with ``cv2.imdecode(IMREAD_UNCHANGED)``, orient it and scale it to uint8 RGB."""
    import cv2

    handle.seek(0)
    try:
        data = np.frombuffer(handle.read(), np.uint8)
    except OSError as exc:
        raise InputError(f"{shown}: cannot be read ({_reason(exc)})") from None
    try:
        array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        array, error = None, error or exc
    if array is None or array.size == 0:
        reason = f" ({_first_line(error)})" if error else ""
        raise InputError(
            f"{shown}: truncated or corrupt image, or a variant neither Pillow nor OpenCV can "
            f"decode{reason}; convert it to PNG"
        )
    if array.ndim == 3:
        channels = array.shape[2]
        if channels == 3:
            array = array[..., ::-1]
        elif channels == 4:
            array = array[..., [2, 1, 0, 3]]
        elif channels != 2:
            raise InputError(f"{shown}: has {channels} channels; only gray, gray+alpha, RGB and RGBA are supported")
    if array.shape[:2] != tuple(size):
        raise InputError(
            f"{shown}: truncated or corrupt image (decoded {array.shape[1]}x{array.shape[0]}, "
            f"the header says {size[1]}x{size[0]})"
        )
    return _wide_to_rgb(_orient(array, orientation), shown, notices, premultiplied)


def _orient(array: np.ndarray, orientation) -> np.ndarray:
    """Apply an EXIF/TIFF orientation (1..8) to an ``(H, W[, C])`` array as Pillow's exif_transpose does."""
    transforms = {
        2: lambda a: a[:, ::-1],  # mirror left-right
        3: lambda a: a[::-1, ::-1],  # rotate 180
        4: lambda a: a[::-1],  # mirror top-bottom
        5: lambda a: a.swapaxes(0, 1),  # transpose
        6: lambda a: np.rot90(a, -1),  # rotate 90 clockwise
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # transverse
        8: lambda a: np.rot90(a, 1),  # rotate 90 counter-clockwise
    }
    transform = transforms.get(orientation if isinstance(orientation, int) else 1)
    return np.ascontiguousarray(transform(array)) if transform else array


def _to_rgb(image, shown: str, notices: list, rawmode: str = "", codec: str = "") -> np.ndarray:
    """A loaded Pillow image (any mode) as uint8 ``(H, W, 3)``; alpha over white.

    ``rawmode`` and ``codec``: of its first tile before loading (``I;16B``, ``ppm``), which
    tell what mode ``I`` (32-bit) holds: 16-bit PNG/PGM samples or signed/32-bit integers.
    """
    from PIL import Image

    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        samples = np.asarray(image)
        if image.mode == "I" and (re.fullmatch(r"I;16[BLN]?", rawmode) or codec == "ppm"):
            samples = samples.astype(np.uint16)  # 16-bit PGM/PNG (Pillow scales a PGM's maxval to 65535)
        stored = re.fullmatch(r"I;(\d+)(S?)[BLN]?", rawmode)
        if stored and image.mode == "I" and samples.dtype != np.uint16:
            label = f"{stored.group(1)}-bit {'signed ' if stored.group(2) else ''}integer"
            return _wide_to_rgb(samples, shown, notices, label=label)
        if image.mode.startswith("I;16"):
            samples = samples.astype(np.uint16)  # native byte order
            key = image.info.get("transparency")
            if isinstance(key, int):  # 16-bit gray PNG with a transparent value (tRNS)
                samples = np.stack([samples, np.where(samples == key, 0, 65535).astype(np.uint16)], axis=-1)
        return _wide_to_rgb(samples, shown, notices)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode in ("P", "L", "RGB", "1") and "transparency" in image.info
    )
    try:
        if has_alpha:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
        return np.asarray(image.convert("RGB"))
    except ValueError:
        raise InputError(f"{shown}: colour mode {image.mode} is not supported; save it as RGB") from None


def _wide_to_rgb(
    array: np.ndarray, shown: str, notices: list, premultiplied: bool = False, label: str = ""
) -> np.ndarray:
    """Samples of any numeric dtype, ``(H, W)``, ``(H, W, 2|3|4)`` (gray/RGB [+ alpha]), as uint8 RGB.

    Scaling as the module docstring says; one notice says what was done (none for 8-bit).
    """
    if array.ndim == 2:
        array = array[..., None]
    channels = array.shape[2]
    colour_count = 1 if channels <= 2 else 3
    colour, alpha = array[..., :colour_count], array[..., colour_count:]
    kind = array.dtype.kind
    note = None
    if kind == "f":
        bad = np.count_nonzero(~np.isfinite(array))
        if bad:
            raise InputError(
                f"{shown}: float image with {bad} NaN or infinite samples; replace them with "
                f"finite values and save again (or save it as 8/16-bit)"
            )
        lo, hi = float(colour.min()), float(colour.max())
        if lo >= 0 and hi <= 1:
            unit = colour.astype(np.float32)
            note = f"float samples in 0..1 scaled to 0..255 ({array.dtype.itemsize * 8}-bit float image)"
        elif hi == lo:
            unit = np.clip(colour, 0, 1).astype(np.float32)
            note = f"constant float image with value {lo:g}, outside 0..1: clipped to 0..1"
        else:
            base = min(lo, 0.0)
            unit = ((colour.astype(np.float64) - base) / (hi - base)).astype(np.float32)  # no float32 overflow
            note = (
                f"float samples range {lo:g}..{hi:g}, not 0..1: {base:g}..{hi:g} stretched to 0..255 "
                f"(save it as 8-bit to choose the scaling yourself)"
            )
        alpha_unit = np.clip(alpha, 0, 1).astype(np.float32)
    elif array.dtype == np.uint8:
        unit = colour.astype(np.float32) / 255
        alpha_unit = alpha.astype(np.float32) / 255
    elif array.dtype == np.uint16:
        unit = colour.astype(np.float32) / 65535
        alpha_unit = alpha.astype(np.float32) / 65535
        top = int(colour.max())
        note = "16-bit samples scaled 0..65535 to 0..255"
        if top < 4096:
            note += f"; the brightest is {top} of 65535, so it looks dark (12-bit or less data?)"
    elif kind in "iu":
        lo, hi = int(colour.min()), int(colour.max())
        label = label or f"{array.dtype.itemsize * 8}-bit integer"
        if lo >= 0 and hi <= 255:
            top, base = 255, 0
            note = f"{label} samples all within 0..255: taken as 8-bit values"
        elif lo >= 0 and hi <= 65535:
            top, base = 65535, 0
            note = f"{label} samples all within 0..65535: taken as 16-bit values"
        else:
            base, top = min(lo, 0), max(hi, 1)
            note = f"{label} samples range {lo}..{hi}: {base}..{top} stretched to 0..255"
        unit = ((colour.astype(np.float64) - base) / (top - base)).astype(np.float32)
        alpha_top = int(alpha.max()) if alpha.size else 1
        alpha_top = 255 if alpha_top <= 255 else max(65535, alpha_top)
        alpha_unit = np.clip(alpha.astype(np.float64) / alpha_top, 0, 1).astype(np.float32)
    else:
        raise InputError(f"{shown}: samples of type {array.dtype} are not supported; save it as 8/16-bit")
    if alpha_unit.size:  # over white
        unit = (unit if premultiplied else unit * alpha_unit) + (1 - alpha_unit)
    if colour_count == 1:
        unit = np.repeat(unit, 3, axis=2)
    if note:
        notices.append(f"{shown}: {note}")
    return np.rint(np.clip(unit, 0, 1) * 255).astype(np.uint8)


# --------------------------------------------------- library warnings -> notices

_QUIET_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet():
    """Record Python warnings and what C libraries print on stderr (file descriptor 2) meanwhile.

    Yields a dict filled on exit: ``warnings`` (messages) and ``stderr`` (text). Holding
    a lock, since file descriptor 2 is shared by the whole process.
    """
    caught = {"warnings": [], "stderr": ""}
    with _QUIET_LOCK, warnings.catch_warnings(record=True) as records, contextlib.ExitStack() as stack:
        warnings.simplefilter("always")
        saved = sink = None
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        try:
            sink = stack.enter_context(tempfile.TemporaryFile())
            saved = os.dup(2)
            os.dup2(sink.fileno(), 2)
        except (OSError, ValueError):  # no usable stderr descriptor: nothing to silence
            if saved is not None:
                os.close(saved)
            saved = None
        try:
            yield caught
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                caught["stderr"] = sink.read(65536).decode("utf-8", "replace")
            caught["warnings"] = [record for record in records]


_NOISE = re.compile(
    r"iCCP|sRGB|cHRM|gAMA|known incorrect|profile|Unknown field with tag|unknown tag|Sum of Photometric|"
    r"ASCII value for tag|incorrect count for field|tags are not sorted|wrong data type|Palette images with "
    r"Transparency|Metadata Warning|unclosed file|ResourceWarning|DeprecationWarning",
    re.IGNORECASE,
)
_EXIF = re.compile(r"EXIF|Tag data larger than file|Tag offset too large", re.IGNORECASE)
_PREFIXES = re.compile(r"^(\[\s*\w+:[^\]]*\]\s*(global\s+)?\S+:\d+\s+(\S+\s+)?)|^(lib\w+ (warning|error):\s*)")


def _warning_notices(caught: dict, shown: str) -> list[str]:
    """One-line notices for the meaningful warnings caught while decoding; noise dropped."""
    from PIL import Image

    texts, exif = [], False
    for record in caught["warnings"]:
        if issubclass(record.category, Image.DecompressionBombWarning | ResourceWarning | DeprecationWarning):
            continue  # this module's own pixel limit applies; the rest is about the library itself
        texts.append(str(record.message))
    texts += [_PREFIXES.sub("", line.strip()) for line in caught["stderr"].splitlines() if line.strip()]
    kept = []
    for text in texts:
        text = _printable(text)
        if not text or _NOISE.search(text):
            continue
        if _EXIF.search(text):
            exif = True
            continue
        if text not in kept:
            kept.append(text)
    notices = []
    if exif:
        notices.append(
            f"{shown}: its EXIF metadata is corrupt and was partly ignored (the orientation may not be applied)"
        )
    for text in kept[:MAX_NOTICES_PER_SOURCE]:
        notices.append(f"{shown}: decoder warning: {text[:200]}")
    if len(kept) > MAX_NOTICES_PER_SOURCE:
        notices.append(f"{shown}: {len(kept) - MAX_NOTICES_PER_SOURCE} more decoder warnings")
    return notices
