"""Millimetres from inter-ocular distances: the iris as a ruler, else an assumed eye distance, named.

The measures are in inter-ocular distances (IOD: the distance between the
eye centres), so they do not depend on the face's size in the image. A
clinician reads millimetres. The visible iris is about the same size in
every adult (horizontal diameter about :data:`IRIS_DIAMETER_MM` mm), and
MediaPipe Face Mesh places it (its refined iris points): where it is seen,
``mm_per_iod = IRIS_DIAMETER_MM / (iris diameter / IOD)``. Elsewhere (another
landmark model, the iris not found, or an implausible reading) the IOD is
taken as :data:`ASSUMED_IOD_MM` mm, and the calibration says so.
"""

from __future__ import annotations

import numpy as np

__all__ = ["IRIS_DIAMETER_MM", "ASSUMED_IOD_MM", "iris_calibration", "assumed_calibration", "calibrate_track"]

#: Horizontal visible iris diameter of an adult (mm), the ruler.
IRIS_DIAMETER_MM = 11.7

#: The eye centres' distance assumed where the iris is not seen (adult mean interpupillary distance, mm).
ASSUMED_IOD_MM = 63.0

#: Iris diameter / IOD outside this range is taken for a misplaced iris (adults: about 0.16-0.22).
PLAUSIBLE_IRIS_IOD = (0.13, 0.27)

# Face Mesh's refined iris points: centre then four on the rim, for each eye (469-472: the eye at mesh 33)
_IRIS_RIMS = (np.arange(469, 473), np.arange(474, 478))
_EYES = (np.array([33, 160, 158, 133, 153, 144]), np.array([362, 385, 387, 263, 373, 380]))


def assumed_calibration(reason):
    """The fallback: 1 IOD = :data:`ASSUMED_IOD_MM` mm, with the reason the iris was not used."""
    return {"method": "assumed", "mm_per_iod": ASSUMED_IOD_MM, "iris_diameter_iod": None,
            "note": f"inter-ocular distance assumed {ASSUMED_IOD_MM:g} mm (adult mean): {reason}"}


def iris_calibration(mesh):
    """Millimetres per IOD from one frame's Face Mesh (478 points with the iris).

    Parameters
    ----------
    mesh : ndarray, shape (478, 2 or 3)
        Pixel coordinates (:meth:`~fnpgrade.preprocessing.landmarks.MediapipeLandmarks.predict_mesh`).

    Returns
    -------
    calibration : dict
        ``method`` (``"iris"`` or ``"assumed"``), ``mm_per_iod``,
        ``iris_diameter_iod`` (the irises' mean diameter in IOD; ``None`` when
        assumed), ``note`` (a sentence for the page).
    """
    mesh = np.asarray(mesh, float)[:, :2]
    if mesh.shape[0] < 478 or not np.isfinite(mesh).all():
        return assumed_calibration("no iris points in the rest frame")
    centres = [mesh[eye].mean(axis=0) for eye in _EYES]
    iod = float(np.linalg.norm(centres[1] - centres[0]))
    # each iris's diameter: twice its rim points' mean distance from their centre (the lids may cover the top
    # and bottom of the iris, not the fitted circle)
    diameters = [2 * float(np.linalg.norm(mesh[rim] - mesh[rim].mean(axis=0), axis=1).mean()) for rim in _IRIS_RIMS]
    ratio = float(np.mean(diameters)) / max(iod, 1e-6)
    if not PLAUSIBLE_IRIS_IOD[0] <= ratio <= PLAUSIBLE_IRIS_IOD[1]:
        return assumed_calibration(f"the iris read {ratio:.2f} IOD wide, outside the adult range")
    mm = IRIS_DIAMETER_MM / ratio
    return {"method": "iris", "mm_per_iod": round(mm, 2), "iris_diameter_iod": round(ratio, 4),
            "note": f"calibrated by the iris ({IRIS_DIAMETER_MM:g} mm across; it read {ratio:.3f} IOD): "
                    f"1 IOD = {mm:.1f} mm"}


def calibrate_track(track, frame, landmarks="mediapipe"):
    """Millimetres per IOD of a detected face track, read at ``frame`` (the rest frame: eyes open, facing).

    Parameters
    ----------
    track : FaceTrack
        :class:`~fnpgrade.FaceDetector`'s output for the video.
    frame : int
        Frame of the track to read the iris in.
    landmarks : str, default="mediapipe"
        The landmark backend of the measurement; only MediaPipe sees the iris.

    Returns
    -------
    calibration : dict
        As :func:`iris_calibration`.
    """
    if landmarks != "mediapipe":
        return assumed_calibration(f"the {landmarks!r} landmarks do not place the iris (MediaPipe's do)")
    if track.blank or not track.found[frame]:
        return assumed_calibration("no face found in the rest frame")
    from ..preprocessing.backend import loaded_backend
    from ..preprocessing.geometry import detector_box_to_dlib
    from ..preprocessing.landmarks import get_landmark_backend

    box = track.to_crop(detector_box_to_dlib(track.boxes[frame:frame + 1], track.backend).reshape(-1, 2, 2),
                        frames=slice(frame, frame + 1))
    backend = loaded_backend(get_landmark_backend("mediapipe"))  # the cropper's loaded model, not a second load
    return iris_calibration(backend.predict_mesh(track.crops[frame], box.reshape(-1)))
