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

from .features import NOISE_IOD, eye_aperture_gap
from .motion import DISFlow, remove_head_motion, _box_slices
from .regions import REGIONS, SIDES, face_frame, region_boxes

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
    grey = np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in face])
    flow = flow or DISFlow()
    mirror = np.array([-1.0, 1.0])
    out[known, -1] = eye_aperture_gap(landmarks[known])
    first = int(np.flatnonzero(known)[0])
    for t in range(n):
        if t == first or not known[t]:
            out[t, 2:-1:4] = 1.0  # ratio of two equal (zero) displacements
            continue
        field, _ = remove_head_motion(flow(grey[first], grey[t]), face_box)
        for k, (region, _) in enumerate(REGIONS):
            sides = []
            for side in SIDES:
                ys, xs = _box_slices(boxes[region][side], grey.shape[1:])
                vector = frame.vectors_to_face(field[ys, xs].reshape(-1, 2).mean(axis=0))
                sides.append(vector * mirror if side == "right" else vector)
            sizes = [float(np.hypot(*v)) for v in sides]
            weak, strong = min(sizes), max(sizes)
            out[t, 4 * k:4 * k + 4] = (weak, strong, (weak + NOISE_IOD) / (strong + NOISE_IOD),
                                       float(np.hypot(*(sides[0] - sides[1]))))
    return out
