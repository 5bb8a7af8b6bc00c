"""Unbalanced entropic optimal transport between colour histograms, and its barycentric map.

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

and the plan ``P_ij = exp((f_i + g_j - C_ij) / eps)``; ``LSE_K`` is
:mod:`diffmorph.core.colour.lse`. This is exactly the problem of POT's
``ot.unbalanced.sinkhorn_unbalanced(p, q, C, reg=eps, reg_m=lam,
reg_type="entropy", method="sinkhorn")`` (its entropy term ``sum P log P - P`` differs
from ``KL(P | 1)`` by a constant), whose iterations start from the same ``f = g = 0``.
Empty bins have ``log p = -inf``, hence ``f = -inf`` and a zero plan row.
``eps`` follows the published schedule: ``eps0 = 1`` halved after each of 10 stages of
100 iterations (1, 1/2, ..., 1/512), never below a floor ``eps_min``; the kernel is
rebuilt at every ``eps`` and the potentials carry over from stage to stage.

The barycentric map (:func:`barycentric_map`): for every bin ``j``,
``T(j) = sum_i P_ij x_i / sum_i P_ij``; ``g_j`` cancels, so ``T`` is a kernel-weighted
mean of ``x_i`` under the weights ``exp(f_i / eps)``, computed with the same separable
passes (numerator with the kernel along one axis weighted by ``1 + x_a``, which keeps
the exactness bound; ``T = exp(LSE_num - LSE_den) - 1``). This is the entropic map
(Pooladian and Niles-Weed 2021, https://arxiv.org/abs/2109.12004): it is defined on
every bin, including bins the image does not use, so the trilinear interpolation of
:func:`~diffmorph.core.colour.apply.apply_colour_map` never mixes in an unmapped
neighbour. Its denominator is positive on every bin (``K > 0`` and some ``f_i`` is
finite), so no bin needs an identity fallback: an unused image bin (``q_j = 0``) has no
plan mass only through the factor ``exp(g_j / eps)``, which cancels. (Keeping such
bins at the identity instead changes 14% of the pixels of the bundled pair by 3
levels or more, up to 61: the 25% whose eight surrounding bin centres include an
unused bin.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ...checks import is_int, is_positive
from .lse import SeparableLSE, grid_coordinates, log_kernel

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
PROGRESS_EVERY = 10  # iterations between progress(done, total) calls


def check_schedule(lam, eps0, stages, iters) -> None:
    """Raise ValueError (one line, the first bad one) unless ``lam`` and ``eps0`` are in
    :data:`LAMBDA_RANGE` / :data:`EPS0_RANGE`, ``stages`` is an integer 1..:data:`MAX_STAGES`,
    ``iters`` an integer 1..:data:`MAX_ITERS`, and ``stages * iters`` at most :data:`MAX_ITERATIONS`."""
    for name, value, (low, high) in (("lambda", lam, LAMBDA_RANGE), ("eps0", eps0, EPS0_RANGE)):
        if not is_positive(value) or not low <= value <= high:
            raise ValueError(f"{name} must be a number from {low:g} to {high:g} (got {value!r})")
    for name, value, high in (("stages", stages, MAX_STAGES), ("iters", iters, MAX_ITERS)):
        if not is_int(value) or not 1 <= value <= high:
            raise ValueError(f"{name} must be an integer from 1 to {high} (got {value!r})")
    if stages * iters > MAX_ITERATIONS:
        raise ValueError(
            f"iters must be at most {MAX_ITERATIONS // stages} with {stages} stages "
            f"(stages x iters at most {MAX_ITERATIONS}; got {iters})"
        )


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


def log_or_minus_inf(counts: np.ndarray) -> np.ndarray:
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
      ValueError: bad settings (:func:`check_schedule`) or histograms (shapes
        differ, negative or non-finite counts, all zero).
    """
    check_schedule(lam, eps0, stages, iters)
    if not is_positive(eps_min):
        raise ValueError(f"eps_min must be a finite number > 0 (got {eps_min!r})")
    p = _check_histogram(p, "p")
    q = _check_histogram(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape (got {p.shape} and {q.shape})")
    n = p.shape[0]
    log_p, log_q = log_or_minus_inf(p), log_or_minus_inf(q)
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
        lse = SeparableLSE([log_kernel(n, eps)] * 3)  # the kernel at this eps
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
    lse = SeparableLSE([log_kernel(n, solution.eps)] * 3)
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
    log_k = log_kernel(n, eps)
    log_den = SeparableLSE([log_k] * 3)(f_eps).copy()
    weighted = log_k + np.log1p(grid_coordinates(n))[:, None]  # input a weighted by 1 + x_a (diagonal stays >= 1)
    mapped = np.empty((n, n, n, 3))
    for axis in range(3):
        kernels = [log_k] * 3
        kernels[axis] = weighted
        log_num = SeparableLSE(kernels)(f_eps)
        mapped[..., axis] = np.expm1(log_num - log_den)  # sum w (1 + x) / sum w - 1
    return np.clip(mapped, 0.0, 1.0, out=mapped)  # in [0, 1] up to rounding
