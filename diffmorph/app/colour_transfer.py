"""Colour transfer between image files: IMAGE recoloured towards PALETTE's colours, written to OUT.

The one path from files to the output for ``diffmorph colour-transfer`` (and the API):
check every setting and the output's format first, read both images
(:func:`diffmorph.io.images.read_image`: any format Pillow reads, as uint8 RGB), run
:func:`diffmorph.core.colour.colour_transfer`, write the result atomically
(:func:`diffmorph.io.files.save_image`). Nothing is written on any error. No
TensorFlow: the solver is numpy.

Convention: images are uint8 ``(H, W, 3)`` RGB, 0..255; W2 figures are distances
between Gaussian fits of the colours in unit-cube RGB (:mod:`diffmorph.core.colour`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..core.colour import TransferSettings, colour_transfer, gaussian_stats, w2_gaussian
from ..errors import InputError, OutputError
from ..io.files import check_folder_path, save_image
from ..io.images import read_image
from .progress import SILENT, Progress


def check_output_path(out_path) -> Path:
    """Check that ``out_path`` names an image format OpenCV writes, in an existing writable folder.

    Raises:
      InputError: no extension, or one no image writer handles (e.g. ``.xyz``),
        ``out_path`` is a folder, or its folder is a file.
      OutputError: the folder does not exist or is not writable.
    """
    import cv2

    path = Path(out_path)
    if path.is_dir():
        raise InputError(f"{out_path}: is a folder; give an output file name such as out.png")
    if not path.suffix or not cv2.haveImageWriter(str(path)):
        raise InputError(
            f"{out_path}: unknown image format {path.suffix or '(no extension)'!r}; use .png, .jpg, .bmp, .tif or .webp"
        )
    folder = path.parent
    check_folder_path(folder)  # a file where the folder should be: bad input, as for every command
    if not folder.is_dir():
        raise OutputError(f"{folder}: no such folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{folder} is not writable")
    return path


def transfer_file(
    image_path,
    palette_path,
    out_path,
    settings: TransferSettings = TransferSettings(),
    progress: Progress = SILENT,
) -> dict:
    """Recolour the image at ``image_path`` towards the colours of ``palette_path``; write ``out_path``.

    Args:
      image_path, palette_path: image files (what :func:`~diffmorph.io.images.read_image`
        reads; at least 2 x 2 pixels).
      out_path: the output; its extension picks the format (.png, .jpg, ...).
      settings: the method and solver settings (:class:`~diffmorph.core.colour.TransferSettings`).
      progress: a :class:`~diffmorph.app.progress.Progress`: receives the ``colour`` phase
        (Sinkhorn iterations for ``"uot"``, no total for ``"gaussian"``), and can cancel.

    Returns:
      ``{"w2_before": W2(Gaussian(image), Gaussian(palette)), "w2_after": W2(Gaussian(result),
      Gaussian(palette)), "seconds": wall time of the whole call}``; W2 in unit-cube RGB.

    Raises:
      InputError: an argument of the wrong type, an unknown output extension (checked
        before reading anything), or an unreadable / unusable input image. One-line messages.
      OutputError: the output folder is missing or not writable, or the write fails.
      Cancelled: ``progress.cancel()`` was called (nothing is written).
    """
    start = time.perf_counter()
    for name, value in (("image_path", image_path), ("palette_path", palette_path), ("out_path", out_path)):
        if not isinstance(value, (str, os.PathLike)) or not str(os.fspath(value)).strip():
            raise InputError(f"{name} must be a file path (got {value!r})")
    if not isinstance(settings, TransferSettings):
        raise InputError(f"settings must be a TransferSettings (got {type(settings).__name__})")
    if not isinstance(progress, Progress):
        raise InputError(f"progress must be a diffmorph.Progress (got {type(progress).__name__})")
    path = check_output_path(out_path)
    image = read_image(image_path).pixels
    palette = read_image(palette_path).pixels

    def solver_progress(done: int, total: int) -> None:
        progress.check_cancelled()
        progress.update(done)

    with progress.phase("colour", settings.iterations if settings.method == "uot" else None):
        progress.check_cancelled()
        result = colour_transfer(image, palette, settings, progress=solver_progress)
    save_image(path, result)
    goal = gaussian_stats(palette)
    return {
        "w2_before": w2_gaussian(gaussian_stats(image), goal),
        "w2_after": w2_gaussian(gaussian_stats(result), goal),
        "seconds": time.perf_counter() - start,
    }
