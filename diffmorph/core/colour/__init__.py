"""Colour statistics and optimal transport between colour distributions.

Convention (every module here):

* colours are RGB triples in the unit cube: uint8 pixels are divided by 255, float
  pixels are taken as already in [0, 1]. Means have shape ``(3,)``, covariances
  ``(3, 3)``, both float64, in those units (a variance of 1e-4 is a standard
  deviation of 2.55 levels of 255).
* "W2" is the 2-Wasserstein *distance* (not squared) in those units.

Modules, one idea each:

* :mod:`~diffmorph.core.colour.gaussian`: Gaussian fits, W2 between them, the Bures
  map and geodesic;
* :mod:`~diffmorph.core.colour.histogram`: colour histograms on a ``bins^3`` grid;
* :mod:`~diffmorph.core.colour.lse`: the separable log-sum-exp with the Gibbs kernel;
* :mod:`~diffmorph.core.colour.uot`: unbalanced Sinkhorn and the barycentric map;
* :mod:`~diffmorph.core.colour.apply`: colour maps applied to pixels;
* :mod:`~diffmorph.core.colour.transfer`: :func:`colour_transfer` and its
  :class:`TransferSettings`;
* :mod:`~diffmorph.core.colour.path`: :class:`ColourPath`, morph frames moved onto
  the W2 geodesic between the end frames' colours.

The public names are imported here: ``from diffmorph.core.colour import colour_transfer``.
"""

from __future__ import annotations

from .apply import apply_affine, apply_colour_map, map_colours
from .gaussian import RIDGE, Gaussian, bures_geodesic, bures_map, gaussian_stats, sqrtm_psd, unit_colours, w2_gaussian
from .histogram import DEFAULT_BINS, MAX_BINS, MIN_BINS, bin_centres, check_bins, colour_histogram
from .lse import gibbs_logsumexp, grid_coordinates
from .path import ColourPath
from .transfer import METHODS, TransferSettings, colour_transfer
from .uot import (
    DEFAULT_EPS0,
    DEFAULT_ITERS,
    DEFAULT_LAMBDA,
    DEFAULT_STAGES,
    EPS_MIN,
    PROGRESS_EVERY,
    UotSolution,
    barycentric_map,
    eps_schedule,
    plan_marginals,
    sinkhorn_unbalanced,
)

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_EPS0",
    "DEFAULT_ITERS",
    "DEFAULT_LAMBDA",
    "DEFAULT_STAGES",
    "EPS_MIN",
    "MAX_BINS",
    "METHODS",
    "MIN_BINS",
    "PROGRESS_EVERY",
    "RIDGE",
    "ColourPath",
    "Gaussian",
    "TransferSettings",
    "UotSolution",
    "apply_affine",
    "apply_colour_map",
    "barycentric_map",
    "bin_centres",
    "bures_geodesic",
    "bures_map",
    "check_bins",
    "colour_histogram",
    "colour_transfer",
    "eps_schedule",
    "gaussian_stats",
    "gibbs_logsumexp",
    "grid_coordinates",
    "map_colours",
    "plan_marginals",
    "sinkhorn_unbalanced",
    "sqrtm_psd",
    "unit_colours",
    "w2_gaussian",
]
