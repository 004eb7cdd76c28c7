"""Measure a video with no model: the affected side, each region side against side, every named measure.

A clinician with one patient video and no graded study can still read how
each side moves: :func:`measure` runs the detector, the landmarks and the
whole-video measurement (:func:`fnpgrade.measures.measure_video`) on one
video and returns what the report shows without a grade: the affected side
(:func:`fnpgrade.report.side.affected_side`), the regions
(:func:`fnpgrade.report.regions.region_scores`) and every measure of
:data:`fnpgrade.measures.VIDEO_FEATURE_NAMES` by name. ``fnpgrade measure``
writes one row per video for a study.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["measure", "measure_row", "occluded_count", "measurement_warnings"]


def occluded_count(clip):
    """Frames of a :class:`~fnpgrade.RegionClip` marked occluded (a hand at the face), 0 when none are known."""
    return 0 if clip.occluded is None else int(np.sum(clip.occluded))


def measurement_warnings(side, n_occluded, n_frames):
    """What every page says of the measurement itself: no side clearly weaker, frames left out for a hand."""
    warnings = []
    if side["side"] == "none":
        warnings.append(f"No side is clearly weaker: {side['reason']}.")
    if n_occluded:
        warnings.append(f"{n_occluded} of {n_frames} frames show a hand (or another skin-coloured occluder) at the "
                        "face: they are left out of the measurement (neither measured nor taken as the rest face).")
    return warnings


def measure(video, *, landmarks="mediapipe", neutral=False, fps=None, mirrored=False, n_bootstrap=200,
            random_state=0, near_size=None):
    """Measure one video against its rest face, with no model.

    Parameters
    ----------
    video : str, path-like or ndarray
        A video file, a frame folder or ``(T, H, W, 3)`` uint8 RGB frames.
    landmarks : {"mediapipe", "dlib", "fan"}, default="mediapipe"
        Landmark backend (as :func:`fnpgrade.make_measures_pipeline`).
    neutral : bool, default=False
        The video starts at rest: its first frame with a face is the rest
        face. Default: the rest face is found in the video.
    fps : float or None
        Read the video at this rate (default: its own).
    mirrored : bool, default=False
        The video is mirrored (front camera): the image's left is the patient's left.
    n_bootstrap : int, default=200
        Resamples of the measured frames for the side's confidence.
    random_state : int, default=0
    near_size : float or None, default=None
        As :class:`~fnpgrade.FaceDetector`'s: search the followed face first near
        its last size (faster; a few boxes move by pixels).

    Returns
    -------
    result : dict
        ``video``, ``frame_rate``, ``n_frames_read``, ``coverage`` (share of
        frames with a verified face), ``rest_s`` (time of the rest face),
        ``affected_side`` and ``regions`` (as in the report), ``measures``
        (``{name: value}``, :data:`~fnpgrade.measures.VIDEO_FEATURE_NAMES`)
        ``measurement`` (the whole :func:`~fnpgrade.measures.measure_video`
        result: each region's excursion per side and frame), ``track`` (the
        detector's :class:`~fnpgrade.FaceTrack`), ``face`` (its report: frames
        read, found, coverage), ``n_occluded`` (frames with a hand at the face, left
        out of the measurement) and ``calibration`` (millimetres per inter-ocular
        distance, by the iris where MediaPipe sees it, else assumed and said so:
        :mod:`fnpgrade.measures.calibration`).

    Raises
    ------
    fnpgrade.preprocessing.detect.FaceCoverageError
        No face in the video.
    ValueError
        No frame with landmarks.

    Examples
    --------
    >>> from fnpgrade.report import measure
    >>> result = measure("patient.mp4")                      # doctest: +SKIP
    >>> result["affected_side"]["side"], result["measures"]["eye_closure_ratio"]  # doctest: +SKIP
    """
    from ..measures import VIDEO_FEATURE_NAMES, FaceMeasures, video_features
    from ..measures.calibration import calibrate_track
    from ..pipeline import MEASURES_FACE_SIZE
    from ..preprocessing.detect import FaceDetector
    from ..preprocessing.roi import LandmarkROICropper
    from ..utils import clip_name
    from .regions import region_scores
    from .side import affected_side

    name = str(video) if isinstance(video, (str, Path)) else clip_name(video, 0)
    detector = FaceDetector(fps=fps, min_coverage=0.0, near_size=near_size).fit()
    track = detector.transform([video])[0]
    face = detector.transform_report_[0]
    cropper = LandmarkROICropper(landmarks=landmarks, registration="clip", face_size=MEASURES_FACE_SIZE).fit()
    clip = cropper.transform([track])[0]
    measurement = FaceMeasures(neutral=neutral).fit().measure(clip)
    if measurement is None:
        raise ValueError(f"{name}: no frame of the video has landmarks; nothing to measure. Check the face is "
                         "visible ('fnpgrade preview').")
    side = affected_side(measurement, mirrored=mirrored, n_bootstrap=n_bootstrap, random_state=random_state)
    compared = side["image_side"] if side["image_side"] != "none" else side["weaker_image_side"]
    rate = face["frame_rate"]
    calibration = calibrate_track(track, int(measurement["rest_index"]), landmarks)
    return {"video": name, "frame_rate": round(float(rate), 4), "n_frames_read": int(face["n_frames_read"]),
            "coverage": round(float(face["coverage"]), 4),
            "rest_s": round(float(face["start_s"] + track.frame_index[measurement["rest_index"]] / rate), 3),
            "affected_side": side, "regions": region_scores(measurement, compared, mirrored=mirrored),
            "measures": {n: float(v) for n, v in zip(VIDEO_FEATURE_NAMES, video_features(measurement))},
            "calibration": calibration, "n_occluded": occluded_count(clip), "measurement": measurement, "track": track, "face": face}


def measure_row(result):
    """One flat row of a :func:`measure` result for a study's table (CSV)."""
    side = result["affected_side"]
    row = {"video": result["video"], "affected_side": side["side"], "image_side": side["image_side"],
           "movement_percent": side["movement_percent"], "side_confidence": side["confidence"],
           "rest_s": result["rest_s"], "coverage": result["coverage"],
           "mm_per_iod": result["calibration"]["mm_per_iod"], "calibration": result["calibration"]["method"]}
    for region in result["regions"]:
        row[f"{region['key']}_percent"] = region["percent"]
        for patient, moved in region["movement"].items():  # the peak movement in millimetres
            row[f"{region['key']}_movement_mm_{patient}"] = (None if moved is None else
                                                            round(moved * result["calibration"]["mm_per_iod"], 2))
        row[f"{region['key']}_level"] = region["level"]
        if "closure_percent" in region:
            row["eye_closure_percent"] = region["closure_percent"]
    row.update({k: (round(v, 5) if np.isfinite(v) else None) for k, v in result["measures"].items()})
    return row
