"""Alpha schedules: which alpha each frame of a morph is rendered at.

Convention: a schedule is a list of floats in [0, 1], non-decreasing, starting at
exactly 0.0 (the source) and ending at exactly 1.0 (the target); frame ``j`` of ``n``
has progress ``t_j = j / (n - 1)``. Three independent choices compose:

* pacing ``linear`` (default, the original's): ``alpha_j = t_j``
  (:func:`linear_alphas`).
* pacing ``uniform``: even perceived steps, DiffMorpher's rule for re-timing the
  interpolation parameter (Zhang et al., *DiffMorpher: Unleashing the Capability of
  Diffusion Models for Image Morphing*, CVPR 2024, https://arxiv.org/abs/2312.07409).
  A dense pass renders frames at ``a_0 = 0 < a_1 < ... < a_m = 1`` and measures the
  distances ``d_k`` between neighbours; the cumulative curve ``C_k = (d_1 + ... + d_k) / (d_1 + ... + d_m)``
  defines the piecewise-linear, non-decreasing ``D(a_k) = C_k``, and
  ``alpha_j = D^-1(t_j)``. Where ``D`` is flat (zero distances), ``D^-1(p)`` is the
  smallest alpha with ``D(alpha) >= p`` (the generalised inverse), so the schedule stays
  monotone; a curve with no positive distance falls back to linear pacing.
* ease ``none`` | ``sine`` | ``cubic`` (ease-in-out, https://easings.net): the eased
  progress ``e(t_j)`` replaces ``t_j`` before pacing, i.e. linear pacing gives
  ``alpha_j = e(t_j)`` and uniform pacing ``alpha_j = D^-1(e(t_j))``:
  ``sine(t) = (1 - cos(pi t)) / 2``; ``cubic(t) = 4 t^3`` for ``t < 1/2`` and
  ``1 - (2 - 2t)^3 / 2`` after. Both are symmetric, ``e(0) = 0``, ``e(1/2) = 1/2``,
  ``e(1) = 1``, with zero slope at the ends.
* hold ``N``: the schedule starts with ``N`` extra ``0.0`` and ends with ``N`` extra
  ``1.0`` (``n + 2N`` alphas; a looping video rests on each image). A renderer may
  render a repeated alpha once and repeat the frame.

Which distance drives ``uniform`` (``distance=``): ``"mad"`` (default), the mean
absolute difference of neighbouring frames, or ``"msssim"``, ``sqrt(1 - MS-SSIM)``
(:func:`~diffmorph.core.metrics.msssim` on the frames' ``distance_copy``). The inversion
assumes an *additive* distance: the dense pass measures steps of ``1/m`` and the result
must be even for steps of ``1/(n-1)``, so a step's distance has to be the sum of its
sub-steps'. MAD is: on the three bench pairs it grows linearly with the step.
``1 - MS-SSIM`` is not: it is roughly linear in the step while pixels change by less
than a grey level (uint8 rounding dominates) and quadratic above, and a 100-frame
morph's steps sit between the two; its square root is closer to additive for larger
steps only. The two measures also disagree about where the photo morph moves fast
(MAD: at the ends, where the warp moves edges; 1 - MS-SSIM: in the middle and near
the target), so no schedule evens both; MAD is the one the inversion can make even.
The figures (``tools/pacing_bench.py``) are in docs/guides/measuring.md, "Even pacing, easing, holds".

The dense pass (:func:`measure_path`) renders :data:`DEFAULT_DENSE` + 1 frames, not a
multiple of the final count: the curve is smooth (more intervals improve the pace
only a little), and its cost must stay a small part of rendering the morph (per frame
it costs as much as the morph's own frames when the output is at most 256 pixels, as
the bundled pair is). The caller builds its renderer on the inputs downscaled to at
most 256 pixels on the long side; when the inputs are that small already, the morph's
own renderer can be passed (same frames, no second set of compiled programs).
"""

from __future__ import annotations

import math

import numpy as np

from ..config import EASES, PACINGS  # the settings' choices, shared with MorphConfig
from .metrics import DISTANCE_SIDE, distance_copy, mean_abs_diff, msssim

DISTANCES = ("mad", "msssim")
DEFAULT_DENSE = 16  # intervals of the dense pass (17 rendered frames)


def linear_alphas(frames: int) -> list[float]:
    """The original's schedule: ``alpha_i = i / (frames - 1)`` for ``i = 0 .. frames - 1``.

    Raises:
      ValueError: if ``frames < 2``.
    """
    if frames < 2:
        raise ValueError(f"frames must be >= 2 (got {frames})")
    last = frames - 1
    return [i / last for i in range(frames)]


def eased(t: float, kind: str = "none") -> float:
    """Eased progress ``e(t)`` for ``t`` in [0, 1] (module docstring), exact at 0 and 1.

    Raises:
      ValueError: unknown ``kind`` or ``t`` outside [0, 1].
    """
    if kind not in EASES:
        raise ValueError(f"ease must be one of {', '.join(EASES)} (got {kind!r})")
    if not 0 <= t <= 1:
        raise ValueError(f"progress must be in [0, 1] (got {t})")
    if t in (0, 0.5, 1) or kind == "none":  # exact where the closed forms are
        return float(t)
    if t > 0.5:  # symmetric: the second half mirrors the first
        return 1.0 - eased(1.0 - t, kind)
    if kind == "sine":
        return (1.0 - math.cos(math.pi * t)) / 2
    return 4.0 * t**3


def invert_curve(alphas, distances, progress) -> list[float]:
    """``D^-1(p)`` for each ``p`` in ``progress``: DiffMorpher's piecewise-linear inversion.

    Args:
      alphas: the dense pass's alphas ``a_0 = 0 < ... < a_m = 1``, ``m + 1`` floats.
      distances: ``d_1 .. d_m``, ``m`` floats >= 0, ``d_k`` between frames ``k - 1`` and ``k``.
      progress: values in [0, 1] (a non-decreasing list gives non-decreasing alphas).

    Returns:
      One alpha per progress value: ``a_{k-1} + (p - C_{k-1}) / (C_k - C_{k-1}) (a_k - a_{k-1})``
      for the first ``k`` with ``C_k >= p``; exactly 0.0 for ``p = 0`` and 1.0 for
      ``p = 1``. With no positive distance, ``alpha = p`` (linear pacing).

    Raises:
      ValueError: lengths that disagree, alphas not increasing from 0 to 1,
        negative or non-finite distances, or progress outside [0, 1].
    """
    a = np.asarray(alphas, np.float64)
    d = np.asarray(distances, np.float64)
    if a.ndim != 1 or len(a) < 2 or d.shape != (len(a) - 1,):
        raise ValueError(f"need m + 1 alphas and m distances (got {a.shape} and {d.shape})")
    if a[0] != 0 or a[-1] != 1 or np.any(np.diff(a) <= 0):
        raise ValueError("the dense alphas must increase from exactly 0 to exactly 1")
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ValueError("distances must be finite and >= 0")
    total = float(d.sum())
    cumulative = np.concatenate([[0.0], np.cumsum(d) / total]) if total > 0 else None  # C_0 .. C_m
    if cumulative is not None:
        cumulative[-1] = 1.0  # exactly, whatever the rounding of the sum
    out = []
    for p in progress:
        p = float(p)
        if not 0 <= p <= 1:
            raise ValueError(f"progress must be in [0, 1] (got {p})")
        if p == 0 or p == 1 or cumulative is None:
            out.append(p)
            continue
        k = int(np.searchsorted(cumulative, p, side="left"))  # first k with C_k >= p: C_{k-1} < p, 1 <= k <= m
        c0, c1 = cumulative[k - 1], cumulative[k]
        out.append(float(min(a[k], a[k - 1] + (p - c0) / (c1 - c0) * (a[k] - a[k - 1]))))
    return out


def measure_path(
    renderer, dense: int = DEFAULT_DENSE, distance: str = "mad", side: int = DISTANCE_SIDE
) -> tuple[list[float], list[float]]:
    """The dense pass: render ``dense + 1`` frames at even alphas, measure neighbours.

    Args:
      renderer: has ``render(index, alpha).image`` -> uint8 ``(H, W, 3)``, like
        :class:`~diffmorph.core.render.FrameRenderer` (build it on the inputs
        downscaled to at most 256 pixels: the distances are taken at that size).
      dense: number of intervals ``m`` (>= 1).
      distance: ``"mad"`` (mean absolute difference, levels of 0..255) or ``"msssim"``
        (``sqrt(1 - MS-SSIM)`` of the frames' :func:`distance_copy`).
      side: long side for the MS-SSIM copies.

    Returns:
      ``(alphas, distances)``: ``m + 1`` alphas ``k / m`` and ``m`` distances >= 0.

    Raises:
      ValueError: bad ``dense`` or ``distance``.
    """
    if not isinstance(dense, int) or isinstance(dense, bool) or dense < 1:
        raise ValueError(f"dense must be an integer >= 1 (got {dense!r})")
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {', '.join(DISTANCES)} (got {distance!r})")
    alphas = linear_alphas(dense + 1)
    distances, previous = [], None
    for k, alpha in enumerate(alphas):
        frame = renderer.render(k, alpha).image
        current = distance_copy(frame, side) if distance == "msssim" else frame
        if previous is not None:
            distances.append(
                math.sqrt(max(0.0, 1.0 - msssim(previous, current)))
                if distance == "msssim"
                else mean_abs_diff(previous, current)
            )
        previous = current
    return alphas, distances


def with_hold(alphas, hold: int) -> list[float]:
    """``hold`` extra copies of the first alpha in front and of the last at the end.

    Raises:
      ValueError: ``hold`` not an integer >= 0.
    """
    if not isinstance(hold, int) or isinstance(hold, bool) or hold < 0:
        raise ValueError(f"hold must be an integer >= 0 (got {hold!r})")
    alphas = list(alphas)
    return [alphas[0]] * hold + alphas + [alphas[-1]] * hold


def alphas_for(
    frames: int,
    pacing: str = "linear",
    ease: str = "none",
    hold: int = 0,
    renderer=None,
    dense: int = DEFAULT_DENSE,
    distance: str = "mad",
) -> list[float]:
    """The alphas to render a morph of ``frames`` frames at (module docstring).

    Defaults give the original's schedule, :func:`linear_alphas`.

    Args:
      frames: frames of the morph (>= 2), before ``hold``.
      pacing: ``"linear"`` or ``"uniform"`` (needs ``renderer``).
      ease: ``"none"``, ``"sine"`` or ``"cubic"``.
      hold: extra copies of the first and last frames (>= 0).
      renderer: for ``uniform``, a renderer as :func:`measure_path` takes.
      dense, distance: the dense pass's settings (:func:`measure_path`).

    Returns:
      ``frames + 2 * hold`` floats, non-decreasing, first exactly 0.0, last exactly 1.0.

    Raises:
      ValueError: a setting out of range (the message names it), or ``uniform``
        without a renderer.
    """
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 2:
        raise ValueError(f"frames must be an integer >= 2 (got {frames!r})")
    if pacing not in PACINGS:
        raise ValueError(f"pacing must be one of {', '.join(PACINGS)} (got {pacing!r})")
    if ease not in EASES:
        raise ValueError(f"ease must be one of {', '.join(EASES)} (got {ease!r})")
    with_hold([0.0], hold)  # validates hold before any rendering
    if pacing == "uniform" and renderer is None:
        raise ValueError("uniform pacing needs a renderer for its dense pass")
    progress = [eased(t, ease) for t in linear_alphas(frames)]
    if pacing == "linear":
        alphas = progress
    else:
        alphas = invert_curve(*measure_path(renderer, dense, distance), progress)
    return with_hold(alphas, hold)
