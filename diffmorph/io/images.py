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
import hashlib
import os
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError, display_path, first_line, printable
from .formats import TIFF_MAGIC, camera_raw, not_identified, sniff, tiff_ifd0
from .paths import open_regular, os_reason
from .stderr import captured_stderr

MAX_PIXELS = 50_000_000  # larger inputs are refused (about 8660 x 5773)
MIN_SIDE = 2  # smallest accepted width and height, in pixels
HEADER_BYTES = 4096  # read first to recognise the format by its magic bytes
ORIENTATION_TAG = 0x0112  # EXIF / TIFF Orientation
MAX_NOTICES_PER_SOURCE = 3  # decoder warnings shown per file (the rest are counted)


class LoadedImage(NamedTuple):
    """``pixels``: uint8 ``(H, W, 3)`` RGB. ``notices``: one-line remarks for the user."""

    pixels: np.ndarray
    notices: tuple[str, ...]


def read_image(path, max_pixels: int = MAX_PIXELS) -> LoadedImage:
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
    with open_regular(path, shown) as handle:
        try:
            header = handle.read(HEADER_BYTES)
        except OSError as exc:
            raise InputError(f"{shown}: cannot be read ({os_reason(exc)})") from None
        if not header:
            raise InputError(f"{shown}: the file is empty")
        kind = sniff(header, suffix)
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


# ----------------------------------------------------------------------- decoding


def _decode(handle, header: bytes, kind, shown: str, suffix: str, max_pixels: int, notices: list) -> np.ndarray:
    """Decode an opened file to uint8 ``(H, W, 3)`` RGB; InputError for anything unusable."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    ifd = None
    if header.startswith(TIFF_MAGIC):
        ifd = tiff_ifd0(handle, header)
        raw = camera_raw(ifd, suffix)
        if raw is not None:
            raise InputError(raw.message(shown))
    try:
        handle.seek(0)
        image = Image.open(handle)
    except UnidentifiedImageError:
        if ifd is not None:  # float colour, float64...: OpenCV reads those TIFFs
            return _decode_tiff_with_opencv(handle, ifd, shown, max_pixels, notices, None)
        raise InputError(not_identified(handle, header, kind, shown, suffix)) from None
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

    text = first_line(exc)
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
        return f"{shown}: cannot be read ({os_reason(exc)})"
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


def _premultiplied(ifd) -> bool:
    extra = (ifd or {}).get(338)
    return (extra[0] if isinstance(extra, tuple) and extra else extra) == 1  # ExtraSamples: associated alpha


def _decode_tiff_with_opencv(handle, ifd: dict, shown: str, max_pixels: int, notices: list, error) -> np.ndarray:
    """A TIFF Pillow cannot read, through OpenCV (first page only)."""
    width, height = ifd.get(256), ifd.get(257)
    if not isinstance(width, int) or not isinstance(height, int):
        reason = f" ({first_line(error)})" if error else ""
        raise InputError(f"{shown}: truncated or corrupt TIFF file{reason}")
    _check_pixels(width, height, shown, max_pixels)
    photometric = ifd.get(262, 1)
    if photometric not in (1, 2):  # OpenCV would misread CMYK, Lab, YCbCr or white-is-zero data
        reason = f" ({first_line(error)})" if error else ""
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
        raise InputError(f"{shown}: cannot be read ({os_reason(exc)})") from None
    try:
        array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        array, error = None, error or exc
    if array is None or array.size == 0:
        reason = f" ({first_line(error)})" if error else ""
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


@contextlib.contextmanager
def _quiet():
    """Record Python warnings and what C libraries print on stderr (file descriptor 2) meanwhile.

    Yields a dict filled on exit: ``warnings`` (messages) and ``stderr`` (text). The
    capture (:func:`~diffmorph.io.stderr.captured_stderr`) holds its lock around both,
    since file descriptor 2 and the warnings filters are shared by the whole process.
    """
    caught = {"warnings": [], "stderr": ""}
    with captured_stderr() as stderr:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            yield caught
    caught["warnings"] = list(records)
    caught["stderr"] = stderr.text


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
        text = printable(text)
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
