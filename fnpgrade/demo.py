"""The demo: synthetic palsy clips from real face photos, graded under subject-wise CV.

Run with ``make demo`` or ``fnpgrade demo``. Everything here is synthetic data:
the scores say the code path works end to end, not that it grades patients.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["run_demo", "format_fold_table"]

_COLUMNS = ("accuracy", "precision", "recall", "f1", "qwk")


def format_fold_table(fold_reports):
    """A markdown table of per-fold scores with a mean +- std row.

    Parameters
    ----------
    fold_reports : list of dict
        One :func:`fnpgrade.metrics.grading_report` per fold.
    """
    lines = ["| fold | " + " | ".join(_COLUMNS) + " |", "|---" * (len(_COLUMNS) + 1) + "|"]
    for i, report in enumerate(fold_reports, 1):
        lines.append(f"| {i} | " + " | ".join(f"{report[c]:.3f}" for c in _COLUMNS) + " |")
    values = np.array([[r[c] for c in _COLUMNS] for r in fold_reports])
    lines.append("| mean +- std | " + " | ".join(f"{m:.3f} +- {s:.3f}" for m, s in
                                                 zip(values.mean(0), values.std(0))) + " |")
    return "\n".join(lines)


def run_demo(n_subjects=12, clips_per_subject=8, n_folds=4, width=0.25, max_epochs=20, lr=0.01, batch_size=16,
             out_dir="out", random_state=0, print_fn=print, verbose=True):
    """Generate synthetic clips, cross-validate a reduced PHCNN-LSTM by subject, report.

    Parameters
    ----------
    n_subjects, clips_per_subject : int
        Size of the synthetic data set (see :func:`fnpgrade.make_palsy_clips`).
    n_folds : int
        Folds of ``StratifiedGroupKFold`` (subjects never straddle folds).
    width : float
        Network width multiplier; 1.0 is the paper's size. The demo uses a
        reduced width so it finishes in minutes on a laptop CPU.
    max_epochs : int
    lr, batch_size : float, int
        The paper's lr 1e-4 and batch 64 suit its 5420 windows; a demo of a few
        dozen clips needs more, smaller steps to learn anything in 30 epochs.
    out_dir : str or path-like
        Where the confusion-matrix PNG and ``demo_scores.json`` go.
    random_state : int
    print_fn : callable
    verbose : bool, default=True
        Progress while it works: a bar over the frames being preprocessed and
        skorch's epoch table while each fold trains.

    Returns
    -------
    result : dict
        ``folds`` (per-fold reports, plain floats), ``n_people`` (independent
        people behind the subjects), ``confusion_png`` and ``seconds``.
    """
    import json

    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold

    from .datasets import make_palsy_clips
    from .metrics import grading_report
    from .pipeline import make_phcnn_pipeline
    from .plots import plot_confusion_matrix

    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    print_fn("fnpgrade demo -- SYNTHETIC DATA: faces warped from real photos, not patients.")
    X, y, groups, info = make_palsy_clips(n_subjects=n_subjects, clips_per_subject=clips_per_subject,
                                          random_state=random_state, return_info=True)
    y = np.asarray(y, dtype=object)
    identities = sorted(set(info["identity"]))
    n_people = len(set(groups))
    levels, counts = np.unique(y, return_counts=True)
    print_fn(f"{len(X)} clips of {clips_per_subject} per subject, {n_subjects} subjects made from "
             f"{len(identities)} real face photos of {n_people} independent people (groups); levels: "
             + ", ".join(f"{lev}={n}" for lev, n in zip(levels, counts)))
    if n_people < n_subjects:
        print_fn(f"Subjects that share a person are grouped together, so no face is in both a training and a "
                 f"test fold. The {n_folds} folds therefore split {n_people} people, not {n_subjects} subjects, "
                 "and each person brings all their subjects' clips along: folds hold uneven numbers of clips.")
    elif len(identities) < n_subjects:
        print_fn("NOTE: subjects share source photos, so the same face appears in training and test "
                 "folds: these subject-wise scores are optimistic.")

    pipe = make_phcnn_pipeline(width=width, max_epochs=max_epochs, lr=lr, batch_size=batch_size,
                               no_face="blank", random_state=random_state, verbose=verbose)
    print_fn(f"Network: PHCNN-LSTM at width {width} (reduced from the paper's 1.0 so the demo runs on a CPU "
             f"in minutes), {max_epochs} epochs.")
    # Preprocessing learns nothing from the data, so running it once on all clips
    # leaks nothing between folds and saves repeating it for every fold.
    t0 = time.perf_counter()
    print_fn(f"Preprocessing {len(X)} clips (face detection, landmarks, ROI crops)...")
    windows = pipe[:-1].fit_transform(X)
    print_fn(f"Preprocessing (face detection, landmarks, ROI crops): {time.perf_counter() - t0:.1f} s")
    # Viola-Jones misses some faces (heavy glasses, faces filling the frame): such clips come back
    # blank; they are counted, named and left out of the evaluation rather than graded on black frames.
    blank = [r["source"] for r in pipe.named_steps["detector"].report_ if r["blank"]]
    if blank:
        keep = np.array([not r["blank"] for r in pipe.named_steps["detector"].report_])
        print_fn(f"{len(blank)} of {len(X)} clips had too little face the detector could find and verify "
                 f"(in fewer than {pipe.named_steps['detector'].min_coverage:.0%} of their frames) and are left "
                 "out: " + ", ".join(blank))
        windows = [w for w, k in zip(windows, keep) if k]
        y, groups = y[keep], np.asarray(groups)[keep]
        X = [x for x, k in zip(X, keep) if k]

    cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    reports, y_true_all, y_pred_all = [], [], []
    for fold, (train, test) in enumerate(cv.split(X, y, groups), 1):
        print_fn(f"fold {fold}/{n_folds}: training on {len(train)} clips of "
                 f"{len(set(np.asarray(groups)[train]))} people ({max_epochs} epochs)...")
        clf = clone(pipe[-1])
        with warnings.catch_warnings():
            # groups here are real people, each behind several synthetic subjects of different
            # grades, so the "subject with several grades" check does not apply
            warnings.filterwarnings("ignore", message=".*more than one label", category=UserWarning)
            clf.fit([windows[i] for i in train], y[train], groups=np.asarray(groups)[train])
        pred = clf.predict([windows[i] for i in test])
        reports.append(grading_report(y[test], pred, labels=["I", "II", "III"]))
        y_true_all.extend(y[test])
        y_pred_all.extend(pred)
        print_fn(f"fold {fold}/{n_folds}: accuracy {reports[-1]['accuracy']:.3f} "
                 f"({len(train)} training clips, {len(test)} test clips)")

    print_fn("\nSubject-wise cross-validation on SYNTHETIC data (weighted precision / recall / F1, "
             "quadratic weighted kappa):\n")
    print_fn(format_fold_table(reports))
    png = out_dir / "demo_confusion.png"
    plot_confusion_matrix(y_true_all, y_pred_all, labels=["I", "II", "III"], path=png,
                          title="Out-of-fold predictions (synthetic data)")
    seconds = time.perf_counter() - start
    (out_dir / "demo_scores.json").write_text(json.dumps({"synthetic": True, "folds": reports,
                                                          "seconds": seconds}, indent=2, default=str))
    print_fn("\nRead these scores as a check that the whole path runs, not as a grader's quality: folds hold out "
             "whole people, and a network trained on a dozen synthetic people does not yet grade faces it has never "
             "seen much better than chance (1/3). See docs/data.md and docs/limitations.md.")
    print_fn(f"\nConfusion matrix: {png}\nTotal time: {seconds:.0f} s")
    return {"folds": reports, "n_people": n_people, "confusion_png": str(png), "seconds": float(seconds)}
