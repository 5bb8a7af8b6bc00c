"""Self-describing files for final maps (``maps.npz``) and resumable checkpoints.

Both are ``.npz`` files holding the arrays plus a JSON object ``meta`` with:

* ``format``: ``"diffmorph-maps-1"``; ``kind``: ``"maps"`` or ``"checkpoint"``
  (files of diffmorph 0.1 have no kind: a file with a ``low`` array is maps);
* the settings the maps depend on (:data:`diffmorph.config.MAPS_SETTINGS`: working
  size, scales, add_first, map_size, mult_floor), ``seed`` and ``train_steps``
  (``steps_done`` is how many were done), and the optimiser's settings
  (:data:`OPTIMISER_SETTINGS`: learning rate, its schedule, the working-size schedule,
  the point pairs' flow prior, the colour maps, the consistency weight), and the frames'
  ``geometry`` (:data:`RENDER_SETTINGS`: rendering such a file with ``geometry`` or
  ``colour_maps`` ``"auto"`` uses the recorded value);
* the package version and a SHA-256 of each input's pixels, so that maps made for
  other images or settings are recognised;
* for a guided morph, ``points`` (how many point pairs) and ``points_sha256`` (their
  SHA-256, :func:`diffmorph.io.points.points_digest`): a resumed run must use the same
  points; rendering saved maps needs none.

A maps file holds ``low``: the net's output, float32 ``(1, n, n, 16)`` (n = 84 for
the original's net); the maps at the working size are its deterministic bilinear
upsampling. A checkpoint holds the net's and Adam's variables by name (see
:meth:`diffmorph.core.optimise.Trainer.state`) and ``stage_size``, the working size of
the stage (``MorphConfig.size_schedule``) its step ran at. Everything read is validated: a
hand-edited, truncated or foreign file gets one clear :class:`InputError`.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..config import MAPS_SETTINGS, MorphConfig
from ..errors import InputError, display_path
from ..version import __version__
from .files import save_arrays

FORMAT = "diffmorph-maps-1"
MAPS_KIND, CHECKPOINT_KIND = "maps", "checkpoint"
MAPS_CHANNELS = 16
# the optimiser's settings: they do not change how maps render, but a resumed run must go on with them
OPTIMISER_SETTINGS = (
    "learning_rate",
    "lr_schedule",
    "size_schedule",
    "point_prior",
    "colour_maps",
    "consistency_weight",
)
# rendering settings the maps were made for: "auto" renders a file with its recorded value
RENDER_SETTINGS = ("geometry", "colour_maps")
STORED_SETTINGS = MAPS_SETTINGS + ("seed", "train_steps") + OPTIMISER_SETTINGS + ("geometry",)  # what a file records
# settings stored by diffmorph 0.1 under other names
LEGACY_NAMES = {"epochs": "train_steps"}
# settings stored by earlier versions that were renamed with their meaning inverted
LEGACY_INVERTED = {"fast": "plain"}  # the fused/plain switch: fast=True is plain=False
ANY_POINTS = "any"  # mismatches(points=ANY_POINTS): do not compare the point pairs


def describe(config: MorphConfig, source_digest: str, target_digest: str, kind: str, **extra) -> dict:
    """The metadata stored beside maps or a checkpoint: settings, version, input digests."""
    meta = {
        "format": FORMAT,
        "kind": kind,
        "version": __version__,
        "source_sha256": source_digest,
        "target_sha256": target_digest,
    }
    meta.update({key: getattr(config, key) for key in STORED_SETTINGS})
    meta.update(extra)
    return meta


def save(path, meta: dict, **arrays) -> None:
    """Write arrays plus ``meta`` (as JSON) to an ``.npz``, atomically.

    Raises:
      OutputError: if the file cannot be written.
    """
    save_arrays(path, meta=np.asarray(json.dumps(meta, sort_keys=True)), **arrays)


def save_maps(
    path, maps_low: np.ndarray, config: MorphConfig, digests: tuple[str, str], steps_done: int, **extra
) -> None:
    """Write a maps file: ``maps_low`` float32 ``(1, n, n, 16)`` and its metadata (plus ``extra``).

    Raises:
      OutputError: if the file cannot be written.
    """
    save(
        path,
        describe(config, *digests, kind=MAPS_KIND, steps_done=int(steps_done), **extra),
        low=np.asarray(maps_low, np.float32),
    )


class SavedMaps(NamedTuple):
    """A maps file as read: its metadata, the maps (float32 ``(1, n, n, 16)``) and its path."""

    meta: dict
    maps_low: np.ndarray
    path: Path


def _read(path) -> tuple[dict, dict[str, np.ndarray]]:
    """The raw ``(meta, arrays)`` of a diffmorph ``.npz``; InputError if it is not one."""
    p = Path(path)
    name = display_path(path)
    try:
        if not p.is_file():
            raise InputError(f"{name}: no such file" if not p.exists() else f"{name}: not a regular file")
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if p.suffix.lower() == ".npy":
        raise InputError(
            f"{name} is a .npy array (preds.npy holds the working-size maps without "
            f"settings); pass the maps file morph/maps.npz instead"
        )
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(f"{name}: not a diffmorph maps file (unreadable: {type(exc).__name__})") from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, ValueError) as exc:
        raise InputError(f"{name}: not a diffmorph maps file (no valid metadata: {type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{name}: not a diffmorph maps file (its metadata is not a JSON object)")
    if meta.get("format") != FORMAT:
        raise InputError(f"{name}: not a diffmorph maps file (format {meta.get('format')!r})")
    for old, new in LEGACY_NAMES.items():
        if old in meta and new not in meta:
            meta[new] = meta.pop(old)
    for old, new in LEGACY_INVERTED.items():
        if old in meta:
            value = meta.pop(old)
            if new not in meta and isinstance(value, bool):
                meta[new] = not value
    meta.setdefault("kind", MAPS_KIND if "low" in arrays else CHECKPOINT_KIND)
    return meta, arrays


def load_maps(path) -> SavedMaps:
    """Read and check a maps file.

    Returns:
      :class:`SavedMaps`: ``meta`` (a dict) and ``maps_low``, float32 ``(1, n, n, 16)``, finite.

    Raises:
      InputError: missing, unreadable, not a maps file (a checkpoint or ``preds.npy``
        gets a message naming the right file), maps of the wrong shape or not finite.
    """
    meta, arrays = _read(path)
    name = display_path(path)
    if meta["kind"] == CHECKPOINT_KIND or "low" not in arrays:
        raise InputError(
            f"{name} is a checkpoint (for resume=True), not maps; pass the maps file (morph/maps.npz) beside it",
            setting="maps",
        )
    low = arrays["low"]
    if (
        low.ndim != 4
        or low.shape[0] != 1
        or low.shape[1] != low.shape[2]
        or low.shape[1] < 2
        or low.shape[3] != MAPS_CHANNELS
        or low.dtype.kind != "f"
    ):
        raise InputError(f"{name}: maps of shape {low.shape} ({low.dtype}); expected float (1, n, n, {MAPS_CHANNELS})")
    if not np.isfinite(low).all():
        raise InputError(
            f"{name}: the maps hold NaN or infinite values (the optimisation that made them diverged); optimise again"
        )
    done = meta.get("steps_done", 0)
    if not isinstance(done, int) or isinstance(done, bool) or done < 0:
        raise InputError(f"{name}: steps_done {done!r} is not a number of train steps (a non-negative integer)")
    return SavedMaps(meta, low.astype(np.float32, copy=False), Path(path))


def load_checkpoint(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a checkpoint: ``(meta, state)`` for :meth:`~diffmorph.core.optimise.Trainer.load_state`.

    Raises:
      InputError: missing, unreadable, not a checkpoint, or non-finite variables.
    """
    meta, arrays = _read(path)
    name = display_path(path)
    if meta["kind"] != CHECKPOINT_KIND or "step" not in arrays:
        raise InputError(f"{name} is not a checkpoint")
    for key, value in arrays.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise InputError(f"{name}: {key} holds NaN or infinite values; delete the checkpoint and start again")
    return meta, arrays


def stored_settings(meta: dict, path) -> dict:
    """The settings a maps file or checkpoint was made with, checked.

    Returns:
      ``{setting: value}`` for the :data:`STORED_SETTINGS` present in ``meta``.

    Raises:
      InputError: if a stored value is not valid for :class:`MorphConfig`.
    """
    settings = {key: meta[key] for key in STORED_SETTINGS if key in meta}
    try:
        config = MorphConfig(**settings)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{display_path(path)}: stores invalid settings ({exc})") from None
    return {key: getattr(config, key) for key in settings}  # as MorphConfig holds them (JSON lists: tuples)


def mismatches(
    meta: dict,
    config: MorphConfig,
    source_digest: str,
    target_digest: str,
    optimiser: bool = False,
    points: tuple[int, str] | None | str = None,
) -> list[str]:
    """How ``meta`` differs from the maps settings of ``config`` and the inputs (empty if it fits).

    ``optimiser=True`` (resuming, or re-using finished maps as the result of an optimisation)
    also compares :data:`OPTIMISER_SETTINGS`; a file without them (diffmorph 0.1) was made
    with the defaults. With ``optimiser=True`` the point pairs are compared too:
    ``points`` is ``(count, sha256)`` of this run's, ``None`` for none, or
    :data:`ANY_POINTS` not to compare them.
    """
    out = []
    if meta.get("source_sha256") != source_digest:
        out.append("the source image differs")
    if meta.get("target_sha256") != target_digest:
        out.append("the target image differs")
    for key in MAPS_SETTINGS:
        if meta.get(key) != getattr(config, key):
            out.append(f"{key} was {meta.get(key)!r}, now {getattr(config, key)!r}")
    for key in OPTIMISER_SETTINGS if optimiser else ():
        stored = meta.get(key, getattr(MorphConfig, key))
        if json.dumps(stored) != json.dumps(getattr(config, key)):  # JSON keeps tuples as lists
            out.append(f"{key} was {stored!r}, now {getattr(config, key)!r}")
    if optimiser and points != ANY_POINTS and meta.get("points_sha256") != (points[1] if points else None):
        out.append(point_change(meta.get("points", 0), points[0] if points else 0))
    return out


def point_change(before: int, now: int) -> str:
    """How the point pairs changed, for a message: counts, or "other points"."""
    if before == now:
        return f"other point pairs ({now})"
    return f"point pairs: {before or 'none'} before, {now or 'none'} now"
