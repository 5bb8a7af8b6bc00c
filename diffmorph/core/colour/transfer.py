"""Colour transfer: an image's colours moved towards a palette image's, with validated settings.

``method="uot"``: unbalanced OT between the colour histograms
(:mod:`~diffmorph.core.colour.uot`), then the barycentric map applied by trilinear
interpolation (:mod:`~diffmorph.core.colour.apply`); ``method="gaussian"``: the Bures
map between Gaussian fits (:mod:`~diffmorph.core.colour.gaussian`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import numpy as np

from .apply import apply_affine, apply_colour_map
from .arrays import check_rgb8
from .gaussian import bures_map, gaussian_stats
from .histogram import DEFAULT_BINS, check_bins, colour_histogram
from .uot import (
    DEFAULT_EPS0,
    DEFAULT_ITERS,
    DEFAULT_LAMBDA,
    DEFAULT_STAGES,
    barycentric_map,
    check_schedule,
    sinkhorn_unbalanced,
)

METHODS = ("uot", "gaussian")


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
      (The solver's epsilon floor is :data:`~diffmorph.core.colour.uot.EPS_MIN`;
        :func:`~diffmorph.core.colour.uot.sinkhorn_unbalanced` takes another.)

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
        check_schedule(self.lam, self.eps0, self.stages, self.iters)

    @property
    def iterations(self) -> int:
        """Scaling iterations of the whole schedule ("uot")."""
        return self.stages * self.iters


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
    image = check_rgb8(image, "image")
    palette = check_rgb8(palette, "palette")
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
