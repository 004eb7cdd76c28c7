"""Grades as a clinician reads them: the level with its House-Brackmann meaning, probabilities, face coverage,
warnings, and a results table.

Used by ``fnpgrade predict``; the functions take plain numbers, so any grader's
probabilities can be read out the same way.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["LEVEL_MEANINGS", "HB_MEANINGS", "describe_grade", "near_uniform", "grade_row", "format_grade_row",
           "write_grades_csv", "NEAR_UNIFORM_MARGIN"]

#: The paper's levels (Table I) in House-Brackmann terms.
LEVEL_MEANINGS = {
    "I": "HB 1, normal facial function",
    "II": "HB 2-4, mild to moderately severe dysfunction",
    "III": "HB 5-6, severe dysfunction to total paralysis",
}

#: House-Brackmann grades (House & Brackmann, 1985).
HB_MEANINGS = {
    1: "normal facial function",
    2: "mild dysfunction",
    3: "moderate dysfunction",
    4: "moderately severe dysfunction",
    5: "severe dysfunction",
    6: "total paralysis",
}

#: A grade whose highest probability is within this of 1/K (K levels) is reported as near uniform.
NEAR_UNIFORM_MARGIN = 0.1


def describe_grade(label):
    """``"II = HB 2-4, mild to moderately severe dysfunction"`` for a level or an HB grade.

    Examples
    --------
    >>> from fnpgrade.readout import describe_grade
    >>> describe_grade("III")
    'III = HB 5-6, severe dysfunction to total paralysis'
    >>> describe_grade(3)
    'HB 3 = moderate dysfunction'
    """
    text = str(label).strip()
    if text in LEVEL_MEANINGS:
        return f"{text} = {LEVEL_MEANINGS[text]}"
    if text.isdigit() and int(text) in HB_MEANINGS:
        return f"HB {int(text)} = {HB_MEANINGS[int(text)]}"
    return text


def near_uniform(proba, margin=NEAR_UNIFORM_MARGIN):
    """Whether probabilities over K classes are too flat to mean anything (highest < 1/K + ``margin``).

    Examples
    --------
    >>> from fnpgrade.readout import near_uniform
    >>> near_uniform([0.289, 0.357, 0.354]), near_uniform([0.1, 0.8, 0.1])
    (True, False)
    """
    proba = np.asarray(proba, dtype=float)
    return bool(proba.max() < 1.0 / len(proba) + margin)


def grade_row(video, proba, classes, target="level", face=None):
    """One video's result as a JSON-ready dict.

    Parameters
    ----------
    video : str
        The video as the user named it.
    proba : array-like, shape (K,)
        The grader's probabilities, in the order of ``classes``.
    classes : sequence
        The grader's labels (levels or HB grades).
    target : {"level", "hb"}, default="level"
        Names the label's key: ``"level"`` or ``"grade"``.
    face : dict or None
        The detector's report for the video (``n_frames_read``, ``n_found``,
        ``n_interpolated``, ``n_dropped``, ``coverage``).

    Returns
    -------
    row : dict
        ``video``, ``level`` or ``grade``, ``meaning``, ``probabilities``,
        ``coverage``, ``n_frames_read``, ``n_found``, ``n_interpolated``,
        ``n_dropped`` and ``warnings`` (a list of sentences).
    """
    proba = np.asarray(proba, dtype=float)
    label = classes[int(np.argmax(proba))]
    label = int(label) if target == "hb" else str(label)
    row = {"video": str(video), ("grade" if target == "hb" else "level"): label,
           "meaning": describe_grade(label),
           "probabilities": {str(c): round(float(p), 4) for c, p in zip(classes, proba)}}
    face = face or {}
    for key in ("coverage", "n_frames_read", "n_found", "n_interpolated", "n_dropped"):
        if key in face:
            row[key] = round(float(face[key]), 4) if key == "coverage" else int(face[key])
    row["warnings"] = []
    if near_uniform(proba):
        row["warnings"].append(
            f"the probabilities are near uniform (highest {proba.max():.2f}, chance {1 / len(proba):.2f}): the "
            "model cannot tell the levels apart on this video; do not use this grade.")
    return row


def format_grade_row(row):
    """A readable block of lines for one :func:`grade_row`."""
    label = row.get("level", row.get("grade"))
    lines = [str(row["video"]), f"  {'grade' if 'grade' in row else 'level'} {row['meaning'] or label}",
             "  " + "  ".join(f"P({c})={p:.3f}" for c, p in row["probabilities"].items())]
    if "coverage" in row:
        lines.append(f"  face verified in {row['n_found']} of {row['n_frames_read']} frames "
                     f"({row['coverage']:.0%}); {row.get('n_interpolated', 0)} interpolated, "
                     f"{row.get('n_dropped', 0)} left out")
    for window in row.get("windows", []):
        lines.append(f"    {window['start_s']:7.2f}-{window['end_s']:.2f} s  "
                     + "  ".join(f"P({c})={p:.3f}" for c, p in window["probabilities"].items()))
    lines += [f"  WARNING: {text}" for text in row.get("warnings", [])]
    return "\n".join(lines)


def write_grades_csv(rows, path, failures=()):
    """Write one line per video: the grade, its meaning, each probability, face coverage, status.

    Parameters
    ----------
    rows : list of dict
        From :func:`grade_row` (extra keys such as ``subject`` become columns).
    path : str or path-like
    failures : sequence of (video, reason)
        Videos that were not graded; written with status ``not graded``.

    Returns
    -------
    path : pathlib.Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = list(rows[0]["probabilities"]) if rows else []
    key = "grade" if rows and "grade" in rows[0] else "level"
    extra = sorted({k for row in rows for k in row} - {"video", key, "meaning", "probabilities", "warnings",
                                                       "windows", "coverage", "n_frames_read", "n_found",
                                                       "n_interpolated", "n_dropped"})
    header = (["video", "status", key, "meaning"] + [f"P({c})" for c in classes]
              + ["coverage", "n_frames_read", "n_found", "n_interpolated", "n_dropped"] + extra + ["warnings"])
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row["video"], "graded", row[key], row["meaning"]]
                            + [row["probabilities"][c] for c in classes]
                            + [row.get(k, "") for k in ("coverage", "n_frames_read", "n_found", "n_interpolated",
                                                        "n_dropped")]
                            + [row.get(k, "") for k in extra] + [" ".join(row.get("warnings", []))])
        for video, reason in failures:
            writer.writerow([video, "not graded", "", ""] + [""] * len(classes) + [""] * 5 + [""] * len(extra)
                            + [reason])
    return path
