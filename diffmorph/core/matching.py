"""Automatic point pairs: SIFT features matched between two images.

Lowe's SIFT (OpenCV, in ``opencv-python-headless`` since 4.4), nearest neighbours with
Lowe's ratio test (Lowe 2004, https://www.cs.ubc.ca/~lowe/papers/ijcv04.pdf, section
7.1), then a robust fit of the fundamental matrix (``cv2.findFundamentalMat`` with
``USAC_MAGSAC``) drops matches that no single view geometry explains. Finally pairs are
thinned so that no two source points are closer than a fraction of the image. This
works for the same subject seen twice (moved, turned, re-lit) and finds little or
nothing between different subjects; the caller then morphs unguided.
"""

from __future__ import annotations

import cv2
import numpy as np

RATIO = 0.75  # Lowe's ratio test
MAX_SIDE = 1024  # images are matched at most this large (coordinates scaled back)
MAX_FEATURES = 4000
MAX_PAIRS = 100  # pairs kept, the most distinctive first
MIN_SPACING = 0.03  # of the source's larger side: closer source points are thinned out
FIT_THRESHOLD = 0.01  # of the larger side: epipolar distance of an inlier (pixels at matching size)
MIN_FIT = 8  # matches the fundamental-matrix fit needs


def _grey(image: np.ndarray) -> tuple[np.ndarray, float]:
    """uint8 grey at most MAX_SIDE on its larger side, and the scale applied."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, MAX_SIDE / max(grey.shape))
    if scale < 1.0:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return grey, scale


def match_points(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Point pairs found automatically between two images.

    Args:
      source, target: uint8 ``(H, W, 3)`` RGB, any sizes.

    Returns:
      float64 ``(N, 4)`` rows ``(source_x, source_y, target_x, target_y)`` in each
      image's own pixels (origin at the centre of the top-left pixel), 0 <= N <= 100,
      no source point twice; ``N = 0`` when too few reliable matches are found.
    """
    grey_a, scale_a = _grey(source)
    grey_b, scale_b = _grey(target)
    sift = cv2.SIFT_create(nfeatures=MAX_FEATURES)
    keys_a, desc_a = sift.detectAndCompute(grey_a, None)
    keys_b, desc_b = sift.detectAndCompute(grey_b, None)
    if desc_a is None or desc_b is None or len(keys_a) < 2 or len(keys_b) < 2:
        return np.zeros((0, 4))
    matches = cv2.BFMatcher(cv2.NORM_L2).knnMatch(desc_a, desc_b, k=2)
    good = [(m.distance / max(n.distance, 1e-9), m) for m, n in (p for p in matches if len(p) == 2)]
    good = sorted(((r, m) for r, m in good if r < RATIO), key=lambda item: item[0])
    if len(good) < MIN_FIT:
        return np.zeros((0, 4))
    pts_a = np.float64([keys_a[m.queryIdx].pt for _, m in good])
    pts_b = np.float64([keys_b[m.trainIdx].pt for _, m in good])
    threshold = FIT_THRESHOLD * max(grey_a.shape)
    _, inliers = cv2.findFundamentalMat(pts_a, pts_b, cv2.USAC_MAGSAC, threshold, 0.999, 10000)
    if inliers is None:
        return np.zeros((0, 4))
    keep = inliers.ravel().astype(bool)
    own_a, own_b = (pts_a[keep] + 0.5) / scale_a - 0.5, (pts_b[keep] + 0.5) / scale_b - 0.5  # pixel centres
    pairs = np.concatenate([own_a, own_b], axis=1)  # best ratio first
    return _thin(pairs, MIN_SPACING * max(source.shape[:2]))


def _thin(pairs: np.ndarray, spacing: float) -> np.ndarray:
    """Greedily keep pairs (in order) whose source point is at least ``spacing`` from those kept."""
    kept: list[np.ndarray] = []
    for row in pairs:
        if all(np.hypot(*(row[:2] - k[:2])) >= spacing for k in kept):
            kept.append(row)
            if len(kept) == MAX_PAIRS:
                break
    return np.asarray(kept, np.float64).reshape(-1, 4)
