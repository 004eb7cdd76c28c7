"""Grid search over learning rate, class weighting and window length, preprocessing computed once per fold.

Face detection and landmark cropping learn nothing from the data, yet a plain
``GridSearchCV`` would rerun them for every grid point of every fold. With
``make_phcnn_pipeline(memory=...)`` scikit-learn caches each fitted
preprocessing step (a ``joblib.Memory``), so a grid point whose preprocessing
parameters are unchanged reuses the crops of the same training fold. This
script counts the cache entries afterwards to show it: the detector and the
cropper ran once per fold (plus once for the final refit), however large the
grid.

    python examples/grid_search.py            # 12 subjects x 8 clips, 3 folds, width 0.25, 20 epochs
    python examples/grid_search.py --quick    # 6 subjects x 3 clips, one hold-out split, width 0.125, 1 epoch (CI)

The data are SYNTHETIC; the chosen parameters say nothing about real patients.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("FNPGRADE_QUICK") == "1",
                        help="tiny data and network, for CI (also FNPGRADE_QUICK=1)")
    parser.add_argument("--cache", default=None,
                        help="cache folder (default: a temporary folder under fnpgrade's data home, removed "
                             "at the end; give a folder to keep the crops between runs)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def count_cached_fits(cache_dir):
    """How many times each pipeline step was really fitted: one cache entry per computation.

    joblib writes a ``metadata.json`` per cached call; its ``input_args`` hold the
    transformer's repr, from which the step's class name is read.
    """
    counts = Counter()
    seconds = Counter()
    for meta in Path(cache_dir).rglob("metadata.json"):
        data = json.loads(meta.read_text())
        transformer = str(data.get("input_args", {}).get("transformer", "?"))
        name = transformer.split("(", 1)[0]
        counts[name] += 1
        seconds[name] += float(data.get("duration", 0.0))
    return counts, seconds


def main(argv=None):
    args = parse_args(argv)
    from joblib import Memory
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    from fnpgrade import make_palsy_clips, make_phcnn_pipeline
    from fnpgrade.config import get_data_home
    from fnpgrade.metrics import SCORING

    if args.quick:
        n_subjects, clips, folds, width, epochs = 6, 3, 1, 0.125, 1
    else:
        n_subjects, clips, folds, width, epochs = 12, 8, 3, 0.25, 20
    # Levels in equal shares in the tiny quick run (so every fold trains on all three);
    # the full run uses the generator's default mix, shaped like the paper's data.
    grades = {1: 1, 3: 1, 5: 1} if args.quick else None
    X, y, groups = make_palsy_clips(n_subjects=n_subjects, clips_per_subject=clips, grades=grades,
                                    random_state=args.seed)

    grid = {
        "classifier__lr": [1e-4, 1e-3],
        "classifier__class_weight": ["balanced", None],  # the paper's weighted cross entropy, or plain
        "windower__length": [2, 4],  # 4-frame windows are the paper's; 2 gives two windows per clip
    }
    n_candidates = int(np.prod([len(v) for v in grid.values()]))
    print(f"SYNTHETIC data: {len(X)} clips, {len(set(groups))} subject groups; grid of {n_candidates} points x "
          f"{folds} subject-wise split(s); PHCNN-LSTM at width {width} (paper: 1.0), {epochs} epochs.")

    tmp = None
    if args.cache is None:
        tmp = tempfile.TemporaryDirectory(prefix="grid-cache-", dir=get_data_home())
    cache_dir = Path(args.cache or tmp.name)
    try:
        pipe = make_phcnn_pipeline(width=width, max_epochs=epochs, random_state=args.seed,
                                   memory=Memory(cache_dir, verbose=0))
        if folds > 1:
            cv = StratifiedGroupKFold(folds, shuffle=True, random_state=args.seed)
        else:
            # quick: one subject-wise hold-out split (a third of the subjects) instead of k folds
            cv = [next(StratifiedGroupKFold(3, shuffle=True, random_state=args.seed).split(X, y, groups))]
        search = GridSearchCV(pipe, grid, cv=cv, scoring=SCORING, refit="qwk", error_score="raise")
        # groups= for the folds; classifier__groups= for the network's own validation split.
        search.fit(X, y, groups=groups, classifier__groups=groups)
        counts, seconds = count_cached_fits(cache_dir)
    finally:
        if tmp is not None:
            tmp.cleanup()

    results = search.cv_results_
    order = np.argsort(results["rank_test_qwk"])
    print("\n| rank | lr | class weight | window | qwk | accuracy | f1 |\n|---|---|---|---|---|---|---|")
    for i in order:
        p = results["params"][i]
        print(f"| {results['rank_test_qwk'][i]} | {p['classifier__lr']:g} | {p['classifier__class_weight']} | "
              f"{p['windower__length']} | {results['mean_test_qwk'][i]:.3f} | "
              f"{results['mean_test_accuracy'][i]:.3f} | {results['mean_test_f1'][i]:.3f} |")
    print(f"\nBest (by quadratic weighted kappa, SYNTHETIC): {search.best_params_}")

    fits = n_candidates * folds + 1  # every grid point on every fold, plus the refit on all data
    print(f"\nPipeline fits: {fits}. Preprocessing steps actually computed (cache entries):")
    notes = {"FaceDetector": "once per split + the refit, for all grid points",
             "LandmarkROICropper": "once per split + the refit, for all grid points",
             "SequenceWindower": "its length is searched: once per length and split + the refit"}
    for name, note in notes.items():
        print(f"  {name:<20} {counts.get(name, 0):>3} times ({seconds.get(name, 0.0):.1f} s)   <- {note}")
    print("(Scoring a held-out split still runs detection on its clips for each grid point: prediction is "
          "not cached. For large grids, compute the crops once with pipe[:2].fit_transform(X) and search "
          "over the remaining steps.)")
    return {"search": search, "cached_fits": dict(counts), "n_pipeline_fits": fits, "n_folds": folds}


if __name__ == "__main__":
    main()
