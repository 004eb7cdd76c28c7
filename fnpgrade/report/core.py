"""make_report: one video through a fitted grader -> a :class:`Report` (numbers, pictures, HTML, JSON)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np

from .. import __version__
from .regions import region_scores
from .side import affected_side, frame_resamples, patient_side, side_convention
from .timeline import face_gaps, grade_over_time, window_spans

__all__ = ["Report", "make_report", "DISCLAIMER", "DEFAULT_WINDOW", "video_scales", "lid_series"]

#: The statement every report carries.
DISCLAIMER = ("Research software, not a diagnosis. fnpgrade has not been validated on patients; these numbers "
              "describe a video, not a person's facial nerve. A clinician decides.")

#: Frames per window when neither the model nor its card says (the paper's 4-frame sequences).
DEFAULT_WINDOW = 4


class Report:
    """A video's report: the numbers (``data``, JSON-ready) and the pictures (PNG bytes).

    Made by :func:`make_report`. ``to_json()`` gives the numbers,
    ``to_html()`` one self-contained page (pictures inline, no network).

    Attributes
    ----------
    data : dict
        Everything the page shows, as numbers and sentences (see
        ``docs/report.md`` for the keys).
    images : dict
        ``name -> (caption, PNG bytes)``.
    """

    def __init__(self, data, images=None):
        self.data = data
        self.images = dict(images or {})

    def __repr__(self):
        grade = self.data.get("grade") or {"label": "no grade"}
        side = self.data.get("affected_side", {})
        return f"Report({self.data.get('video')!r}: {grade.get('label')}, affected side {side.get('side')!r})"

    def to_json(self, path=None, indent=2):
        """The numbers as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.data, indent=indent, default=_jsonable)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
        return text

    def to_html(self, path=None):
        """One self-contained HTML page; also written to ``path`` when given."""
        from .html import render_html

        text = render_html(self.data, self.images)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        return text

    def summary_row(self):
        """One line for a study's spreadsheet (the batch's CSV)."""
        d = self.data
        grade = d["grade"] or {"label": None, "meaning": "no model: measures alone", "stability": None,
                               "probabilities": {}}
        row = {"video": d["video"], "status": "reported", "grade": grade["label"],
               "meaning": grade["meaning"], "stability": grade["stability"],
               "affected_side": d["affected_side"]["side"], "side_confidence": d["affected_side"]["confidence"],
               "movement_percent": d["affected_side"]["movement_percent"]}
        row.update({f"P({c})": p for c, p in grade["probabilities"].items()})
        row.update({f"{r['key']}_percent": r["percent"] for r in d["regions"]})
        row.update({f"{r['key']}_level": r["level"] for r in d["regions"]})
        t = d["timeline"]
        row.update({"n_windows": len(t["windows"]), "coverage": t["coverage"], "n_gaps": len(t["gaps"]),
                    "n_frames_without_face": t["n_frames_without_face"], "warnings": " ".join(d["warnings"])})
        return row


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _steps(pipe):
    from ..apply import face_detector

    face_detector(pipe)
    steps = pipe.steps
    if not hasattr(steps[-1][1], "predict_proba"):
        raise TypeError(f"the pipeline's final step ({type(steps[-1][1]).__name__}) has no predict_proba.")
    return steps


def _window_length(steps, card, window):
    from ..preprocessing.windows import SequenceWindower

    if window is not None:
        return int(window)
    for _, step in steps:
        if isinstance(step, SequenceWindower):
            return int(step.length)
    return int((card or {}).get("clip_length") or DEFAULT_WINDOW)


def _landmarks(steps, default=None):
    """The landmark backend of the grader's :class:`~fnpgrade.LandmarkROICropper` (``default`` without one)."""
    from ..preprocessing.roi import LandmarkROICropper

    cropper = next((s for _, s in steps if isinstance(s, LandmarkROICropper)), None)
    return getattr(cropper, "landmarks", default)


def _model_info(steps, card, model_name):
    from ..measures import FaceMeasures

    final = steps[-1][1]
    measures = any(isinstance(s, FaceMeasures) for _, s in steps)
    if measures:
        kind = f"clinical grader (measures of each side -> {type(final).__name__})"
    else:
        kind = f"{type(final).__name__} ({getattr(final, 'arch', 'network')})"
    info = {"name": model_name or "(in memory)", "grader": "measures" if measures else "network", "kind": kind,
            "classes": [str(c) for c in final.classes_], "landmarks": _landmarks(steps),
            "fnpgrade_version": __version__}
    if card:
        info["card"] = {k: card.get(k) for k in ("fnpgrade_version", "created", "synthetic", "data", "target",
                                                 "n_clips", "n_subjects", "label_counts", "fps", "clip_length",
                                                 "grader", "validation", "validation_accuracy") if k in card}
    return info


def make_report(pipe, video, *, mirrored=False, fps=None, window=None, card=None, model_name=None, explain=True,
                n_bootstrap=1000, random_state=0):
    """Grade one whole video window by window, find the affected side and region sub-grades, explain the grade.

    Parameters
    ----------
    pipe : sklearn.pipeline.Pipeline or None
        A fitted grader from :func:`~fnpgrade.make_measures_pipeline` (the
        clinical grader) or :func:`~fnpgrade.make_phcnn_pipeline`; as loaded
        by :func:`fnpgrade.persistence.load_model_with_card`. ``None``: the
        page of the measures alone, with no grade
        (:func:`~fnpgrade.report.measures_only.make_measures_report`).
    video : str, path-like or ndarray
        A video file, a frame folder or ``(T, H, W, 3)`` uint8 RGB frames.
    mirrored : bool, default=False
        The video is mirrored (front-camera "selfie"): the image's left is the
        patient's left. Default: an ordinary camera, image left = patient's
        right.
    fps : float or None
        Read the video at this rate; ``None``: the model's (its detector's).
    window : int or None
        Frames per window; ``None``: the pipeline's windower, else the model
        card's clip length, else 4.
    card : dict or None
        The model card (:func:`fnpgrade.persistence.load_model_with_card`).
    model_name : str or None
        Shown on the page (e.g. the model file's name).
    explain : bool, default=True
        Compute the explanations (measure contributions, or occlusion and
        Grad-CAM for a network).
    n_bootstrap : int, default=1000
        Resamples for the uncertainties.
    random_state : int, default=0

    Returns
    -------
    report : Report

    Raises
    ------
    fnpgrade.preprocessing.detect.FaceCoverageError
        No face in any frame of the video.
    ValueError
        No stretch of the video shows the face for a whole window.

    Examples
    --------
    >>> from fnpgrade.report import make_report
    >>> report = make_report(pipe, "patient.mp4")            # doctest: +SKIP
    >>> report.to_html("patient.html"); report.to_json("patient.json")  # doctest: +SKIP
    """
    if pipe is None:  # no model: the page of the measures alone
        from .measures_only import make_measures_report

        return make_measures_report(video, mirrored=mirrored, fps=fps, n_bootstrap=n_bootstrap,
                                    random_state=random_state)
    from ..measures import FaceMeasures
    from ..measures.calibration import calibrate_track
    from ..readout import describe_grade
    from ..utils import clip_name

    steps = _steps(pipe)
    name = clip_name(video, 0) if not isinstance(video, (str, Path)) else str(video)
    read = _read_face(steps, video, name, fps, _window_length(steps, card, window))
    if any(isinstance(s, FaceMeasures) for _, s in steps):
        graded = _grade_by_measures(pipe, read, name, n_bootstrap, random_state)
    else:
        graded = _grade_by_windows(pipe, read, n_bootstrap, random_state)
    grade, measurement = graded["grade"], graded["measurement"]
    grade["meaning"] = describe_grade(grade["label"])
    # a palsy has a side: with a grade above normal the weaker side is named even within the healthy range
    side = affected_side(measurement, mirrored=mirrored, n_bootstrap=n_bootstrap, random_state=random_state,
                         graded_palsy=(_severity_rank(grade["label"]) or 0) > 0)
    compared = side["image_side"] if side["image_side"] != "none" else side["weaker_image_side"]
    regions = region_scores(measurement, compared, mirrored=mirrored)
    calibration = calibrate_track(read["track"], int(measurement["rest_index"]), _landmarks(steps, "dlib"))
    timeline = _timeline(read, graded)
    worst = [dict(timeline["windows"][i], index=i) for i in grade["worst"]]
    best = [dict(timeline["windows"][i], index=i) for i in grade["best"]]
    data = {
        "fnpgrade_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "video": name,
        "disclaimer": DISCLAIMER,
        "model": _model_info(steps, card, model_name),
        "mirrored": bool(mirrored),
        "side_convention": side_convention(mirrored),
        "grade": {k: grade[k] for k in ("label", "meaning", "probabilities", "interval", "stability", "agreement",
                                        "method")},
        "affected_side": side,
        "regions": regions,
        "scales": video_scales(measurement, mirrored),
        "calibration": calibration,
        "timeline": timeline,
        "worst_windows": worst,
        "best_windows": best,
        "warnings": _warnings(card, steps[0][1], read, graded, timeline, side, regions),
    }
    images = _pictures(read, graded, timeline, side, regions, worst, best, mirrored)
    if explain:
        data["explanation"] = _explanation(pipe, steps, read, graded, images)
    return Report(data, images)


def _read_face(steps, video, name, fps, length):
    """The video's face track with the model's detector settings, and its windows of ``length`` frames.

    Every stretch with a face is reported (the gaps are shown, not refused), so the detector's coverage minimum
    is lifted here; a warning on the page says when the video would not pass ``fnpgrade predict``.
    """
    from sklearn.base import clone

    detector = clone(steps[0][1]).set_params(min_coverage=0.0, no_face="raise", verbose=False, n_jobs=None)
    if fps is not None:
        detector.set_params(fps=fps)
    detector.fit()
    track = detector.transform([video])[0]
    face = detector.transform_report_[0]
    spans, n_unwindowed = window_spans(track.frame_index, length)
    if not spans:
        raise ValueError(f"{name}: no stretch of {length} consecutive frames shows the face (a face was verified in "
                         f"{face['n_found']} of {face['n_frames_read']} frames at {face['frame_rate']:g} fps); "
                         "nothing to grade. Use a video that shows the face for longer, or a lower --window.")
    return {"track": track, "face": face, "length": length, "spans": spans, "n_unwindowed": n_unwindowed,
            "rate": face["frame_rate"], "start": face["start_s"]}


def _stretch_seconds(read, spans):
    track, rate, start = read["track"], read["rate"], read["start"]
    return np.array([[start + track.frame_index[s[0]] / rate, start + (track.frame_index[s[-1]] + 1) / rate]
                     for s in spans])


def _grade_by_measures(pipe, read, name, n_bootstrap, random_state):
    """The clinical grader: the whole video graded exactly as ``fnpgrade predict`` and ``pipe.predict`` do, and
    each stretch of about 2 s against the same rest face (when the asymmetry shows)."""
    from ..measures import FaceMeasures, video_features

    track, rate = read["track"], read["rate"]
    measures_at = next(k for k, (_, s) in enumerate(pipe.steps) if isinstance(s, FaceMeasures))
    tail = pipe[measures_at + 1:]
    # the steps between the detector and the measures, as at prediction; the measures step's whole measurement
    # (not only its row of features): the report reads its frames, side and regions
    Xt = pipe[1:measures_at].transform([track])
    measures_step = pipe.steps[measures_at][1]
    measurement = measures_step.measure(Xt[0])
    if measurement is None:
        raise ValueError(f"{name}: no frame of the video has landmarks; nothing to grade.")
    features = video_features(measurement)[None]
    overall = np.asarray(tail.predict_proba(features), float)[0]
    spans, length = read["spans"], read["length"]
    longer, _ = window_spans(track.frame_index, max(length, int(round(2 * rate))))  # stretches of about 2 s
    if longer:
        spans, length = longer, max(length, int(round(2 * rate)))
    stretches = [(span, np.flatnonzero(np.isin(measurement["frames"], span))) for span in spans]
    stretches = [(span, pos) for span, pos in stretches if len(pos)]
    if not stretches:  # too short a video to cut: one stretch, the whole of it
        stretches = [(np.arange(track.n_frames), np.arange(len(measurement["frames"])))]
    spans = [span for span, _ in stretches]
    proba = np.asarray(tail.predict_proba(np.stack([video_features(measurement, pos) for _, pos in stretches])),
                       float)
    rng = np.random.default_rng(random_state)
    n = len(measurement["frames"])
    resamples = video_features(measurement, frame_resamples(rng, n, min(int(n_bootstrap), 200)))
    seconds = _stretch_seconds(read, spans)
    classes = [str(c) for c in pipe.steps[-1][1].classes_]
    grade = grade_over_time(proba, classes, seconds, random_state=random_state, overall=overall,
                            resampled=tail.predict_proba(resamples))
    return {"grade": grade, "measurement": measurement, "whole_clip": Xt[0], "spans": spans, "length": length,
            "seconds": seconds, "by_windows": False,
            "explain": {"tail": tail, "features": features, "names": measures_step.get_feature_names_out()}}


def _grade_by_windows(pipe, read, n_bootstrap, random_state):
    """A network: the pipeline's own steps on each window of the track; the sides and regions from the same
    whole-video measurement as the clinical grader's."""
    from ..measures import FaceMeasures
    from ..pipeline import MEASURES_FACE_SIZE
    from ..preprocessing.roi import LandmarkROICropper

    track, spans = read["track"], read["spans"]
    seconds = _stretch_seconds(read, spans)
    Xt = pipe[1:-1].transform([track.select(s) for s in spans])
    final = pipe.steps[-1][1]
    proba = np.asarray(final.predict_proba(Xt), float)
    grade = grade_over_time(proba, [str(c) for c in final.classes_], seconds, n_bootstrap=n_bootstrap,
                            random_state=random_state)
    measurer = LandmarkROICropper(landmarks=_landmarks(pipe.steps, "dlib"), registration="clip",
                                  face_size=MEASURES_FACE_SIZE).fit()
    whole_clip = measurer.transform([track])[0]
    return {"grade": grade, "measurement": FaceMeasures().fit().measure(whole_clip), "whole_clip": whole_clip,
            "spans": spans, "length": read["length"], "seconds": seconds, "by_windows": True,
            "explain": {"windows": Xt}}


def _timeline(read, graded):
    """The grade over time and what was and was not graded: gaps without a face, frames left unwindowed or
    occluded."""
    from .measure import occluded_count

    face, rate = read["face"], read["rate"]
    n_read = int(face["n_frames_read"])
    gaps = face_gaps(read["track"].frame_index, n_read, rate, read["start"])
    return {"windows": graded["grade"].pop("windows"), "window_frames": graded["length"],
            "frame_rate": round(float(rate), 4), "duration_s": round(n_read / rate, 3), "gaps": gaps,
            "n_frames_read": n_read, "n_found": int(face["n_found"]),
            "n_interpolated": int(face.get("n_interpolated", 0)),
            "n_frames_without_face": int(sum(g["n_frames"] for g in gaps)),
            "n_frames_unwindowed": int(read["n_unwindowed"]), "coverage": round(float(face["coverage"]), 4),
            "n_frames_occluded": occluded_count(graded["whole_clip"])}


def _warnings(card, model_detector, read, graded, timeline, side, regions):
    """Sentences the page shows above the grade: what the model learned from, what the video lacks, and where
    the grade, the side and the regions disagree."""
    from ..readout import near_uniform
    from .measure import measurement_warnings

    face, grade = read["face"], graded["grade"]
    warnings = []
    if card is not None and card.get("synthetic"):
        warnings.append("The model was trained on synthetic faces (warped photos), not on patients.")
    if card is None:
        warnings.append("The model has no model card: what it was trained on is unknown.")
    if face["coverage"] < model_detector.min_coverage:
        warnings.append(f"Only {face['coverage']:.0%} of the frames show a verified face ({model_detector.min_coverage:.0%} "
                        "needed for 'fnpgrade predict'): this grade comes from the stretches with a face alone.")
    if graded["by_windows"] and len(timeline["windows"]) < 3:  # a network's grade is the mean of its windows
        warnings.append(f"Only {len(timeline['windows'])} window(s) were graded: the uncertainty cannot be estimated "
                        "well; record a longer video with the standard expressions.")
    if near_uniform(list(grade["probabilities"].values())):
        warnings.append("The probabilities are near uniform: the model cannot tell the levels apart on this video.")
    warnings += measurement_warnings(side, timeline["n_frames_occluded"], int(face["n_frames_read"]))
    warnings += _contradictions(grade["label"], side, regions)
    return warnings


def _pictures(read, graded, timeline, side, regions, worst, best, mirrored):
    """The page's figures: the grade over time with the lids, the regions, the worst and best stretches."""
    from . import figures

    lids = lid_series(graded["measurement"], read["track"], read["rate"], read["start"], mirrored)
    return {
        "timeline": ("Grade over time: the probabilities of each stretch; grey hatched: no face (not graded); "
                     "red: the worst stretches. Below: each eye's lid opening.",
                     figures.to_png(figures.timeline_figure({**graded["grade"], "windows": timeline["windows"]},
                                                            timeline["gaps"], timeline["duration_s"], lids))),
        "regions": ("Peak movement from rest of each region on the patient's left and right.",
                    figures.to_png(figures.regions_figure(regions, side["side"]))),
        "montage": ("The face and its regions at the worst (top) and best (bottom) stretches' middle frames.",
                    _montage(graded["whole_clip"], graded["spans"], worst, best)),
    }


def _explanation(pipe, steps, read, graded, images):
    """What moved the grade (measure contributions, or occlusion and Grad-CAM for a network); adds its figures
    to ``images``."""
    from . import figures

    grade, final = graded["grade"], steps[-1][1]
    label_index = [str(c) for c in final.classes_].index(grade["label"])
    if not graded["by_windows"]:
        from .explain import explain_measures

        inputs = graded["explain"]
        explanation = explain_measures(inputs["tail"], inputs["features"], inputs["names"], label_index)
        images["explanation"] = ("How much each measure's asymmetry raised the probability of the grade.",
                                 figures.to_png(figures.measures_explanation_figure(explanation, grade["label"])))
    elif hasattr(final, "module_"):
        from .explain import explain_network

        windows = graded["explain"]["windows"]
        explanation = explain_network(final, windows, label_index, window_of_interest=grade["worst"][0])
        cam = explanation.pop("gradcam")
        images["explanation"] = ("Occlusion: how much the probability of the grade drops without each branch, "
                                 "and without each frame of each window.",
                                 figures.to_png(figures.network_explanation_figure(explanation, graded["seconds"],
                                                                                   grade["label"])))
        if cam is not None:
            w = grade["worst"][0]
            track = read["track"]
            frame_times = read["start"] + track.frame_index[graded["spans"][w]] / read["rate"]
            images["gradcam"] = ("Grad-CAM on the face branch for the worst window.",
                                 figures.to_png(figures.gradcam_figure(windows[w].face[0], cam,
                                                                       [f"{t:.2f} s" for t in frame_times])))
    else:
        explanation = {"kind": "none", "method": f"no explanation for a {type(final).__name__}"}
    return explanation


def _severity_rank(label):
    """0 (normal) to 2 (severe) for a level I/II/III or an HB grade 1-6; None for anything else."""
    label = str(label)
    if label in ("I", "II", "III"):
        return ("I", "II", "III").index(label)
    if label.isdigit() and 1 <= int(label) <= 6:
        return 0 if label == "1" else 1 if int(label) <= 4 else 2
    return None


def _contradictions(label, side, regions):
    """Sentences where the grade, the affected side and the regions disagree (the page shows them as warnings)."""
    rank = _severity_rank(label)
    out = []
    if rank == 0 and side["side"] != "none":
        out.append(f"The grade says normal ({label}) but the patient's {side['side']} side moves clearly less: the "
                   "model and the side measure disagree; look at the video.")
    if rank is not None and rank > 0 and side["side"] == "none":
        out.append(f"The grade ({label}) says a palsy but no side moves clearly less than the other: the difference "
                   "lies within the range measured on healthy faces; look at the video.")
    levels = [_severity_rank(r["level"]) for r in regions if r.get("level") is not None]
    if rank is not None and levels and (min(levels) > rank or max(levels) < rank):
        out.append(f"The grade ({label}) is {'milder' if min(levels) > rank else 'more severe'} than every region's "
                   "own level: the regions and the grade disagree; look at the video.")
    return out


def video_scales(measurement, mirrored=False):
    """Sunnybrook and eFACE-style scores of the video as one whole-video examination (:mod:`fnpgrade.clinical`).

    One video seldom holds every expression of the examination on its own: the
    scores name what they lack (synkinesis always: it needs each expression's
    own video), and the Sunnybrook composite is an estimate from the items the
    video shows.
    """
    from ..clinical import WHOLE_VIDEO, score_examination

    scores = score_examination({WHOLE_VIDEO: measurement}, mirrored=mirrored)
    return {k: scores[k] for k in ("sunnybrook", "eface")}


def lid_series(measurement, track, rate, start, mirrored):
    """``{patient side: (seconds, lid opening)}`` over the frames with landmarks."""
    times = start + track.frame_index[measurement["aperture_frames"]] / rate
    return {patient_side(side, mirrored): (times, np.asarray(measurement["eye_aperture"][side], float))
            for side in ("left", "right")}


def _montage(clip, spans, worst, best):
    """ROI montage PNG of the middle frame of the worst and best stretches of the whole-video ``clip``."""
    from ..plots import roi_montage
    from . import figures

    picks = [("worst", w) for w in worst[:2]] + [("best", b) for b in best[:1]]
    middle = [int(spans[w["index"]][len(spans[w["index"]]) // 2]) for _, w in picks]
    labels = [f"{kind}: {w['start_s']:.1f}-{w['end_s']:.1f} s, {w['label']}" for kind, w in picks]
    return figures.to_png(roi_montage(clip.select(middle), max_frames=len(labels), frame_labels=labels,
                                      title="Worst and best stretches"))
