"""Subject-wise cross-validation: how well does the grader do on people it has never seen?

Every clip of a subject goes to the same fold (``StratifiedGroupKFold`` with
``groups=subject``), as in the paper's 5-fold protocol. The scores are the
paper's accuracy and weighted precision / recall / F1, plus quadratic weighted
kappa (levels are ordinal) and the geometric mean of per-level recalls, all
from ``fnpgrade.metrics.SCORING``.

With ``--leaky-too`` the same model is also scored under a plain clip-wise
``StratifiedKFold``, which puts clips of one person on both sides of a split;
the gap between the two is how much a clip-wise protocol flatters a model.

    python examples/subject_wise_cv.py                # 12 subjects x 8 clips, 4 folds, width 0.25, 30 epochs
    python examples/subject_wise_cv.py --quick        # 6 subjects x 3 clips, 3 folds, width 0.125, 2 epochs (CI)
    python examples/subject_wise_cv.py --leaky-too    # also the (wrong) clip-wise protocol, for comparison

The data are SYNTHETIC: the scores show the protocol, not clinical accuracy.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("FNPGRADE_QUICK") == "1",
                        help="tiny data and network, for CI (also FNPGRADE_QUICK=1)")
    parser.add_argument("--leaky-too", action="store_true",
                        help="also run the clip-wise (leaky) protocol to show the difference")
    parser.add_argument("--out", default="out/examples", help="folder for the PNGs")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def summarise(scores, keys=("accuracy", "precision", "recall", "f1", "qwk", "gmean")):
    """``{metric: (mean, std)}`` from a ``cross_validate`` result."""
    return {k: (float(np.mean(scores[f"test_{k}"])), float(np.std(scores[f"test_{k}"]))) for k in keys}


def main(argv=None):
    args = parse_args(argv)
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_validate

    from fnpgrade import make_palsy_clips, make_phcnn_pipeline
    from fnpgrade.metrics import SCORING
    from fnpgrade.plots import plot_fold_scores, plot_learning_curves

    if args.quick:
        n_subjects, clips, folds, width, epochs = 6, 3, 3, 0.125, 2
    else:
        n_subjects, clips, folds, width, epochs = 12, 8, 4, 0.25, 30
    # Levels in equal shares in the tiny quick run (so every fold trains on all three);
    # the full run uses the generator's default mix, shaped like the paper's data.
    grades = {1: 1, 3: 1, 5: 1} if args.quick else None
    X, y, groups = make_palsy_clips(n_subjects=n_subjects, clips_per_subject=clips, grades=grades,
                                    random_state=args.seed)
    print(f"SYNTHETIC data: {len(X)} clips, {len(set(groups))} subject groups; PHCNN-LSTM at width {width} "
          f"(paper: 1.0), {epochs} epochs, {folds} subject-wise folds.")

    pipe = make_phcnn_pipeline(width=width, max_epochs=epochs, random_state=args.seed)
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=args.seed)
    # groups= decides the folds; params= passes the subject ids on to the classifier,
    # whose internal validation split (best-epoch selection) is then by subject too.
    scores = cross_validate(pipe, X, y, groups=groups, cv=cv, scoring=SCORING,
                            params={"classifier__groups": groups}, return_estimator=True, error_score="raise")
    summary = summarise(scores)
    print("\nSubject-wise CV (SYNTHETIC):")
    print("| metric | " + " | ".join(f"fold {i + 1}" for i in range(folds)) + " | mean +- std |")
    print("|---" * (folds + 2) + "|")
    for key, (mean, std) in summary.items():
        folds_str = " | ".join(f"{v:.3f}" for v in scores[f"test_{key}"])
        print(f"| {key} | {folds_str} | {mean:.3f} +- {std:.3f} |")

    out = Path(args.out)
    plot_fold_scores(scores, metrics=["accuracy", "f1", "qwk"], path=out / "cv_fold_scores.png",
                     title="Subject-wise CV (synthetic)")
    # The last fold's fitted pipeline: its classifier keeps skorch's per-epoch history.
    plot_learning_curves(scores["estimator"][-1], path=out / "cv_learning_curves.png",
                         title="Learning curves, last fold (synthetic)")
    print(f"Plots written to {out / 'cv_fold_scores.png'} and {out / 'cv_learning_curves.png'}")

    result = {"subject_wise": summary, "scores": scores}
    if args.leaky_too:
        leaky = cross_validate(pipe, X, y, cv=StratifiedKFold(folds, shuffle=True, random_state=args.seed),
                               scoring=SCORING, error_score="raise")
        result["clip_wise"] = summarise(leaky)
        print("\nClip-wise CV (WRONG for grading people: one subject's clips on both sides):")
        for key, (mean, std) in result["clip_wise"].items():
            print(f"  {key}: {mean:.3f} +- {std:.3f}   (subject-wise {summary[key][0]:.3f})")
    return result


if __name__ == "__main__":
    main()
