"""Frame writers: H.264 MP4 (imageio-ffmpeg), looping GIF (Pillow), numbered PNGs.

Each writer takes uint8 ``(H, W, 3)`` RGB frames one at a time (frames are streamed,
never all held, except the GIF's downsized palette frames) and writes to the path it
is given, which in a run is a temporary name of an
:class:`~diffmorph.io.outputs.OutputSet` (the set is published once every output is
complete). :meth:`close` finishes the file and checks it is complete; :meth:`abort`
deletes it.
"""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path

import numpy as np

from ..errors import OutputError, display_path, first_line
from ..worker import Worker

MP4_CRF = 18  # x264 quality: 18 is visually lossless for most content
MP4_QUEUE_BYTES = 64_000_000  # frames waiting for the encoder thread (at least one, at most 4)
DEFAULT_GIF_MAX_SIDE = 512
FFMPEG_PROBE_TIMEOUT_S = 20  # ``ffmpeg -version`` answers in well under a second
_FFMPEG_OTHERWISE = 'or use formats=("gif", "frames")'


def check_ffmpeg() -> str:
    """The ffmpeg executable MP4 output will use, after checking that it runs.

    imageio-ffmpeg picks it: ``IMAGEIO_FFMPEG_EXE`` if set (taken as is), else its
    bundled binary, else one installed with conda or on ``PATH``. This runs
    ``ffmpeg -version`` once (tens of milliseconds), so that a missing or broken
    binary is reported before any work instead of as a traceback when the writer starts.

    Returns:
      the path (or command name) of a working ffmpeg.

    Raises:
      OutputError: one line saying what is wrong and how to fix it (unset or fix
        ``IMAGEIO_FFMPEG_EXE``, reinstall imageio-ffmpeg or install ffmpeg, or choose
        other output formats).
    """
    import subprocess

    try:
        import imageio_ffmpeg
    except ImportError:
        raise OutputError(
            f"MP4 output needs the imageio-ffmpeg package, which is not installed: "
            f"pip install imageio-ffmpeg, {_FFMPEG_OTHERWISE}",
            setting="formats",
        ) from None
    from_env = os.environ.get("IMAGEIO_FFMPEG_EXE")
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (RuntimeError, OSError) as exc:
        raise OutputError(
            f"no ffmpeg found for MP4 output ({first_line(exc)}): reinstall imageio-ffmpeg "
            f"(pip install --force-reinstall imageio-ffmpeg, it bundles one) or install ffmpeg, {_FFMPEG_OTHERWISE}",
            setting="formats",
        ) from None
    try:
        proc = subprocess.run(
            [exe, "-version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=FFMPEG_PROBE_TIMEOUT_S,
            check=False,
        )
        problem = None if proc.returncode == 0 else f"it exits with status {proc.returncode} on -version"
    except FileNotFoundError:
        problem = "no such file"
    except PermissionError:
        problem = "not executable"
    except subprocess.TimeoutExpired:
        problem = f"it does not answer -version within {FFMPEG_PROBE_TIMEOUT_S} s"
    except (OSError, ValueError) as exc:
        problem = getattr(exc, "strerror", None) or first_line(exc)
    if problem is None:
        return exe
    if from_env:
        raise OutputError(
            f"IMAGEIO_FFMPEG_EXE={display_path(from_env)} is not a working ffmpeg ({problem}): "
            f"unset it or point it at an ffmpeg executable, {_FFMPEG_OTHERWISE}",
            setting="formats",
        )
    raise OutputError(
        f"the ffmpeg found for MP4 output, {display_path(exe)}, does not work ({problem}): reinstall "
        f"imageio-ffmpeg (pip install --force-reinstall imageio-ffmpeg) or install ffmpeg, {_FFMPEG_OTHERWISE}",
        setting="formats",
    )


SIZE_COMMENT = "diffmorph frame size {width}x{height}"  # the MP4's comment: frames before padding


def size_comment(height: int, width: int) -> str:
    """The comment an MP4 carries with its frames' true size (odd sizes are padded by one pixel)."""
    return SIZE_COMMENT.format(width=width, height=height)


def even_pad(frame: np.ndarray) -> np.ndarray:
    """Pad odd width/height by one replicated edge pixel (yuv420p needs even sizes)."""
    height, width = frame.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return frame
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def mp4_is_complete(path) -> bool:
    """Whether an MP4 written with ``-movflags +faststart`` was finished.

    ffmpeg writes the index (the ``moov`` box) last and, with faststart, moves it in
    front of the media data (``mdat``) in a final pass; an encoder that died, or a
    file cut short, has no ``moov`` before ``mdat``. Reads only the top-level box headers.
    """
    try:
        with open(path, "rb") as handle:
            size_total = os.fstat(handle.fileno()).st_size
            offset = 0
            while offset + 8 <= size_total:
                handle.seek(offset)
                size, kind = struct.unpack(">I4s", handle.read(8))
                if size == 1:  # a 64-bit size follows
                    size = struct.unpack(">Q", handle.read(8))[0]
                if kind == b"moov":
                    return True
                if kind == b"mdat" or size < 8:
                    return False
                offset += size
    except OSError:
        return False
    return False


class Mp4Writer:
    """H.264 (libx264, yuv420p, CRF 18, faststart) MP4 through imageio-ffmpeg's ffmpeg.

    Encoding runs in a background thread so that rendering the next frame overlaps
    it; at most :data:`MP4_QUEUE_BYTES` of frames wait (one frame of a 48-megapixel
    input). Odd sizes are padded by one edge pixel.

    Args:
      path: where to write the ``.mp4``. size: ``(height, width)`` of the frames.
      fps: frames per second (> 0).

    Raises:
      OutputError: no working ffmpeg (see :func:`check_ffmpeg`; nothing is written),
        or ffmpeg fails to start.
    """

    def __init__(self, path, size: tuple[int, int], fps: float):
        import imageio_ffmpeg

        self.path = Path(path)
        check_ffmpeg()
        height, width = size
        try:
            self._writer = imageio_ffmpeg.write_frames(
                str(self.path),
                (width + width % 2, height + height % 2),
                fps=fps,
                codec="libx264",
                pix_fmt_in="rgb24",
                pix_fmt_out="yuv420p",
                quality=None,
                macro_block_size=1,
                ffmpeg_log_level="error",
                output_params=[
                    "-crf",
                    str(MP4_CRF),
                    "-movflags",
                    "+faststart",
                    "-metadata",
                    f"comment={size_comment(height, width)}",  # the true size: readers crop the padding
                ],
            )
            self._writer.send(None)
        except BaseException as exc:  # nothing half-written
            _remove(self.path)
            if isinstance(exc, OSError | RuntimeError):
                raise OutputError(f"cannot start ffmpeg for {display_path(self.path)}: {first_line(exc)}") from None
            raise
        frame_bytes = (height + 1) * (width + 1) * 3
        self._worker = Worker(
            lambda frame: self._writer.send(np.ascontiguousarray(frame)),
            min(4, MP4_QUEUE_BYTES // frame_bytes),
            "diffmorph-mp4",
        )

    def _failed(self, error: BaseException) -> OutputError:
        return OutputError(f"video encoding failed for {display_path(self.path)}: {first_line(error)}")

    def write(self, frame: np.ndarray) -> None:
        """Queue one uint8 ``(H, W, 3)`` RGB frame.

        Raises:
          OutputError: the encoder failed on an earlier frame.
        """
        try:
            self._worker.put(even_pad(frame))
        except (OSError, RuntimeError) as exc:
            self.abort()  # ffmpeg stopped and the partial file deleted before the error is raised
            raise self._failed(exc) from None

    def close(self) -> None:
        """Finish encoding and check the file is complete.

        Raises:
          OutputError: encoding failed (the file is deleted).
        """
        try:
            self._worker.finish()
            self._writer.close()
        except (OSError, RuntimeError) as exc:
            self.abort()  # waits for ffmpeg to exit first: it must not write the file after it is deleted
            raise self._failed(exc) from None
        if not mp4_is_complete(self.path):
            _remove(self.path)
            raise OutputError(
                f"video encoding failed for {display_path(self.path)}: ffmpeg stopped before "
                f"finishing the file (out of disk space or memory?)"
            )

    def abort(self) -> None:
        """Stop encoding, wait for ffmpeg to exit and delete the partial file (quietly: it is
        being discarded). Safe to call more than once."""
        import logging

        log = logging.getLogger("imageio_ffmpeg")
        was_disabled, log.disabled = log.disabled, True  # "no frames have been written"
        with contextlib.suppress(BaseException):
            self._worker.stop()
            self._writer.close()
        log.disabled = was_disabled
        _remove(self.path)


class GifWriter:
    """Looping GIF through Pillow: adaptive 256-colour palette per frame, duration from fps.

    Frames are downsized (``INTER_AREA``) so that the longer side is at most
    ``max_side`` and kept as 8-bit palette images until :meth:`close` writes the
    file (the pipeline refuses GIFs that would need more than a set memory budget).
    GIF timing has 10 ms resolution, so the duration is rounded to it.
    """

    def __init__(self, path, fps: float, max_side: int = DEFAULT_GIF_MAX_SIDE):
        self.path = Path(path)
        self.duration_ms = max(10, int(round(100.0 / fps)) * 10)
        self.max_side = max_side
        self._frames = []

    def write(self, frame: np.ndarray) -> None:
        """Downsize, quantise and keep one uint8 ``(H, W, 3)`` RGB frame."""
        import cv2
        from PIL import Image

        height, width = frame.shape[:2]
        scale = self.max_side / max(height, width)
        if scale < 1:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        # an adaptive octree palette per frame: ~37 dB PSNR against the true-colour frame
        # on the bundled pair; median cut gains 1-3 dB but is far slower (docs/performance.md)
        self._frames.append(
            Image.fromarray(frame).quantize(
                colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG
            )
        )

    def close(self) -> None:
        """Write the GIF.

        Raises:
          OutputError: it cannot be written (the partial file is deleted).
        """
        try:
            first, *rest = self._frames
            first.save(
                self.path,
                format="GIF",
                save_all=True,
                append_images=rest,
                loop=0,
                duration=self.duration_ms,
                disposal=1,
                optimize=False,
            )
        except OSError as exc:
            _remove(self.path)
            raise OutputError(f"cannot write {display_path(self.path)}: {exc.strerror or exc}") from None
        finally:
            self._frames = []

    def abort(self) -> None:
        self._frames = []
        _remove(self.path)


class FramesWriter:
    """Numbered PNG frames ``frame_00000.png``... in a folder (the folder is published as a whole)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {display_path(self.folder)}: {exc.strerror or exc}") from None
        self._count = 0

    def write(self, frame: np.ndarray) -> None:
        """Write one uint8 ``(H, W, 3)`` RGB frame as the next PNG."""
        import cv2

        path = self.folder / f"frame_{self._count:05d}.png"
        ok, data = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        try:
            if not ok:
                raise OSError(f"cannot encode {path.name}")
            path.write_bytes(data.tobytes())
        except OSError as exc:
            raise OutputError(f"cannot write {display_path(path)}: {exc.strerror or exc}") from None
        self._count += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


@contextlib.contextmanager
def frame_writers(formats, files: dict, size: tuple[int, int], fps: float, gif_max_side: int):
    """Open the writers of ``formats`` (``mp4``, ``gif``, ``frames``) and yield ``write(frame)``.

    ``files`` maps each format to its path (a folder for ``frames``); ``size`` is
    ``(height, width)``. On success every writer is closed (its file complete); on any
    exception, Ctrl-C included, every writer is aborted (its partial file deleted) and
    the exception propagates.
    """
    writers = []
    try:
        if "mp4" in formats:
            writers.append(Mp4Writer(files["mp4"], size, fps))
        if "gif" in formats:
            writers.append(GifWriter(files["gif"], fps, gif_max_side))
        if "frames" in formats:
            writers.append(FramesWriter(files["frames"]))

        def write(frame: np.ndarray) -> None:
            for writer in writers:
                writer.write(frame)

        yield write
        for writer in writers:
            writer.close()
    except BaseException:
        for writer in writers:
            writer.abort()
        raise


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
