"""The report page with no model: what the measures say of a video, everything but a learned grade.

A clinician with one patient video and no graded study still wants the page:
which side is weaker and by how much, each region side against side, eye
closure, the traces over time. :func:`make_measures_report` makes a
:class:`~fnpgrade.report.Report` from :func:`~fnpgrade.report.measure` alone;
the grade section says there is no model, and why that is the honest answer.
"""

from __future__ import annotations

import datetime

import numpy as np

__all__ = ["make_measures_report"]


def make_measures_report(video, *, mirrored=False, fps=None, landmarks="mediapipe", neutral=False, n_bootstrap=500,
                         random_state=0):
    """A :class:`~fnpgrade.report.Report` of one video from the measures alone (no grade).

    Parameters
    ----------
    video : str, path-like or ndarray
    mirrored, fps, landmarks, neutral, n_bootstrap, random_state
        As :func:`~fnpgrade.report.measure`.

    Returns
    -------
    report : Report
        ``data["grade"]`` is ``None``; the side, regions, stretches over time
        (each stretch's side asymmetry against the same rest face), gaps,
        warnings and every named measure (``data["measures"]``) are there.
    """
    from .. import __version__
    from ..measures.video import side_asymmetry
    from . import figures
    from .core import DISCLAIMER, Report, lid_series, video_scales
    from .measure import measure, measurement_warnings
    from .side import side_convention
    from .timeline import face_gaps, window_spans

    result = measure(video, landmarks=landmarks, neutral=neutral, fps=fps, mirrored=mirrored,
                     n_bootstrap=n_bootstrap, random_state=random_state)
    measurement, track, face = result["measurement"], result["track"], result["face"]
    rate, start = face["frame_rate"], face["start_s"]
    length = max(4, int(round(2 * rate)))  # stretches of about two seconds
    spans, n_unwindowed = window_spans(track.frame_index, length)
    stretches = []
    for span in spans:
        positions = np.flatnonzero(np.isin(measurement["frames"], span))
        if not len(positions):
            continue
        asymmetry = side_asymmetry(measurement, positions)
        stretches.append({"start_s": round(float(start + track.frame_index[span[0]] / rate), 3),
                          "end_s": round(float(start + (track.frame_index[span[-1]] + 1) / rate), 3),
                          "weaker_image_side": "left" if asymmetry < 0 else "right",
                          "movement_percent": round(100 * float(np.exp(-abs(asymmetry))), 1)})
    n_read = int(face["n_frames_read"])
    gaps = face_gaps(track.frame_index, n_read, rate, start)
    side = result["affected_side"]
    warnings = ["No model: the page shows the measures alone, with no grade. Train one on graded videos "
                "('fnpgrade train') to grade."]
    warnings += measurement_warnings(side, result["n_occluded"], n_read)
    data = {
        "fnpgrade_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "video": result["video"], "disclaimer": DISCLAIMER, "model": None, "mirrored": bool(mirrored),
        "side_convention": side_convention(mirrored), "grade": None, "affected_side": side,
        "regions": result["regions"], "scales": video_scales(measurement, mirrored),
        "calibration": result["calibration"],
        "timeline": {"windows": stretches, "window_frames": length, "frame_rate": round(float(rate), 4),
                     "duration_s": round(n_read / rate, 3), "gaps": gaps, "n_frames_read": n_read,
                     "n_found": int(face["n_found"]), "n_interpolated": int(face.get("n_interpolated", 0)),
                     "n_frames_without_face": int(sum(g["n_frames"] for g in gaps)),
                     "n_frames_unwindowed": int(n_unwindowed), "coverage": round(float(face["coverage"]), 4),
                     "rest_s": result["rest_s"], "n_frames_occluded": result["n_occluded"]},
        "worst_windows": [], "best_windows": [], "warnings": warnings,
        "measures": {k: (None if not np.isfinite(v) else round(v, 5)) for k, v in result["measures"].items()},
    }
    lids = lid_series(measurement, track, rate, start, mirrored)
    images = {
        "timeline": ("Each eye's lid opening over the video; grey hatched: no face.",
                     figures.to_png(figures.timeline_figure({"windows": [], "probabilities": {}, "worst": []}, gaps,
                                                            data["timeline"]["duration_s"], lids))),
        "regions": ("Peak movement from rest of each region on the patient's left and right.",
                    figures.to_png(figures.regions_figure(result["regions"], side["side"]))),
    }
    return Report(data, images)
