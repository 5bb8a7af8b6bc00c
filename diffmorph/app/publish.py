"""Publishing one pair's outputs: everything written under temporary names, then published as one set.

:func:`publish_pair` is the last step of :func:`~diffmorph.app.morph.morph` and of each row of
:func:`~diffmorph.app.batch.morph_batch`: the maps file, ``preds.npy``, the point pairs, the
video/GIF/frames, the strip and maps image and the report go into one
:class:`~diffmorph.io.outputs.OutputSet` (:class:`~diffmorph.app.layout.MorphPaths` says where);
a failure or a cancel leaves the previous set complete.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..errors import OutputError, display_path, stopped
from ..io import mapsfile
from ..io.files import save_image, save_npy
from ..io.outputs import OutputSet
from ..io.points import write_points
from .layout import MorphPaths
from .progress import Progress
from .report import Measurement
from .stream import PairFrames
from .write import OutputOptions, write_video


def settings_record(config) -> dict:
    """Every setting of ``config`` as JSON values (tuples as lists), as a maps file records them
    under ``"settings"``: a later run compares them to its own to know whether the maps, and the
    outputs rendered from them, were made as it asks now.

    >>> from diffmorph.config import MorphConfig
    >>> record = settings_record(MorphConfig(size=64, hold=2))
    >>> record["size"], record["hold"], record["size_schedule"]
    (64, 2, [])
    """
    return json.loads(json.dumps(dataclasses.asdict(config)))


def outputs_record(options: OutputOptions) -> dict:
    """The output options of a published set as a maps file records them under ``"outputs"``
    (formats sorted: their order changes no output).

    >>> outputs_record(OutputOptions(formats=("mp4", "gif")))
    {'formats': ['gif', 'mp4'], 'gif_max_side': 512, 'boomerang': False, 'report': False}
    """
    return {
        "formats": sorted(options.formats),
        "gif_max_side": options.gif_max_side,
        "boomerang": options.boomerang,
        "report": options.report,
    }


def publish_pair(
    pair,
    maps_low,
    config,
    paths: MorphPaths,
    options: OutputOptions,
    steps_done: int,
    progress: Progress,
    fitted: bool,
    guide=None,
) -> int:
    """Write every output of one pair's set under temporary names, then publish them together.

    Args:
      pair: the inputs (:class:`~diffmorph.app.inputs.Pair`, uint8 ``(H, W, 3)`` each, same size).
      maps_low: float32 ``(1, n, n, 16)``, the net's output (the maps).
      config: the settings the maps were made with and the frames are rendered with.
      paths: where the outputs go (:class:`~diffmorph.app.layout.MorphPaths`).
      options: formats, GIF size, boomerang, report.
      steps_done: the train steps the maps had (recorded in ``maps.npz``).
      progress: receives the ``render`` phase; ``progress.cancel()`` stops the writing.
      fitted: the maps were optimised by this run (their checkpoint is named in messages and
        the pair's point files are replaced; False: saved maps, whose point files are kept).
      guide: the point pairs (:class:`~diffmorph.app.points.Guide`) or None.

    Returns:
      the number of frames written.

    Raises:
      OutputError: an output cannot be written (the previous set stays complete).
      Interrupted, Cancelled: Ctrl-C or a cancel while writing (nothing is published).
    """
    from ..core.model import upsample_maps

    kept = f"; the optimised maps are kept in {display_path(paths.checkpoint)}" if fitted else ""
    measurement = None
    try:
        with OutputSet(paths.root, "morph") as outputs:
            extra = guide.meta() if guide is not None else {}
            extra.update(settings=settings_record(config), outputs=outputs_record(options))
            mapsfile.save_maps(outputs.stage(paths.maps_npz), maps_low, config, pair.digests, steps_done, **extra)
            if guide is not None:
                write_points(outputs.stage(paths.points_csv), guide.pixels)
                save_image(outputs.stage(paths.points_jpg), guide.drawing(pair.source, pair.target), quality=90)
            save_npy(outputs.stage(paths.preds), upsample_maps(maps_low, config.size).numpy())
            files = {fmt: path for fmt, path in paths.video_files().items() if fmt in options.formats}
            if options.report:
                measurement = Measurement()
            frames = write_video(
                [PairFrames(pair.source, pair.target, maps_low, paths.result, paths.maps_jpg)],
                config,
                files,
                options,
                outputs,
                progress,
                measurement,
            )
            if measurement is not None:
                points = guide.count if guide is not None else 0
                from .report import alignment_entry

                aligned = alignment_entry(
                    maps_low, config, None if guide is None else guide.normalised, maps_path=paths.maps_npz
                )
                stage_report(
                    outputs, measurement, paths.report_files, pair.source, pair.target, paths.morph, points, aligned
                )
            for path in paths.set_files():
                if fitted or path not in (paths.points_csv, paths.points_jpg):  # saved maps keep their points
                    outputs.retire(path)  # what this run wrote is staged, so not retired
            outputs.publish()
    except OutputError as exc:
        hint = " (resume with resume=True to write the outputs)" if fitted else ""
        raise OutputError(f"{exc}{kept}{hint}", setting=exc.setting) from None
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or progress.cancel()
        raise stopped(
            exc, f"while writing the outputs; the previous outputs are unchanged{kept}", resumable=fitted
        ) from None
    finally:
        if measurement is not None:
            measurement.close()
    return frames


def stage_report(
    outputs: OutputSet, measurement, files, source, target, measured: Path, points: int = 0, alignment=None
) -> None:
    """Stage ``report.json`` and ``report.png`` (``files``) of the frames ``measurement`` saw
    (``points``: the point pairs that guided the morph, recorded in the input; ``alignment``:
    :func:`~diffmorph.app.report.alignment_entry` of the maps, or None)."""
    from ..io.files import write_bytes

    described = {"path": str(measured), "kind": "rendered frames", "points": int(points)}
    result = {**measurement.result(source, target, origin=described), "alignment": alignment}
    contents = measurement.contents(result, files)
    for path in files:
        write_bytes(outputs.stage(path), contents[path])
