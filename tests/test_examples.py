"""Every example in examples/ runs in its reduced (--quick) mode and produces what it promises.

The examples are user-facing scripts; running them here keeps them working as
the API changes. Each runs in-process (faster than a subprocess: the face
photos and models load once) with its output folder in a temporary directory.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ["quickstart", "subject_wise_cv", "grid_search", "own_videos", "save_and_load", "clinical_grader",
         "train_on_gpus"]


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_DATA_CACHE = {}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    # examples write to relative paths such as out/examples; keep them out of the checkout
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _reuse_synthetic_data(monkeypatch):
    """Generate each synthetic data set once per session: several examples ask for the same one.

    The generator is deterministic for a given ``random_state``, so reusing its
    output changes nothing but the time the suite takes.
    """
    import fnpgrade

    generate = fnpgrade.make_palsy_clips

    def cached(*args, **kwargs):
        key = repr((args, sorted(kwargs.items())))
        if key not in _DATA_CACHE:
            _DATA_CACHE[key] = generate(*args, **kwargs)
        return _DATA_CACHE[key]

    monkeypatch.setattr(fnpgrade, "make_palsy_clips", cached)


def test_every_example_is_tested():
    assert sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_example_has_quick_mode_and_docstring(name):
    source = (EXAMPLES / f"{name}.py").read_text()
    assert source.startswith('"""'), f"{name}.py should open with a docstring saying what task it serves"
    assert "--quick" in source and "FNPGRADE_QUICK" in source
    assert 'if __name__ == "__main__":' in source


def test_quick_mode_from_environment(monkeypatch):
    monkeypatch.setenv("FNPGRADE_QUICK", "1")
    assert _load("quickstart").parse_args([]).quick
    monkeypatch.delenv("FNPGRADE_QUICK")
    assert not _load("quickstart").parse_args([]).quick


def test_quickstart(tmp_path):
    import fnpgrade
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedGroupKFold

    from fnpgrade.metrics import quadratic_weighted_kappa

    module = _load("quickstart")
    result = module.main(["--quick", "--out", str(tmp_path / "out")])
    # the report describes the held-out subjects' predictions: recompute it from the example's own split
    seed = module.parse_args(["--quick"]).seed
    X, y, groups = fnpgrade.make_palsy_clips(n_subjects=6, clips_per_subject=3, grades={1: 1, 3: 1, 5: 1},
                                             random_state=seed)
    train, test = next(StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=seed).split(X, y, groups))
    assert not set(groups[train]) & set(groups[test])
    pred, report = result["predictions"], result["report"]
    assert len(pred) == len(test) and set(pred) <= {"I", "II", "III"}
    assert report["accuracy"] == pytest.approx(accuracy_score(y[test], pred))
    assert report["f1"] == pytest.approx(f1_score(y[test], pred, average="weighted", zero_division=0))
    assert report["qwk"] == pytest.approx(quadratic_weighted_kappa(y[test], pred, labels=["I", "II", "III"]))
    np.testing.assert_array_equal(result["pipeline"].predict([X[i] for i in test]), pred)
    assert (tmp_path / "out" / "quickstart_confusion.png").stat().st_size > 1000


def test_subject_wise_cv(tmp_path):
    result = _load("subject_wise_cv").main(["--quick", "--out", str(tmp_path / "out")])
    scores = result["scores"]
    assert len(scores["test_accuracy"]) == 3
    assert set(result["subject_wise"]) == {"accuracy", "precision", "recall", "f1", "qwk", "gmean"}
    for name in ("cv_fold_scores.png", "cv_learning_curves.png"):
        assert (tmp_path / "out" / name).stat().st_size > 1000


def test_grid_search_preprocesses_once_per_fold():
    result = _load("grid_search").main(["--quick"])
    search, counts = result["search"], result["cached_fits"]
    assert len(search.cv_results_["params"]) == 8
    assert set(search.best_params_) == {"classifier__lr", "classifier__class_weight", "windower__length"}
    once = result["n_folds"] + 1  # once per training split, once for the refit
    assert counts["FaceDetector"] == once, counts
    assert counts["LandmarkROICropper"] == once, counts
    # the windower's parameter is searched: once per length and split, then once for the refit
    assert counts["SequenceWindower"] == 2 * result["n_folds"] + 1, counts
    assert result["n_pipeline_fits"] == 8 * result["n_folds"] + 1 > once


def test_own_videos():
    result = _load("own_videos").main(["--quick"])
    assert len(result["scores"]["test_accuracy"]) == 2
    (graded,) = result["graded"]
    assert graded["level"] in {"I", "II", "III"}
    assert sum(graded["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_save_and_load(tmp_path):
    result = _load("save_and_load").main(["--quick", "--out", str(tmp_path)])
    # the same array gives the same probabilities after a save/load round trip
    np.testing.assert_allclose(result["after_load"], result["before"], atol=1e-6)
    np.testing.assert_allclose(result["from_weights"], result["before"], atol=1e-6)
    assert result["from_video"].sum() == pytest.approx(1.0, abs=1e-4)
    assert (tmp_path / "model.joblib").stat().st_size > 0


def test_clinical_grader_grades_held_out_people_above_chance():
    pytest.importorskip("mediapipe", reason="the example reads landmarks with MediaPipe by default")
    result = _load("clinical_grader").main(["--quick"])
    # SYNTHETIC, 12 subjects in 2 folds by person; chance is 1/3 per clip
    assert result["clip"]["accuracy"] >= 0.5, result["clip"]
    assert len(result["top_measures"]) == 8 and all(isinstance(n, str) for n in result["top_measures"])


def test_train_on_gpus_saves_a_pipeline_that_grades_as_the_trained_network(tmp_path):
    pytest.importorskip("accelerate")
    from fnpgrade.persistence import load_model

    out, cache = tmp_path / "model.joblib", tmp_path / "cache"
    result = _load("train_on_gpus").main(["--quick", "--out", str(out), "--cache", str(cache)])
    assert result["n_processes"] == 1  # run in-process: one process (the 2-process run is tests/test_accelerate.py)
    assert any(cache.rglob("output.pkl"))  # the preprocessed windows, for the other processes to read
    loaded = load_model(out)
    assert [name for name, _ in loaded.steps] == ["detector", "cropper", "windower", "classifier"]
    windows = result["windows"]
    np.testing.assert_allclose(loaded[-1].predict_proba(windows), result["classifier"].predict_proba(windows),
                               atol=1e-6)
