"""Grade your own videos: a folder of videos + a labels CSV -> subject-wise CV -> grades for new videos.

Your data set is a folder with a CSV (header ``subject,grade,path``; grade is the
House-Brackmann grade 1-6 given by a clinician; path is a video file or a
folder of frame images, relative to the folder)::

    my_study/
      labels.csv        subject,grade,path
                        p01,1,p01_session1.mp4
                        p02,5,p02.mp4
                        ...
      p01_session1.mp4
      p02.mp4

Long videos are cut into 4-frame clips (the paper's sequences), every clip
keeps its subject id, and cross-validation keeps each subject in one fold.
Then a model is trained on everything and grades the videos given with
``--predict``.

    python examples/own_videos.py --data my_study --predict new1.mp4 new2.mp4 --fps 6
    python examples/own_videos.py             # no --data: writes a SYNTHETIC study folder and uses that
    python examples/own_videos.py --quick     # the same, tiny (CI; FNPGRADE_QUICK=1 too)

Without ``--data`` the videos are SYNTHETIC (real face photos warped into
expressions), so the scores only show that the path from files to grades works.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="your study folder (default: write a synthetic one)")
    parser.add_argument("--labels", default="labels.csv", help="the CSV, relative to --data (default: labels.csv)")
    parser.add_argument("--predict", nargs="*", default=None, help="videos to grade after training")
    parser.add_argument("--fps", type=float, default=None, help="resample videos to this rate (paper: 6)")
    parser.add_argument("--clip-length", type=int, default=4, help="frames per clip (paper: 4)")
    parser.add_argument("--folds", type=int, default=None, help="subject-wise folds (default 5, quick 2)")
    parser.add_argument("--quick", action="store_true", default=os.environ.get("FNPGRADE_QUICK") == "1",
                        help="tiny synthetic study and network, for CI (also FNPGRADE_QUICK=1)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def write_synthetic_study(root, n_subjects, clips_per_subject, seed=0, grades=None):
    """Write one video per synthetic subject and ``labels.csv`` (subject, HB grade, path).

    Each subject's clips are joined into one video, like a recorded session, so
    that loading exercises the same cut-into-clips step as real recordings.
    The last subject is left out of the CSV and returned as a "new patient" video.
    """
    from fnpgrade import make_palsy_clips
    from fnpgrade.io import write_video

    X, hb, _, info = make_palsy_clips(n_subjects=n_subjects + 1, clips_per_subject=clips_per_subject,
                                      target="hb", grades=grades, random_state=seed, return_info=True)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    subjects = np.asarray(info["subject"])
    rows, new_video = [], None
    for s in np.unique(subjects):
        frames = np.concatenate([X[i] for i in np.flatnonzero(subjects == s)])
        # .avi (MJPG) rather than .mp4: it round-trips through every OpenCV build.
        path = root / f"subject{s:02d}.avi"
        write_video(path, frames, fps=6.0)
        if s == subjects.max():
            new_video = (path, int(hb[subjects == s][0]))
        else:
            # the subject id a clinic would record; here the generator's person group, so that
            # subjects made from the same real photo never straddle folds
            rows.append({"subject": f"g{info['group'][subjects == s][0]}", "grade": int(hb[subjects == s][0]),
                         "path": path.name})
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["subject", "grade", "path"])
        writer.writeheader()
        writer.writerows(rows)
    return root, new_video


def main(argv=None):
    args = parse_args(argv)
    from sklearn.model_selection import StratifiedGroupKFold, cross_validate

    from fnpgrade import load_clip_folder, make_phcnn_pipeline, split_into_clips
    from fnpgrade.grading import hb_to_level
    from fnpgrade.metrics import SCORING

    width, epochs = (0.125, 2) if args.quick else (0.25, 30)
    folds = args.folds or (2 if args.quick else 5)
    tmp = None
    predict = list(args.predict or [])
    truth = {}
    if args.data is None:
        tmp = tempfile.TemporaryDirectory(prefix="fnpgrade-study-")
        n_subjects, clips = (6, 3) if args.quick else (15, 8)
        # quick: HB 1 / 3 / 5 in equal shares, so each of the few folds trains on every level
        grades = {1: 1, 3: 1, 5: 1} if args.quick else None
        root, (new_video, new_grade) = write_synthetic_study(tmp.name, n_subjects, clips, seed=args.seed,
                                                             grades=grades)
        predict = predict or [str(new_video)]
        truth[str(new_video)] = hb_to_level(new_grade)
        print(f"No --data given: wrote a SYNTHETIC study of {n_subjects} subjects to a temporary folder.")
    else:
        root = Path(args.data)
    try:
        # X holds paths (read lazily by the detector), y the levels, groups the subject column.
        X, y, groups = load_clip_folder(root, labels=args.labels, fps=args.fps)
        X, y, groups = split_into_clips(X, y, groups, length=args.clip_length)
        y, groups = np.asarray(y, dtype=object), np.asarray(groups, dtype=object)
        levels, counts = np.unique(y, return_counts=True)
        print(f"{len(X)} clips of {args.clip_length} frames from {len(set(groups))} subjects; levels "
              + ", ".join(f"{lev}={n}" for lev, n in zip(levels, counts)))
        if len(set(groups)) < folds:
            raise SystemExit(f"{len(set(groups))} subjects cannot fill {folds} subject-wise folds; use --folds.")

        pipe = make_phcnn_pipeline(width=width, max_epochs=epochs, fps=args.fps, random_state=args.seed)
        cv = StratifiedGroupKFold(folds, shuffle=True, random_state=args.seed)
        scores = cross_validate(pipe, X, y, groups=groups, cv=cv, scoring=SCORING,
                                params={"classifier__groups": groups}, error_score="raise")
        print(f"\nSubject-wise {folds}-fold CV (width {width}, {epochs} epochs"
              + (", SYNTHETIC data" if args.data is None else "") + "):")
        for key in ("accuracy", "f1", "qwk"):
            print(f"  {key}: {scores[f'test_{key}'].mean():.3f} +- {scores[f'test_{key}'].std():.3f}")

        # The model to keep: trained on every subject.
        pipe.fit(X, y, classifier__groups=groups)
        graded = []
        for video in predict:
            # A whole video is one sample: its windows' probabilities are averaged.
            proba = pipe.predict_proba([video])[0]
            level = pipe.classes_[int(np.argmax(proba))]
            graded.append({"video": video, "level": str(level),
                           "probabilities": {str(c): float(p) for c, p in zip(pipe.classes_, proba)}})
            known = f" (true level {truth[video]})" if video in truth else ""
            print(f"{Path(video).name}: level {level}{known}   "
                  + "  ".join(f"P({c})={p:.2f}" for c, p in zip(pipe.classes_, proba)))
    finally:
        if tmp is not None:
            tmp.cleanup()
    return {"scores": scores, "graded": graded, "pipeline": pipe}


if __name__ == "__main__":
    main()
