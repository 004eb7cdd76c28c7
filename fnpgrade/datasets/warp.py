"""Fast landmark-driven image warps.

A warp is given by control points that move (``src -> dst``); the dense
displacement between them is a thin-plate spline (the smooth relative of the
piecewise-affine warp over a landmark triangulation) evaluated on a coarse grid,
upsampled bilinearly and applied with :func:`cv2.remap`. On a 256x256 frame with
about a hundred control points one warp takes a few milliseconds, two orders of
magnitude faster than :class:`skimage.transform.PiecewiseAffineTransform`.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..preprocessing.geometry import apply_affine  # noqa: F401  (one definition, re-exported here)

__all__ = ["border_points", "tps_displacement", "warp_points_image", "similarity_matrix", "apply_affine"]


def border_points(height, width, per_side=5):
    """Fixed anchor points along the image border (``(4 * per_side, 2)`` float, x, y)."""
    xs = np.linspace(0, width - 1, per_side + 1)
    ys = np.linspace(0, height - 1, per_side + 1)
    top = np.c_[xs[:-1], np.zeros(per_side)]
    right = np.c_[np.full(per_side, width - 1), ys[:-1]]
    bottom = np.c_[xs[::-1][:-1], np.full(per_side, height - 1)]
    left = np.c_[np.zeros(per_side), ys[::-1][:-1]]
    return np.vstack([top, right, bottom, left]).astype(float)


def _tps_kernel(r2):
    r2 = np.maximum(r2, np.finfo(r2.dtype).tiny)
    return 0.5 * r2 * np.log(r2)


def _sq_dist(a, b):
    out = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(out, 0.0, out=out)


def tps_displacement(nodes, values, query, smoothing=1e-5):
    """Thin-plate-spline interpolation of ``values`` given at ``nodes``, evaluated at ``query``.

    Parameters
    ----------
    nodes : ndarray, shape (n, 2)
    values : ndarray, shape (n, d)
    query : ndarray, shape (m, 2)
    smoothing : float
        Ridge term, in units of the squared node scale (keeps coincident
        nodes from making the system singular).

    Returns
    -------
    out : ndarray, shape (m, d)
    """
    nodes = np.asarray(nodes, float)
    scale = max(np.ptp(nodes, axis=0).max(), 1.0)
    p = nodes / scale
    q = np.asarray(query, float) / scale
    n = len(p)
    d2 = _sq_dist(p, p)
    k = _tps_kernel(d2) + smoothing * np.eye(n)
    ones = np.c_[np.ones(n), p]
    a = np.zeros((n + 3, n + 3))
    a[:n, :n] = k
    a[:n, n:] = ones
    a[n:, :n] = ones.T
    rhs = np.zeros((n + 3, values.shape[1]))
    rhs[:n] = values
    coef = np.linalg.solve(a, rhs)
    # the evaluation dominates the cost: float32 halves it, with errors far below a pixel
    dq = _sq_dist(q.astype(np.float32), p.astype(np.float32))
    return _tps_kernel(dq) @ coef[:n].astype(np.float32) + np.c_[np.ones(len(q)), q] @ coef[n:]


def warp_points_image(image, src, dst, grid_step=4, border_mode=cv2.BORDER_REFLECT101, anchors_per_side=5):
    """Warp ``image`` so that the content at ``src`` points moves to ``dst``.

    The image border is held fixed. Points that do not move may be included
    (they pin the surrounding skin).

    Parameters
    ----------
    image : ndarray, shape (H, W, C)
    src, dst : ndarray, shape (n, 2)
        Control points (x, y) before and after.
    grid_step : int, default=4
        The spline is evaluated every ``grid_step`` pixels and upsampled.

    Returns
    -------
    warped : ndarray like ``image``
    """
    h, w = image.shape[:2]
    src = np.asarray(src, float)
    dst = np.asarray(dst, float)
    anchors = border_points(h, w, anchors_per_side)
    nodes = np.vstack([dst, anchors])
    # Backward map: an output pixel at dst takes its colour from src.
    values = np.vstack([src - dst, np.zeros_like(anchors)])
    gh, gw = int(np.ceil(h / grid_step)) + 1, int(np.ceil(w / grid_step)) + 1
    gy, gx = np.mgrid[0:gh, 0:gw].astype(float) * grid_step
    disp = tps_displacement(nodes, values, np.c_[gx.ravel(), gy.ravel()]).reshape(gh, gw, 2).astype(np.float32)
    # dst(x) = disp(x / grid_step): exact alignment of grid nodes and pixels.
    up = np.float32([[grid_step, 0, 0], [0, grid_step, 0]])
    full = cv2.warpAffine(disp, up, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = xx + full[..., 0]
    map_y = yy + full[..., 1]
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=border_mode)


def similarity_matrix(scale=1.0, angle_deg=0.0, center=(0.0, 0.0), shift=(0.0, 0.0)):
    """2x3 affine matrix: rotate by ``angle_deg`` and scale about ``center``, then shift."""
    m = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), float(angle_deg), float(scale))
    m[:, 2] += np.asarray(shift, float)
    return m

