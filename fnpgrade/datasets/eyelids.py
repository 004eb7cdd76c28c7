"""Eye closure as an eyelid sliding down over the eye.

A landmark warp cannot close an eye: pulling the upper-lid points onto the
lower lid folds the map (or, smoothed, leaves the eye open). Here the upper lid
is a curve through the eye corners and upper-lid landmarks; closing by ``c``
(0 open, 1 shut) moves it to ``U + c (L - U)``. Column by column, the skin
between a line above the eye and the lid is stretched down to the new lid edge
(a monotonic 1-D map, so nothing folds); below the lid edge the eye stays where
it is (the lid covers its top part); a soft lash line darkens the lid edge.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["close_eyelids", "EYES"]

#: (outer/inner corners, upper lid, lower lid) iBUG indices of the image-left and image-right eye.
EYES = (((36, 39), (37, 38), (41, 40)), ((42, 45), (43, 44), (47, 46)))


def _lid_curves(points68, eye):
    (c0, c1), upper, lower = eye
    corners = points68[[c0, c1]]
    order = np.argsort(corners[:, 0])
    a, b = corners[order]
    up = points68[list(upper)]
    lo = points68[list(lower)]
    up = up[np.argsort(up[:, 0])]
    lo = lo[np.argsort(lo[:, 0])]
    ux = np.r_[a[0], up[:, 0], b[0]]
    uy = np.r_[a[1], up[:, 1], b[1]]
    lx = np.r_[a[0], lo[:, 0], b[0]]
    ly = np.r_[a[1], lo[:, 1], b[1]]
    return a[0], b[0], (ux, uy), (lx, ly)


def close_eyelids(image, points68, closure, lash=0.35):
    """Close each eye of ``image`` by ``closure = (left, right)`` (0 open .. 1 shut; image sides).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    points68 : ndarray, shape (68, 2)
        Landmarks of ``image``.
    closure : (float, float)
    lash : float
        Darkening of the lid edge at full closure.

    Returns
    -------
    image : ndarray of uint8
        The image with the lids lowered.
    points68 : ndarray, shape (68, 2)
        Landmarks with the upper-lid points on the lowered lid.
    """
    out = image
    points = np.asarray(points68, float).copy()
    h, w = image.shape[:2]
    iod = np.linalg.norm(points68[42:48].mean(0) - points68[36:42].mean(0))
    for eye, c in zip(EYES, closure):
        c = float(np.clip(c, 0.0, 1.0))
        if c <= 0.01:
            continue
        x0, x1, (ux, uy), (lx, ly) = _lid_curves(points68, eye)
        xs0 = int(max(0, np.floor(x0) - 1))
        xs1 = int(min(w - 1, np.ceil(x1) + 1))
        cols = np.arange(xs0, xs1 + 1, dtype=np.float32)
        U = np.interp(cols, ux, uy)
        L = np.interp(cols, lx, ly)
        L = np.maximum(L, U)
        Un = U + c * (L - U)
        top = U - 0.2 * iod                       # skin above this line (the brow) stays put
        ys0 = int(max(0, np.floor(top.min())))
        ys1 = int(min(h - 1, np.ceil(L.max()) + 1))
        yy, xx = np.mgrid[ys0:ys1 + 1, xs0:xs1 + 1].astype(np.float32)
        Ub, Unb, Tb = U[None, :], Un[None, :], top[None, :]
        src_y = yy.copy()
        above = (yy >= Tb) & (yy < Unb)
        scale = (Ub - Tb) / np.maximum(Unb - Tb, 1e-3)
        src_y = np.where(above, Tb + (yy - Tb) * scale, src_y)
        patch = cv2.remap(out, xx, src_y.astype(np.float32), interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        patch = patch.astype(np.float32)
        # lash line: a soft dark band just above the new lid edge, fading towards the corners
        inside = np.clip(np.minimum(cols - x0, x1 - cols) / max(1.0, 0.15 * (x1 - x0)), 0, 1)[None, :]
        band = np.exp(-0.5 * ((yy - (Unb - 0.5)) / max(0.6, 0.025 * iod)) ** 2) * inside
        patch *= (1 - lash * c * band)[..., None]
        if out is image:
            out = image.copy()
        out[ys0:ys1 + 1, xs0:xs1 + 1] = np.clip(patch + 0.5, 0, 255).astype(np.uint8)
        for k in eye[1]:
            points[k, 1] = np.interp(points68[k, 0], cols, Un)
    return out, points
