"""Scores for severity grading, as scikit-learn scorers.

Severity levels are ordinal, so besides the paper's accuracy and weighted
precision / recall / F1 we report quadratic weighted kappa (disagreeing by two
levels costs four times as much as by one), per-level sensitivity and
specificity, and the geometric mean of sensitivities (imbalanced-learn), which
collapses when any level is never recognised.
"""

from __future__ import annotations

import warnings

import numpy as np
from imblearn.metrics import geometric_mean_score, sensitivity_specificity_support
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (accuracy_score, cohen_kappa_score, f1_score, make_scorer, precision_score,
                             recall_score)

from .grading import HB_GRADES, LEVELS

__all__ = [
    "subject_grading_report",
    "ordinal_labels", "quadratic_weighted_kappa", "quadratic_kappa_scorer", "geometric_mean_scorer",
    "per_level_sensitivity_specificity", "grading_report", "SCORING",
]


def ordinal_labels(*label_arrays):
    """The ordinal order of the labels: all three levels, all six HB grades, else the sorted values present."""
    present = set()
    for labels in label_arrays:
        present.update(np.asarray(labels, dtype=object).tolist())
    if present <= set(LEVELS):
        return list(LEVELS)
    if present <= set(HB_GRADES):
        return list(HB_GRADES)
    return sorted(present)


def quadratic_weighted_kappa(y_true, y_pred, labels=None):
    """Cohen's kappa with quadratic weights, on ordinal labels.

    Parameters
    ----------
    y_true, y_pred : array-like
        Levels ("I" < "II" < "III") or House-Brackmann grades (1 < ... < 6).
    labels : list, optional
        Ordinal order; inferred with :func:`ordinal_labels` when omitted.

    Returns
    -------
    kappa : float
        1 for perfect agreement, 0 for chance. When both raters use a single
        identical label (kappa undefined) returns 1.0 if they agree everywhere.

    Examples
    --------
    >>> round(quadratic_weighted_kappa(["I", "II", "III"], ["I", "III", "III"]), 3)
    0.8
    """
    labels = ordinal_labels(y_true, y_pred) if labels is None else list(labels)
    # Kappa weights follow the position in `labels`, so score ordinal ranks, not the raw labels.
    rank = {label: i for i, label in enumerate(labels)}
    true_rank = np.array([rank[v] for v in np.asarray(y_true, dtype=object).tolist()])
    pred_rank = np.array([rank[v] for v in np.asarray(y_pred, dtype=object).tolist()])
    if len(set(true_rank.tolist()) | set(pred_rank.tolist())) == 1:
        return 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = cohen_kappa_score(true_rank, pred_rank, labels=list(range(len(labels))), weights="quadratic")
    return float(0.0 if np.isnan(kappa) else kappa)


def per_level_sensitivity_specificity(y_true, y_pred, labels=None):
    """Sensitivity (recall) and specificity of every level, with its support.

    Returns
    -------
    table : dict
        ``{level: {"sensitivity": float, "specificity": float, "support": int}}``.
    """
    labels = ordinal_labels(y_true, y_pred) if labels is None else list(labels)
    # A level absent from y_true has undefined sensitivity: reported as 0 with support 0, which the
    # support column makes plain, so the warning adds nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        sens, spec, support = sensitivity_specificity_support(
            _as_labels(y_true), _as_labels(y_pred), labels=labels, average=None,
        )
    return {lab: {"sensitivity": float(se), "specificity": float(sp), "support": int(n)}
            for lab, se, sp, n in zip(labels, sens, spec, support)}


def _as_labels(y):
    # sklearn treats object arrays of numbers as an "unknown" target type; keep numbers numeric.
    y = np.asarray(y)
    if y.dtype.kind == "O" and y.size and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                              for v in y.ravel().tolist()):
        return y.astype(int)  # HB grades held as Python ints in an object array (a per-subject list of them)
    return y.astype(object) if y.dtype.kind in "OUS" else y


def _gmean(y_true, y_pred):
    return geometric_mean_score(_as_labels(y_true), _as_labels(y_pred), average="multiclass")


def _quiet(metric):
    """``metric`` without UndefinedMetricWarning: a level missing from a small test fold is common in
    subject-wise CV, scores 0 (``zero_division``) and would otherwise warn once per fold and metric."""
    def scored(y_true, y_pred, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            return metric(y_true, y_pred, **kwargs)

    scored.__name__ = metric.__name__
    return scored


#: Scorer for quadratic weighted kappa (greater is better).
quadratic_kappa_scorer = make_scorer(quadratic_weighted_kappa)
#: Scorer for the geometric mean of per-level sensitivities.
geometric_mean_scorer = make_scorer(_quiet(_gmean))

#: Ready-made scoring for ``cross_validate`` / ``GridSearchCV``: the paper's four plus kappa and G-mean.
SCORING = {
    "accuracy": "accuracy",
    "precision": make_scorer(_quiet(precision_score), average="weighted", zero_division=0),
    "recall": make_scorer(_quiet(recall_score), average="weighted", zero_division=0),
    "f1": make_scorer(_quiet(f1_score), average="weighted", zero_division=0),
    "qwk": quadratic_kappa_scorer,
    "gmean": geometric_mean_scorer,
}


def grading_report(y_true, y_pred, labels=None):
    """All the scores of one evaluation as a plain dict (JSON-serialisable).

    Keys: ``accuracy``, ``precision``, ``recall``, ``f1`` (weighted, as in the
    paper), ``qwk``, ``gmean`` and ``per_level`` (see
    :func:`per_level_sensitivity_specificity`).
    """
    y_true, y_pred = _as_labels(y_true), _as_labels(y_pred)
    labels = ordinal_labels(y_true, y_pred) if labels is None else list(labels)
    with warnings.catch_warnings():
        # a level absent from a test fold scores 0 (zero_division) and shows in per_level's support
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return _report(y_true, y_pred, labels)


def _report(y_true, y_pred, labels):
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "qwk": quadratic_weighted_kappa(y_true, y_pred, labels=labels),
        "gmean": float(_gmean(y_true, y_pred)),
        "per_level": per_level_sensitivity_specificity(y_true, y_pred, labels=labels),
    }


def subject_grading_report(y_true, proba, subjects, classes, labels=None):
    """Scores of one evaluation per person: each subject graded from the mean of its clips' probabilities.

    A clinician grades a person, not a 4-frame clip; :func:`fnpgrade.grade_by_subject`
    pools a subject's clips, and this scores those grades against the
    subject's level, with the same keys as :func:`grading_report` plus
    ``n_subjects``.

    Parameters
    ----------
    y_true : array-like, shape (n_clips,)
        The level of each clip (one per subject: all its clips share it).
    proba : array-like, shape (n_clips, n_classes)
        ``predict_proba`` of the clips.
    subjects : array-like, shape (n_clips,)
        The subject of each clip.
    classes : array-like, shape (n_classes,)
        The labels of ``proba``'s columns.
    labels : list or None, default=None
        The ordered levels (see :func:`grading_report`).

    Returns
    -------
    report : dict

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    >>> report = subject_grading_report(["III", "III", "III", "I"], proba, ["s1", "s1", "s1", "s2"],
    ...                                 ["I", "II", "III"])
    >>> report["accuracy"], report["n_subjects"]
    (1.0, 2)
    """
    from .grading import grade_by_subject

    y_true, subjects = np.asarray(y_true, dtype=object), np.asarray(subjects)
    ids, grades, _ = grade_by_subject(proba, subjects, classes)
    truth = []
    for subject in ids:
        levels = set(y_true[subjects == subject])
        if len(levels) != 1:
            raise ValueError(f"Subject {subject!r} has clips of several levels {sorted(map(str, levels))}; a "
                             "subject's clips must share one grade to be graded as a person.")
        truth.append(levels.pop())
    report = grading_report(np.asarray(truth, dtype=object), grades, labels=labels)
    report["n_subjects"] = int(len(ids))
    return report
