"""Per-frame measures for a network: how each region has moved since the clip's first frame, side against side.

The clip measures (:mod:`fnpgrade.measures.features`) summarise a clip; a
recurrent network wants a sequence. Per frame ``t`` and region, the residual
optical flow from frame 0 to ``t`` (head motion removed) gives each side's
displacement; the right side's is mirrored so that the two are comparable.
The values are symmetric in the two sides (the smaller and the larger
displacement, their ratio and the length of their difference), so a face and
its mirror image give the same sequence and a network cannot learn which side
a training set happened to have affected.
"""

from __future__ import annotations

import cv2
import numpy as np

from .video import NOISE_IOD, eye_aperture_gap, weak_strong_ratio
from .motion import DISFlow, region_excursions
from .regions import REGIONS, face_frame, region_boxes

__all__ = ["FRAME_FEATURE_NAMES", "frame_measures"]


def _names():
    names = []
    for region, _ in REGIONS:
        names += [f"{region}_displacement_weak", f"{region}_displacement_strong", f"{region}_displacement_ratio",
                  f"{region}_displacement_difference"]
    return tuple(names) + ("eye_aperture_gap",)


#: Names of the columns of :func:`frame_measures`.
FRAME_FEATURE_NAMES = _names()


def frame_measures(face, landmarks, flow=None):
    """``(T, len(FRAME_FEATURE_NAMES))`` float32 measures of each frame against the clip's first frame.

    Parameters
    ----------
    face : ndarray of uint8, shape (T, H, W, 3)
        Registered RGB face frames (``LandmarkROICropper(registration="clip")``).
    landmarks : ndarray, shape (T, 49, 2)
        Landmarks in the same pixels (NaN where unknown; the regions are placed
        on the median of the known frames).
    flow : callable or None
        Optical flow between grey frames; default DIS "medium".

    Returns
    -------
    measures : ndarray of float32, shape (T, K)
        Row 0 is movement-free by definition (zeros, ratio 1); all zeros for a
        clip without usable landmarks.
    """
    landmarks = np.asarray(landmarks, float)
    n = len(face)
    out = np.zeros((n, len(FRAME_FEATURE_NAMES)), np.float32)
    known = np.isfinite(landmarks).all(axis=(1, 2))
    if not known.any():
        return out
    median = np.median(landmarks[known], axis=0)
    frame = face_frame(median)
    boxes = region_boxes(median)
    face_box = (*median.min(axis=0), *median.max(axis=0))
    rows = np.flatnonzero(known)
    grey = np.stack([cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY) for image in face[rows]])
    out[known, -1] = eye_aperture_gap(landmarks[known])
    out[:, 2:-1:4] = 1.0  # the first frame, and frames without landmarks: ratio of two equal (zero) movements
    if len(rows) < 2:
        return out
    # every known frame against the first known one
    displacement, _ = region_excursions(grey, boxes, flow or DISFlow(), face_box=face_box, appearance=(),
                                        pairs=[(0, k) for k in range(1, len(rows))])
    mirror = np.array([-1.0, 1.0])  # the right side's x, mirrored so that both sides move alike
    for k, (region, _) in enumerate(REGIONS):
        left = frame.vectors_to_face(displacement[region]["left"])
        right = frame.vectors_to_face(displacement[region]["right"]) * mirror
        sizes = np.stack([np.hypot(*left.T), np.hypot(*right.T)], axis=1)
        weak, strong = sizes.min(axis=1), sizes.max(axis=1)
        out[rows[1:], 4 * k:4 * k + 4] = np.stack(
            [weak, strong, weak_strong_ratio(weak, strong, NOISE_IOD), np.hypot(*(left - right).T)], axis=1)
    return out
