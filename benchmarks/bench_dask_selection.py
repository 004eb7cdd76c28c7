"""GridSearchCV on a Dask cluster: how often face detection runs, three ways.

A grid search over a whole ``make_phcnn_pipeline`` refits the pipeline for
every grid point and fold, and face detection and landmark cropping run again
each time, on the training part (``fit_transform``) and on the held-out part
(``transform`` to score it), although they learn nothing. Three ways, each
on the same ``LocalCluster`` of 2 worker processes (one thread each) with
joblib's Dask backend and ``scatter=[X, y]``, same grid, same folds:

- ``pipeline``: ``GridSearchCV(make_phcnn_pipeline(...))``, no cache;
- ``memory``: ``make_phcnn_pipeline(memory=joblib.Memory(folder))`` on a folder
  every worker reads (here a local one; on a cluster, shared storage): fitted
  preprocessing is reused per training fold, scoring still detects;
- ``preprocess once``: ``preprocess_once(pipe, X, y, groups)`` once, then
  ``GridSearchCV(prepared.learner)`` on the windows (``scatter=[windows, y]``).

The best parameters and scores must be the same in the three: preprocessing
learns nothing from the data, so computing it once changes no result.

    python benchmarks/bench_dask_selection.py            # 8 subjects x 3 clips, 4 grid points x 3 folds
    python benchmarks/bench_dask_selection.py --quick    # 6 subjects x 2 clips, 2 grid points x 2 folds

The data are SYNTHETIC (``make_palsy_clips``): the times, not the scores, are the result.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import markdown_table, write_json  # noqa: E402


def count_detector_fits(cache_dir):
    """Cache entries of the detector step: how many times detection really ran on a training fold."""
    return sum(1 for meta in Path(cache_dir).rglob("metadata.json") if "FaceDetector(" in meta.read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)

    import distributed
    from joblib import Memory, parallel_backend
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    from fnpgrade import Runtime, make_palsy_clips, make_phcnn_pipeline, preprocess_once
    from fnpgrade.metrics import SCORING

    n_subjects, clips, folds = (6, 2, 2) if args.quick else (8, 3, 3)
    grid = {"lr": [0.01, 0.05]} if args.quick else {"lr": [0.01, 0.05], "class_weight": ["balanced", None]}
    X, y, groups = make_palsy_clips(n_subjects=n_subjects, clips_per_subject=clips, grades={1: 1, 3: 1, 5: 1},
                                    random_state=0)
    cv = list(StratifiedGroupKFold(folds, shuffle=True, random_state=0).split(X, y, groups))
    params = dict(width=0.125, max_epochs=2, batch_size=8, train_split=None, random_state=0, device="cpu",
                  runtime=Runtime(n_threads=1))
    n_points = int(np.prod([len(v) for v in grid.values()]))
    n_fits = n_points * folds
    held_out = sum(len(test) for _, test in cv)
    rows, best = [], {}

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
    with cluster, distributed.Client(cluster):
        def search(estimator, data, prefix, scatter=None):
            grid_ = {f"{prefix}{k}": v for k, v in grid.items()}
            gs = GridSearchCV(estimator, grid_, cv=cv, scoring=SCORING, refit="qwk", n_jobs=-1, error_score="raise")
            start = time.perf_counter()
            with parallel_backend("dask", scatter=scatter):
                gs.fit(data, y)
            return gs, time.perf_counter() - start

        # scatter: X is a list, which joblib does not scatter by itself (not weak-referenceable); unscattered,
        # every task carries all clips (dask warned "Sending large graph of size 18.01 MiB" per task)
        gs, seconds = search(make_phcnn_pipeline(**params), X, "classifier__", scatter=[X, y])
        # each fit detects its training clips, each score its held-out clips; plus the refit on all
        detected = n_points * (sum(len(t) for t, _ in cv) + held_out) + len(X)
        rows.append({"way": "pipeline", "seconds": seconds, "clips detected": detected})
        best["pipeline"] = (gs.best_params_, gs.best_score_)

        with tempfile.TemporaryDirectory(prefix="bench-dask-cache-") as folder:
            gs, seconds = search(make_phcnn_pipeline(memory=Memory(folder, verbose=0), **params), X, "classifier__",
                                 scatter=[X, y])
            fits = count_detector_fits(folder)
            train_detected = sum(len(t) for t, _ in cv) + len(X)  # once per training fold, once for the refit
            rows.append({"way": "memory", "seconds": seconds, "detector fits": fits,
                         "clips detected": train_detected + n_points * held_out})
            best["memory"] = (gs.best_params_, gs.best_score_)

        start = time.perf_counter()
        # every synthetic clip shows a face (the detector raises otherwise), so the folds' indices still hold
        prepared = preprocess_once(make_phcnn_pipeline(**params), X, y, groups)
        prep = time.perf_counter() - start
        gs, seconds = search(prepared.learner, prepared.X, "classifier__", scatter=[prepared.X, y])
        rows.append({"way": "preprocess once", "seconds": prep + seconds, "clips detected": len(X)})
        best["preprocess once"] = (gs.best_params_, gs.best_score_)

    print(f"SYNTHETIC: {len(X)} clips, {n_points} grid points x {folds} folds = {n_fits} fits + refit; "
          "LocalCluster of 2 worker processes x 1 thread")
    print(markdown_table(rows, ["way", "seconds", "clips detected", "detector fits"]))
    for way, (params_, score) in best.items():
        print(f"  {way}: best {params_} qwk {score:.3f}")
    path = write_json("dask_selection" + ("_quick" if args.quick else ""),
                      {"rows": rows, "best": {k: [v[0], v[1]] for k, v in best.items()},
                       "n_clips": len(X), "grid_points": n_points, "folds": folds})
    print(f"wrote {path}")
    return rows, best


if __name__ == "__main__":
    main()
