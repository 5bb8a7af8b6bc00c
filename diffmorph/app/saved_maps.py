"""Saved maps as a morph's input: a maps file's settings merged with the caller's, in one place.

A maps file (``morph/maps.npz``, :mod:`diffmorph.io.mapsfile`) stores the maps
settings they were made with (:data:`~diffmorph.config.MAPS_SETTINGS`) and digests of
the inputs. :func:`settings_for_maps` merges those settings with the caller's (a
config plus the names of the settings set on purpose, e.g. the flags given on the
command line); :func:`resolve_maps` reads the maps and checks them against the pair.
:func:`diffmorph.morph`, :func:`diffmorph.render_frames` and
:func:`diffmorph.stream_frames` all go through here.
"""

from __future__ import annotations

import os

import numpy as np

from ..config import MAPS_SETTINGS, MorphConfig
from ..errors import InputError, display_path
from ..io import mapsfile
from .inputs import check_types
from .progress import SILENT, Progress


def check_maps_array(maps: np.ndarray) -> np.ndarray:
    """``maps`` as float32 ``(1, n, n, 16)`` if it is one: real numbers, finite, ``n >= 1``.

    Raises:
      InputError: another shape or dtype, or values that are not finite (before TensorFlow sees them).
    """
    shape = maps.shape
    if maps.ndim != 4 or shape[0] != 1 or shape[3] != 16 or shape[1] != shape[2] or shape[1] < 1:
        raise InputError(f"maps must be a float32 (1, n, n, 16) array with n >= 1 (got shape {shape})", setting="maps")
    if not (np.issubdtype(maps.dtype, np.floating) or np.issubdtype(maps.dtype, np.integer)):
        raise InputError(f"maps must be a float32 (1, n, n, 16) array (got dtype {maps.dtype})", setting="maps")
    maps = maps.astype(np.float32, copy=False)
    if not np.isfinite(maps).all():
        raise InputError("maps must be finite (the array holds NaN or infinite values)", setting="maps")
    return maps


def settings_for_maps(
    saved: mapsfile.SavedMaps,
    config: MorphConfig | None,
    explicit=None,
    force: bool = False,
    progress: Progress = SILENT,
) -> MorphConfig:
    """The settings for rendering the maps of ``saved``: the file's maps settings merged with ``config``.

    The one place where a maps file's stored settings meet the caller's. The maps
    settings (:data:`~diffmorph.config.MAPS_SETTINGS`: size, scales, add_first,
    map_size, mult_floor) mean something only with the maps they made, so:

    * ``config`` None: the file's maps settings, the defaults for the rest;
    * ``explicit`` a collection of setting names (those the caller set on purpose,
      e.g. the flags given on a command line; ``config`` holds their values): every
      maps setting not in ``explicit`` comes from the file (a preset's value gives way
      to it); one in ``explicit`` that contradicts the file is refused unless
      ``force``, and with ``force`` it is used, with a notice;
    * ``explicit`` None with a ``config``: ``config`` is used as it is (every setting
      explicit); :func:`resolve_maps` refuses it if its maps settings differ from the
      file's, unless ``force``.

    Raises:
      InputError: the file stores invalid settings, or an explicit setting contradicts
        it without ``force`` (``error.setting`` names it).
    """
    stored = mapsfile.stored_settings(saved.meta, saved.path)
    stored = {key: stored[key] for key in MAPS_SETTINGS if key in stored}
    if config is None:
        config, explicit = MorphConfig(), ()
    elif explicit is None:
        return config
    explicit = set(explicit)
    name = display_path(saved.path)
    for field, value in stored.items():
        given = getattr(config, field)
        if field not in explicit or given == value:
            continue
        if not force:
            raise InputError(
                f"{name} was made with {field}={value!r}; {field}={given!r} contradicts it (leave the setting out, "
                f"or use force=True to use the value given)",
                setting=field,
            )
        progress.notice(f"force=True: using {field}={given!r} as given instead of {value!r} from {name}")
    return config.replace(**{key: value for key, value in stored.items() if key not in explicit})


def resolve_maps(
    maps, pair, config: MorphConfig | None, force: bool, explicit=None, progress: Progress = SILENT
) -> tuple[np.ndarray, MorphConfig, int]:
    """Saved maps for ``pair``: ``(maps_low, config, train steps they had)``.

    ``maps`` is a maps file (``morph/maps.npz``, as a path or already read by
    :func:`diffmorph.io.mapsfile.load_maps`) or a float32 ``(1, n, n, 16)`` array.
    With a file, the settings are :func:`settings_for_maps` of ``config`` and
    ``explicit``; maps settings that still differ from the file's, or inputs other
    than the file's, are refused unless ``force``.

    Raises:
      InputError: an unusable maps file, or a mismatch without ``force``.
    """
    if config is not None:
        check_types(config=(config, MorphConfig))
    if isinstance(maps, np.ndarray):
        return check_maps_array(maps), config or MorphConfig(), 0
    if not isinstance(maps, (str, os.PathLike, mapsfile.SavedMaps)):
        raise InputError(
            f"maps must be a maps file path or a float32 (1, n, n, 16) array (got {type(maps).__name__})",
            setting="maps",
        )
    saved = maps if isinstance(maps, mapsfile.SavedMaps) else mapsfile.load_maps(maps)
    config = settings_for_maps(saved, config, explicit, force, progress)
    problems = mapsfile.mismatches(saved.meta, config, *pair.digests)
    if problems and not force:
        raise InputError(
            f"{display_path(saved.path)} was made for another morph ({'; '.join(problems)}); "
            f"use force=True to render with it anyway",
            setting="maps",
        )
    for name, values in (("geometry", ("scaled", "between")), ("colour_maps", ("on", "off"))):
        if getattr(config, name) == "auto" and saved.meta.get(name) in values:
            config = config.replace(**{name: saved.meta[name]})  # render as the maps were made to be
    return saved.maps_low, config, saved.meta.get("steps_done", 0)
