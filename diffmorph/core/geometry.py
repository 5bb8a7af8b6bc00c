"""Large deformations: a thin-plate-spline flow prior from point pairs, the in-between
geometry of a frame, and where a frame's two halves put the same content.

Flows follow the warp's convention (``out[y, x] = img[y - dy, x - dx]``): the A->B flow
``f_AB`` lives on the target's grid (target pixel ``p`` shows source pixel
``p - f_AB(p)``), the B->A flow ``f_BA`` on the source's grid (source pixel ``q`` shows
target pixel ``q - f_BA(q)``). So the source point ``q`` corresponds to the target point
``q - f_BA(q)``, and the target point ``p`` to the source point ``p - f_AB(p)``.

* :func:`tps_prior`: a thin-plate spline (Bookstein 1989) through the point pairs, with
  the image's corners and edge midpoints pinned, in both directions, as flow maps the
  net's output is added to (``MorphConfig.point_prior="tps"``).
* :func:`frame_flows`: the backward flows of a frame's two halves at ``alpha``:
  ``"scaled"`` (the original: ``alpha * f_AB`` and ``(1 - alpha) * f_BA``) or
  ``"between"``: the source point ``q`` lands at ``q - alpha * f_BA(q)`` (a
  ``(1 - alpha) a + alpha b`` step along its own correspondence), the target point ``p``
  at ``p - (1 - alpha) * f_AB(p)``; these forward maps are inverted per pixel by
  Newton's method (:func:`solve`).
* :func:`alignment`: how far apart the two halves of a frame put the same content, in
  % of the image diagonal (dense, and at point pairs).

Derivations: ``docs/algorithm.md``, "Large deformations". All in NumPy (float64
inside), on the working-size grid.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["PIN_FRACTIONS", "tps_fit", "tps_prior", "flows_pixels", "solve", "frame_flows", "alignment"]

PIN_FRACTIONS = (0.0, 0.5, 1.0)  # border pins: the corners and edge midpoints (fractions of the image)
NEWTON_STEPS = 12
INVERSE_GRID = 512  # the grid on which the prior's B->A flow is inverted for its A->B flow
INVERSE_TOLERANCE = 0.5  # pixels of that grid: an inverse further off is a fold
MERGE_DISTANCE = 0.005  # pairs whose points are closer (fractions of the image) share one spline value
MIN_DET = 0.05  # below this (a fold) a Newton step falls back to a fixed-point step


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    """``U = r^2 log r`` from squared distances (0 at r = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r2 > 0, 0.5 * r2 * np.log(np.where(r2 > 0, r2, 1.0)), 0.0)


def merge_close(centres: np.ndarray, values: np.ndarray, min_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres closer than ``min_distance`` to an earlier kept centre merged into it (their values averaged).

    An interpolating spline cannot take two different values at one point: centres nearly on
    top of each other with different values (a closed mouth's upper and lower lip landmarks
    paired with an open mouth's) make its weights explode (1e4 at 1e-7 apart). Merging them
    asks for the mean there instead, the least-squares answer for coincident centres.

    Args:
      centres: float ``(K, 2)``; values: float ``(K, D)``; min_distance: in the centres' unit (>= 0).

    Returns:
      ``(centres, values)`` of the kept centres, in their first order, float64.

    Example:
      >>> c, v = merge_close(np.array([[0., 0], [0, 1e-6], [1, 0]]), np.array([[0.], [2], [5]]), 1e-3)
      >>> c.tolist(), v.tolist()
      ([[0.0, 0.0], [1.0, 0.0]], [[1.0], [5.0]])
    """
    c = np.asarray(centres, np.float64)
    v = np.asarray(values, np.float64)
    owner = np.arange(len(c))
    for i in range(len(c)):
        near = np.flatnonzero(np.linalg.norm(c[:i] - c[i], axis=-1) < min_distance)
        near = near[owner[near] == near]  # only kept centres take others
        if near.size:
            owner[i] = near[0]
    kept = np.flatnonzero(owner == np.arange(len(c)))
    means = np.stack([v[owner == k].mean(axis=0) for k in kept]) if len(kept) else v[:0]
    return c[kept], means


def tps_fit(centres: np.ndarray, values: np.ndarray, min_distance: float = 0.0):
    """A thin-plate spline through ``values`` at ``centres`` (exact interpolation).

    Centres closer than ``min_distance`` (the centres' unit) are first merged, their values
    averaged (:func:`merge_close`), so near-coincident centres with different values cannot
    make the spline explode.

    ``f(x) = sum_i w_i U(|x - c_i|) + a_0 + a_1 x_0 + a_2 x_1`` with ``U(r) = r^2 log r``
    and ``sum_i w_i = sum_i w_i c_i = 0`` (Bookstein, "Principal warps", IEEE TPAMI
    1989; SciPy's ``RBFInterpolator(kernel="thin_plate_spline")`` is the same function).

    Args:
      centres: float ``(K, 2)`` positions (any unit), K >= 3 not all on one line.
      values: float ``(K, D)``.

    Returns:
      a function from float ``(M, 2)`` positions to float64 ``(M, D)`` values.

    Example:
      >>> f = tps_fit(np.array([[0., 0], [1, 0], [0, 1], [1, 1]]), np.array([[0.], [1], [2], [3]]))
      >>> np.round(f(np.array([[0.5, 0.5], [1.0, 1.0]])), 6)  # an affine function is reproduced
      array([[1.5],
             [3. ]])
    """
    c, v = merge_close(centres, values, min_distance)
    k = len(c)
    kernel = _tps_kernel(np.sum((c[:, None] - c[None]) ** 2, axis=-1))
    poly = np.concatenate([np.ones((k, 1)), c], axis=1)  # (K, 3)
    system = np.zeros((k + 3, k + 3))
    system[:k, :k], system[:k, k:], system[k:, :k] = kernel, poly, poly.T
    rhs = np.concatenate([v, np.zeros((3, v.shape[1]))])
    try:
        coef = np.linalg.solve(system, rhs)
    except np.linalg.LinAlgError:  # repeated centres: the least-squares solution
        coef = np.linalg.lstsq(system, rhs, rcond=None)[0]

    def evaluate(x):
        x = np.asarray(x, np.float64)
        u = _tps_kernel(np.sum((x[:, None] - c[None]) ** 2, axis=-1))  # (M, K)
        return u @ coef[:k] + np.concatenate([np.ones((len(x), 1)), x], axis=1) @ coef[k:]

    return evaluate


def _pins() -> np.ndarray:
    """The border pins, ``(8, 2)`` (y, x) fractions: corners and edge midpoints."""
    return np.array([(y, x) for y in PIN_FRACTIONS for x in PIN_FRACTIONS if (y, x) != (0.5, 0.5)])


def tps_prior(normalised: np.ndarray, grid: int, warp_scale: float) -> np.ndarray:
    """The thin-plate-spline flow prior of point pairs, as maps the net's output is added to.

    The B->A flow (on the source's grid) is the spline through ``a_i - b_i`` at the
    source points ``a_i`` and 0 at the border pins (:data:`PIN_FRACTIONS`), a classic
    morph's map from the source; the A->B flow (on the target's grid) is its inverse
    (``f_AB(p) = p - q`` where ``q - f_BA(q) = p``, by :func:`solve` on a 512 x 512
    grid), so it is ``b_i - a_i`` at ``b_i`` and the two directions pair every point the
    same way. Where the spline folds (crossing pairs, a point pulled hard against a pin)
    and has no inverse, the A->B flow is the spline through ``b_i - a_i`` at ``b_i``; and
    where the inverse misses a target point (a fold's other preimage), a spline through
    what it misses at the target points is added, so ``f_AB(b_i) = b_i - a_i`` always.
    (Two independent splines would agree only at the pairs: on the bundled pair their
    frames' halves were 1.5 % of the diagonal apart, 0.4 % with the inverse.) At full
    strength each source point lands on its target point and the frame's border stays
    put. Points closer than :data:`MERGE_DISTANCE` to another (a closed mouth's two lip
    landmarks) share one value, the mean of their pairs' (:func:`merge_close`): a spline
    through two different values that close together explodes; the point loss still
    pulls each pair on its own.

    Args:
      normalised: float ``(N, 4)`` pairs as fractions of their images
        (:func:`diffmorph.io.points.normalise`), N >= 1.
      grid: the size n of the maps it is added to (the net's ``(1, n, n, 16)`` output);
        map pixel ``j`` is at the fraction ``(j + 0.5) / n`` (``tf.image.resize``'s
        half-pixel centres), so it upsamples like the net's maps.
      warp_scale: w_s; a flow map of 1 is ``S * w_s`` pixels, a fraction ``1 / w_s``.

    Returns:
      float32 ``(1, n, n, 16)``: zeros except the flow channels 6, 7 (A->B) and 14, 15
      (B->A), (dy, dx) in flow units (fractions / w_s). All zero when ``warp_scale`` is 0.
    """
    out = np.zeros((1, grid, grid, 16), np.float32)
    if warp_scale <= 0:
        return out
    pairs = np.asarray(normalised, np.float64)
    a = pairs[:, [1, 0]]  # (N, 2) source (y, x) fractions
    b = pairs[:, [3, 2]]
    pins = _pins()
    ramp = (np.arange(grid) + 0.5) / grid
    where = np.stack(np.meshgrid(ramp, ramp, indexing="ij"), axis=-1).reshape(-1, 2)  # (n*n, 2) (y, x)
    zero = np.zeros((len(pins), 2))
    spline = tps_fit(np.concatenate([a, pins]), np.concatenate([a - b, zero]), MERGE_DISTANCE)
    out[0, :, :, 14:16] = (spline(where) / warp_scale).reshape(grid, grid, 2)
    # A->B: the inverse of the B->A correspondence (not a second spline, which would pair
    # the points but disagree with the first between them): f_AB(p) = p - q with q - f_BA(q) = p
    fine = INVERSE_GRID
    ramp_fine = (np.arange(fine) + 0.5) / fine
    f_ba = spline(np.stack(np.meshgrid(ramp_fine, ramp_fine, indexing="ij"), -1).reshape(-1, 2)) * fine
    f_ba = f_ba.reshape(fine, fine, 2)
    p = where * fine - 0.5  # the maps' pixel centres in pixels of the fine grid
    q = solve(f_ba, 1.0, p)
    inverse = (p - q) / fine
    # where the spline folds (points that cross, or pulled hard against a pin) it has no
    # inverse there: there the A->B flow is the spline through b_i - a_i at b_i instead
    missed = np.linalg.norm(q - _sample(f_ba, q) - p, axis=-1) > INVERSE_TOLERANCE
    if missed.any():
        direct = tps_fit(np.concatenate([b, pins]), np.concatenate([b - a, zero]), MERGE_DISTANCE)
        inverse[missed] = direct(where[missed])
    # a fold can also send a target point to another of its preimages: a spline through
    # what is still missing at the target points (0 where nothing is) makes them exact
    at_b = b * fine - 0.5
    missing = (b - a) - (at_b - solve(f_ba, 1.0, at_b)) / fine
    if np.abs(missing).max() > INVERSE_TOLERANCE / fine:
        inverse += tps_fit(np.concatenate([b, pins]), np.concatenate([missing, zero]), MERGE_DISTANCE)(where)
    out[0, :, :, 6:8] = (inverse / warp_scale).reshape(grid, grid, 2)
    return out


def flows_pixels(maps_low: np.ndarray, size: int, warp_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The A->B and B->A flows in pixels of a ``size x size`` grid, float64 ``(size, size, 2)`` each.

    The net's ``(1, n, n, 16)`` output resized bilinearly (half-pixel centres, as
    ``tf.image.resize``) and scaled by ``size * warp_scale``.
    """
    flows = np.asarray(maps_low, np.float32)[0][..., [6, 7, 14, 15]]
    big = cv2.resize(flows, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float64) * (size * warp_scale)
    return big[..., 0:2], big[..., 2:4]


def _sample(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of float ``(G, G, C)`` at ``(..., 2)`` (y, x) pixel positions, border clamped."""
    shape = points.shape[:-1]
    flat = points.reshape(-1, 2)
    count = len(flat)
    width = min(count, 4096)  # remap's maps must be under 32767 on a side
    rows = -(-count // width)
    padded = np.zeros((rows * width, 2), np.float32)
    padded[:count] = flat
    py = np.ascontiguousarray(padded[:, 0].reshape(rows, width))
    px = np.ascontiguousarray(padded[:, 1].reshape(rows, width))
    parts = []
    for c0 in range(0, field.shape[-1], 4):
        chunk = np.ascontiguousarray(field[..., c0 : c0 + 4], np.float32)
        got = cv2.remap(chunk, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        parts.append(got.reshape(rows * width, -1)[:count])
    return np.concatenate(parts, axis=-1).astype(np.float64).reshape(*shape, field.shape[-1])


def _jacobian(field: np.ndarray) -> np.ndarray:
    """``(G, G, 4)``: d f_y/dy, d f_y/dx, d f_x/dy, d f_x/dx of a ``(G, G, 2)`` field (central differences)."""
    return np.stack([np.gradient(field[..., c], axis=a) for c in (0, 1) for a in (0, 1)], axis=-1)


def solve(flow: np.ndarray, strength: float, targets: np.ndarray) -> np.ndarray:
    """The positions ``p`` with ``p - strength * flow(p) = target``: a forward map inverted.

    Newton's method from ``target + strength * flow(target)``, with the flow and its
    Jacobian sampled bilinearly; where the map folds (``det(I - s J) < 0.05``) a step is
    the fixed-point step ``p <- target + s flow(p)`` instead; steps are at most an eighth
    of the grid.

    Args:
      flow: float ``(G, G, 2)`` (dy, dx) pixels on a ``G x G`` grid.
      strength: s in [0, 1]; 0 gives ``targets`` exactly.
      targets: float ``(..., 2)`` (y, x) pixel positions.

    Returns:
      float64 ``(..., 2)`` (y, x).
    """
    targets = np.asarray(targets, np.float64)
    if strength == 0:
        return targets.copy()
    jac = _jacobian(flow)
    both = np.concatenate([flow, jac], axis=-1)
    p = targets + strength * _sample(flow, targets)
    limit = flow.shape[0] / 8
    for _ in range(NEWTON_STEPS):
        sampled = _sample(both, p)
        f, j = sampled[..., :2], sampled[..., 2:]
        r = p - strength * f - targets  # residual
        a11, a12 = 1 - strength * j[..., 0], -strength * j[..., 1]
        a21, a22 = -strength * j[..., 2], 1 - strength * j[..., 3]
        det = a11 * a22 - a12 * a21
        ok = det > MIN_DET
        safe = np.where(ok, det, 1.0)
        step = np.stack([(a22 * r[..., 0] - a12 * r[..., 1]) / safe, (a11 * r[..., 1] - a21 * r[..., 0]) / safe], -1)
        step = np.where(ok[..., None], step, r)
        norm = np.linalg.norm(step, axis=-1, keepdims=True)
        p -= step * np.minimum(1.0, limit / np.maximum(norm, 1e-12))
    return p


def _grid(size: int) -> np.ndarray:
    ramp = np.arange(size, dtype=np.float64)
    return np.stack(np.meshgrid(ramp, ramp, indexing="ij"), axis=-1)  # (G, G, 2) (y, x)


def frame_flows(f_ab: np.ndarray, f_ba: np.ndarray, alpha: float, geometry: str) -> tuple[np.ndarray, np.ndarray]:
    """The backward flows of a frame's source half and target half at ``alpha``.

    The source half shows at pixel ``m`` the (colour-mapped) source at ``m - g_A(m)``,
    the target half the target at ``m - g_B(m)``.

    * ``"scaled"`` (the original): ``g_A = alpha * f_AB``, ``g_B = (1 - alpha) * f_BA``.
    * ``"between"``: the in-between geometry. The source point ``q`` lands at
      ``q - alpha * f_BA(q)`` (its target point is ``q - f_BA(q)``), the target point
      ``p`` at ``p - (1 - alpha) * f_AB(p)``; ``g_A(m) = m - q(m)`` and
      ``g_B(m) = m - p(m)`` with ``q(m)``, ``p(m)`` from :func:`solve`. For uniform
      flows both geometries are the same.

    Args:
      f_ab, f_ba: float ``(G, G, 2)`` (dy, dx) pixels (:func:`flows_pixels`).
      alpha: the A->B strength in [0, 1].
      geometry: ``"scaled"`` or ``"between"``.

    Returns:
      ``(g_A, g_B)``, float64 ``(G, G, 2)`` pixels each; ``g_A`` is exactly 0 at alpha 0,
      ``g_B`` at alpha 1.
    """
    if geometry == "scaled":
        return alpha * np.asarray(f_ab, np.float64), (1 - alpha) * np.asarray(f_ba, np.float64)
    if geometry != "between":
        raise ValueError(f"geometry must be scaled or between (got {geometry!r})")
    grid = _grid(f_ab.shape[0])
    return grid - solve(f_ba, alpha, grid), grid - solve(f_ab, 1 - alpha, grid)


def _stats(distances: np.ndarray, diagonal: float) -> dict:
    d = np.asarray(distances, np.float64).ravel() / diagonal * 100
    return {"mean": float(d.mean()), "p90": float(np.percentile(d, 90)), "count": int(d.size)}


def alignment(
    maps_low: np.ndarray,
    size: int,
    warp_scale: float,
    geometry: str,
    alpha: float = 0.5,
    points=None,
    held_out=None,
) -> dict:
    """Where the source half and the target half of the frame at ``alpha`` put the same content.

    On the working grid (``size x size`` pixels, diagonal ``size * sqrt(2)``), with the
    source half showing the source at ``q(m) = m - g_A(m)`` and the target half the
    target at ``p(m) = m - g_B(m)`` (:func:`frame_flows`):

    * dense: at each frame pixel ``m``, the target point that the morph pairs with the
      source point ``q(m)`` is ``q - f_BA(q)``; the target half shows it near
      ``m + J_p^-1 (q - f_BA(q) - p(m))`` (first order, ``J_p`` the Jacobian of ``p``),
      so ``d_1(m) = |J_p^-1 (q - f_BA(q) - p)|``; likewise from the target's side
      ``d_2(m) = |J_q^-1 (p - f_AB(p) - q)|``; ``d = (d_1 + d_2) / 2``. A frame of one
      subject has ``d = 0``: both halves put each point pair in the same place.
    * at point pairs ``(a, b)``: the frame position where the source half shows ``a``
      and where the target half shows ``b`` (each found by :func:`solve`), and their
      distance.

    Args:
      maps_low: float32 ``(1, n, n, 16)``, the net's output (with any prior added).
      size: the working size S. warp_scale: w_s.
      geometry: ``"scaled"`` or ``"between"``, as the frames are rendered.
      alpha: the frame's A->B strength.
      points, held_out: float ``(N, 4)`` pairs as fractions of their images, or None.

    Returns:
      ``{"alpha", "geometry", "dense": {"mean", "p90", "count"}, "points": ... or None,
      "held_out": ... or None}``, distances in % of the image diagonal.

    Example:
      A uniform shift of 4 px one way and 2 px back the other: the halves disagree by
      half the difference, 1 px:

      >>> maps = np.zeros((1, 84, 84, 16), np.float32)
      >>> maps[..., 7], maps[..., 15] = 4 / (64 * 0.05), -2 / (64 * 0.05)
      >>> r = alignment(maps, 64, 0.05, "scaled")
      >>> round(r["dense"]["mean"] * 64 * 2**0.5 / 100, 4)
      1.0
    """
    f_ab, f_ba = flows_pixels(maps_low, size, warp_scale)
    g_a, g_b = frame_flows(f_ab, f_ba, alpha, geometry)
    grid = _grid(size)
    q, p = grid - g_a, grid - g_b
    diagonal = size * np.sqrt(2.0)
    d1 = _through_inverse(_jacobian(p), q - _sample(f_ba, q) - p)
    d2 = _through_inverse(_jacobian(q), p - _sample(f_ab, p) - q)
    out = {"alpha": float(alpha), "geometry": geometry, "dense": _stats((d1 + d2) / 2, diagonal)}
    for name, pairs in (("points", points), ("held_out", held_out)):
        out[name] = None
        if pairs is not None and len(pairs):
            pix = np.asarray(pairs, np.float64) * size - 0.5
            a, b = pix[:, [1, 0]], pix[:, [3, 2]]
            at_a = solve(g_a, 1.0, a)  # frame position m with m - g_A(m) = a
            at_b = solve(g_b, 1.0, b)
            out[name] = _stats(np.linalg.norm(at_a - at_b, axis=-1), diagonal)
    return out


def _through_inverse(jac: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``|J^-1 v|`` per pixel for ``J`` as :func:`_jacobian` lays it out; ``|v|`` where J is near singular."""
    a11, a12, a21, a22 = jac[..., 0], jac[..., 1], jac[..., 2], jac[..., 3]
    det = a11 * a22 - a12 * a21
    ok = np.abs(det) > MIN_DET
    safe = np.where(ok, det, 1.0)
    y = (a22 * vector[..., 0] - a12 * vector[..., 1]) / safe
    x = (a11 * vector[..., 1] - a21 * vector[..., 0]) / safe
    return np.where(ok, np.hypot(y, x), np.linalg.norm(vector, axis=-1))
