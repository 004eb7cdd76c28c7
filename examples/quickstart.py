"""Quick start: train a PHCNN-LSTM grader and grade clips of people it has never seen.

The whole grader is one scikit-learn ``Pipeline``::

    clip -> FaceDetector -> LandmarkROICropper -> SequenceWindower -> PHCNNClassifier -> level I / II / III

This script makes synthetic palsy clips (real face photos warped into
expressions with a one-sided weakness that follows the House-Brackmann grade),
holds out whole subjects, trains on the rest and reports the paper's scores
plus quadratic weighted kappa on the held-out subjects.

    python examples/quickstart.py            # 12 subjects x 8 clips, width 0.25, 30 epochs (minutes on a CPU)
    python examples/quickstart.py --quick    # 6 subjects x 3 clips, width 0.125, 2 epochs (CI; FNPGRADE_QUICK=1 too)

The data are SYNTHETIC: the scores show that the code path works, not that it
grades patients.
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
    parser.add_argument("--out", default="out/examples", help="folder for the confusion-matrix PNG")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from sklearn.model_selection import StratifiedGroupKFold

    from fnpgrade import make_palsy_clips, make_phcnn_pipeline
    from fnpgrade.metrics import grading_report
    from fnpgrade.plots import plot_confusion_matrix

    if args.quick:
        n_subjects, clips, width, epochs, folds = 6, 3, 0.125, 2, 2
    else:
        n_subjects, clips, width, epochs, folds = 12, 8, 0.25, 30, 3
    print(f"SYNTHETIC data: {n_subjects} subjects x {clips} clips; PHCNN-LSTM at width {width} "
          f"(the paper's network is width 1.0), {epochs} epochs.")

    # X: list of (T, H, W, 3) uint8 RGB clips; y: levels "I"/"II"/"III"; groups: subject ids.
    # HB 1 / 3 / 5 in equal shares: every level has subjects on both sides of the split below.
    X, y, groups = make_palsy_clips(n_subjects=n_subjects, clips_per_subject=clips, grades={1: 1, 3: 1, 5: 1},
                                    random_state=args.seed)

    # Hold out whole subjects (a half or a third of them, every level represented):
    # clips of one person are nearly alike, so a clip-wise split would test on people
    # the model has already seen.
    train, test = next(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=args.seed)
                       .split(X, y, groups))
    X_train, X_test = [X[i] for i in train], [X[i] for i in test]

    pipe = make_phcnn_pipeline(arch="phcnn-lstm", width=width, max_epochs=epochs, random_state=args.seed)
    # classifier__groups: the network's own validation split (best-epoch selection) is by subject too.
    pipe.fit(X_train, y[train], classifier__groups=groups[train])

    pred = pipe.predict(X_test)
    proba = pipe.predict_proba(X_test)
    print(f"\n{len(test)} held-out clips of subjects {sorted(set(groups[test].tolist()))}:")
    for level, p in list(zip(pred, proba))[:5]:
        print(f"  predicted {level:>3}   " + "  ".join(f"P({c})={q:.2f}" for c, q in zip(pipe.classes_, p)))

    report = grading_report(y[test], pred, labels=["I", "II", "III"])
    print("\nHeld-out subjects (SYNTHETIC): " + ", ".join(
        f"{k} {report[k]:.3f}" for k in ("accuracy", "precision", "recall", "f1", "qwk")))
    png = plot_confusion_matrix(y[test], pred, labels=["I", "II", "III"], path=Path(args.out) / "quickstart_confusion.png",
                                title="Held-out subjects (synthetic)")
    print(f"Confusion matrix written to {Path(args.out) / 'quickstart_confusion.png'}")
    return {"report": report, "pipeline": pipe, "predictions": np.asarray(pred), "figure": png}


if __name__ == "__main__":
    main()
