"""Train a tiny AcceleratedPHCNNClassifier and write what tests/test_accelerate.py compares (one JSON per process).

Run by the tests, once as a plain script (one process) and once under
``accelerate launch --multi_gpu --num_processes 2`` with ``ACCELERATE_USE_CPU=true``
(2 CPU processes, gloo). Usage: ``python accelerate_worker.py OUT_PREFIX [--dropout P] [--no-sync]``.
"""

import argparse
import json
import sys

import numpy as np
import torch


def toy_clips(n_clips=12, n_windows=3, length=2, seed=0):
    """Clips whose level sets their brightness; 3 subjects' worth of groups, two levels."""
    from fnpgrade import WindowedClip

    rng = np.random.default_rng(seed)
    X, y, groups = [], [], []
    for i in range(n_clips):
        level = i % 2
        face = rng.integers(0, 60, (n_windows, length, 32, 32, 3), dtype=np.uint8) + np.uint8(100 * level)
        roi = rng.integers(0, 60, (n_windows, length, 20, 60, 3), dtype=np.uint8) + np.uint8(100 * level)
        X.append(WindowedClip(face, roi, roi.copy(), source=f"toy{i}"))
        y.append("I" if level == 0 else "II")
        groups.append((i // 4) * 2 + level)  # 6 subjects of 2 clips, one level each
    return X, np.array(y), np.array(groups)


def StopAfter(epochs):
    """A callback ending training after ``epochs`` epochs, as an interrupted run (skorch ends fit on KeyboardInterrupt)."""
    from skorch.callbacks import Callback

    class Stop(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) >= epochs:
                raise KeyboardInterrupt

    return Stop()


def Count(epochs):
    """A callback appending to ``epochs`` at every epoch it sees run."""
    from skorch.callbacks import Callback

    class Counter(Callback):
        def on_epoch_begin(self, net, **kwargs):
            epochs.append(len(net.history))

    return Counter()


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--no-sync", action="store_true")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--checkpoint-dir", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from accelerate import Accelerator

    from fnpgrade.nn.callbacks import read_history
    from fnpgrade.nn.split import ClipValidSplit
    from fnpgrade.scale.training import AcceleratedPHCNNClassifier

    accelerator = Accelerator()
    X, y, groups = toy_clips()
    y[-1], groups[-1] = "I", 99  # 7 clips of level I, 5 of level II: "balanced" class weights differ
    params = dict(accelerator=accelerator, sync_batchnorm=not args.no_sync, arch="phcnn-lstm", width=0.25,
                  max_epochs=3, batch_size=5, lr=args.lr, train_split=ClipValidSplit(0.25), random_state=0,
                  verbose=0, module__dropout=args.dropout, checkpoint_dir=args.checkpoint_dir)
    resumed_after = None
    if args.checkpoint_dir is not None:
        # a run stopped after its first epoch (its checkpoint written), then a new one resuming from it
        AcceleratedPHCNNClassifier(**params, callbacks=[("stop", StopAfter(1))]).fit(X, y, groups=groups)
        resumed_after = len(read_history(args.checkpoint_dir))
    epochs_run = []
    clf = AcceleratedPHCNNClassifier(**params, callbacks=[("count", Count(epochs_run))])
    clf.fit(X, y, groups=groups)
    history = [{k: row.get(k) for k in ("train_loss", "valid_loss", "valid_acc", "event_best")}
               for row in clf.history]
    batches = [[b.get("train_batch_size") for b in row["batches"] if "train_loss" in b] for row in clf.history]
    batch_losses = [[b["train_loss"] for b in row["batches"] if "train_loss" in b] for row in clf.history]
    state = clf.module_.state_dict()
    plain = clf.to_classifier()
    result = {
        "rank": accelerator.process_index, "resumed_after": resumed_after, "epochs_run": len(epochs_run), "n_processes": accelerator.num_processes,
        "history": history, "train_batch_sizes": batches, "batch_losses": batch_losses,
        "params": {k: v.double().sum().item() for k, v in state.items() if v.is_floating_point()},
        "batchnorm_types": sorted({type(m).__name__ for m in clf.module_.modules() if "Norm" in type(m).__name__}),
        "proba": clf.predict_proba(X).tolist(),
        "plain_proba": plain.predict_proba(X).tolist(),
    }
    with open(f"{args.out}.{accelerator.process_index}.json", "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    sys.exit(main())
