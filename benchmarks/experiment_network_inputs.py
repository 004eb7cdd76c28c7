"""Experiment: do mirrored copies and the measures branch help the network grade unseen people?

A one-fold probe, not a benchmark with a baseline ratio: it builds the crops of
fold 1 of ``bench_identity_generalisation.py``'s person split once (the
detector's output and each cropping's windows cached with joblib under the data
home), then trains PHCNN-LSTM variants on them:

* ``base``       -- RGB crops, as the pipeline does;
* ``flip``       -- the training clips plus their mirror images (the grade does
  not depend on which side is affected);
* ``mirror``     -- ``PHCNNClassifier(mirror_augment=True)``: each training
  window mirrored with probability 1/2 per epoch (instead of doubling);
* ``clip:<variant>`` -- any of these on crops cut with
  ``LandmarkROICropper(registration="clip")`` (fixed crops per clip) instead
  of the paper's per-frame crops;
* ``clip:meas``  -- ``PHCNNClassifier(measures=True)`` on those crops: the
  per-frame movement measures of :class:`~fnpgrade.measures.FrameMeasures`
  through the network's measures branch (combine: ``clip:meas+mirror``).

(``frame_inputs="asymmetry"`` and ``"movement"``, variants of earlier runs,
were removed from the package: ``benchmarks/results/network_measures.md``.)

and prints per-clip and per-subject accuracy on training clips, new subjects
of the training people ("seen") and subjects of held-out people ("unseen").
SYNTHETIC DATA.

Usage::

    python benchmarks/experiment_network_inputs.py --variants base,mirror,clip:meas+mirror --epochs 12 --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import joblib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# the identity benchmark's per-subject accuracy, so both score alike
from bench_identity_generalisation import _subject_scores  # noqa: E402


def _clips(subjects_per_person, seed=0):
    """Fold 1's clips of the identity benchmark's person split: ``{split: (X, y, groups, info)}``."""
    from sklearn.model_selection import KFold

    from fnpgrade import make_palsy_clips
    from fnpgrade.datasets.identities import real_faces

    bases = real_faces(None)
    families = sorted(set(b.family for b in bases))
    tr, te = next(iter(KFold(3, shuffle=True, random_state=seed).split(families)))
    train_people, test_people = {families[i] for i in tr}, {families[i] for i in te}

    def faces(people):
        return {f"{b.family}/{b.name}": b.image for b in bases if b.family in people}

    common = dict(clips_per_subject=7, return_info=True)
    return {"train": make_palsy_clips(n_subjects=subjects_per_person * len(train_people),
                                      faces=faces(train_people), random_state=11, **common),
            "seen": make_palsy_clips(n_subjects=3 * len(train_people), faces=faces(train_people),
                                     random_state=12, **common),
            "unseen": make_palsy_clips(n_subjects=4 * len(test_people), faces=faces(test_people),
                                       random_state=13, **common)}


def build(home, registration, subjects_per_person):
    """Aligned crops and windows of fold 1's clips for one ``registration`` of the cropper (cached), clips
    without a detected face left out. The croppings share one face detection (a ``Pipeline`` memory under
    ``home``)."""
    from fnpgrade import make_phcnn_pipeline, preprocess_once

    stem = f"experiment_network_inputs_{subjects_per_person}"
    # clip crops carry their per-frame measures (for the "meas" variants); "_m": caches from before have none
    path = home / f"{stem}_{registration}{'_m' if registration == 'clip' else ''}.joblib"
    if path.exists():
        return joblib.load(path)
    pipe = make_phcnn_pipeline(no_face="blank", measures=registration == "clip",
                               memory=str(home / f"{stem}_memory"))
    pipe.set_params(cropper__align=True, cropper__registration=registration)
    out = {}
    for name, (X, y, groups, info) in _clips(subjects_per_person).items():
        prepared = preprocess_once(pipe, X, y, groups)
        if prepared.left_out:
            print(f"{name}: {len(prepared.left_out)} clips without a detected face left out")
        out[name] = dict(y=prepared.y, groups=prepared.groups, subject=info["subject"][prepared.kept],
                         expression=info["expression"][prepared.kept], windows=prepared.X)
    joblib.dump(out, path)
    return out


def _mirrored(window):
    return dataclasses.replace(window, **{k: np.ascontiguousarray(getattr(window, k)[..., ::-1, :])
                                          for k in ("face", "brow", "mouth")})


def run_variant(home, variant, args):
    import torch

    from fnpgrade import PHCNNClassifier, Runtime

    registration = "clip" if variant.startswith("clip:") else "frame"
    data = build(home, registration, args.subjects_per_person)

    train = data["train"]
    X, y, groups = list(train["windows"]), train["y"], train["groups"]
    if "flip" in variant:
        X, y, groups = X + [_mirrored(w) for w in X], np.r_[y, y], np.r_[groups, groups]
    if "meas" in variant and registration != "clip":
        raise SystemExit(f"variant {variant!r}: the measures are read on clip crops; use 'clip:{variant}'.")
    clf = PHCNNClassifier(measures="meas" in variant, mirror_augment="mirror" in variant, width=args.width,
                          lr=args.lr, optimizer__weight_decay=args.weight_decay, batch_size=16,
                          max_epochs=args.epochs, random_state=args.seed, verbose=0, runtime=Runtime(n_threads=args.threads),
                          **({"train_split": None} if args.no_valid_split else {}),
                          **({"optimizer": torch.optim.AdamW} if args.optimizer == "adamw" else {}))
    start = time.perf_counter()
    clf.fit(X, y, groups=groups)
    row = {"variant": variant, "fit_s": time.perf_counter() - start}
    for split in ("train", "seen", "unseen"):
        d = data[split]
        proba = clf.predict_proba(list(d["windows"]))
        pred = clf.classes_[proba.argmax(1)]
        row[split] = float(np.mean(pred == d["y"]))
        row[split + "_subject"] = _subject_scores(d["y"], proba, clf.classes_, d["subject"])["subject_accuracy"]
    print("  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="base,mirror,clip:mirror,clip:meas+mirror")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--subjects-per-person", type=int, default=10,
                        help="training subjects per training person (8 people in fold 1)")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--weight-decay", type=float, default=2e-5, help="the paper's 2e-5 by default")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd",
                        help="sgd: the paper's SGD with momentum; adamw: torch's AdamW (use --lr 0.001)")
    parser.add_argument("--no-valid-split", action="store_true",
                        help="train on all training clips, keeping the epoch with the lowest training loss "
                             "(no held-out training people to pick the best epoch by)")
    parser.add_argument("--out", default="experiment_network_inputs")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*appear with more than one label.*")
    from _common import markdown_table, write_json

    from fnpgrade.config import get_data_home

    home = Path(get_data_home())
    rows = [run_variant(home, v, args) for v in args.variants.split(",")]
    base = next((r for r in rows if r["variant"] == "base"), None)
    for row in rows:   # the baseline of the same run: RGB crops, no mirrored copies
        if base is not None:
            row["unseen_minus_base"] = row["unseen"] - base["unseen"]
    print("\nSYNTHETIC DATA, one fold; accuracy per clip (per subject: mean of its clips' probabilities)\n")
    print(markdown_table(rows, ["variant", "fit_s", "train", "seen", "seen_subject", "unseen", "unseen_subject",
                                "unseen_minus_base"]))
    print(write_json(args.out, {"synthetic": True, "args": vars(args), "rows": rows}))


if __name__ == "__main__":
    main()
