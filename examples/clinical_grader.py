"""The clinical grader: grade people never seen in training, per clip and per person, and see why.

``make_measures_pipeline`` measures how far each side of the face moves and how
it sits at rest (optical flow in landmark-placed regions, eye closure, droop),
one side against the other, and grades those measures with a random forest.
Every subject performs the 7 expressions of an examination, rest included, and
the grader is told each person's neutral face (the middle frame of their rest
clip, put in front of each clip: ``with_neutral_frame`` and ``neutral=True``),
so that every expression is also measured from rest, as a clinician grades it.
This script cross-validates it with folds that hold out whole people, grades
each held-out person from all their clips (``grade_by_subject``), and prints
the measures the forest relied on most.

    python examples/clinical_grader.py                    # 36 subjects x 7 clips, 3 folds by person (a few minutes)
    python examples/clinical_grader.py --without-neutral  # the clips alone, to compare
    python examples/clinical_grader.py --quick            # 12 subjects x 7 clips, 2 folds (CI)

The data are SYNTHETIC: the scores show how well the grade carries over to new
faces of the generator, not clinical accuracy.
"""

from __future__ import annotations

import argparse
import os

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("FNPGRADE_QUICK") == "1",
                        help="tiny data, for CI (also FNPGRADE_QUICK=1)")
    parser.add_argument("--landmarks", default="mediapipe", choices=("mediapipe", "dlib"),
                        help="landmark model (mediapipe reads eyelids better; dlib needs nothing more)")
    parser.add_argument("--without-neutral", action="store_true",
                        help="do not tell the grader each person's neutral face (measure the clips alone)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    from fnpgrade import make_measures_pipeline, make_palsy_clips, preprocess_once
    from fnpgrade.measures import with_neutral_frame
    from fnpgrade.metrics import grading_report, subject_grading_report

    n_subjects, clips, folds = (12, 7, 2) if args.quick else (36, 7, 3)
    X, y, groups, info = make_palsy_clips(n_subjects=n_subjects, clips_per_subject=clips, random_state=args.seed,
                                          return_info=True)
    neutral = not args.without_neutral
    if neutral:  # each person's rest face in front of each of their clips
        X = with_neutral_frame(X, info["subject"], info["expression"] == "rest")
    print(f"SYNTHETIC data: {len(X)} clips of {n_subjects} subjects made from {len(set(groups))} independent "
          f"people; {folds} folds, each holding out whole people.")

    pipe = make_measures_pipeline(landmarks=args.landmarks, neutral=neutral, no_face="blank", random_state=args.seed)
    # preprocessing learns nothing: measure every clip once, then cross-validate the classifier alone
    prepared = preprocess_once(pipe, X, y, groups)
    print(f"{len(prepared.left_out)} clip(s) without a usable face left out.")
    measures, y, groups, subjects = prepared.X, prepared.y, prepared.groups, info["subject"][prepared.kept]

    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=args.seed)
    proba = cross_val_predict(prepared.learner, measures, y, groups=groups, cv=cv, method="predict_proba")
    classes = np.unique(y)
    per_clip = grading_report(y, classes[proba.argmax(1)], labels=list(classes))
    # a clinician grades the person: each subject from the mean of its clips' probabilities
    per_person = subject_grading_report(y, proba, subjects, classes, labels=list(classes))
    known = ", neutral face known" if neutral else ""
    print(f"\nPeople never seen in training (SYNTHETIC{known}): per clip accuracy {per_clip['accuracy']:.3f}, "
          f"QWK {per_clip['qwk']:.3f}; per subject accuracy {per_person['accuracy']:.3f}, "
          f"QWK {per_person['qwk']:.3f} ({per_person['n_subjects']} subjects)")

    forest = prepared.learner.fit(measures, y)[-1].estimator_  # the forest inside the default HealthyRangeClassifier
    names = pipe.named_steps["measures"].get_feature_names_out()
    order = np.argsort(forest.feature_importances_)[::-1][:8]
    print("\nMeasures the forest relied on most (impurity importance):")
    for k in order:
        print(f"  {names[k]:40s} {forest.feature_importances_[k]:.3f}")
    return {"clip": per_clip, "person": per_person, "top_measures": [str(names[k]) for k in order]}


if __name__ == "__main__":
    main()
