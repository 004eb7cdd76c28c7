"""House-Brackmann grades and the paper's three severity levels.

Liu et al. (Table I) group the six House-Brackmann (HB) grades into three levels:
HB 1 -> level "I" (normal), HB 2-4 -> level "II" (mild to moderate dysfunction),
HB 5-6 -> level "III" (severe paralysis).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["LEVELS", "HB_GRADES", "hb_to_level", "check_hb_grades", "check_levels", "grade_by_subject",
           "check_one_grade_per_subject"]

#: The paper's severity levels, in ordinal order.
LEVELS = ("I", "II", "III")

#: Valid House-Brackmann grades.
HB_GRADES = (1, 2, 3, 4, 5, 6)

_HB_TO_LEVEL = {1: "I", 2: "II", 3: "II", 4: "II", 5: "III", 6: "III"}


def check_hb_grades(grades, *, name="grades"):
    """Validate House-Brackmann grades and return them as an int array.

    Parameters
    ----------
    grades : int or array-like of int
        Grades in 1..6. Integral floats (``2.0``) and numeric strings (``"2"``)
        are accepted; anything else raises.
    name : str, default="grades"
        What to call the input in error messages.

    Returns
    -------
    grades : ndarray of int, shape (n,)

    Raises
    ------
    ValueError
        Naming the first offending position and value.
    """
    values = np.atleast_1d(np.asarray(grades, dtype=object))
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {values.shape}.")
    out = np.empty(len(values), dtype=int)
    for i, value in enumerate(values):
        grade = _parse_grade(value)
        if grade is None:
            raise ValueError(
                f"{name}[{i}] = {value!r} is not a House-Brackmann grade. "
                "Grades must be integers from 1 (normal) to 6 (total paralysis); "
                "fix the label or drop that clip."
            )
        out[i] = grade
    return out


def _parse_grade(value):
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.lstrip("+-").isdigit():
            return None
        value = int(value)
    if isinstance(value, numbers.Integral):
        return int(value) if 1 <= value <= 6 else None
    if isinstance(value, numbers.Real):
        if not math.isfinite(value) or int(value) != value:
            return None
        value = int(value)
        return value if 1 <= value <= 6 else None
    return None


def hb_to_level(grades):
    """Map House-Brackmann grades to the paper's levels.

    Parameters
    ----------
    grades : int or array-like of int
        House-Brackmann grades in 1..6.

    Returns
    -------
    levels : str or ndarray of str
        ``"I"`` for HB 1, ``"II"`` for HB 2-4, ``"III"`` for HB 5-6. A scalar
        input gives a scalar string.

    Examples
    --------
    >>> from fnpgrade.grading import hb_to_level
    >>> hb_to_level([1, 2, 4, 5, 6]).tolist()
    ['I', 'II', 'II', 'III', 'III']
    >>> hb_to_level(3)
    'II'
    """
    scalar = np.ndim(grades) == 0
    checked = check_hb_grades(grades)
    levels = np.array([_HB_TO_LEVEL[g] for g in checked], dtype=object)
    return levels[0] if scalar else levels


def check_levels(levels, *, name="y"):
    """Validate level labels (``"I"``, ``"II"``, ``"III"``) and return them.

    Parameters
    ----------
    levels : array-like of str
    name : str, default="y"

    Returns
    -------
    levels : ndarray of object
    """
    values = np.atleast_1d(np.asarray(levels, dtype=object))
    for i, value in enumerate(values):
        if value not in LEVELS:
            raise ValueError(
                f"{name}[{i}] = {value!r} is not a severity level. Levels are "
                f"{LEVELS}; convert House-Brackmann grades with fnpgrade.grading.hb_to_level."
            )
    return values


def grade_by_subject(proba, subjects, classes):
    """One grade per person from the probabilities of their clips.

    A clinician grades a person from several expressions, not one clip; the
    clips of one subject are pooled by averaging their class probabilities
    (``predict_proba``), which lets a clear clip (a tight eye closure) outvote
    clips that show little (rest, where House-Brackmann II-IV look normal).

    Parameters
    ----------
    proba : array-like, shape (n_clips, n_classes)
        ``predict_proba`` of the clips.
    subjects : array-like, shape (n_clips,)
        The subject of each clip (the ``groups`` of cross-validation).
    classes : array-like, shape (n_classes,)
        The labels of ``proba``'s columns (the classifier's ``classes_``).

    Returns
    -------
    subject_ids : ndarray, shape (n_subjects,)
        The subjects, sorted.
    grades : ndarray, shape (n_subjects,)
        The label of the highest mean probability, per subject.
    mean_proba : ndarray, shape (n_subjects, n_classes)
        The mean of each subject's clip probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    >>> ids, grades, _ = grade_by_subject(proba, ["s1", "s1", "s1", "s2"], ["I", "II", "III"])
    >>> ids.tolist(), grades.tolist()
    (['s1', 's2'], ['III', 'I'])
    """
    proba = np.asarray(proba, dtype=float)
    subjects = np.asarray(subjects)
    classes = np.asarray(classes)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(f"proba must have one column per class ({len(classes)}); got shape {proba.shape}.")
    if len(subjects) != len(proba):
        raise ValueError(f"subjects has {len(subjects)} entries for {len(proba)} clips; give one per clip.")
    subject_ids, index = np.unique(subjects, return_inverse=True)
    sums = np.zeros((len(subject_ids), proba.shape[1]))
    np.add.at(sums, index, proba)
    mean_proba = sums / np.bincount(index)[:, None]
    return subject_ids, classes[mean_proba.argmax(axis=1)], mean_proba


def check_one_grade_per_subject(y, groups, *, where="labels", stacklevel=2):
    """Warn when a subject carries more than one grade; return those subjects.

    In the paper's protocol a subject (a person) has one House-Brackmann grade.
    A subject with two grades is usually a labelling slip (a copied row, a
    mistyped id); when it is on purpose (one person filmed at several grades,
    or at visits before and after recovery), person-wise cross-validation
    still keeps all of that person's clips on one side of each split, and
    per-person scores pool each person's clips of one grade.

    Parameters
    ----------
    y : array-like, shape (n_clips,)
        The grade or level of each clip.
    groups : array-like, shape (n_clips,)
        The subject of each clip.
    where : str, default="labels"
        What to name in the warning (e.g. the labels file).
    stacklevel : int, default=2
        Passed to :func:`warnings.warn`.

    Returns
    -------
    mixed : dict
        ``{subject: sorted grades as text}`` of every subject with more than
        one grade (empty when each has one).

    Warns
    -----
    UserWarning
        Naming the subjects (up to five) and their grades, when there are any.

    Examples
    --------
    >>> import warnings
    >>> from fnpgrade.grading import check_one_grade_per_subject
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     mixed = check_one_grade_per_subject([1, 5, 2], ["ann", "ann", "bob"])
    >>> mixed, len(caught)
    ({'ann': ['1', '5']}, 1)
    """
    y, groups = np.asarray(y, dtype=object), np.asarray(groups, dtype=object)
    if len(y) != len(groups):
        raise ValueError(f"{where}: y has {len(y)} labels and groups {len(groups)} subjects; give one per clip.")
    grades_of = {}
    for subject, label in zip(groups.tolist(), y.tolist()):
        grades_of.setdefault(subject, set()).add(label)
    mixed = {s: sorted(map(str, grades)) for s, grades in grades_of.items() if len(grades) > 1}
    if mixed:
        import warnings

        shown = "; ".join(f"{s!s}: {', '.join(g)}" for s, g in list(mixed.items())[:5])
        more = f" (and {len(mixed) - 5} more)" if len(mixed) > 5 else ""
        n = len(mixed)
        warnings.warn(
            f"{where}: {n} subject{'s' * (n != 1)} carr{'y' if n != 1 else 'ies'} more than one grade: {shown}{more}. "
            "In the paper's protocol a subject has one House-Brackmann grade; check the subject ids and grades. "
            "If it is on purpose (one person filmed at several grades, or visits), person-wise cross-validation "
            "keeps each person's clips together.", UserWarning, stacklevel=stacklevel)
    return mixed
