"""Recognising file formats by their first bytes, and naming the ones that cannot be read.

:func:`sniff` looks at a file's header (magic bytes, ISO ``ftyp`` brands, text) and
returns a :class:`Format` for formats this package names in its refusal (HEIC, JPEG XL,
SVG, PDF, camera RAW, OpenEXR, videos, archives...), or None for a plain image that
Pillow decides on. :func:`not_identified` words the message for a file Pillow does
not identify; :func:`tiff_ifd0` and :func:`camera_raw` tell TIFF-based camera RAW
files (whose first image is only a preview) from TIFF images.
"""

from __future__ import annotations

import contextlib
import re
from typing import NamedTuple

from ..errors import first_line


class Format(NamedTuple):
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

HEIC = Format("HEIC/HEIF", "", _TO_PNG + " (e.g. heif-convert, or export from Photos)")
AVIF = Format("AVIF", " by this Pillow build", _TO_PNG, feature="avif", pillow="AVIF")
JXL = Format("JPEG XL", "", _TO_PNG + " (e.g. djxl)")
JPEG2000 = Format("JPEG 2000", " by this Pillow build", _TO_PNG, feature="jpg_2000", pillow="JPEG2000")
WEBP = Format("WebP", " by this Pillow build", _TO_PNG, feature="webp", pillow="WEBP")
SVG = Format(
    "SVG", " (a vector drawing, not an image file)", "export it as PNG (e.g. Inkscape or rsvg-convert)", early=True
)
PDF = Format("PDF", " (a document, not an image file)", "export the page as PNG (e.g. pdftoppm -png)", early=True)
EPS = Format("PostScript/EPS", " (a vector drawing, not an image file)", "export it as PNG", early=True)
WMF = Format("WMF/EMF", " (a vector drawing, not an image file)", "export it as PNG", early=True)
PSD = Format("Photoshop PSD", " in this variant (Pillow reads 8-bit PSDs)", "save a flattened copy as PNG or TIFF")
PSB = Format("Photoshop large document (PSB)", "", "save a flattened copy as PNG or TIFF")
XCF = Format("GIMP XCF", " (a layered project, not an image file)", "export it as PNG (File > Export As)", early=True)
EXR = Format("OpenEXR", " (HDR)", "tone-map it and save as PNG or 16-bit TIFF")
HDR = Format("Radiance HDR", "", "tone-map it and save as PNG or 16-bit TIFF")
BPG = Format("BPG", "", _TO_PNG)
FLIF = Format("FLIF", "", _TO_PNG)
DJVU = Format("DjVu", " (a document, not an image file)", "export the page as PNG", early=True)
KTX = Format("KTX texture", "", _TO_PNG)


def _raw(name: str) -> Format:
    return Format(f"Camera RAW ({name})", "", _RAW_ADVICE, early=True)


def _video(name: str) -> Format:
    return Format(name, _VIDEO, _VIDEO_ADVICE, early=True)


def _archive(name: str) -> Format:
    return Format(name, _ARCHIVE, _ARCHIVE_ADVICE, early=True)


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
TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
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


def sniff(header: bytes, suffix: str) -> Format | None:
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


def not_identified(handle, header: bytes, kind: Format | None, shown: str, suffix: str) -> str:
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
        return first_line(exc)
    return None


def _pillow_has(feature: str) -> bool:
    from PIL import features

    try:
        return bool(features.check(feature))
    except Exception:  # noqa: BLE001 - an unknown feature: not available
        return False


def tiff_ifd0(handle, header: bytes) -> dict:
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


def camera_raw(ifd: dict, suffix: str) -> Format | None:
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
