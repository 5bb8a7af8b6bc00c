"""Reading a morph's frames back: a video, a GIF, a folder of images, or a morph output folder.

Convention: frames are uint8 ``(H, W, 3)`` RGB, all of one size, yielded one at a
time (never all held). What ``path`` may be:

* a video file ffmpeg reads (``.mp4``, ``.mov``, ``.mkv``, ``.webm``, ``.avi``... any
  file that is not a GIF or a still image), decoded by imageio-ffmpeg's ``read_frames``;
* a GIF (Pillow): every frame as it is displayed (Pillow composites each frame over
  the previous ones following the GIF's disposal rules), transparent pixels over white;
* a folder of image frames (``.png .jpg .jpeg .webp .bmp``, any case; names starting
  with a dot are skipped), in natural name order (``frame_2`` before ``frame_10``),
  each read by :func:`diffmorph.io.images.read_image`;
* a morph output folder: the ``morph/`` folder (``morph.mp4``, else its ``frames/``
  folder, else ``morph.gif``) or its parent (the folder holding ``morph/``).

Every problem is one :class:`~diffmorph.errors.InputError` line: a missing path, a
file that is not a readable video, GIF or image, no frames, a single frame (a morph has
at least two), frames of different sizes. Problems found while decoding (a size that
changes, a video that ends after one frame) are raised by the iterator.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import InputError, display_path, first_line

FRAME_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MORPH_VIDEO, MORPH_GIF, MORPH_FRAMES = "morph.mp4", "morph.gif", "frames"
MORPH_MARKERS = (MORPH_VIDEO, MORPH_GIF, MORPH_FRAMES, "result.jpg", "maps.jpg", "maps.npz")


def _natural_key(path: Path):
    """Sort key: digit runs compare as numbers (``frame_2`` < ``frame_10``), then the name."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)], path.name


def image_frames(folder) -> list[Path]:
    """The image files of a folder that count as frames, in natural name order.

    diffmorph's own report files (``report.png`` published by ``report`` in this folder,
    recorded in its manifest, :func:`diffmorph.io.outputs.read_manifest`) are not frames.
    """
    from .outputs import is_earlier_output, read_manifest

    ours = read_manifest(folder, "report")
    return sorted(
        (
            p
            for p in Path(folder).iterdir()
            if p.suffix.lower() in FRAME_EXTENSIONS
            and not p.name.startswith(".")
            and p.is_file()
            and not (ours and is_earlier_output(p, ours, folder))
        ),
        key=_natural_key,
    )


def _is_morph_folder(folder: Path) -> bool:
    return any((folder / name).exists() for name in MORPH_MARKERS)


def resolve(path) -> tuple[str, Path]:
    """What ``path`` holds: ``("video" | "gif" | "folder", the file or folder to read)``.

    Raises:
      InputError: missing path, or a morph folder with no video, frames or GIF.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{display_path(path)}: no such file or folder")
    if p.is_dir():
        if not _is_morph_folder(p) and (p / "morph").is_dir() and _is_morph_folder(p / "morph"):
            p = p / "morph"  # the parent of a morph's outputs
        if _is_morph_folder(p):
            if (p / MORPH_VIDEO).is_file():
                return "video", p / MORPH_VIDEO
            if (p / MORPH_FRAMES).is_dir():
                return "folder", p / MORPH_FRAMES
            if (p / MORPH_GIF).is_file():
                return "gif", p / MORPH_GIF
            raise InputError(f"{display_path(p)}: a morph folder without {MORPH_VIDEO}, {MORPH_FRAMES}/ or {MORPH_GIF}")
        return "folder", p
    if not p.is_file():
        raise InputError(f"{display_path(path)}: is not a regular file or folder")
    try:
        with open(p, "rb") as handle:
            head = handle.read(6)
    except OSError as exc:
        raise InputError(f"{display_path(path)}: cannot be read ({exc.strerror or exc})") from None
    if head in (b"GIF87a", b"GIF89a"):
        return "gif", p
    if p.suffix.lower() in FRAME_EXTENSIONS:
        raise InputError(f"{display_path(path)}: a single image; give a video, a GIF or a folder of frames")
    return "video", p


class FrameReader:
    """An iterator over the frames at ``path`` (module docstring); see :func:`read_frames`.

    Attributes:
      kind: ``"video"``, ``"gif"`` or ``"folder"``. path: the file or folder read.
      count: the number of frames, or None if unknown: exact for folders and GIFs;
        for videos the number of frames stored in the file (:func:`video_frame_count`),
        which is what ffmpeg decodes for the usual constant-rate files.
      size: ``(H, W)`` of the frames, once the first one is read.
      files: a folder's frame files, in order (empty for a video or a GIF).
    """

    def __init__(self, path, count: bool = True):
        self.kind, self.path = resolve(path)
        self.count: int | None = None
        self.size: tuple[int, int] | None = None
        self._index = 0
        self._ffmpeg = None  # imageio-ffmpeg's frame generator (its ffmpeg process) for a video
        self.files: list[Path] = []
        if self.kind == "folder":
            self._files = self.files = image_frames(self.path)
            self.count = len(self._files)
            self._iter = self._folder()
        elif self.kind == "gif":
            self.count = self._gif_count()
            self._iter = self._gif()
        else:
            self._iter = self._video(count)
        if self.count is not None:
            try:
                self._check_count(self.count)
            except InputError:
                self.close()  # a video's ffmpeg process is already running
                raise

    def _check_count(self, count: int) -> None:
        where = display_path(self.path)
        if count == 0:
            raise InputError(
                f"{where}: no frames" + (f" (no {', '.join(FRAME_EXTENSIONS)} files)" if self.kind == "folder" else "")
            )
        if count == 1:
            raise InputError(f"{where}: only one frame; a morph has at least two")

    def __iter__(self) -> FrameReader:
        return self

    def __next__(self) -> np.ndarray:
        try:
            frame = next(self._iter)
        except StopIteration:
            if self._index < 2:
                self._check_count(self._index)
            raise
        if self.size is None:
            self.size = frame.shape[:2]
        elif frame.shape[:2] != self.size:
            raise InputError(
                f"{display_path(self.path)}: frame {self._index} is {frame.shape[1]}x{frame.shape[0]}, "
                f"the first frame {self.size[1]}x{self.size[0]}; all frames must have one size"
            )
        self._index += 1
        return frame

    def close(self) -> None:
        """Stop reading (ends the ffmpeg process of a video)."""
        close = getattr(self._iter, "close", None)
        if close is not None:
            close()
        if self._ffmpeg is not None:  # also when no frame was read (the generator above never started)
            self._ffmpeg.close()

    def _folder(self) -> Iterator[np.ndarray]:
        from .images import read_image

        first = None
        for path in self._files:
            pixels = read_image(path).pixels
            if first is None:
                first = pixels.shape
            elif pixels.shape != first:
                raise InputError(
                    f"{display_path(path)} is {pixels.shape[1]}x{pixels.shape[0]}, the first frame "
                    f"{first[1]}x{first[0]}; all frames must have one size"
                )
            yield pixels

    def _open_gif(self):
        from PIL import Image, UnidentifiedImageError

        try:
            image = Image.open(self.path)
            image.load()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"{display_path(self.path)}: not a readable GIF ({first_line(exc)})") from None
        return image

    def _gif(self) -> Iterator[np.ndarray]:
        from PIL import Image

        with self._open_gif() as image:
            for index in range(getattr(image, "n_frames", 1)):
                try:
                    image.seek(index)
                    rgba = image.convert("RGBA")
                except (OSError, SyntaxError, ValueError, EOFError) as exc:
                    raise InputError(
                        f"{display_path(self.path)}: frame {index} cannot be decoded ({first_line(exc)})"
                    ) from None
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                yield np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))

    def _gif_count(self) -> int:
        with self._open_gif() as image:
            return getattr(image, "n_frames", 1)

    def _video(self, count: bool) -> Iterator[np.ndarray]:
        import imageio_ffmpeg

        where = display_path(self.path)
        probed_count, stored = probe_video(self.path)
        if count:
            self.count = probed_count
        frames = self._ffmpeg = imageio_ffmpeg.read_frames(str(self.path), pix_fmt="rgb24")
        try:
            meta = next(frames)
        except (OSError, RuntimeError, StopIteration, KeyError, ValueError, IndexError):
            frames.close()
            raise InputError(f"{where}: not a video ffmpeg can read") from None
        width, height = meta["size"]
        crop = None
        if stored is not None and 0 <= width - stored[1] <= 1 and 0 <= height - stored[0] <= 1:
            crop = stored  # diffmorph's MP4 of an odd size: drop the pixel the encoder needed
        return self._decode(frames, height, width, crop)

    def _decode(self, frames, height: int, width: int, crop=None) -> Iterator[np.ndarray]:
        try:
            while True:
                try:
                    data = next(frames)
                except StopIteration:
                    return
                except (OSError, RuntimeError) as exc:
                    raise InputError(
                        f"{display_path(self.path)}: the video cannot be decoded ({first_line(exc)})"
                    ) from None
                frame = np.frombuffer(data, np.uint8).reshape(height, width, 3)
                yield frame if crop is None else frame[: crop[0], : crop[1]]
        finally:
            frames.close()


def video_frame_count(path) -> int | None:
    """The number of frames (packets) of a file's first video stream, or None if ffmpeg cannot tell."""
    return probe_video(path)[0]


def probe_video(path) -> tuple[int | None, tuple[int, int] | None]:
    """``(frames, true size)`` of a video: the frame count (see below) or None, and the
    ``(height, width)`` diffmorph recorded in its MP4's comment before padding an odd
    size to even (:func:`diffmorph.io.video.size_comment`), or None for other videos.

    Runs imageio-ffmpeg's ffmpeg with ``-c copy`` to a null output, which reads the
    packets without decoding them, and reads the final ``frame=`` count it prints.
    imageio-ffmpeg's own ``count_frames_and_secs`` decodes every frame, several times
    slower (docs/performance.md).
    """
    import subprocess

    import imageio_ffmpeg

    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-i",
        str(path),
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-f",
        "null",
        "-",
    ]
    try:
        done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None, None
    counts = re.findall(rb"frame=\s*(\d+)", done.stderr)
    sizes = re.findall(rb"comment\s*:\s*diffmorph frame size (\d+)x(\d+)", done.stderr)
    stored = (int(sizes[0][1]), int(sizes[0][0])) if sizes else None
    return (int(counts[-1]) if done.returncode == 0 and counts else None), stored


def read_frames(path, count: bool = True) -> FrameReader:
    """Iterate over the frames of a video, a GIF, a frames folder or a morph output folder.

    Args:
      path: the file or folder (module docstring).
      count: for a video, count its frames first (:func:`video_frame_count`, a
        fraction of a second); folders and GIFs are always counted.

    Returns:
      :class:`FrameReader`: an iterator of uint8 ``(H, W, 3)`` RGB frames, with
      ``count`` (frames, or None) and ``size``.

    Raises:
      InputError: at once for a missing path, an unreadable video or GIF, no frames
        or one frame (when counted); while iterating for a frame of another size, an
        image that cannot be read, or a stream that ends after fewer than two frames.
    """
    return FrameReader(path, count)
