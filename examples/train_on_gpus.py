"""Train the final PHCNN-LSTM on several GPUs (or CPU processes) with HF Accelerate and save it as a grading pipeline.

Every process runs this whole script: ``accelerate launch`` starts one per
device and sets up DDP. Each process needs the windowed clips; with
``--cache`` (a folder all processes see) the main process preprocesses them
first and the others read its cached result, so detection runs once. Then
every process trains on its part of every batch (``AcceleratedPHCNNClassifier``)
and the main process saves the fitted pipeline (``fnpgrade.persistence``).

    accelerate launch --multi_gpu --num_processes 4 examples/train_on_gpus.py --cache /shared/cache --out model.joblib
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 examples/train_on_gpus.py --quick
    python examples/train_on_gpus.py --quick     # one process (CI)

The data are SYNTHETIC (``make_palsy_clips``); put your own clips and labels
in ``load_clips``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("FNPGRADE_QUICK") == "1",
                        help="tiny data and network, for CI (also FNPGRADE_QUICK=1)")
    parser.add_argument("--out", default="model.joblib", help="where the main process saves the pipeline")
    parser.add_argument("--cache", default=None,
                        help="folder every process can read: the main process preprocesses once, the others "
                             "load its result (default: each process preprocesses the clips itself)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def load_clips(quick, seed):
    """The clips, their levels and subjects (here synthetic; read your own videos or store here)."""
    from fnpgrade import make_palsy_clips

    n_subjects, clips = (6, 2) if quick else (24, 8)
    return make_palsy_clips(n_subjects=n_subjects, clips_per_subject=clips, grades={1: 1, 3: 1, 5: 1},
                            random_state=seed)


def preprocess(quick, seed):
    """Detect, crop and window every clip once (the steps learn nothing from the data): the grader, its
    preprocessing fitted, and the windows with their labels and subjects."""
    from fnpgrade import make_phcnn_pipeline, preprocess_once

    X, y, groups = load_clips(quick, seed)
    pipe = make_phcnn_pipeline()
    return pipe, preprocess_once(pipe, X, y, groups)


def main(argv=None):
    args = parse_args(argv)
    from accelerate import Accelerator
    from joblib import Memory

    from fnpgrade.persistence import save_model
    from fnpgrade.scale.training import AcceleratedPHCNNClassifier

    accelerator = Accelerator()
    if args.cache is None:
        pipe, prepared = preprocess(args.quick, args.seed)
    else:
        cached = Memory(args.cache, verbose=0).cache(preprocess)
        with accelerator.main_process_first():  # the main process computes, then the others read the cache
            pipe, prepared = cached(args.quick, args.seed)

    width, epochs, batch = (0.125, 2, 8) if args.quick else (1.0, 50, 64)
    clf = AcceleratedPHCNNClassifier(accelerator=accelerator, width=width, max_epochs=epochs, batch_size=batch,
                                     random_state=args.seed, verbose=int(not args.quick))
    clf.fit(prepared.X, prepared.y, groups=prepared.groups)
    accelerator.print(f"{accelerator.num_processes} process(es) on {accelerator.device}: trained "
                      f"{len(clf.history)} epochs, last training loss {clf.history[-1, 'train_loss']:.4f} "
                      f"(global batch {batch}, per process {batch // accelerator.num_processes})")

    pipeline = pipe.set_params(classifier=clf.to_classifier())  # picklable, no accelerator
    out = Path(args.out)
    if accelerator.is_main_process:
        save_model(pipeline, out)
        accelerator.print(f"saved {out} (load it with fnpgrade.persistence.load_model)")
    accelerator.wait_for_everyone()
    return {"pipeline": pipeline, "classifier": clf, "windows": prepared.X, "y": prepared.y, "path": out,
            "n_processes": accelerator.num_processes}


if __name__ == "__main__":
    main()
