"""Where to measure: facial regions per side, placed by the 49 landmarks.

A clinician grading facial palsy looks at each side's forehead/brow, eye,
cheek, nose wing and mouth corner, and compares it with the same place on the
other side. This module turns a face's 49 landmarks (the paper's layout, see
:mod:`fnpgrade.preprocessing.landmarks`) into those places: a small box per
region and side, sized in inter-ocular distances (IOD) so that the boxes scale
with the face, and the face's own frame (eye line and midline) in which
movements are expressed.

Sides are the **image's** left and right (``"left"`` is the side with the
smaller x). Which of them is the patient's side depends on whether the video
is mirrored; the measures only ever compare the two sides, so they do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["REGIONS", "SIDES", "FaceFrame", "face_frame", "region_boxes", "LANDMARK_SIDES"]

SIDES = ("left", "right")

# positions in the 49-point layout (iBUG 68 index in the comment)
_BROW = {"left": [0, 1, 2, 3, 4], "right": [9, 8, 7, 6, 5]}                 # 17-21 | 26-22
_EYE = {"left": [19, 20, 21, 22, 23, 24], "right": [28, 27, 26, 25, 30, 29]}  # 36-41 | 45,44,43,42,47,46
_UPPER_LID = {"left": [20, 21], "right": [27, 26]}                          # 37,38 | 44,43
_LOWER_LID = {"left": [24, 23], "right": [29, 30]}                          # 41,40 | 46,47
_NOSE_WING = {"left": 14, "right": 18}                                      # 31 | 35
_MOUTH_CORNER = {"left": 31, "right": 37}                                   # 48 | 54
_UPPER_LIP = {"left": 32, "right": 36}                                      # 49 | 53
_LOWER_LIP = {"left": 42, "right": 38}                                      # 59 | 55
_NOSE_BRIDGE = [10, 11, 12, 13]                                             # 27-30

#: Landmark groups per side (mirror partners in the same order), for shape measures.
LANDMARK_SIDES = {"brow": _BROW, "eye": _EYE, "upper_lid": _UPPER_LID, "lower_lid": _LOWER_LID,
                  "nose_wing": {k: [v] for k, v in _NOSE_WING.items()},
                  "mouth_corner": {k: [v] for k, v in _MOUTH_CORNER.items()}}

#: The regions where movement is measured, as (name, what a clinician calls it).
REGIONS = (
    ("brow", "forehead and brow (frontalis)"),
    ("eye", "eyelids (orbicularis oculi)"),
    ("cheek", "cheek (zygomaticus)"),
    ("nose_wing", "nose wing (levator labii)"),
    ("mouth_corner", "mouth corner, the commissure"),
    ("upper_lip", "upper lip beside the midline"),
    ("lower_lip", "lower lip beside the midline"),
)


@dataclass(frozen=True)
class FaceFrame:
    """The face's own frame in image coordinates: eye centres, eye-line axes and the IOD.

    ``to_face(points)`` expresses image points in IOD units with the origin
    between the eyes, x along the eye line towards the image-right eye and y
    downwards (perpendicular to the eye line).
    """

    left_eye: np.ndarray
    right_eye: np.ndarray
    iod: float
    x_axis: np.ndarray
    y_axis: np.ndarray

    @property
    def origin(self):
        return (self.left_eye + self.right_eye) / 2

    def to_face(self, points):
        """Image points ``(..., 2)`` -> face coordinates (IOD units)."""
        rel = np.asarray(points, float) - self.origin
        return np.stack([rel @ self.x_axis, rel @ self.y_axis], axis=-1) / self.iod

    def vectors_to_face(self, vectors):
        """Image displacement vectors ``(..., 2)`` -> face axes (IOD units)."""
        vectors = np.asarray(vectors, float)
        return np.stack([vectors @ self.x_axis, vectors @ self.y_axis], axis=-1) / self.iod


def face_frame(points49):
    """The :class:`FaceFrame` of one face's ``(49, 2)`` landmarks."""
    points49 = np.asarray(points49, float)
    left = points49[_EYE["left"]].mean(axis=0)
    right = points49[_EYE["right"]].mean(axis=0)
    axis = right - left
    iod = float(np.hypot(*axis))
    if not np.isfinite(iod) or iod <= 1e-6:
        raise ValueError("The landmarks give no inter-ocular distance (missing or coincident eye points).")
    x_axis = axis / iod
    y_axis = np.array([-x_axis[1], x_axis[0]])  # image y points down, so this is "down the face"
    return FaceFrame(left, right, iod, x_axis, y_axis)


def _box(centre, width, height):
    cx, cy = centre
    return np.array([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2])


def region_boxes(points49):
    """Axis-aligned boxes ``(x0, y0, x1, y1)`` per region and side, in image pixels.

    Boxes are sized in IOD and centred on the landmarks of the region:
    brow (above the brow, where the frontalis lifts it), eye (the lid
    fissure), cheek (below the eye, towards the mouth corner), nose wing,
    mouth corner and the lips beside the midline.

    Parameters
    ----------
    points49 : ndarray, shape (49, 2)
        One face's landmarks (typically the clip's median shape).

    Returns
    -------
    boxes : dict
        ``boxes[region][side]`` -> ndarray (4,), for every region of
        :data:`REGIONS` and side of :data:`SIDES`; and ``boxes["reference"]["mid"]``,
        the nose bridge, which no expression moves (its residual movement
        measures the clip's noise).
    """
    points49 = np.asarray(points49, float)
    frame = face_frame(points49)
    d, up = frame.iod, -frame.y_axis
    boxes = {name: {} for name, _ in REGIONS}
    for side in SIDES:
        eye = points49[_EYE[side]].mean(axis=0)
        corner = points49[_MOUTH_CORNER[side]]
        boxes["brow"][side] = _box(points49[_BROW[side]].mean(axis=0) + 0.08 * d * up, 0.55 * d, 0.30 * d)
        boxes["eye"][side] = _box(eye, 0.50 * d, 0.26 * d)
        boxes["cheek"][side] = _box(eye + 0.55 * (corner - eye) + 0.05 * d * frame.x_axis * (-1 if side == "left"
                                                                                             else 1),
                                    0.35 * d, 0.30 * d)
        boxes["nose_wing"][side] = _box(points49[_NOSE_WING[side]], 0.22 * d, 0.22 * d)
        boxes["mouth_corner"][side] = _box(corner, 0.26 * d, 0.26 * d)
        boxes["upper_lip"][side] = _box(points49[_UPPER_LIP[side]], 0.22 * d, 0.18 * d)
        boxes["lower_lip"][side] = _box(points49[_LOWER_LIP[side]], 0.22 * d, 0.18 * d)
    # the nose bridge moves with the head and with no expression: its residual movement is the clip's noise
    bridge = points49[_NOSE_BRIDGE]
    boxes["reference"] = {"mid": _box(bridge.mean(axis=0), 0.30 * d, max(0.30 * d, float(np.ptp(bridge[:, 1]))))}
    return boxes
