"""Colour statistics and optimal transport between colour distributions.

Convention (every function here):

* colours are RGB triples in the unit cube: uint8 pixels are divided by 255, float
  pixels are taken as already in [0, 1]. Means have shape ``(3,)``, covariances
  ``(3, 3)``, both float64, in those units (a variance of 1e-4 is a standard
  deviation of 2.55 levels of 255).
* "W2" is the 2-Wasserstein *distance* (not squared) in those units.

Gaussian part (W2 between Gaussian fits, the Bures-Wasserstein geometry; the formula
behind FID, Heusel et al. 2017, https://arxiv.org/abs/1706.08500; the closed forms
are in Peyré and Cuturi, *Computational Optimal Transport*, remark 2.31,
https://arxiv.org/abs/1803.00567)::

    W2^2(N(m1, C1), N(m2, C2)) = |m1 - m2|^2 + Tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2)
    T(x) = m2 + A (x - m1),  A = C1^-1/2 (C1^1/2 C2 C1^1/2)^1/2 C1^-1/2   (the optimal map)
    geodesic at s in [0, 1]: x -> (1 - s) x + s T(x)                   (McCann interpolation)

Square roots use symmetric eigendecompositions with eigenvalues clipped at 0. Real
images have near-singular colour covariances (a grey image has two zero
eigenvalues), so :func:`bures_map` adds a small ridge (:data:`RIDGE`) to the diagonals
of both ``C1`` and ``C2``: the exact map between the two Gaussians each widened by the
same isotropic noise, finite for singular ``C1`` and exactly the identity when the two
Gaussians are equal (a ridge on ``C1`` alone shrank near-flat directions, and an
image recoloured towards itself came out changed); :func:`w2_gaussian` needs no
inverse and uses none.

Colour histograms (:func:`colour_histogram`): raw pixel counts (not normalised) on a
``bins x bins x bins`` grid over RGB, bin ``floor(value * bins / 256)`` per channel;
bin ``i`` of an axis has grid coordinate ``x_i = i / (bins - 1)`` (the unit cube, as
above) and its centre at ``(i + 0.5) * 256 / bins - 0.5`` in 0..255 units (``4 i + 1.5``
for 64 bins). Inputs are uint8 ``(H, W, 3)`` RGB: transparency and grey images are
handled by the loader (:func:`diffmorph.io.images.load_image` composites alpha over
white and repeats grey into three channels), never here.

Unbalanced Sinkhorn (:func:`sinkhorn_unbalanced`), after Chizat, Peyré, Schmitzer and
Vialard, *Scaling algorithms for unbalanced optimal transport problems* (Math. Comp.
2018, https://arxiv.org/abs/1607.05816), with the separable Gibbs kernel of Solomon et
al., *Convolutional Wasserstein distances* (SIGGRAPH 2015,
https://doi.org/10.1145/2766963). It solves, for histograms ``p`` (palette, index
``i``) and ``q`` (image, index ``j``) on the grid::

    min_P  <C, P> + eps KL(P | 1) + lam KL(P 1 | p) + lam KL(P^T 1 | q),   C_ij = |x_i - x_j|^2

(``KL(P | 1) = sum P log P - P + 1``: reference measure 1 on every bin) by the
log-domain scaling iterations, with ``f = eps log a``, ``g = eps log b``::

    f <- (lam eps / (lam + eps)) (log p - LSE_K(g / eps))
    g <- (lam eps / (lam + eps)) (log q - LSE_K(f / eps)),     LSE_K(h) = log(K exp(h))

and the plan ``P_ij = exp((f_i + g_j - C_ij) / eps)``. This is exactly the problem of
POT's ``ot.unbalanced.sinkhorn_unbalanced(p, q, C, reg=eps, reg_m=lam,
reg_type="entropy", method="sinkhorn")`` (its entropy term ``sum P log P - P`` differs
from ``KL(P | 1)`` by a constant), whose iterations start from the same ``f = g = 0``.
Empty bins have ``log p = -inf``, hence ``f = -inf`` and a zero plan row.
``eps`` follows the published schedule: ``eps0 = 1`` halved after each of 10 stages of
100 iterations (1, 1/2, ..., 1/512), never below a floor ``eps_min``; the kernel is
rebuilt at every ``eps`` and the potentials carry over from stage to stage.

How ``LSE_K`` is computed (:func:`gibbs_logsumexp`): ``K = K_R (x) K_G (x) K_B`` with
``K_axis[a, i] = exp(-(x_a - x_i)^2 / eps)``, so ``K exp(h)`` is three products of a
``(bins^2, bins) x (bins, bins)`` matrix (BLAS), never a ``bins^3 x bins^3`` matrix. The
exponentials are shifted by their maximum over the contracted axes ("max-shifted"),
and shifted terms are floored at ``exp(-700)`` (exp stays fast and normal there).
Exactness: after one pass with a per-line shift every output is at least the
kernel's smallest entry, ``exp(-1 / eps)`` times the line's largest term (its own
column), and at least ``exp(-k / eps)`` after ``k`` passes in the linear domain. So
passes are grouped: consecutive passes stay in the linear domain (one exp and one
log for the group) while ``k / eps <= 600``, which bounds every relative error from
the floor and from underflow by ``exp(-40)``; the default schedule runs all three
passes as one group for ``eps >= 1/200``, two groups at 1/256 and one group per pass
at 1/512. Below ``eps = 1/600`` (only with a lower ``eps_min``) single passes can
underflow; there every output under ``exp(-600)`` (before the shift is added back) is
recomputed by an exact log-sum-exp over ``log K``.

Speed (``python tools/colour_bench.py``): colour histograms are sparse (about 2% of
the 64^3 bins of a photo are used), so the first pass only exponentiates and
multiplies the lines that hold mass, and the last pass only computes the lines the
update reads (``f`` is ``-inf`` wherever ``p`` is 0); the kernel products are GEMMs
small enough for OpenBLAS to run each on one thread (``64 x 64 x 64`` items, blocks
of kernel columns above 64 bins), as its threads stall on a shared machine. The full
schedule on the bundled pair (64^3, 1000 iterations) takes 3.3-3.8 s of CPU on one
core of a 2-core AMD EPYC, with about 26 MB of extra memory (128^3: about 90 s); a
TensorFlow version of the same passes (float64, ``tf.function``, with or without
XLA) took 2.3 times the CPU time.

The barycentric map (:func:`barycentric_map`): for every bin ``j``,
``T(j) = sum_i P_ij x_i / sum_i P_ij``; ``g_j`` cancels, so ``T`` is a kernel-weighted
mean of ``x_i`` under the weights ``exp(f_i / eps)``, computed with the same separable
passes (numerator with the kernel along one axis weighted by ``1 + x_a``, which keeps
the exactness bound; ``T = exp(LSE_num - LSE_den) - 1``). This is the entropic map
(Pooladian and Niles-Weed 2021, https://arxiv.org/abs/2109.12004): it is defined on
every bin, including bins the image does not use, so the trilinear interpolation of
:func:`apply_colour_map` never mixes in an unmapped neighbour. Its denominator is
positive on every bin (``K > 0`` and some ``f_i`` is finite), so no bin needs an
identity fallback: an unused image bin (``q_j = 0``) has no plan mass only through the
factor ``exp(g_j / eps)``, which cancels. (Keeping such bins at the identity instead
changes 14% of the pixels of the bundled pair by 3 levels or more, up to 61: the 25%
whose eight surrounding bin centres include an unused bin.) Pixels are mapped by
trilinear interpolation of ``T`` at their exact colour between bin centres (no
posterisation), rounded to the nearest level and clipped.

Colour path for morph frames (:class:`ColourPath`): each frame is moved by the Bures
map onto the point at its alpha of the W2 geodesic between the end frames' Gaussian
colour statistics; identity at alpha 0 and 1.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np

RIDGE = 1e-5  # added to both covariances' diagonals in bures_map (a std of ~0.8/255)


class Gaussian(NamedTuple):
    """A Gaussian fit of colours: ``mean`` float64 ``(3,)``, ``cov`` float64 ``(3, 3)``, unit-cube RGB."""

    mean: np.ndarray
    cov: np.ndarray


def unit_colours(pixels) -> np.ndarray:
    """Pixels ``(..., 3)`` as float64 ``(N, 3)`` colours in the unit cube.

    uint8 is divided by 255 and uint16 by 65535; float input is taken as already in
    [0, 1] (not clipped).

    Raises:
      ValueError: if the last axis is not 3 or there are no pixels.
    """
    array = np.asarray(pixels)
    if array.ndim < 1 or array.shape[-1] != 3 or array.size == 0:
        raise ValueError(f"expected pixels of shape (..., 3), got {array.shape}")
    flat = array.reshape(-1, 3)
    if array.dtype == np.uint8:
        return flat.astype(np.float64) / 255.0
    if array.dtype == np.uint16:
        return flat.astype(np.float64) / 65535.0
    return flat.astype(np.float64)


def gaussian_stats(pixels) -> Gaussian:
    """Mean and covariance of an image's colours (population covariance, divided by N).

    Args:
      pixels: ``(..., 3)`` RGB, uint8 0..255, uint16 or float in [0, 1]; e.g. one
        ``(H, W, 3)`` frame.

    Returns:
      :class:`Gaussian` in unit-cube RGB.

    Raises:
      ValueError: as :func:`unit_colours`.
    """
    array = np.asarray(pixels)
    if array.ndim < 1 or array.shape[-1] != 3 or array.size == 0:
        raise ValueError(f"expected pixels of shape (..., 3), got {array.shape}")
    flat = array.reshape(-1, 3)
    total = np.zeros(3)
    for start in range(0, len(flat), _CHUNK):  # chunks: no float copy of a whole large image
        total += unit_colours(flat[start : start + _CHUNK]).sum(axis=0)
    mean = total / len(flat)  # (3,)
    cov = np.zeros((3, 3))
    for start in range(0, len(flat), _CHUNK):  # second pass: centred products (no cancellation)
        centred = unit_colours(flat[start : start + _CHUNK]) - mean  # (m, 3)
        cov += centred.T @ centred
    cov /= len(flat)
    return Gaussian(mean, (cov + cov.T) / 2)


def sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0).

    Args:
      matrix: float ``(d, d)``, symmetric (it is symmetrised first).

    Returns:
      float64 ``(d, d)``, symmetric, with ``result @ result == matrix`` for PSD input.
    """
    sym = (np.asarray(matrix, np.float64) + np.asarray(matrix, np.float64).T) / 2
    values, vectors = np.linalg.eigh(sym)
    root = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    return (root + root.T) / 2


def _inv_sqrtm_psd(matrix: np.ndarray, ridge: float) -> np.ndarray:
    """``(matrix + ridge I)^-1/2`` for a symmetric PSD matrix; ridge must be > 0."""
    sym = (matrix + matrix.T) / 2 + ridge * np.eye(len(matrix))
    values, vectors = np.linalg.eigh(sym)
    inv_root = (vectors / np.sqrt(np.clip(values, ridge, None))) @ vectors.T
    return (inv_root + inv_root.T) / 2


def w2_gaussian(a: Gaussian, b: Gaussian) -> float:
    """The 2-Wasserstein distance between two Gaussians (the module's formula).

    Equals POT's ``ot.gaussian.bures_wasserstein_distance(a.mean, b.mean, a.cov, b.cov)``.
    Equal covariances give ``|a.mean - b.mean|`` (the trace term vanishes).

    Returns:
      float >= 0, in unit-cube RGB units.
    """
    root_a = sqrtm_psd(a.cov)
    cross = sqrtm_psd(root_a @ b.cov @ root_a)
    bures_sq = np.trace(a.cov) + np.trace(b.cov) - 2 * np.trace(cross)
    mean_sq = float(np.sum((np.asarray(a.mean) - np.asarray(b.mean)) ** 2))
    return float(np.sqrt(max(0.0, mean_sq + bures_sq)))


def bures_map(a: Gaussian, b: Gaussian, ridge: float = RIDGE) -> tuple[np.ndarray, np.ndarray]:
    """The optimal affine map from ``a`` to ``b``: ``T(x) = A @ x + offset``.

    ``A = C1^-1/2 (C1^1/2 C2 C1^1/2)^1/2 C1^-1/2`` with ``C1 = a.cov + ridge I`` and
    ``C2 = b.cov + ridge I`` (the ridge keeps ``A`` finite for near-singular
    covariances, and ``A == I`` when ``a == b``; ``A @ C1 @ A == C2``, so the
    pushed covariance ``A @ a.cov @ A`` is ``b.cov + ridge (I - A @ A)``);
    ``offset = b.mean - A @ a.mean``. Same ``A`` as POT's
    ``ot.gaussian.bures_wasserstein_mapping`` for non-singular covariances as the
    ridge goes to 0.

    Args:
      a, b: source and target :class:`Gaussian`.
      ridge: added to both covariances' diagonals, > 0 (unit-cube RGB squared).

    Returns:
      ``(A, offset)``: float64 ``(3, 3)`` symmetric PSD and ``(3,)``.

    Raises:
      ValueError: if ``ridge`` is not > 0.
    """
    if not ridge > 0:
        raise ValueError(f"ridge must be > 0 (got {ridge})")
    c1 = np.asarray(a.cov, np.float64) + ridge * np.eye(3)
    root = sqrtm_psd(c1)
    inv_root = _inv_sqrtm_psd(np.asarray(a.cov, np.float64), ridge)
    c2 = np.asarray(b.cov, np.float64) + ridge * np.eye(3)
    matrix = inv_root @ sqrtm_psd(root @ c2 @ root) @ inv_root
    matrix = (matrix + matrix.T) / 2
    return matrix, np.asarray(b.mean, np.float64) - matrix @ np.asarray(a.mean, np.float64)


def bures_geodesic(a: Gaussian, b: Gaussian, s: float, ridge: float = RIDGE) -> Gaussian:
    """The Gaussian at ``s`` on the W2 geodesic from ``a`` (s = 0) to ``b`` (s = 1).

    McCann interpolation of the optimal map: ``T_s = (1 - s) I + s A``, mean
    ``(1 - s) m1 + s m2``, covariance ``T_s C1 T_s`` (``A`` from :func:`bures_map`).
    Constant speed: ``w2_gaussian(a, geodesic(s)) == s * w2_gaussian(a, b)``.

    Args:
      a, b: the end points. s: position in [0, 1]. ridge: as :func:`bures_map`.

    Returns:
      :class:`Gaussian`; exactly ``a`` at ``s = 0``.
    """
    if s == 0:
        return Gaussian(np.asarray(a.mean, np.float64), np.asarray(a.cov, np.float64))
    matrix, _ = bures_map(a, b, ridge)
    step = (1 - s) * np.eye(3) + s * matrix
    mean = (1 - s) * np.asarray(a.mean, np.float64) + s * np.asarray(b.mean, np.float64)
    cov = step @ np.asarray(a.cov, np.float64) @ step.T
    return Gaussian(mean, (cov + cov.T) / 2)


# --------------------------------------------------------------------------------------
# Colour histograms and argument checks
# --------------------------------------------------------------------------------------

MIN_BINS, MAX_BINS = 8, 128  # histogram bins per channel accepted
DEFAULT_BINS = 64  # the published grid: bin = value // 4
DEFAULT_LAMBDA = 0.8  # KL marginal relaxation strength (both sides)
DEFAULT_EPS0 = 1.0  # epsilon of the first stage (unit-cube squared distances)
DEFAULT_STAGES = 10  # epsilon halved after each stage: 1, 1/2, ..., 1/512
DEFAULT_ITERS = 100  # scaling iterations per stage
MAX_STAGES = 64  # epsilon halved 64 times is far under EPS_MIN: more stages change nothing
MAX_ITERS = 100_000  # scaling iterations per stage
MAX_ITERATIONS = 1_000_000  # stages x iters: ~1000x the default schedule
LAMBDA_RANGE = (1e-6, 1e6)  # marginal relaxation strengths the solver handles in float64
EPS0_RANGE = (1e-6, 1e6)  # first epsilon
EPS_MIN = 1e-3  # epsilon floor; under the schedule's last 1/512, so the default schedule is the published one
METHODS = ("uot", "gaussian")
PROGRESS_EVERY = 10  # iterations between progress(done, total) calls

_FLOOR = 700.0  # shifted log-terms are floored at -_FLOOR: exp(-700) ~ 1e-304 is a normal double
_LINEAR_RANGE = 600.0  # a group of kernel passes stays linear while its kernels span <= this (in log units)
_LOW = float(np.exp(-_LINEAR_RANGE))  # below this a single unchecked pass could have lost precision
_GEMM_ONE_THREAD = 4 * 65536  # OpenBLAS runs a GEMM with m * n * k at most this on one thread
_CHUNK = 1 << 18  # pixels (or fallback terms) per chunk: bounds the temporary memory


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_positive(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value) and value > 0


def check_bins(bins) -> None:
    """Raise ValueError unless ``bins`` is an integer from :data:`MIN_BINS` to :data:`MAX_BINS`."""
    if not _is_int(bins) or not MIN_BINS <= bins <= MAX_BINS:
        raise ValueError(f"bins must be an integer from {MIN_BINS} to {MAX_BINS} (got {bins!r})")


@dataclasses.dataclass(frozen=True)
class TransferSettings:
    """The settings of a colour transfer (:func:`colour_transfer`), validated.

    Attributes:
      method: ``"uot"`` (unbalanced OT between colour histograms) or ``"gaussian"``
        (the Bures map between Gaussian fits of the colours).
      bins: histogram bins per channel, 8..128 ("uot").
      lam: strength of the KL-relaxed marginals, 1e-6..1e6 ("uot"; the published 0.8).
      eps0: epsilon of the first stage, 1e-6..1e6 (halved after each stage).
      stages, iters: stages of the schedule (1..64) and scaling iterations per stage
        (1..100000), at most 1000000 iterations in all.
      (The solver's epsilon floor is :data:`EPS_MIN`; :func:`sinkhorn_unbalanced` takes another.)

    Raises:
      ValueError: on construction, one line naming the first bad setting.
    """

    method: Literal["uot", "gaussian"] = "uot"
    bins: int = DEFAULT_BINS
    lam: float = DEFAULT_LAMBDA

    # the epsilon schedule: eps0 halved after each of ``stages`` stages of ``iters`` iterations
    eps0: float = DEFAULT_EPS0
    stages: int = DEFAULT_STAGES
    iters: int = DEFAULT_ITERS

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)} (got {self.method!r})")
        check_bins(self.bins)
        for name, value, (low, high) in (("lambda", self.lam, LAMBDA_RANGE), ("eps0", self.eps0, EPS0_RANGE)):
            if not _is_positive(value) or not low <= value <= high:
                raise ValueError(f"{name} must be a number from {low:g} to {high:g} (got {value!r})")
        for name, value, high in (("stages", self.stages, MAX_STAGES), ("iters", self.iters, MAX_ITERS)):
            if not _is_int(value) or not 1 <= value <= high:
                raise ValueError(f"{name} must be an integer from 1 to {high} (got {value!r})")
        if self.stages * self.iters > MAX_ITERATIONS:
            raise ValueError(
                f"iters must be at most {MAX_ITERATIONS // self.stages} with {self.stages} stages "
                f"(stages x iters at most {MAX_ITERATIONS}; got {self.iters})"
            )

    @property
    def iterations(self) -> int:
        """Scaling iterations of the whole schedule ("uot")."""
        return self.stages * self.iters


def _check_rgb8(pixels, name: str) -> np.ndarray:
    array = np.asarray(pixels)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3 or array.size == 0:
        raise ValueError(f"{name} must be uint8 pixels of shape (H, W, 3) (got {array.dtype} {array.shape})")
    return array


def colour_histogram(pixels, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Raw pixel counts on a ``bins^3`` grid over RGB (not normalised).

    Bin of a channel value ``v`` (0..255): ``floor(v * bins / 256)`` (``v // 4`` for 64
    bins). Transparency and grey images are the loader's business: it always yields
    uint8 RGB (see the module docstring).

    Args:
      pixels: uint8 ``(H, W, 3)`` RGB.
      bins: bins per channel, an integer from 8 to 128.

    Returns:
      float64 ``(bins, bins, bins)`` counts indexed ``[r, g, b]``; they sum to ``H * W``.

    Raises:
      ValueError: bad ``bins``, or pixels that are not uint8 ``(H, W, 3)``.
    """
    check_bins(bins)
    flat = _check_rgb8(pixels, "pixels").reshape(-1, 3)
    counts = np.zeros(bins**3, np.int64)
    for start in range(0, len(flat), _CHUNK):
        chunk = flat[start : start + _CHUNK].astype(np.intp) * bins >> 8  # (m, 3) bin per channel
        index = (chunk[:, 0] * bins + chunk[:, 1]) * bins + chunk[:, 2]
        counts += np.bincount(index, minlength=bins**3)
    return counts.astype(np.float64).reshape(bins, bins, bins)


# --------------------------------------------------------------------------------------
# Separable log-sum-exp with the Gibbs kernel
# --------------------------------------------------------------------------------------


def grid_coordinates(bins: int) -> np.ndarray:
    """Unit-cube coordinates of the bins along one axis: ``x_i = i / (bins - 1)``, float64 ``(bins,)``."""
    return np.arange(bins) / (bins - 1)


def _log_kernel(bins: int, eps: float) -> np.ndarray:
    """``log K[a, i] = -(x_a - x_i)^2 / eps`` along one axis, float64 ``(bins, bins)``."""
    x = grid_coordinates(bins)
    return -((x[:, None] - x[None, :]) ** 2) / eps


def _batched(items: np.ndarray, kernel: np.ndarray, out: np.ndarray) -> None:
    """``out[b] = items[b] @ kernel`` for ``(B, n, n)`` stacks, as single-threaded GEMMs.

    OpenBLAS runs a GEMM on one thread when ``m * n * k <= 4 * 65536`` (its default
    threshold) and on every core above it; its threads then wait for each other when
    other processes share the cores (measured on a 2-core machine under load: 4.5 ms
    instead of 0.7 ms for one 4096 x 64 x 64 product, 430 ms of CPU instead of 10 ms
    for 128^3 bins). So every GEMM stays under the threshold: ``n x n`` items, and for
    ``n > 64`` blocks of kernel columns.
    """
    n = kernel.shape[0]
    step = max(1, _GEMM_ONE_THREAD // (n * n))
    if step >= n:
        np.matmul(items, kernel, out=out)
        return
    for col in range(0, n, step):
        np.matmul(items, kernel[:, col : col + step], out=out[:, :, col : col + step])


def _product(src: np.ndarray, kernel: np.ndarray, dst: np.ndarray) -> None:
    """``dst = src.T @ kernel`` for ``src`` ``(n, m)`` (m a multiple of n), ``dst`` ``(m, n)``
    (see :func:`_batched`)."""
    n = kernel.shape[0]
    _batched(src.reshape(n, -1, n).transpose(1, 2, 0), kernel, dst.reshape(-1, n, n))


def _product_rows(src: np.ndarray, kernel: np.ndarray, dst: np.ndarray, lines: np.ndarray) -> None:
    """``dst[lines] = src[:, lines].T @ kernel`` (``lines`` padded to a multiple of n, see :func:`_padded`)."""
    n = kernel.shape[0]
    picked = np.take(src, lines, axis=1)  # (n, len(lines)); faster than src[:, lines]
    result = np.empty((len(lines), n))
    _product(picked, kernel, result)
    dst[lines] = result


def _padded(index: np.ndarray, n: int) -> np.ndarray:
    """``index`` (non-empty) with its last entry repeated up to a multiple of ``n`` entries."""
    return np.concatenate([index, np.full(-len(index) % n, index[-1])])


class _SeparableLSE:
    """``h -> log(K exp(h))`` on an ``n^3`` grid for ``K = K_0 (x) K_1 (x) K_2``.

    ``log_kernels[d][a, i]`` is the log of the axis-``d`` kernel from input index ``a``
    to output index ``i``; every kernel must have a diagonal >= 1 (its log >= 0), which
    keeps every linear-domain value >= ``exp(-_FLOOR)`` (never subnormal, never 0).
    The passes are grouped as the module docstring explains. Two savings that do not
    change the result: the first pass multiplies only the lines (along axis 0) that
    hold a finite entry (the others are all at the floor, and their product is known),
    and with ``need_rows`` the last pass computes only the lines (along axis 2) that
    the caller reads.
    """

    def __init__(self, log_kernels):
        self.log_kernels = [np.asarray(k, np.float64) for k in log_kernels]
        self.n = n = self.log_kernels[0].shape[0]
        self.kernels = [np.exp(k) for k in self.log_kernels]
        self._floor_row = np.exp(-_FLOOR) * self.kernels[0].sum(axis=0)  # first pass of an all -inf line
        spans = [max(0.0, -float(k.min())) for k in self.log_kernels]
        self.plan = []  # (passes in the group, checked)
        start = 0
        while start < 3:
            size, total = 1, spans[start]
            while start + size < 3 and total + spans[start + size] <= _LINEAR_RANGE:
                total += spans[start + size]
                size += 1
            self.plan.append((size, total > _LINEAR_RANGE))
            start += size
        self._buffers = [np.empty(n**3) for _ in range(3)]

    def __call__(
        self,
        h: np.ndarray,
        need_rows: np.ndarray | None = None,
        out: np.ndarray | None = None,
        mass_lines: np.ndarray | None = None,
    ):
        """``LSE_K(h)``, float64 ``(n, n, n)``.

        Args:
          h: float64 ``(n, n, n)`` log-domain values (read only).
          mass_lines: optional bool ``(n^2,)``: which lines ``h[:, j, k]`` hold a finite
            value (computed when not given).
          need_rows: optional bool ``(n^2,)``: the lines ``[i, j, :]`` (row ``i * n + j``)
            wanted; the others are left as they are in ``out``.
          out: optional float64 ``(n, n, n)`` result array (needed with ``need_rows``).

        Returns:
          ``out``, or a view of a work buffer valid until the next call.
        """
        n = self.n
        x = np.asarray(h, np.float64).reshape(-1)  # log domain, axes rotated as passes go
        if mass_lines is None:
            mass_lines = np.isfinite(x.reshape(n, n * n).max(axis=0))  # lines along axis 0
        line_has_mass = mass_lines
        sparse_first = not line_has_mass.all()
        first_lines = _padded(np.flatnonzero(line_has_mass), n) if sparse_first else None
        rows = None if need_rows is None else np.flatnonzero(need_rows)
        last_lines = None if rows is None else _padded(rows, n)
        axis = 0
        for number, (size, checked) in enumerate(self.plan):
            last = number == len(self.plan) - 1
            lines = n ** (3 - size)
            x2 = x.reshape(n**size, lines)  # contracted axes first
            top = x2.max(axis=0)  # (lines,): -inf on empty lines
            finite = np.isfinite(top)
            shift = np.where(finite, top, 0.0)
            free = [b for b in self._buffers if not np.shares_memory(b, x)]
            y = free[0].reshape(x2.shape)
            if axis == 0 and sparse_first:  # exp only on the first pass's lines with mass
                y = np.take(x.reshape(n, n * n), first_lines, axis=1)  # (n, lines padded)
                y -= shift[first_lines % lines]  # each first-pass line's group line
            else:
                np.subtract(x2, shift, out=y)
            np.maximum(y, -_FLOOR, out=y)
            np.exp(y, out=y)
            for k in range(size):  # each pass contracts the leading axis and appends the new one
                src = y.reshape(n, -1)
                dst = free[(k + 1) % 2].reshape(-1, n)
                kernel = self.kernels[axis + k]
                if axis + k == 0 and sparse_first:  # src holds the gathered lines
                    result = np.empty((len(first_lines), n))
                    _product(src, kernel, result)
                    dst[first_lines] = result
                    dst[~line_has_mass] = self._floor_row
                elif axis + k == 2 and rows is not None:
                    _product_rows(src, kernel, dst, last_lines)
                else:
                    _product(src, kernel, dst)
                y = dst
            if last and rows is not None:  # final rows (i, j) wanted: log and shift those only
                picked = y.reshape(n * n, n)[rows]
                picked_top = top[rows // n ** (size - 1)]
                low = np.nonzero((picked < _LOW) & np.isfinite(picked_top)[:, None]) if checked else None
                np.log(picked, out=picked)  # >= exp(-_FLOOR) > 0 (diagonal >= 1)
                picked += picked_top[:, None]
                if low is not None and low[0].size:
                    picked[low] = self._exact(x2, axis, rows[low[0]], low[1])
                out.reshape(n * n, n)[rows] = picked
                return out
            y = y.reshape(lines, n**size)
            low = np.nonzero((y < _LOW) & finite[:, None]) if checked else None
            np.log(y, out=y)  # >= exp(-_FLOOR) > 0 (diagonal >= 1)
            y += top[:, None]  # -inf on empty lines
            if low is not None and low[0].size:
                y[low] = self._exact(x2, axis, *low)
            x = y.reshape(-1)
            axis += size
        if out is None:
            return x.reshape(n, n, n)
        out.reshape(-1)[:] = x
        return out

    def _exact(self, x2: np.ndarray, axis: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Exact ``log sum_a K[a, i] exp(x2[a, r])`` for the pairs ``(r, i) = (rows, cols)``."""
        out = np.empty(rows.size)
        step = max(1, _CHUNK // self.n)
        for start in range(0, rows.size, step):
            r, i = rows[start : start + step], cols[start : start + step]
            terms = self.log_kernels[axis][:, i] + x2[:, r]  # (n, m); each column has a finite term
            top = terms.max(axis=0)
            out[start : start + step] = top + np.log(np.exp(terms - top).sum(axis=0))
        return out


def gibbs_logsumexp(h, eps: float) -> np.ndarray:
    """``LSE_K(h) = log(K exp(h))`` for the Gibbs kernel of the grid, computed separably.

    ``K[(a, b, c), (i, j, k)] = exp(-|x_(a,b,c) - x_(i,j,k)|^2 / eps)`` with the grid of
    :func:`grid_coordinates`; equal to the dense ``log(K @ exp(h.ravel()))`` without
    forming ``K`` (module docstring: how, and why it is exact).

    Args:
      h: float ``(n, n, n)``, log-domain values; ``-inf`` allowed (zero mass), not all.
      eps: > 0, in unit-cube squared distance.

    Returns:
      float64 ``(n, n, n)`` (a new array), finite where ``h`` has any finite entry.
    """
    array = np.asarray(h, np.float64)
    if array.ndim != 3 or len(set(array.shape)) != 1 or array.shape[0] < 2:
        raise ValueError(f"h must be a cube (n, n, n) with n >= 2 (got {array.shape})")
    if not _is_positive(eps):
        raise ValueError(f"eps must be a finite number > 0 (got {eps!r})")
    if np.isnan(array).any() or np.isposinf(array).any() or not np.isfinite(array).any():
        raise ValueError("h must hold finite values or -inf, and at least one finite value")
    return _SeparableLSE([_log_kernel(array.shape[0], eps)] * 3)(array).copy()


# --------------------------------------------------------------------------------------
# Unbalanced Sinkhorn, plan marginals, barycentric map
# --------------------------------------------------------------------------------------


class UotSolution(NamedTuple):
    """Potentials of :func:`sinkhorn_unbalanced` at its final ``eps``.

    ``f`` (palette side, index ``i``) and ``g`` (image side, index ``j``): float64
    ``(n, n, n)`` in unit-cube squared distance, ``-inf`` on empty bins. The plan is
    ``P_ij = exp((f_i + g_j - C_ij) / eps)``.
    """

    f: np.ndarray
    g: np.ndarray
    eps: float


def eps_schedule(eps0: float = DEFAULT_EPS0, stages: int = DEFAULT_STAGES, eps_min: float = EPS_MIN) -> list[float]:
    """Epsilon of each stage: ``max(eps0 / 2^k, eps_min)`` for ``k = 0 .. stages - 1``."""
    return [max(eps0 / 2**k, eps_min) for k in range(stages)]


def _log_or_minus_inf(counts: np.ndarray) -> np.ndarray:
    """``log(counts)`` with ``-inf`` (no warning) where ``counts == 0``."""
    return np.log(counts, out=np.full(counts.shape, -np.inf), where=counts > 0)


def _check_histogram(counts, name: str) -> np.ndarray:
    array = np.asarray(counts, np.float64)
    if array.ndim != 3 or len(set(array.shape)) != 1 or array.shape[0] < 2:
        raise ValueError(f"{name} must be a histogram cube (n, n, n) with n >= 2 (got {array.shape})")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError(f"{name} must hold finite counts >= 0")
    if not (array > 0).any():
        raise ValueError(f"{name} is empty (all bins 0)")
    return array


def sinkhorn_unbalanced(
    p,
    q,
    lam: float = DEFAULT_LAMBDA,
    eps0: float = DEFAULT_EPS0,
    stages: int = DEFAULT_STAGES,
    iters: int = DEFAULT_ITERS,
    eps_min: float = EPS_MIN,
    progress: Callable[[int, int], object] | None = None,
) -> UotSolution:
    """Unbalanced entropic OT between two colour histograms (module docstring: problem, updates).

    Chizat et al. 2018 (https://arxiv.org/abs/1607.05816), log-domain scaling iterations
    with the separable kernel of Solomon et al. 2015; ``eps`` follows
    :func:`eps_schedule` (the kernel is rebuilt at each ``eps``); ``f = g = 0`` at the
    start, then per iteration ``f`` then ``g`` are updated, as in POT.

    Args:
      p: palette histogram, float ``(n, n, n)`` counts >= 0 (index ``i``), not all 0.
      q: image histogram, same shape (index ``j``).
      lam: KL marginal strength, > 0 (POT's ``reg_m``).
      eps0, stages, iters, eps_min: the schedule; ``stages * iters`` iterations.
      progress: called as ``progress(done, total)`` every :data:`PROGRESS_EVERY`
        iterations and at the end.

    Returns:
      :class:`UotSolution` at the last stage's ``eps``.

    Raises:
      ValueError: bad settings (:class:`TransferSettings`) or histograms (shapes
        differ, negative or non-finite counts, all zero).
    """
    TransferSettings(lam=lam, eps0=eps0, stages=stages, iters=iters)  # validates them
    if not _is_positive(eps_min):
        raise ValueError(f"eps_min must be a finite number > 0 (got {eps_min!r})")
    p = _check_histogram(p, "p")
    q = _check_histogram(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape (got {p.shape} and {q.shape})")
    n = p.shape[0]
    log_p, log_q = _log_or_minus_inf(p), _log_or_minus_inf(q)
    f_eps = np.zeros_like(p)  # f / eps
    g_eps = np.zeros_like(q)  # g / eps
    rows_p = (p > 0).reshape(n * n, n).any(axis=1)  # LSE is only read where p > 0 (f = -inf elsewhere)
    rows_q = (q > 0).reshape(n * n, n).any(axis=1)
    lines_p, lines_q = (p > 0).any(axis=0).ravel(), (q > 0).any(axis=0).ravel()  # f, g finite there (axis-0 lines)
    lse_p, lse_q = np.zeros_like(p), np.zeros_like(q)  # unread entries stay 0 (finite: log p - 0 = -inf)
    total, done, previous = stages * iters, 0, None
    for eps in eps_schedule(eps0, stages, eps_min):
        if previous is not None and eps != previous:  # potentials carry over; rescale f / eps
            f_eps *= previous / eps
            g_eps *= previous / eps
        previous = eps
        lse = _SeparableLSE([_log_kernel(n, eps)] * 3)  # the kernel at this eps
        kappa = lam / (lam + eps)  # (lam eps / (lam + eps)) / eps
        for _ in range(iters):
            # g = 0 on every bin until the first g update (as POT's v = 1), -inf on empty bins after
            np.subtract(log_p, lse(g_eps, rows_p, lse_p, lines_q if done else None), out=f_eps)
            f_eps *= kappa
            np.subtract(log_q, lse(f_eps, rows_q, lse_q, lines_p), out=g_eps)
            g_eps *= kappa
            done += 1
            if progress is not None and (done % PROGRESS_EVERY == 0 or done == total):
                progress(done, total)
    return UotSolution(f_eps * previous, g_eps * previous, previous)


def plan_marginals(solution: UotSolution) -> tuple[np.ndarray, np.ndarray]:
    """The marginals of the plan: ``(P 1, P^T 1)``, each float64 ``(n, n, n)`` (pixel counts).

    ``(P 1)_i = exp(f_i / eps + LSE_K(g / eps)_i)``, separably; 0 on empty bins.
    """
    n = solution.f.shape[0]
    lse = _SeparableLSE([_log_kernel(n, solution.eps)] * 3)
    f_eps, g_eps = solution.f / solution.eps, solution.g / solution.eps
    rows = np.exp(f_eps + lse(g_eps))
    cols = np.exp(g_eps + lse(f_eps))
    return rows, cols


def barycentric_map(solution: UotSolution) -> np.ndarray:
    """The barycentric projection ``T(j) = sum_i P_ij x_i / sum_i P_ij`` on every bin ``j``.

    ``g_j`` cancels, so ``T(j)`` is the mean of the palette grid points ``x_i`` under the
    weights ``K_ij exp(f_i / eps)``: defined on every bin (module docstring), never a
    ``n^3 x n^3`` matrix.

    Returns:
      float64 ``(n, n, n, 3)``: ``T`` in unit-cube coordinates, indexed ``[r, g, b]`` of
      the image's bin; in [0, 1].
    """
    n, eps = solution.f.shape[0], solution.eps
    f_eps = solution.f / eps
    log_k = _log_kernel(n, eps)
    log_den = _SeparableLSE([log_k] * 3)(f_eps).copy()
    weighted = log_k + np.log1p(grid_coordinates(n))[:, None]  # input a weighted by 1 + x_a (diagonal stays >= 1)
    mapped = np.empty((n, n, n, 3))
    for axis in range(3):
        kernels = [log_k] * 3
        kernels[axis] = weighted
        log_num = _SeparableLSE(kernels)(f_eps)
        mapped[..., axis] = np.expm1(log_num - log_den)  # sum w (1 + x) / sum w - 1
    return np.clip(mapped, 0.0, 1.0, out=mapped)  # in [0, 1] up to rounding


# --------------------------------------------------------------------------------------
# Applying colour maps to pixels
# --------------------------------------------------------------------------------------


def bin_centres(bins: int) -> np.ndarray:
    """Centres of the bins along one axis in 0..255 units: ``(i + 0.5) * 256 / bins - 0.5``, float64."""
    return (np.arange(bins) + 0.5) * (256 / bins) - 0.5


def map_colours(colours, mapped: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of a colour map at exact colours.

    Grid bin ``i`` sits at its centre, :func:`bin_centres`; a mapped value ``T`` (unit
    cube, as :func:`barycentric_map` returns) is the colour ``T * (bins - 1)`` in grid
    units, i.e. ``(T * (bins - 1) + 0.5) * 256 / bins - 0.5`` in 0..255 units (grid ``i``
    -> ``4 i + 1.5`` for 64 bins). The displacement (mapped minus centre) is
    interpolated, so inside the centres this is trilinear interpolation of ``T``, and
    beyond the outermost centres (within half a bin of 0 or 255) the nearest centres'
    displacement applies; an identity map gives back every colour exactly.

    Args:
      colours: float ``(m, 3)`` RGB in 0..255 units.
      mapped: float ``(bins, bins, bins, 3)``, unit cube.

    Returns:
      float64 ``(m, 3)`` in 0..255 units (not rounded or clipped).
    """
    return _interpolate(np.asarray(colours, np.float64), _displacement(mapped))


def _displacement(mapped: np.ndarray) -> np.ndarray:
    """Mapped colour minus bin centre, 0..255 units, float64 ``(n, n, n, 3)``."""
    mapped = np.asarray(mapped, np.float64)
    n = mapped.shape[0]
    if mapped.shape != (n, n, n, 3) or n < 2:
        raise ValueError(f"mapped must have shape (n, n, n, 3) (got {mapped.shape})")
    index = np.indices((n, n, n), dtype=np.float64).transpose(1, 2, 3, 0)  # (n, n, n, 3) grid units
    return (mapped * (n - 1) - index) * (256 / n)


def _interpolate(colours: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """``colours + trilinear(displacement)`` at the colours (float64 ``(m, 3)``, 0..255 units)."""
    n = displacement.shape[0]
    displacement = displacement.reshape(-1, 3)
    u = np.clip((colours + 0.5) * (n / 256) - 0.5, 0, n - 1)  # (m, 3) grid units
    low = np.minimum(u.astype(np.intp), n - 2)
    frac = u - low
    out = colours.copy()
    for dr in (0, 1):
        for dg in (0, 1):
            for db in (0, 1):
                weight = (
                    (frac[:, 0] if dr else 1 - frac[:, 0])
                    * (frac[:, 1] if dg else 1 - frac[:, 1])
                    * (frac[:, 2] if db else 1 - frac[:, 2])
                )
                flat = ((low[:, 0] + dr) * n + low[:, 1] + dg) * n + low[:, 2] + db
                out += weight[:, None] * displacement[flat]
    return out


def _to_uint8(levels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(levels), 0, 255).astype(np.uint8)


def apply_colour_map(pixels, mapped: np.ndarray) -> np.ndarray:
    """Recolour uint8 ``(H, W, 3)`` pixels through a colour map (:func:`map_colours`), rounded, clipped.

    Returns:
      uint8 ``(H, W, 3)``.
    """
    image = _check_rgb8(pixels, "pixels")
    flat = image.reshape(-1, 3)
    out = np.empty_like(flat)
    displacement = _displacement(mapped)
    for start in range(0, len(flat), _CHUNK):
        out[start : start + _CHUNK] = _to_uint8(
            _interpolate(flat[start : start + _CHUNK].astype(np.float64), displacement)
        )
    return out.reshape(image.shape)


def apply_affine(pixels, matrix: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Map uint8 ``(H, W, 3)`` pixels through ``x -> matrix @ x + offset`` (unit-cube RGB), rounded, clipped.

    Returns:
      uint8 ``(H, W, 3)``.
    """
    image = _check_rgb8(pixels, "pixels")
    flat = image.reshape(-1, 3)
    out = np.empty_like(flat)
    matrix, offset = np.asarray(matrix, np.float64), np.asarray(offset, np.float64)
    for start in range(0, len(flat), _CHUNK):
        unit = flat[start : start + _CHUNK] / 255.0
        out[start : start + _CHUNK] = _to_uint8((unit @ matrix.T + offset) * 255.0)
    return out.reshape(image.shape)


def colour_transfer(
    image,
    palette,
    settings: TransferSettings = TransferSettings(),
    progress: Callable[[int, int], object] | None = None,
) -> np.ndarray:
    """Move an image's colours towards a palette image's colours.

    ``method="uot"``: unbalanced OT between the colour histograms (``p`` from the
    palette, ``q`` from the image; :func:`sinkhorn_unbalanced`), then the barycentric
    map (:func:`barycentric_map`) applied by trilinear interpolation
    (:func:`apply_colour_map`). ``method="gaussian"``: the Bures map between the
    Gaussian fits of the two images' colours (:func:`bures_map`; its ridge keeps
    single-colour images finite), applied per pixel.

    Args:
      image: uint8 ``(H, W, 3)`` RGB, the image to recolour.
      palette: uint8 ``(H', W', 3)`` RGB, whose colours are the goal.
      settings: :class:`TransferSettings` (``bins``, ``lam`` and the schedule only
        matter for ``"uot"``).
      progress: ``progress(done, total)`` in iterations ("uot"); ``progress(1, 1)`` once
        for "gaussian".

    Returns:
      uint8 ``(H, W, 3)``, rounded to the nearest level and clipped to 0..255.

    Raises:
      ValueError: pixels that are not uint8 (H, W, 3).
    """
    image = _check_rgb8(image, "image")
    palette = _check_rgb8(palette, "palette")
    if settings.method == "gaussian":
        matrix, offset = bures_map(gaussian_stats(image), gaussian_stats(palette))
        out = apply_affine(image, matrix, offset)
        if progress is not None:
            progress(1, 1)
        return out
    solution = sinkhorn_unbalanced(
        colour_histogram(palette, settings.bins),
        colour_histogram(image, settings.bins),
        lam=settings.lam,
        eps0=settings.eps0,
        stages=settings.stages,
        iters=settings.iters,
        progress=progress,
    )
    return apply_colour_map(image, barycentric_map(solution))


# --------------------------------------------------------------------------------------
# Colour path for morph frames
# --------------------------------------------------------------------------------------


class ColourPath:
    """The even colour path of a morph: frames moved onto the W2 geodesic of colour statistics.

    A frame at ``alpha`` is mapped by the Bures map (:func:`bures_map`) from its own
    Gaussian colour fit onto ``bures_geodesic(G_source, G_target, alpha)``, the point at
    ``alpha`` of the W2 geodesic between the end frames' fits, so the colour statistics
    move at constant W2 speed; alpha 0 and 1 are the identity (the end frames stay
    exact).

    Rounding to uint8 and clipping to 0..255 move the result's statistics off the
    goal (on the bundled photo pair's middle frame, 256 x 256, 1% of the pixels clip:
    0.95% of the end-to-end W2 away from the goal). ``refine`` extra Bures maps, each
    from the rounded, clipped result's own fit to the same goal, correct most of it
    (0.21% after one; more do not help, rounding sets the floor). Default 0: one
    map, as specified.

    Args:
      source, target: uint8 ``(H, W, 3)`` RGB end frames (alpha 0 and 1).
      ridge: as :func:`bures_map`.
      refine: extra maps per frame, an integer >= 0.

    Raises:
      ValueError: pixels that are not uint8 ``(H, W, 3)``, or a negative ``refine``.
    """

    def __init__(self, source, target, ridge: float = RIDGE, refine: int = 0):
        if not _is_int(refine) or refine < 0:
            raise ValueError(f"refine must be an integer >= 0 (got {refine!r})")
        self.source = gaussian_stats(_check_rgb8(source, "source"))
        self.target = gaussian_stats(_check_rgb8(target, "target"))
        self.ridge = ridge
        self.refine = refine

    def goal(self, alpha: float) -> Gaussian:
        """The geodesic point at ``alpha`` in [0, 1] (:func:`bures_geodesic`)."""
        if not (isinstance(alpha, numbers.Real) and 0 <= alpha <= 1):
            raise ValueError(f"alpha must be a number in [0, 1] (got {alpha!r})")
        return bures_geodesic(self.source, self.target, float(alpha), self.ridge)

    def apply(self, frame, alpha: float) -> np.ndarray:
        """The frame with its colours moved onto the geodesic point at ``alpha``.

        Args:
          frame: uint8 ``(H, W, 3)`` RGB, the morph's frame at ``alpha``.
          alpha: in [0, 1].

        Returns:
          uint8 ``(H, W, 3)``, rounded and clipped; a copy of ``frame`` at alpha 0 and 1.

        Raises:
          ValueError: alpha outside [0, 1] or a frame that is not uint8 ``(H, W, 3)``.
        """
        frame = _check_rgb8(frame, "frame")
        goal = self.goal(alpha)
        if alpha == 0 or alpha == 1:
            return frame.copy()
        out = frame
        for _ in range(1 + self.refine):
            matrix, offset = bures_map(gaussian_stats(out), goal, self.ridge)
            out = apply_affine(out, matrix, offset)
        return out
