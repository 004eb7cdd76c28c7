"""The ``fnpgrade`` command: demo, cross-validation, training, prediction, preview.

Every subcommand exits non-zero with a one-line message on bad input (no
traceback unless ``--debug``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser"]

ARCHS = ("phcnn-lstm", "phcnn", "face-n1-lstm", "vgg16-lstm", "senet", "lstm")


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _add_model_args(parser):
    parser.add_argument("--arch", choices=ARCHS, default="phcnn-lstm", help="network (default: %(default)s)")
    parser.add_argument("--width", type=float, default=1.0, help="width multiplier; 1.0 is the paper's size")
    parser.add_argument("--epochs", type=int, default=50, help="training epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--window", type=int, default=4, help="frames per window (default: %(default)s)")
    parser.add_argument("--fps", type=float, default=None, help="resample videos to this rate (paper: 6)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--seed", type=int, default=0, help="random_state for reproducible runs")
    parser.add_argument("--augment", action="store_true", help="jitter small classes and subjects (paper)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel clips in preprocessing")


def _add_data_args(parser):
    parser.add_argument("--data", required=True, help="root folder of the clips")
    parser.add_argument("--labels", default="labels.csv",
                        help="CSV with columns subject, grade, path[, start, stop] (default: DATA/labels.csv)")
    parser.add_argument("--target", choices=("level", "hb"), default="level", help="predict levels or HB grades")
    parser.add_argument("--clip-length", type=int, default=None,
                        help="cut long videos into clips of this many frames first (paper: 4)")


def build_parser():
    """The argument parser of the ``fnpgrade`` command."""
    parser = argparse.ArgumentParser(
        prog="fnpgrade",
        description="Grade facial nerve paralysis (House-Brackmann levels I/II/III) from face videos with "
                    "PHCNN-LSTM (Liu et al.).")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="synthetic-data cross-validation demo (minutes on a CPU)")
    demo.add_argument("--subjects", type=int, default=12)
    demo.add_argument("--clips", type=int, default=8, help="clips per subject")
    demo.add_argument("--folds", type=int, default=4)
    demo.add_argument("--width", type=float, default=0.25)
    demo.add_argument("--epochs", type=int, default=20)
    demo.add_argument("--out", default="out", help="folder for the confusion matrix and scores")
    demo.add_argument("--seed", type=int, default=0)

    cv = sub.add_parser("cv", help="subject-wise cross-validation on your data")
    _add_data_args(cv)
    _add_model_args(cv)
    cv.add_argument("--folds", type=int, default=5)
    cv.add_argument("--out", default=None, help="write per-fold scores as JSON here")

    train = sub.add_parser("train", help="train on your data and save the model")
    _add_data_args(train)
    _add_model_args(train)
    train.add_argument("--out", required=True, help="model file to write (joblib)")

    predict = sub.add_parser("predict", help="grade videos with a saved model")
    predict.add_argument("model", help="a model file from 'fnpgrade train' (joblib; trusted sources only)")
    predict.add_argument("videos", nargs="+", help="video files or frame folders")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")

    preview = sub.add_parser("preview", help="ROI montage of one video (check the crops)")
    preview.add_argument("video")
    preview.add_argument("--out", required=True, help="PNG to write")
    preview.add_argument("--frames", type=int, default=8, help="frames to show")
    preview.add_argument("--fps", type=float, default=None)
    return parser


def _load_data(args):
    from .datasets import load_clip_folder, split_into_clips

    labels = Path(args.labels)
    if not labels.is_absolute() and not labels.exists():
        labels = Path(args.data) / labels
    X, y, groups = load_clip_folder(args.data, labels=labels, target=args.target)
    if args.clip_length:
        X, y, groups = split_into_clips(X, y, groups, length=args.clip_length)
    if groups is None or len(set(groups)) < 2:
        raise CLIError("subject ids are required (the 'subject' column) and at least two subjects; without them "
                       "cross-validation would mix one person's clips into training and test folds.")
    print(f"{len(X)} clips, {len(set(groups))} subjects, labels: "
          + ", ".join(f"{k}={v}" for k, v in zip(*np.unique(np.asarray(y, dtype=str), return_counts=True))))
    return X, np.asarray(y, dtype=object), np.asarray(groups, dtype=object)


def _pipeline(args):
    from .pipeline import make_phcnn_pipeline

    return make_phcnn_pipeline(arch=args.arch, width=args.width, max_epochs=args.epochs,
                               batch_size=args.batch_size, lr=args.lr, window=args.window, fps=args.fps,
                               device=args.device, random_state=args.seed, augment=args.augment,
                               n_jobs=args.jobs, verbose=True)


def _cmd_demo(args):
    from .demo import run_demo

    run_demo(n_subjects=args.subjects, clips_per_subject=args.clips, n_folds=args.folds, width=args.width,
             max_epochs=args.epochs, out_dir=args.out, random_state=args.seed)
    return 0


def _cmd_cv(args):
    from sklearn.model_selection import StratifiedGroupKFold, cross_validate

    from .demo import format_fold_table
    from .metrics import SCORING

    X, y, groups = _load_data(args)
    if len(set(groups)) < args.folds:
        raise CLIError(f"{len(set(groups))} subjects cannot fill {args.folds} subject-wise folds; use --folds "
                       f"{len(set(groups))} or fewer.")
    pipe = _pipeline(args)
    cv = StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
    scores = cross_validate(pipe, X, y, groups=groups, cv=cv, scoring=SCORING,
                            params={"classifier__groups": groups}, error_score="raise")
    folds = [{k: float(scores[f"test_{k}"][i]) for k in SCORING} for i in range(args.folds)]
    print(format_fold_table(folds))
    if args.out:
        Path(args.out).write_text(json.dumps({"folds": folds}, indent=2))
    return 0


def _cmd_train(args):
    from .persistence import save_model

    X, y, groups = _load_data(args)
    pipe = _pipeline(args)
    pipe.fit(X, y, classifier__groups=groups)
    save_model(pipe, args.out)
    print(f"model written to {args.out}")
    return 0


def _cmd_predict(args):
    from .persistence import load_model

    pipe = load_model(args.model)
    classes = list(pipe.classes_)
    rows, failed = [], []
    for video in args.videos:
        try:
            proba = pipe.predict_proba([video])[0]
        except (ValueError, FileNotFoundError) as exc:
            failed.append(video)
            print(f"{video}: not graded: {exc}", file=sys.stderr)
            continue
        rows.append({"video": video, "level": str(classes[int(np.argmax(proba))]),
                     "probabilities": {str(c): round(float(p), 4) for c, p in zip(classes, proba)}})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['video']}\t{row['level']}\t"
                  + "  ".join(f"P({c})={p:.3f}" for c, p in row["probabilities"].items()))
    if failed:
        print(f"{len(failed)} of {len(args.videos)} videos could not be graded.", file=sys.stderr)
        return 1
    return 0


def _cmd_preview(args):
    from .plots import roi_montage
    from .preprocessing.detect import FaceDetector
    from .preprocessing.roi import LandmarkROICropper

    tracks = FaceDetector(fps=args.fps).fit_transform([args.video])
    region = LandmarkROICropper().fit_transform(tracks)[0]
    step = max(1, region.n_frames // max(1, args.frames))
    roi_montage(region.select(np.arange(0, region.n_frames, step)[: args.frames]), path=args.out)
    print(f"montage of {min(args.frames, region.n_frames)} frames written to {args.out}")
    return 0


_COMMANDS = {"demo": _cmd_demo, "cv": _cmd_cv, "train": _cmd_train, "predict": _cmd_predict,
             "preview": _cmd_preview}


def main(argv=None):
    """Entry point of the ``fnpgrade`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (CLIError, ValueError, FileNotFoundError, TypeError) as exc:
        if args.debug:
            raise
        print(f"fnpgrade {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
