"""A grade over time: windows across a whole video, the gaps without a face, and a per-video grade.

The video is read once (the model's detector, at the model's frame rate);
the frames it kept are cut into windows of the grader's clip length that
never span a gap, every window is graded, and the per-video grade is the mean
of the window probabilities (what ``PHCNNClassifier.predict_proba`` and
:func:`fnpgrade.grade_by_subject` do). Its uncertainty is a bootstrap over
windows: windows are resampled with replacement, the mean is taken again, and
the 5th-95th percentiles of each class's mean probability and the share of
resamples that give the same grade are reported. Neighbouring windows of one
video are not independent, so this interval is, if anything, too narrow for
short videos; it is widest where the windows disagree.
"""

from __future__ import annotations

import numpy as np

__all__ = ["window_spans", "face_gaps", "severity", "grade_over_time", "N_BOOTSTRAP"]

#: Resamples of the windows for the per-video grade's uncertainty.
N_BOOTSTRAP = 1000


def window_spans(frame_index, length):
    """Windows of ``length`` consecutive frames, none across a gap.

    Parameters
    ----------
    frame_index : array-like of int
        Index among the frames read of each frame kept (a track's
        ``frame_index``); a jump is a gap (frames without a face, dropped).
    length : int
        Frames per window.

    Returns
    -------
    spans : list of ndarray of int
        Positions in the track of each window's frames. Each stretch without a
        gap is cut into windows stepping by ``length``; the last one is
        aligned to the stretch's end (it may overlap the one before) so that
        every frame of the stretch is in a window.
    n_unwindowed : int
        Frames in stretches shorter than ``length`` (not graded, counted).

    Examples
    --------
    >>> from fnpgrade.report.timeline import window_spans
    >>> spans, n = window_spans([0, 1, 2, 3, 4, 5, 9, 10, 20, 21, 22, 23], 4)
    >>> [s.tolist() for s in spans], n
    ([[0, 1, 2, 3], [2, 3, 4, 5], [8, 9, 10, 11]], 2)
    """
    frame_index = np.asarray(frame_index, dtype=int)
    if length < 1:
        raise ValueError(f"window length must be >= 1; got {length}.")
    breaks = np.flatnonzero(np.diff(frame_index) != 1) + 1
    spans, n_unwindowed = [], 0
    for run in np.split(np.arange(len(frame_index)), breaks):
        if len(run) < length:
            n_unwindowed += len(run)
            continue
        starts = list(range(0, len(run) - length + 1, length))
        if starts[-1] + length < len(run):
            starts.append(len(run) - length)
        spans += [run[s:s + length] for s in starts]
    return spans, n_unwindowed


def face_gaps(frame_index, n_frames_read, frame_rate, start_s=0.0):
    """Stretches of the video whose frames were not kept (no face, or too long a gap to bridge).

    Returns
    -------
    gaps : list of dict
        ``start_s``, ``end_s`` (seconds in the video) and ``n_frames``.

    Examples
    --------
    >>> from fnpgrade.report.timeline import face_gaps
    >>> face_gaps([2, 3, 4, 8], 10, 2.0)
    [{'start_s': 0.0, 'end_s': 1.0, 'n_frames': 2}, {'start_s': 2.5, 'end_s': 4.0, 'n_frames': 3}, {'start_s': 4.5, 'end_s': 5.0, 'n_frames': 1}]
    """
    kept = np.zeros(int(n_frames_read), bool)
    kept[np.asarray(frame_index, dtype=int)] = True
    gaps, t = [], 0
    while t < len(kept):
        if kept[t]:
            t += 1
            continue
        end = t
        while end < len(kept) and not kept[end]:
            end += 1
        gaps.append({"start_s": round(start_s + t / frame_rate, 3), "end_s": round(start_s + end / frame_rate, 3),
                     "n_frames": int(end - t)})
        t = end
    return gaps


def severity(proba, classes):
    """Expected severity of each row of probabilities, 0 (normal) to 1 (the worst class).

    Classes are levels ``I``/``II``/``III`` or House-Brackmann grades 1-6, in that order of severity.
    """
    from ..grading import LEVELS

    names = [str(c) for c in classes]
    if all(n in LEVELS for n in names):
        rank = np.array([LEVELS.index(n) for n in names], float) / (len(LEVELS) - 1)
    elif all(n.isdigit() for n in names):
        values = np.array([int(n) for n in names], float)
        rank = (values - 1) / 5 if values.max() <= 6 else values / values.max()
    else:
        raise ValueError(f"cannot order the classes {names} by severity; the report needs levels I/II/III or "
                         "House-Brackmann grades 1-6.")
    return np.asarray(proba, float) @ rank


def grade_over_time(proba, classes, seconds, n_bootstrap=N_BOOTSTRAP, n_named=3, random_state=0, overall=None,
                    resampled=None):
    """Per-window probabilities -> windows, per-video grade with uncertainty, worst and best windows.

    Parameters
    ----------
    proba : ndarray, shape (n_windows, n_classes)
    classes : sequence
        The grader's labels, in the order of the columns.
    seconds : ndarray, shape (n_windows, 2)
        Start and end of each window in the video (seconds).
    n_bootstrap : int, default=1000
    n_named : int, default=3
        Worst (and best) windows named.
    random_state : int, default=0
    overall : ndarray, shape (n_classes,), optional
        The video's own probabilities, where the grader grades the whole video
        (the clinical grader): they are the grade, the windows only show when
        the asymmetry appears. Default: the mean of the windows' (a network).
    resampled : ndarray, shape (n_resamples, n_classes), optional
        With ``overall``: the grader's probabilities on bootstrap resamples of
        the video's measured frames (the stability of its answer).

    Returns
    -------
    summary : dict
        ``windows`` (``start_s``, ``end_s``, ``label``, ``severity``,
        ``probabilities``), ``probabilities`` (per-video mean), ``label``,
        ``interval`` (class -> [5th, 95th] percentile of the mean),
        ``stability`` (share of resamples giving ``label``), ``agreement``
        (share of windows whose own label is ``label``), ``worst`` and
        ``best`` (indices into ``windows``), ``method`` (a sentence).
    """
    proba = np.asarray(proba, float)
    names = [str(c) for c in classes]
    sev = severity(proba, names)
    whole = overall is not None
    mean = np.asarray(overall, float) if whole else proba.mean(axis=0)
    label = names[int(np.argmax(mean))]
    rng = np.random.default_rng(random_state)
    if whole:
        samples = np.asarray(resampled, float).reshape(-1, len(names)) if resampled is not None else mean[None]
    else:
        samples = proba[rng.integers(0, len(proba), (int(n_bootstrap), len(proba)))].mean(axis=1)
    low, high = np.percentile(samples, [5, 95], axis=0)
    stability = float(np.mean(np.argmax(samples, axis=1) == int(np.argmax(mean))))
    windows = [{"start_s": round(float(a), 3), "end_s": round(float(b), 3), "label": names[int(np.argmax(p))],
                "severity": round(float(s), 4), "probabilities": {c: round(float(v), 4) for c, v in zip(names, p)}}
               for (a, b), p, s in zip(np.asarray(seconds, float), proba, sev)]
    order = np.argsort(-sev, kind="stable")
    k = min(n_named, len(windows))
    return {
        "windows": windows,
        "label": label,
        "probabilities": {c: round(float(v), 4) for c, v in zip(names, mean)},
        "interval": {c: [round(float(a), 4), round(float(b), 4)] for c, a, b in zip(names, low, high)},
        "stability": round(stability, 4),
        "agreement": round(float(np.mean([w["label"] == label for w in windows])), 4),
        "worst": [int(i) for i in order[:k]],
        "best": [int(i) for i in order[::-1][:k]],
        "method": (("the whole video graded at once (as fnpgrade predict grades it); the windows show each "
                    "stretch measured against the same rest face; interval and stability: 5th-95th percentile and "
                    f"share of the same grade over {len(samples)} resamples of the measured frames. Stability says "
                    "how steady the model's answer is on this video, not how likely it is to be right")
                   if whole else
                   (f"mean of the {len(windows)} window probabilities; interval: 5th-95th percentile of that mean "
                    f"over {int(n_bootstrap)} bootstrap resamples of the windows (neighbouring windows are not "
                    "independent: read it as a lower bound on the uncertainty); stability: share of resamples "
                    "giving the same grade, how steady the answer is, not how likely it is to be right")),
    }
