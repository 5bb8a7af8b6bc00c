"""The distance from a colour Gaussian to the Bures geodesic between two others, by search.

``dev = min_{s in [0, 1]} W2(G, gamma(s))`` for the W2 geodesic ``gamma`` from
``G_0`` to ``G_1`` (:func:`~diffmorph.core.colour.gaussian.bures_geodesic`): the
distance to the geodesic *curve*, so no alpha is needed. Computed on a grid of
:data:`GEODESIC_GRID` + 1 values of ``s``, then refined by golden-section search
around every grid local minimum to ``|ds| <`` :data:`GEODESIC_TOL` (a W2 error below
``1e-5 W``). ``gamma(1)`` is ``G_1`` itself: the Bures map's ridge
(:data:`~diffmorph.core.colour.gaussian.RIDGE`) would otherwise miss it slightly.
"""

from __future__ import annotations

import math

import numpy as np

from .gaussian import Gaussian, bures_geodesic, w2_gaussian

GEODESIC_GRID = 16  # intervals of the s grid before refinement
GEODESIC_TOL = 1e-5  # refinement stops when the bracket in s is this small
GOLDEN = (math.sqrt(5) - 1) / 2


def _golden(f, lo: float, hi: float, tol: float) -> tuple[float, float]:
    """Minimise ``f`` on ``[lo, hi]`` by golden-section search; returns ``(f(s), s)``."""
    x1, x2 = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    f1, f2 = f(x1), f(x2)
    while hi - lo > tol:
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - GOLDEN * (hi - lo)
            f1 = f(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + GOLDEN * (hi - lo)
            f2 = f(x2)
    return (f1, x1) if f1 <= f2 else (f2, x2)


class Geodesic:
    """The Bures geodesic between two colour Gaussians, and distances to it.

    Args:
      start, end: :class:`~diffmorph.core.colour.gaussian.Gaussian` at ``s = 0`` and ``s = 1``.
      grid: intervals of the ``s`` grid searched before refinement.
      tol: refinement stops when the bracket in ``s`` is narrower than this.
    """

    def __init__(self, start: Gaussian, end: Gaussian, grid: int = GEODESIC_GRID, tol: float = GEODESIC_TOL):
        self.start, self.end, self.tol = start, end, tol
        self.s = np.linspace(0.0, 1.0, grid + 1)
        self.points = [self.at(s) for s in self.s]
        self.length = w2_gaussian(start, end)

    def at(self, s: float) -> Gaussian:
        """The Gaussian at ``s`` in [0, 1] (exactly ``end`` at ``s = 1``)."""
        return self.end if s == 1 else bures_geodesic(self.start, self.end, float(s))

    def distance(self, g: Gaussian) -> tuple[float, float]:
        """``(min_s W2(g, gamma(s)), argmin s)``: the W2 distance from ``g`` to the curve.

        Grid search, then golden-section refinement in the two grid intervals beside
        every grid local minimum (so a function with several dips is searched at each).
        """
        values = np.array([w2_gaussian(g, p) for p in self.points])
        best = (float(values.min()), float(self.s[int(values.argmin())]))
        last = len(values) - 1
        for k in range(len(values)):
            left = values[k - 1] if k > 0 else math.inf
            right = values[k + 1] if k < last else math.inf
            if values[k] <= left and values[k] <= right and values[k] > 0:
                lo, hi = self.s[max(0, k - 1)], self.s[min(last, k + 1)]
                found = _golden(lambda s: w2_gaussian(g, self.at(s)), lo, hi, self.tol)
                best = min(best, found)
        return best
