"""Self-describing files for final maps (``maps.npz``) and resumable checkpoints.

Both store the settings the maps depend on (working size, scales, add_first), the
package version and a SHA-256 of each input's pixels, so that maps made for other
images or settings are recognised and refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..version import __version__
from ..config import MAPS_SETTINGS, MorphConfig
from ..errors import InputError
from .files import save_arrays

FORMAT = "diffmorph-maps-1"
# settings that change what the maps mean
BOUND_SETTINGS = MAPS_SETTINGS


def describe(config: MorphConfig, source_digest: str, target_digest: str, **extra) -> dict:
    """The metadata stored beside maps: bound settings, version, input digests."""
    meta = {"format": FORMAT, "version": __version__, "source_sha256": source_digest,
            "target_sha256": target_digest}
    meta.update({key: getattr(config, key) for key in BOUND_SETTINGS})
    meta.update(extra)
    return meta


def save(path, meta: dict, **arrays) -> None:
    """Write arrays plus ``meta`` (as JSON) to an ``.npz``, atomically.

    Raises:
      OutputError: if the file cannot be written.
    """
    save_arrays(path, meta=np.asarray(json.dumps(meta, sort_keys=True)), **arrays)


def load(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a file written by :func:`save`: ``(meta, arrays)``.

    Raises:
      InputError: missing, unreadable or not a diffmorph maps/checkpoint file.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such maps file")
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("meta")))
    except Exception as exc:  # zip, json and key errors all mean "not ours"
        raise InputError(f"{path}: not a diffmorph maps file ({type(exc).__name__})") from None
    if meta.get("format") != FORMAT:
        raise InputError(f"{path}: not a diffmorph maps file (format {meta.get('format')!r})")
    return meta, arrays


def mismatches(meta: dict, config: MorphConfig, source_digest: str, target_digest: str) -> list[str]:
    """How ``meta`` differs from the current settings and inputs (empty if it fits)."""
    out = []
    if meta.get("source_sha256") != source_digest:
        out.append("the source image differs")
    if meta.get("target_sha256") != target_digest:
        out.append("the target image differs")
    for key in BOUND_SETTINGS:
        if meta.get(key) != getattr(config, key):
            out.append(f"{key} was {meta.get(key)!r}, now {getattr(config, key)!r}")
    return out


def config_from(meta: dict, config: MorphConfig) -> MorphConfig:
    """``config`` with the bound settings taken from ``meta`` (used with ``--force``)."""
    return config.replace(**{key: meta[key] for key in BOUND_SETTINGS if key in meta})
