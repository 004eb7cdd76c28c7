"""One clip -> named measures of each side's movement and rest position.

Every measure compares the two sides of the face, because that is what a
palsy changes and what a face's identity does not: a person's own features
(eye shape, lip size, a slightly crooked smile) are largely mirror-symmetric,
a unilateral palsy is not. Names say what a clinician would look at:

* ``<region>_movement_weak`` / ``_strong``: the region's excursion on the side
  that moves less / more (IOD units, from optical flow);
* ``<region>_movement_ratio``: weak over strong, the affected side's movement
  as a share of the healthy side's (1 symmetric, 0 one side still);
* ``<region>_movement_log_ratio_affected``: log of the region's movement on the
  side that moves less *overall* over the other side's (consistent across
  regions, as a palsy affects one side);
* ``eye_closure_*``: change of the eye's appearance as the lid closes, weak
  and strong side and their ratio (the HB3/HB4 line: complete closure or not);
* ``eye_aperture_asymmetry_max`` / ``_median``: difference of the two eyes'
  lid openings over the wider one's, from the landmarks (one eye shut while
  the other stays open: incomplete closure);
* ``commissure_excursion_ratio``: the mouth corner's movement, weak over strong;
* ``<part>_height_asymmetry``: difference of rest height between the sides
  (brow, lower lid, nose wing, mouth corner: resting droop), IOD units;
* ``movement_side_balance``: |log| of the two sides' total movement ratio;
* ``reference_movement``: what the nose bridge moved once head motion was
  removed: the clip's measurement noise (3-D head turns, speech, compression).
  Ratios treat movements below it (and below 1% of the IOD) as equal.
"""

from __future__ import annotations

import cv2
import numpy as np

from .motion import DISFlow, key_frames, region_excursions
from .regions import LANDMARK_SIDES, REGIONS, SIDES, face_frame, region_boxes

__all__ = ["FEATURE_NAMES", "measure_clip", "eye_aperture_gap", "NOISE_IOD"]

#: Movements below this (in inter-ocular distances, about 0.6 mm on an adult
#: face) are treated as noise when two sides are compared as a ratio.
NOISE_IOD = 0.01

#: Appearance change (mean grey-level change, 0-1) treated as noise in ratios.
NOISE_APPEARANCE = 0.01

_HEIGHT_PARTS = ("brow", "lower_lid", "nose_wing", "mouth_corner")


def _feature_names():
    names = []
    for region, _ in REGIONS:
        names += [f"{region}_movement_weak", f"{region}_movement_strong", f"{region}_movement_ratio",
                  f"{region}_movement_log_ratio_affected"]
    names += ["eye_closure_weak", "eye_closure_strong", "eye_closure_ratio", "eye_aperture_asymmetry_max",
              "eye_aperture_asymmetry_median", "commissure_excursion_ratio"]
    names += [f"{part}_height_asymmetry" for part in _HEIGHT_PARTS]
    names += ["mouth_corner_width_asymmetry", "movement_side_balance", "reference_movement"]
    return tuple(names)


#: Names of the columns of :func:`measure_clip`'s ``features``, in order.
FEATURE_NAMES = _feature_names()


def _ratio(weak, strong, noise):
    return (weak + noise) / (strong + noise)


def largest_movements(displacement, frame):
    """``{region: {side: IOD}}``: each region's largest displacement over the frame pairs, in face axes.

    ``displacement`` is :func:`~fnpgrade.measures.motion.region_excursions`' first result (pixels per pair);
    ``frame`` the :class:`~fnpgrade.measures.regions.FaceFrame` that turns pixels into inter-ocular distances.
    """
    return {region: {side: float(np.linalg.norm(frame.vectors_to_face(vectors), axis=-1).max())
                     for side, vectors in sides.items()} for region, sides in displacement.items()}


def eye_aperture_gap(face_points):
    """Per frame: difference of the two eyes' lid openings over the wider one's, ``(T,)`` in [0, 1].

    0 when both eyes are equally open (or shut); 1 when one is shut and the
    other open. Read from landmarks: MediaPipe's refined eyelid points follow
    it (r 0.91 against the synthetic truth on eye-closure clips; dlib 0.73).
    """
    aperture = _eye_aperture(face_points)
    return np.abs(aperture[:, 0] - aperture[:, 1]) / np.maximum(aperture.max(axis=1), 1e-6)


def _eye_aperture(face_points):
    """Per frame and side: lid opening over eye width, ``(T, 2)`` (left, right)."""
    out = []
    for side in SIDES:
        upper = face_points[:, LANDMARK_SIDES["upper_lid"][side]].mean(axis=1)
        lower = face_points[:, LANDMARK_SIDES["lower_lid"][side]].mean(axis=1)
        eye = face_points[:, LANDMARK_SIDES["eye"][side]]
        width = np.linalg.norm(eye[:, 0] - eye[:, 3], axis=-1)
        out.append(np.linalg.norm(lower - upper, axis=-1) / np.maximum(width, 1e-6))
    return np.stack(out, axis=1)


def measure_clip(face, landmarks, flow=None, max_key_frames=6):
    """Measures of one clip of a registered face.

    Parameters
    ----------
    face : ndarray of uint8, shape (T, H, W, 3)
        RGB face frames registered to one another (head motion removed), as
        :class:`~fnpgrade.LandmarkROICropper` makes them with
        ``registration="clip"``.
    landmarks : ndarray, shape (T, 49, 2)
        The 49 landmarks in the same pixel coordinates (NaN where unknown).
    flow : callable or None
        Optical flow ``flow(a, b)`` between grey frames; default DIS "medium".
    max_key_frames : int, default=6
        Frames used for the pairwise flows (spread evenly over long clips:
        the cost grows with its square).

    Returns
    -------
    result : dict
        ``features``: ndarray of :data:`FEATURE_NAMES` (NaN when the clip has
        no usable landmarks); ``weaker_side``: ``"left"``/``"right"`` (image
        sides) moving less overall, or ``None``; ``movement``:
        ``{region: {side: excursion}}`` in IOD; ``eye_closure``:
        ``{side: appearance change}``; ``eye_aperture``: ``{side: (T',)}`` lid
        opening over eye width in the frames with landmarks.
    """
    landmarks = np.asarray(landmarks, float)
    known = np.isfinite(landmarks).all(axis=(1, 2))
    empty = {"features": np.full(len(FEATURE_NAMES), np.nan), "weaker_side": None, "movement": {},
             "eye_closure": {}, "eye_aperture": {}}
    if not known.any():
        return empty
    median = np.median(landmarks[known], axis=0)
    frame = face_frame(median)
    keep = np.flatnonzero(known)[key_frames(int(known.sum()), max_key_frames)]
    grey = np.stack([cv2.cvtColor(np.ascontiguousarray(face[t]), cv2.COLOR_RGB2GRAY) for t in keep])
    flow = flow or DISFlow()

    movement = {}
    if len(grey) >= 2:
        # head motion is fitted over the landmarks' extent (brows to mouth) and removed from every field
        face_box = (*median.min(axis=0), *median.max(axis=0))
        # each pair reads the flow where the regions are in its first frame (they move with the expression)
        frame_boxes = [region_boxes(landmarks[t]) for t in keep]
        displacement, change = region_excursions(grey, frame_boxes, flow, face_box=face_box)
        # in face axes, IOD units; the largest displacement over all frame pairs is the excursion
        movement = largest_movements(displacement, frame)
        closure = {side: float(change["eye"][side].max()) for side in SIDES}
    else:
        movement = {region: {side: 0.0 for side in SIDES} for region, _ in REGIONS}
        closure = {side: 0.0 for side in SIDES}
    # what the nose bridge moves after head motion is removed is noise (3-D head turns, speech, compression):
    # a side is only weaker than the other by more than that
    noise = movement.get("reference", {}).get("mid", 0.0)
    floor = max(NOISE_IOD, noise)
    total = {side: sum(movement[region][side] for region, _ in REGIONS) for side in SIDES}
    weaker = "left" if total["left"] < total["right"] else "right"
    stronger = "right" if weaker == "left" else "left"

    features = []
    for region, _ in REGIONS:
        left, right = movement[region]["left"], movement[region]["right"]
        weak, strong = min(left, right), max(left, right)
        features += [weak, strong, _ratio(weak, strong, floor),
                     np.log((movement[region][weaker] + floor) / (movement[region][stronger] + floor))]

    c_weak, c_strong = min(closure.values()), max(closure.values())
    # at any moment, one eye open while the other is closing is the sign of incomplete closure
    aperture_gap = eye_aperture_gap(landmarks[known])
    features += [c_weak, c_strong, _ratio(c_weak, c_strong, NOISE_APPEARANCE), aperture_gap.max(),
                 float(np.median(aperture_gap)),
                 _ratio(min(movement["mouth_corner"].values()), max(movement["mouth_corner"].values()), floor)]

    face_points = frame.to_face(landmarks[known])  # (T, 49, 2), IOD units, x towards the image-right eye
    for part in _HEIGHT_PARTS:
        heights = [face_points[:, LANDMARK_SIDES[part][side], 1].mean(axis=1) for side in SIDES]
        features.append(float(np.abs(np.median(heights[0] - heights[1]))))
    corners = [face_points[:, LANDMARK_SIDES["mouth_corner"][side][0], 0] for side in SIDES]
    features.append(float(np.abs(np.median(corners[0] + corners[1]))))  # x_left < 0 < x_right
    features.append(float(abs(np.log((total["left"] + floor) / (total["right"] + floor)))))
    features.append(noise)
    apertures = _eye_aperture(landmarks[known])
    return {"features": np.asarray(features, float), "weaker_side": weaker, "movement": movement,
            "eye_closure": closure, "eye_aperture": {side: apertures[:, k] for k, side in enumerate(SIDES)}}
