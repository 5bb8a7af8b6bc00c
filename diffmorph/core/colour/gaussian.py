"""Gaussian fits of colours and the 2-Wasserstein (Bures) geometry between them.

W2 between Gaussian fits, the Bures-Wasserstein geometry (the formula behind FID,
Heusel et al. 2017, https://arxiv.org/abs/1706.08500; the closed forms are in Peyré
and Cuturi, *Computational Optimal Transport*, remark 2.31,
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
inverse and uses none. Colours are unit-cube RGB (:mod:`diffmorph.core.colour`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .arrays import CHUNK

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
    for start in range(0, len(flat), CHUNK):  # chunks: no float copy of a whole large image
        total += unit_colours(flat[start : start + CHUNK]).sum(axis=0)
    mean = total / len(flat)  # (3,)
    cov = np.zeros((3, 3))
    for start in range(0, len(flat), CHUNK):  # second pass: centred products (no cancellation)
        centred = unit_colours(flat[start : start + CHUNK]) - mean  # (m, 3)
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
