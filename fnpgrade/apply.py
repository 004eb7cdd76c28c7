"""grade_videos: a fitted grader applied to videos one by one, each graded or named "not graded" with why.

A pipeline's ``predict`` grades a list of clips and has no way to say that
one of them could not be graded: a video that shows too little face, a file
that cannot be read. :func:`grade_videos` is what ``fnpgrade predict`` runs:
the fitted pipeline's steps on one video at a time (samplers skipped, as at
prediction), a result row per video that was graded, and the reason for each
that was not. Python users apply a model exactly as the command line does,
without taking the pipeline apart.
"""

from __future__ import annotations

import numpy as np

from .readout import grade_row

__all__ = ["grade_videos", "face_detector"]

_NOT_WINDOWED = ("per_window needs a grader that scores windows of frames (PHCNNClassifier); this model grades "
                 "whole clips.")


def grade_videos(pipe, videos, *, target=None, per_window=False, on_result=None):
    """Grade each video with a fitted grader; name those it cannot grade and why.

    Parameters
    ----------
    pipe : sklearn.pipeline.Pipeline
        A fitted grader whose first step is a
        :class:`~fnpgrade.FaceDetector` (:func:`~fnpgrade.make_measures_pipeline`,
        :func:`~fnpgrade.make_phcnn_pipeline`, or a loaded model). Its detector
        decides how much face a video must show (``min_coverage``); a detector
        left at ``no_face="blank"`` is treated as ``"raise"`` here: a video
        without enough face is never graded on blank frames.
    videos : iterable of str, path-like or ndarray
        Video files, frame folders or ``(T, H, W, 3)`` uint8 RGB frames.
    target : {"level", "hb"} or None
        The label's key in the rows; ``None``: ``"hb"`` when every class is a
        number, else ``"level"``.
    per_window : bool, default=False
        Also give each window's probabilities with its start and end (seconds);
        only for a grader that scores windows of frames (the network).
    on_result : callable or None
        Called as ``on_result(video, row, failure)`` after each video (``row``
        ``None`` when not graded, ``failure`` ``None`` when graded), e.g. to
        print as the grading goes.

    Returns
    -------
    rows : list of dict
        One :func:`~fnpgrade.readout.grade_row` per graded video (label,
        meaning, probabilities, face coverage, warnings; ``windows`` with
        ``per_window``).
    failures : list of dict
        One per video not graded: ``video``, ``reason`` (a sentence) and
        ``error`` (the exception: a
        :class:`~fnpgrade.preprocessing.detect.FaceCoverageError` carries the
        coverage found).

    Examples
    --------
    >>> from fnpgrade.apply import grade_videos
    >>> rows, failures = grade_videos(pipe, ["p01.mp4", "p02.mp4"])  # doctest: +SKIP
    >>> [(r["video"], r["level"]) for r in rows], [(f["video"], f["reason"]) for f in failures]  # doctest: +SKIP
    """
    from .preprocessing.detect import FaceCoverageError

    face_detector(pipe)
    if per_window and not hasattr(pipe.steps[-1][1], "predict_windows"):
        raise TypeError(_NOT_WINDOWED)
    classes = list(pipe.classes_)
    if target is None:
        target = "hb" if all(str(c).isdigit() for c in classes) else "level"
    rows, failures = [], []
    for video in videos:
        try:
            proba, face, windows = _grade_one(pipe, video, per_window)
        except (FaceCoverageError, ValueError, FileNotFoundError) as exc:
            failures.append({"video": str(video), "reason": _reason(exc, video), "error": exc})
            if on_result is not None:
                on_result(video, None, failures[-1])
            continue
        row = grade_row(video, proba, classes, target=target, face=face)
        if windows is not None:
            row["windows"] = windows
        rows.append(row)
        if on_result is not None:
            on_result(video, row, None)
    return rows, failures


def face_detector(pipe):
    """The :class:`~fnpgrade.FaceDetector` that opens the grader ``pipe``.

    Raises
    ------
    TypeError
        When ``pipe`` is not a pipeline that starts by finding the face.
    """
    from .preprocessing.detect import FaceDetector

    first = pipe.steps[0][1] if hasattr(pipe, "steps") else None
    if not isinstance(first, FaceDetector):
        raise TypeError(f"the model is a {type(pipe).__name__} whose first step is not a FaceDetector; fnpgrade "
                        "needs a pipeline that starts by finding the face (from make_measures_pipeline or "
                        "make_phcnn_pipeline).")
    return first


def _grade_one(pipe, video, per_window):
    """One video through the fitted pipeline: ``(probabilities, detector report, windows or None)``.

    The detector runs apart from the rest so that its track (frame times) is at hand, the final step apart so
    that the windows are; the steps between run as the pipeline runs them at prediction (samplers skipped).
    """
    from .preprocessing.detect import FaceCoverageError

    detector = pipe.steps[0][1]
    tracks = detector.transform([video])
    face = detector.transform_report_[0]
    if face["blank"]:  # never grade blank frames, whatever the detector was saved with
        raise FaceCoverageError(f"{face['source']}: a face was verified in {face['n_found']} of its "
                                f"{face['n_frames_read']} frames (coverage {face['coverage']:.0%}), too few to grade.",
                                face["source"], face["coverage"], face["n_found"], face["n_frames_read"])
    Xt = pipe[1:-1].transform(tracks)
    final = pipe.steps[-1][1]
    proba = final.predict_proba(Xt)[0]
    windows = _window_times(final, Xt, tracks[0], face) if per_window else None
    return proba, face, windows


def _window_times(final, Xt, track, face):
    if not hasattr(final, "predict_windows") or not hasattr(Xt[0], "starts"):
        raise TypeError(_NOT_WINDOWED)
    proba = final.predict_windows(Xt)[0]
    length = Xt[0].face.shape[1]
    last = len(track.frame_index) - 1
    # window positions count the frames kept; frame_index maps them to frames read (dropped frames leave gaps)
    seconds = face["start_s"] + np.asarray(track.frame_index, dtype=float) / face["frame_rate"]
    classes = [str(c) for c in final.classes_]
    return [{"start_s": round(float(seconds[min(s, last)]), 3),
             "end_s": round(float(seconds[min(s + length - 1, last)] + 1.0 / face["frame_rate"]), 3),
             "probabilities": {c: round(float(p), 4) for c, p in zip(classes, row)}}
            for s, row in zip(Xt[0].starts, proba)]


def _reason(exc, video):
    """Why a video was not graded, without repeating its name."""
    text = str(exc)
    return text[len(str(video)) + 2:] if text.startswith(f"{video}: ") else text
