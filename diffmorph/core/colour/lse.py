"""The separable log-sum-exp with the Gibbs kernel of a colour grid: ``LSE_K(h) = log(K exp(h))``.

``K = K_R (x) K_G (x) K_B`` with ``K_axis[a, i] = exp(-(x_a - x_i)^2 / eps)``, so
``K exp(h)`` is three products of a ``(bins^2, bins) x (bins, bins)`` matrix (BLAS),
never a ``bins^3 x bins^3`` matrix (Solomon et al., *Convolutional Wasserstein
distances*, SIGGRAPH 2015, https://doi.org/10.1145/2766963). The exponentials are
shifted by their maximum over the contracted axes ("max-shifted"), and shifted terms
are floored at ``exp(-700)`` (exp stays fast and normal there).

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

Speed (figures: docs/guides/colour.md and docs/performance.md; ``python tools/colour_bench.py``): colour
histograms are sparse (a photo uses a few percent of the 64^3 bins), so the first
pass only exponentiates and multiplies the lines that hold mass, and the last pass
only computes the lines the caller reads; the kernel products are GEMMs small enough
for OpenBLAS to run each on one thread (``64 x 64 x 64`` items, blocks of kernel
columns above 64 bins), as its threads stall on a shared machine. A TensorFlow
version of the same passes (float64, ``tf.function``, with or without XLA) was slower.
"""

from __future__ import annotations

import numpy as np

from ...checks import is_positive
from .arrays import CHUNK

FLOOR = 700.0  # shifted log-terms are floored at -FLOOR: exp(-700) ~ 1e-304 is a normal double
_LINEAR_RANGE = 600.0  # a group of kernel passes stays linear while its kernels span <= this (in log units)
_LOW = float(np.exp(-_LINEAR_RANGE))  # below this a single unchecked pass could have lost precision
GEMM_ONE_THREAD = 4 * 65536  # OpenBLAS runs a GEMM with m * n * k at most this on one thread


def grid_coordinates(bins: int) -> np.ndarray:
    """Unit-cube coordinates of the bins along one axis: ``x_i = i / (bins - 1)``, float64 ``(bins,)``."""
    return np.arange(bins) / (bins - 1)


def log_kernel(bins: int, eps: float) -> np.ndarray:
    """``log K[a, i] = -(x_a - x_i)^2 / eps`` along one axis, float64 ``(bins, bins)``."""
    x = grid_coordinates(bins)
    return -((x[:, None] - x[None, :]) ** 2) / eps


def _batched(items: np.ndarray, kernel: np.ndarray, out: np.ndarray) -> None:
    """``out[b] = items[b] @ kernel`` for ``(B, n, n)`` stacks, as single-threaded GEMMs.

    OpenBLAS runs a GEMM on one thread when ``m * n * k <= 4 * 65536`` (its default
    threshold) and on every core above it; its threads then wait for each other when
    other processes share the cores, which made one product many times slower
    (docs/performance.md). So every GEMM stays under the threshold: ``n x n`` items, and for
    ``n > 64`` blocks of kernel columns.
    """
    n = kernel.shape[0]
    step = max(1, GEMM_ONE_THREAD // (n * n))
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


class SeparableLSE:
    """``h -> log(K exp(h))`` on an ``n^3`` grid for ``K = K_0 (x) K_1 (x) K_2``.

    ``log_kernels[d][a, i]`` is the log of the axis-``d`` kernel from input index ``a``
    to output index ``i``; every kernel must have a diagonal >= 1 (its log >= 0), which
    keeps every linear-domain value >= ``exp(-FLOOR)`` (never subnormal, never 0).
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
        self._floor_row = np.exp(-FLOOR) * self.kernels[0].sum(axis=0)  # first pass of an all -inf line
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
            np.maximum(y, -FLOOR, out=y)
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
                np.log(picked, out=picked)  # >= exp(-FLOOR) > 0 (diagonal >= 1)
                picked += picked_top[:, None]
                if low is not None and low[0].size:
                    picked[low] = self._exact(x2, axis, rows[low[0]], low[1])
                out.reshape(n * n, n)[rows] = picked
                return out
            y = y.reshape(lines, n**size)
            low = np.nonzero((y < _LOW) & finite[:, None]) if checked else None
            np.log(y, out=y)  # >= exp(-FLOOR) > 0 (diagonal >= 1)
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
        step = max(1, CHUNK // self.n)
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
    if not is_positive(eps):
        raise ValueError(f"eps must be a finite number > 0 (got {eps!r})")
    if np.isnan(array).any() or np.isposinf(array).any() or not np.isfinite(array).any():
        raise ValueError("h must hold finite values or -inf, and at least one finite value")
    return SeparableLSE([log_kernel(array.shape[0], eps)] * 3)(array).copy()
