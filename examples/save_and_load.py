"""Save a trained grader, load it elsewhere, and get the same grades.

``fnpgrade.persistence.save_model`` writes the whole fitted pipeline (detector
settings, crop sizes, window length and the network) with the versions of
fnpgrade, torch and scikit-learn that made it; ``load_model`` refuses a file
from another fnpgrade version unless told otherwise. The network's weights
alone can be kept with ``save_params`` / ``load_params`` (a safe
``torch.load(weights_only=True)``), for a pipeline rebuilt from code.

Model files are pickles: loading one runs code from it. Load only files you trust.

    python examples/save_and_load.py            # 8 subjects x 6 clips, width 0.25, 20 epochs
    python examples/save_and_load.py --quick    # 6 subjects x 3 clips, width 0.125, 2 epochs (CI; FNPGRADE_QUICK=1 too)

The model is trained on SYNTHETIC clips; it is not fit to grade patients.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("FNPGRADE_QUICK") == "1",
                        help="tiny data and network, for CI (also FNPGRADE_QUICK=1)")
    parser.add_argument("--out", default=None,
                        help="where to write model.joblib (default: a temporary folder, removed at the end)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from fnpgrade import make_palsy_clips, make_phcnn_pipeline
    from fnpgrade.io import write_video
    from fnpgrade.persistence import load_model, save_model
    from fnpgrade.prepare import split_at_learning
    from fnpgrade.scale.preprocess import fit_without_clips

    n_subjects, clips, width, epochs = (6, 3, 0.125, 2) if args.quick else (8, 6, 0.25, 20)
    X, y, groups = make_palsy_clips(n_subjects=n_subjects, clips_per_subject=clips, grades={1: 1, 3: 1, 5: 1},
                                    random_state=args.seed)
    pipe = make_phcnn_pipeline(width=width, max_epochs=epochs, random_state=args.seed)
    pipe.fit(X, y, classifier__groups=groups)
    print(f"Trained PHCNN-LSTM (width {width}, {epochs} epochs) on {len(X)} SYNTHETIC clips.")

    tmp = tempfile.TemporaryDirectory(prefix="fnpgrade-model-") if args.out is None else None
    folder = Path(args.out or tmp.name)
    try:
        model_path = save_model(pipe, folder / "model.joblib")
        print(f"Saved to {model_path} ({model_path.stat().st_size / 1e6:.1f} MB)")

        # In another process or on another machine: load and grade a video file.
        loaded = load_model(model_path)
        video = write_video(folder / "new_clip.avi", X[0], fps=6.0)
        before = pipe.predict_proba([X[0]])[0]
        after = loaded.predict_proba([str(video)])[0]
        same_array = loaded.predict_proba([X[0]])[0]
        print(f"Probabilities before saving: {np.round(before, 4)}; after loading: {np.round(same_array, 4)}")
        print(f"Graded from the video file: level {loaded.classes_[int(np.argmax(after))]} "
              f"(probabilities {np.round(after, 3)}; video compression changes pixels slightly)")

        # Weights only: rebuild the same pipeline from code (same arch and width; `classes`
        # fixes the output order without fitting), fit its preprocessing on no clips (it
        # learns nothing: fitting checks its settings and loads its models), and load the
        # network's parameters into it (torch.load with weights_only=True).
        params_path = folder / "weights.pt"
        pipe.named_steps["classifier"].save_params(f_params=params_path)
        rebuilt = make_phcnn_pipeline(width=width, max_epochs=epochs, random_state=args.seed,
                                      classes=list(pipe.classes_))
        preprocessing, network = split_at_learning(rebuilt)
        fit_without_clips(preprocessing)
        network.named_steps["classifier"].initialize().load_params(f_params=params_path)
        from_weights = rebuilt.predict_proba([X[0]])[0]
        print(f"Probabilities from the weights file in a rebuilt pipeline: {np.round(from_weights, 4)}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return {"before": before, "after_load": same_array, "from_video": after, "from_weights": from_weights}


if __name__ == "__main__":
    main()
