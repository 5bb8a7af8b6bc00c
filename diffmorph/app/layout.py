"""The output layout of one morph (the original's), and the folders it needs.

Every pipeline that writes a pair's outputs (:func:`~diffmorph.app.morph.morph`, each row
of :func:`~diffmorph.app.batch.morph_batch`, each pair folder of
:func:`~diffmorph.app.sequence.morph_sequence`, the web app) names its files through
:class:`MorphPaths`::

    OUT/train/a_to_b_N.jpg, b_to_a_N.jpg   snapshots during optimisation
    OUT/preds.npy                          the final maps at the working size, (1, S, S, 16)
    OUT/morph/morph.mp4, morph.gif         the video and the GIF
    OUT/morph/result.jpg, maps.jpg         the strip and the maps image
    OUT/morph/maps.npz                     the net's output and its settings
    OUT/morph/checkpoint.npz               net and Adam state (not part of the set)
    OUT/morph/frames/frame_00000.png ...   numbered frames (format "frames")
    OUT/morph/report.json, report.png      measures of the frames (report=True)
    OUT/morph/points.csv, points.jpg       the point pairs used and their picture
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import InputError, display_path
from ..io.files import ensure_folder
from ..io.outputs import is_earlier_output, read_manifest, refuse_inputs
from .fit import snapshot_files
from .write import OutputOptions, check_frames_folder, check_outputs

LAYOUT = {  # attribute of MorphPaths -> path below the output folder (the original's layout)
    "train": "train",
    "morph": "morph",
    "preds": "preds.npy",
    "mp4": "morph/morph.mp4",
    "gif": "morph/morph.gif",
    "result": "morph/result.jpg",
    "maps_jpg": "morph/maps.jpg",
    "maps_npz": "morph/maps.npz",
    "checkpoint": "morph/checkpoint.npz",
    "report_json": "morph/report.json",
    "report_png": "morph/report.png",
    "points_csv": "morph/points.csv",
    "points_jpg": "morph/points.jpg",
    "default_frames": "morph/frames",
}


@dataclasses.dataclass(frozen=True)
class MorphPaths:
    """Where one morph writes, below ``root``: ``paths.mp4`` is ``root/morph/morph.mp4``, and
    so on for every name in :data:`LAYOUT`.

    ``frames_dir`` overrides where numbered frames go (default ``root/morph/frames``).
    """

    root: Path
    frames_dir: Path | None = None

    def __getattr__(self, name: str) -> Path:
        if name not in LAYOUT:
            raise AttributeError(name)
        return self.root / LAYOUT[name]

    @property
    def frames(self) -> Path:
        return self.frames_dir if self.frames_dir is not None else self.default_frames

    @property
    def report_files(self) -> list[Path]:
        return [self.report_json, self.report_png]

    def video_files(self) -> dict[str, Path]:
        return {"mp4": self.mp4, "gif": self.gif, "frames": self.frames}

    def set_files(self) -> list[Path]:
        """Every output a run may publish at its default place (retired when not written).

        A ``frames_dir`` chosen by the user is never in it: it is replaced when frames
        are written there, and never removed otherwise.
        """
        return [
            self.preds,
            self.mp4,
            self.gif,
            self.result,
            self.maps_jpg,
            self.maps_npz,
            self.default_frames,
            *self.report_files,
            self.points_csv,
            self.points_jpg,
        ]


def refuse_inputs_as_outputs(paths: MorphPaths, inputs) -> None:
    """Refuse a morph whose outputs (the set, the frames folder, the checkpoint, the snapshots)
    would replace or remove one of ``inputs`` (paths; arrays are skipped), before any work.

    Raises:
      InputError: naming the output and the input.
    """
    refuse_inputs(paths.set_files() + [paths.frames, paths.checkpoint, *snapshot_files(paths.train)], inputs)


def check_before_work(
    paths: MorphPaths, size: tuple[int, int], config, options: OutputOptions, optimising: bool
) -> None:
    """Every check of one morph's outputs that could otherwise fail after the work, then its
    folders created: the strip's width and the GIF's memory for frames of ``size``
    (``(height, width)``, :func:`~diffmorph.app.write.check_outputs`) and the folders
    (:func:`prepare_folders`). :func:`~diffmorph.app.morph.morph` and each row of a batch call it
    (with :func:`refuse_inputs_as_outputs`), so a batch row is refused exactly as the morph would be.

    Raises:
      InputError, OutputError: as those functions.
    """
    check_outputs(size, 1, config, options)
    prepare_folders(paths, options, optimising)


def prepare_folders(paths: MorphPaths, options: OutputOptions, optimising: bool) -> None:
    """Check and create the output folders before any work (fail fast).

    Raises:
      InputError: the output folder or the frames folder is an existing file, or the
        frames folder holds other files or frames no earlier run published there; an
        output name is taken by a folder.
      OutputError: a folder cannot be created or is not writable; ffmpeg is missing.
    """
    for folder, what, setting in (
        (paths.root, "output folder", "out_dir"),
        (paths.frames, "frames folder", "frames_dir"),
    ):
        try:
            if folder.exists() and not folder.is_dir():
                raise InputError(f"the {what} {display_path(folder)} exists and is not a folder", setting=setting)
        except OSError as exc:
            raise InputError(
                f"the {what} {display_path(folder)} cannot be used ({exc.strerror or exc})", setting=setting
            ) from None
    if "frames" in options.formats:
        check_frames_folder(paths.frames)
        frames = paths.frames
        if (
            frames.is_dir()
            and any(frames.iterdir())
            and not is_earlier_output(frames, read_manifest(paths.root, "morph"), paths.root)
        ):
            raise InputError(
                f"the frames folder {display_path(frames)} holds frames an earlier run into "
                f"{display_path(paths.root)} did not write (or changed since); it would be replaced as a whole: "
                f"choose an empty or new folder (or delete it yourself if it is an old output)"
            )
    for folder in (paths.root, paths.morph) + ((paths.train,) if optimising else ()):
        ensure_folder(folder)
    if "frames" in options.formats:
        ensure_folder(paths.frames.parent)
    for file in (paths.preds, paths.mp4, paths.gif, paths.result, paths.maps_jpg, paths.maps_npz, paths.checkpoint):
        if file.is_dir():
            raise InputError(f"{display_path(file)} is a folder; cannot write the output there", setting="out_dir")
    if "mp4" in options.formats:
        check_ffmpeg()


def check_ffmpeg() -> None:
    """Raise OutputError unless an ffmpeg for the MP4 writer is there (one clear line)."""
    from ..io import video

    checker = getattr(video, "check_ffmpeg", None)
    if checker is not None:
        checker()
