"""Weight-free measures of a morph: endpoint fidelity, pacing, sharpness and colour path.

Convention (every function here):

* A frame is uint8 ``(H, W, 3)`` RGB, 0..255; a morph is frames ``f_0 .. f_{n-1}``
  of one size, ``f_0`` the source end and ``f_{n-1}`` the target end.
* ``d_i`` (``i = 1 .. n-1``) is a distance between the neighbours ``f_{i-1}`` and ``f_i``.
* The *middle frame* is ``f_m`` with ``m = (n - 1) // 2`` (0-based): the exact middle
  for odd ``n``, the earlier of the two middle frames for even ``n`` (frame 49 of 100,
  alpha 49/99 under the original's linear schedule).
* Colours for the colour path are unit-cube RGB as in :mod:`diffmorph.core.colour`.

Measures (formula, source):

* PSNR (peak 255): ``10 log10(255^2 / MSE)``, MSE over all pixels and channels;
  infinite for identical images (the JSON result stores ``null`` and ``exact: true``).
* SSIM: Wang, Bovik, Sheikh, Simoncelli, *Image quality assessment: from error
  visibility to structural similarity*, IEEE TIP 2004
  (https://doi.org/10.1109/TIP.2003.819861), computed by ``tf.image.ssim`` with the
  paper's parameters: 11 x 11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03,
  dynamic range 255, per channel then averaged over R, G, B. Images smaller than 11
  pixels use a window of their smaller side.
* Distance between neighbours ``d_i = 1 - MS-SSIM(f_{i-1}, f_i)`` in [0, 1]
  (:func:`msssim_distance`; not a perceptual distance in the LPIPS sense): Wang,
  Simoncelli, Bovik, *Multi-scale structural similarity for image quality assessment*,
  Asilomar 2003 (https://doi.org/10.1109/ACSSC.2003.1292216), by
  ``tf.image.ssim_multiscale`` (its ``cs`` and SSIM terms are clipped at 0 before the
  powers). Both frames are first downscaled (``cv2.INTER_AREA``, aspect ratio kept) so
  that the long side is at most :data:`DISTANCE_SIDE` = 256 pixels: the numbers do not
  depend on the output resolution (LPIPS-style measures are also taken near that size),
  they match the pacing pass's option ``distance="msssim"`` (rendered at that size), and
  the cost per step no longer grows with the frame size (docs/guides/measuring.md).
  Each MS-SSIM scale halves the image and needs a side of at least the
  11-pixel window, so it uses the largest ``k <= 5`` scales that fit (five from 161
  pixels on the short side, four from 81, three from 41, two from 21, else one) with
  the paper's power factors ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)`` truncated to
  the first (finest) ``k`` and renormalised to sum to 1, so identical frames still give
  0 and the distance stays in [0, 1].
* Mean absolute difference (MAD) ``mean |f_{i-1} - f_i|`` over all pixels and
  channels at full resolution, in levels of 0..255 (a second, simpler column).
* Path length ``PPL = sum_i d_i`` and pace evenness ``PDV = Var(d_i)`` (population
  variance), the measures of DiffMorpher (Zhang et al., CVPR 2024,
  https://arxiv.org/abs/2312.07409), and the scale-free ``CV = std(d_i) / mean(d_i)``
  (0 for perfectly even steps), which compares morphs of different lengths and content.
* Sharpness: variance of the Laplacian (Pech-Pacheco et al., *Diatom autofocusing in
  brightfield microscopy*, ICPR 2000) of the grey frame (``cv2.COLOR_RGB2GRAY``,
  ``cv2.Laplacian`` with its 3 x 3 kernel, float64), in squared grey levels; the middle
  frame's value relative to the mean of the inputs' (of ``f_0`` and ``f_{n-1}`` when no
  inputs are given). Cross-dissolved ghosts lower it.
* Colour path: each frame's colours are fitted by a Gaussian ``G_i``
  (:func:`~diffmorph.core.colour.gaussian_stats`, on a regular pixel subsample of at
  most :data:`COLOUR_PIXELS` pixels: every ``k``-th row and column, which samples the
  colours without blurring them). With ``W = W2(G_0, G_{n-1})``
  (:func:`~diffmorph.core.colour.w2_gaussian`) and the Bures geodesic ``gamma(s)``
  from ``G_0`` to ``G_{n-1}`` (:func:`~diffmorph.core.colour.bures_geodesic`):

  - deviation of frame ``i``: ``dev_i = min_{s in [0, 1]} W2(G_i, gamma(s))``, the W2
    distance from the frame's Gaussian to the geodesic *curve* (no alpha needed, so it
    works for any tool's frames); computed on a grid of :data:`~diffmorph.core.colour.geodesic.GEODESIC_GRID` + 1
    values of ``s``, then refined by golden-section search around every grid local
    minimum to ``|ds| < 1e-5`` (a W2 error below ``1e-5 W``). ``s_i``, the minimiser, is where the frame's colours
    are along the geodesic. Reported: ``max_i dev_i / W``;
  - ratios to ``W`` (or to the mean step) are None when it is below :data:`~diffmorph.core.report_layout.W2_FLOOR`
    (1e-6: identical colour fits give about 1e-8 from rounding);
  - the geodesic's Bures map regularises ``C_0`` by a small ridge
    (:data:`diffmorph.core.colour.RIDGE`), so ``bures_geodesic(G_0, G_{n-1}, 1)`` misses
    ``G_{n-1}`` slightly (by ``9e-4 W`` on the bundled photos); ``gamma(1)`` is taken as
    ``G_{n-1}`` itself, so both end frames deviate by 0, and deviations of that order are
    within the regularisation's error;
  - colour path length ``sum_i W2(G_{i-1}, G_i) / W`` (1 for a path along the
    geodesic, more for a detour), and the largest step over the mean step (1 for even
    colour steps);
  - colour variance ``Tr(cov)`` of the middle frame against the geodesic midpoint's,
    ``Tr(cov(gamma(0.5)))`` (a lower one means washed-out, averaged colours).

Not FID, not LPIPS: published perceptual path numbers (DiffMorpher's and IMPUS's
LPIPS-based PPL and PDV; FID between frame sets) use features of nets pretrained on
ImageNet, whose weights are not used here. These measures are weight-free, so their
values are self-consistent (comparable between morphs measured here) but not comparable
with published LPIPS or FID figures, and they are never called by those names.

The streaming meter that applies these to a morph frame by frame is
:mod:`diffmorph.core.meter`; the layout of its result (``report.json``) is
:mod:`diffmorph.core.report_layout`; the distance to the colour geodesic is
:mod:`diffmorph.core.colour.geodesic`.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from .colour import Gaussian, gaussian_stats

PEAK = 255.0  # PSNR and SSIM dynamic range of uint8 frames
SSIM_WINDOW = 11  # Gaussian window size (Wang et al. 2004)
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, finest to coarsest
DISTANCE_SIDE = 256  # long side (pixels) of the copies 1 - MS-SSIM is computed on
COLOUR_PIXELS = 256 * 256  # colour statistics use at most about this many pixels per frame


def check_frame(frame, name: str = "frame") -> np.ndarray:
    """``frame`` as a uint8 ``(H, W, 3)`` array.

    Raises:
      ValueError: another dtype, rank or channel count.
    """
    array = np.asarray(frame)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{name} must be uint8 (H, W, 3) RGB; got {array.dtype} {array.shape}")
    return array


def _check_pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = check_frame(a, "a"), check_frame(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} and {b.shape}")
    return a, b


def psnr(a, b) -> float:
    """PSNR of ``b`` against ``a`` in dB, peak 255: ``10 log10(255^2 / MSE)``.

    Args:
      a, b: uint8 ``(H, W, 3)`` RGB of one size.

    Returns:
      float; ``inf`` for identical images.

    Raises:
      ValueError: wrong dtype or shape, or different sizes.
    """
    a, b = _check_pair(a, b)
    mse = float(np.mean(np.square(a.astype(np.float64) - b.astype(np.float64))))
    return math.inf if mse == 0 else 10.0 * math.log10(PEAK * PEAK / mse)


def mean_abs_diff(a, b) -> float:
    """Mean absolute difference over all pixels and channels, in levels of 0..255.

    Raises:
      ValueError: as :func:`psnr`.
    """
    a, b = _check_pair(a, b)
    return float(cv2.absdiff(a, b).mean(dtype=np.float64))


@functools.cache
def _ssim_program(
    window: int, power_factors: tuple[float, ...] | None, sigma: float, k1: float, k2: float, peak: float
):
    """A compiled ``(a, b) -> SSIM`` (``power_factors`` None) or ``-> MS-SSIM``, float32 scalar.

    Takes float32 ``(1, H, W, 3)`` in 0..``peak``; one program per setting (traced per
    size). Every setting is an argument, captured by the traced function (no module
    global is read inside it).
    """
    import tensorflow as tf

    if power_factors is None:

        def program(a, b):
            return tf.image.ssim(a, b, max_val=peak, filter_size=window, filter_sigma=sigma, k1=k1, k2=k2)[0]
    else:

        def program(a, b):
            return tf.image.ssim_multiscale(
                a, b, max_val=peak, power_factors=power_factors, filter_size=window, filter_sigma=sigma, k1=k1, k2=k2
            )[0]

    return tf.function(program)


def _program(height: int, width: int, power_factors: tuple[float, ...] | None):
    return _ssim_program(_window(height, width), power_factors, SSIM_SIGMA, SSIM_K1, SSIM_K2, PEAK)


def _window(height: int, width: int) -> int:
    return min(SSIM_WINDOW, height, width)


def ssim(a, b) -> float:
    """SSIM of two images (Wang et al. 2004; parameters in the module docstring).

    Args:
      a, b: uint8 ``(H, W, 3)`` RGB of one size (sides below 11 use a smaller window).

    Returns:
      float in [-1, 1]; 1 for identical images.

    Raises:
      ValueError: as :func:`psnr`.
    """
    a, b = _check_pair(a, b)
    program = _program(*a.shape[:2], None)
    return float(program(a[None].astype(np.float32), b[None].astype(np.float32)))


def msssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales an image of ``height x width`` allows (1..5).

    Scale ``j`` has sides ``ceil(side / 2^j)`` (``tf.image.ssim_multiscale`` pads odd
    sides); each must be at least the 11-pixel window.
    """
    scales, side = 1, min(height, width)
    while scales < len(MSSSIM_WEIGHTS) and -(-side // 2) >= SSIM_WINDOW:
        side = -(-side // 2)
        scales += 1
    return scales


def power_factors(scales: int) -> tuple[float, ...]:
    """The first ``scales`` MS-SSIM power factors of Wang et al. 2003, renormalised to sum to 1."""
    picked = MSSSIM_WEIGHTS[:scales]
    total = sum(picked)
    return tuple(w / total for w in picked)


def distance_copy(frame, side: int = DISTANCE_SIDE) -> np.ndarray:
    """The copy of a frame :func:`msssim_distance` uses: long side at most ``side``.

    Downscaled with ``cv2.INTER_AREA`` (aspect ratio kept, sides rounded, at least 1);
    frames already small enough are returned as they are (never upscaled).

    Returns:
      uint8 ``(h, w, 3)``.
    """
    frame = check_frame(frame)
    height, width = frame.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return frame
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def msssim(a, b) -> float:
    """MS-SSIM of two images of one size, as they are (no downscaling).

    Uses :func:`msssim_scales` scales with :func:`power_factors`; one scale is plain
    SSIM clipped at 0.

    Returns:
      float in [0, 1]; 1 for identical images.

    Raises:
      ValueError: as :func:`psnr`.
    """
    a, b = _check_pair(a, b)
    height, width = a.shape[:2]
    program = _program(height, width, power_factors(msssim_scales(height, width)))
    return float(program(a[None].astype(np.float32), b[None].astype(np.float32)))


def msssim_distance(a, b, side: int = DISTANCE_SIDE) -> float:
    """``1 - MS-SSIM`` of the two frames' :func:`distance_copy` (the module's ``d_i``).

    Returns:
      float in [0, 1]; 0 for identical frames.
    """
    a, b = _check_pair(a, b)
    return 1.0 - msssim(distance_copy(a, side), distance_copy(b, side))


def sharpness(frame) -> float:
    """Variance of the Laplacian of the grey frame, in squared grey levels (0..255 units).

    Returns:
      float >= 0; 0 for a flat frame.
    """
    grey = cv2.cvtColor(check_frame(frame), cv2.COLOR_RGB2GRAY)
    _, std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_64F))  # population std, one pass in C
    return float(std[0, 0]) ** 2


def colour_stats(frame, max_pixels: int = COLOUR_PIXELS) -> Gaussian:
    """The frame's colour Gaussian (:func:`~diffmorph.core.colour.gaussian_stats`).

    Frames with more than ``max_pixels`` pixels use every ``k``-th row and column,
    ``k = ceil(sqrt(H W / max_pixels))`` (a regular sample: colours are not blurred).
    """
    frame = check_frame(frame)
    height, width = frame.shape[:2]
    step = max(1, math.ceil(math.sqrt(height * width / max_pixels)))
    return gaussian_stats(frame[::step, ::step] if step > 1 else frame)


def pace_stats(distances) -> dict:
    """Path length and evenness of the distances ``d_i`` between neighbouring frames.

    Returns:
      ``{"path_length": sum d_i, "pdv": Var(d_i) (population), "cv": std / mean,
      "max_over_mean": max d_i / mean d_i}``; ``cv`` and ``max_over_mean`` are None
      when the mean is 0, everything is None for no steps.
    """
    d = np.asarray(distances, np.float64)
    if d.size == 0:
        return {"path_length": None, "pdv": None, "cv": None, "max_over_mean": None}
    mean = float(d.mean())
    return {
        "path_length": float(d.sum()),
        "pdv": float(d.var()),
        "cv": float(d.std() / mean) if mean > 0 else None,
        "max_over_mean": float(d.max() / mean) if mean > 0 else None,
    }


def json_number(x):
    """A float for JSON: None for NaN or infinity (and for None)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def compare(frame, reference) -> dict:
    """Fidelity of ``frame`` to ``reference``: ``{"psnr", "ssim", "max_abs_diff", "exact"}``.

    ``psnr`` is None (JSON null) when the two are identical (``exact`` is then True);
    ``max_abs_diff`` is in levels of 0..255.

    Raises:
      ValueError: as :func:`psnr`.
    """
    frame, reference = _check_pair(frame, reference)
    diff = int(cv2.absdiff(frame, reference).max())
    return {
        "psnr": json_number(psnr(frame, reference)),
        "ssim": json_number(ssim(frame, reference)),
        "max_abs_diff": diff,
        "exact": diff == 0,
    }
