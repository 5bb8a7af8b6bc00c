"""The layout of a morph's measures as a JSON-able dict (what ``report.json`` holds).

Floats, ints, lists and None (JSON null for undefined values: NaN, infinity, a ratio
to a vanishing W2). Keys, with the units the dict itself states::

    frames, size [H, W], middle_index,
    distance {name, side, scales, distances, path_length, pdv, cv, max_over_mean},
    mad {name, units, distances, path_length, pdv, cv, max_over_mean},
    endpoints {source, target}, sharpness {...}, colour {..., distances, ...}, truth

``distances`` are the distances between neighbouring frames (``frames - 1`` of them).
Reports of diffmorph 0.2.0 and earlier called them ``steps`` (a word that also means
train steps and frame counts); :func:`upgrade` renames them, so old reports still
read. The formulas are :mod:`diffmorph.core.metrics`'s.
"""

from __future__ import annotations

import numpy as np

from .metrics import json_number, pace_stats

W2_FLOOR = 1e-6  # W2 below this is rounding (identical fits give ~1e-8): ratios to it are undefined


def _ratio(num, den, floor: float = 0.0):
    return None if num is None or den is None or not den > floor else json_number(num / den)


def measures(
    *,
    frames: int,
    size,
    middle_index: int,
    side: int,
    scales: int,
    distances,
    mad,
    endpoints: dict,
    sharpness,
    reference: float,
    reference_of: str,
    colour: dict,
    truth,
) -> dict:
    """The whole result of :meth:`diffmorph.core.meter.PathMeter.result`.

    Args:
      frames: the frame count. size: ``(H, W)``. middle_index: the middle frame.
      side, scales: the distance copies' long side and the MS-SSIM scales used.
      distances: ``1 - MS-SSIM`` of neighbours (``frames - 1`` floats).
      mad: mean absolute differences of neighbours (``frames - 1`` floats, levels).
      endpoints: ``{"source": compare or None, "target": compare or None}``.
      sharpness: every frame's variance of the Laplacian. reference: the value the
        middle frame's is compared with; reference_of: ``"inputs"`` or ``"end frames"``.
      colour: :func:`colour_entry`. truth: ``{"frame": index, **compare}`` or None.
    """
    return {
        "frames": frames,
        "size": list(size),
        "middle_index": middle_index,
        "distance": {
            "name": "1 - MS-SSIM",
            "side": side,
            "scales": scales,
            "distances": [float(x) for x in distances],
            **pace_stats(distances),
        },
        "mad": {
            "name": "mean absolute difference",
            "units": "levels of 0..255",
            "distances": [float(x) for x in mad],
            **pace_stats(mad),
        },
        "endpoints": endpoints,
        "sharpness": {
            "units": "variance of the Laplacian (grey levels squared)",
            "frames": [float(x) for x in sharpness],
            "middle": sharpness[middle_index],
            "reference": json_number(reference),
            "reference_of": reference_of,
            "middle_ratio": _ratio(sharpness[middle_index], reference),
        },
        "colour": colour,
        "truth": truth,
    }


def colour_entry(
    *, w2_ends: float, distances, deviation, geodesic_s, middle_variance: float, geodesic_mid_variance: float
) -> dict:
    """The ``"colour"`` entry: W2 between neighbours' colour fits, deviation from the geodesic.

    Args:
      w2_ends: W2 between the end frames' fits. distances: W2 between neighbours'.
      deviation, geodesic_s: each frame's distance to the geodesic and where along it.
      middle_variance, geodesic_mid_variance: ``Tr(cov)`` of the middle frame's fit and
        of the geodesic midpoint.
    """
    length = float(np.sum(distances))
    mean_step = length / len(distances)
    return {
        "units": "W2 between Gaussian fits of the frames' colours (unit-cube RGB)",
        "w2_ends": w2_ends,
        "distances": [float(x) for x in distances],
        "deviation": [float(x) for x in deviation],
        "geodesic_s": [float(s) for s in geodesic_s],
        "max_deviation": float(max(deviation)),
        "max_deviation_ratio": _ratio(max(deviation), w2_ends, W2_FLOOR),
        "path_length": length,
        "path_length_ratio": _ratio(length, w2_ends, W2_FLOOR),
        "max_step_ratio": _ratio(max(distances), mean_step, W2_FLOOR),
        "middle_variance": middle_variance,
        "geodesic_mid_variance": geodesic_mid_variance,
    }


OLD_KEY, KEY = "steps", "distances"  # the neighbour distances' key before and since the rename
ENTRIES = ("distance", "mad", "colour")  # the entries that hold neighbour distances


def upgrade(result: dict) -> dict:
    """A report dict (read from any version's ``report.json``) with today's key names.

    Old reports store the neighbour distances of ``distance``, ``mad`` and ``colour``
    under ``"steps"``; they come back under ``"distances"``. Returns a new dict (the
    entries it renames are copied); a current report comes back equal.
    """
    out = dict(result)
    for name in ENTRIES:
        entry = out.get(name)
        if isinstance(entry, dict) and OLD_KEY in entry and KEY not in entry:
            out[name] = {(KEY if key == OLD_KEY else key): value for key, value in entry.items()}
    return out
