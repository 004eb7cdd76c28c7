"""Bad input is rejected clearly (naming the clip and what to do); nothing is lost silently."""

import warnings

import joblib
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from fnpgrade import FaceDetector, PHCNNClassifier, WindowedClip, make_phcnn_pipeline
from fnpgrade.persistence import ModelVersionError, load_model, save_model


def windowed(value=0, n_windows=1):
    shape = (n_windows, 4)
    return WindowedClip(np.full((*shape, 128, 128, 3), value, np.uint8), np.full((*shape, 40, 120, 3), value, np.uint8),
                        np.full((*shape, 40, 120, 3), value, np.uint8))


def tiny_classifier(**params):
    return PHCNNClassifier(width=0.125, max_epochs=1, batch_size=8, verbose=0, random_state=0, **params)


X6 = [windowed(v) for v in range(6)]


@pytest.mark.parametrize("y, message", [
    (["I", "II", "III", "I"], r"one label per clip: X has 6 clips"),
    (["I", "II", None, "I", "II", "III"], r"no label \(None or NaN\) for clip\(s\) \[2\]"),
    (["I", "II", float("nan"), "I", "II", "III"], r"clip\(s\) \[2\]"),
    ([1.0, 2.0, np.nan, 1.0, 2.0, 3.0], r"clip\(s\) \[2\]"),
    (["I"] * 6, "single class"),
])
def test_bad_labels_rejected(y, message):
    with pytest.raises(ValueError, match=message):
        tiny_classifier().fit(X6, y)


def test_groups_must_match_clips():
    with pytest.raises(ValueError, match="one subject per clip"):
        tiny_classifier().fit(X6, ["I", "II"] * 3, groups=[1, 2, 3])


def test_subject_with_two_grades_warns():
    y = ["I", "II", "I", "II", "III", "III"]
    groups = [1, 1, 2, 2, 3, 3]  # subjects 1 and 2 carry two levels each
    with pytest.warns(UserWarning, match=r"2 subject\(s\) appear with more than one label"):
        tiny_classifier().fit(X6, y, groups=groups)


def test_consistent_subjects_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        tiny_classifier().fit(X6, ["I", "I", "II", "II", "III", "III"], groups=[1, 1, 2, 2, 3, 3])


def test_unfitted_use_raises_not_fitted():
    with pytest.raises(NotFittedError):
        tiny_classifier().predict(X6)
    with pytest.raises(NotFittedError):
        make_phcnn_pipeline().predict([np.zeros((4, 64, 64, 3), np.uint8)])
    with pytest.raises(NotFittedError):
        FaceDetector().transform([np.zeros((4, 64, 64, 3), np.uint8)])


@pytest.mark.parametrize("clip, message", [
    (np.zeros((0, 64, 64, 3), np.uint8), "X\\[1\\]: the clip has 0 frames"),
    (np.zeros((64, 64), np.uint8), "X\\[1\\]: a clip array must be"),
    (np.full((2, 64, 64, 3), np.nan), "X\\[1\\]: float pixels contain NaN"),
    (np.full((2, 64, 64, 3), np.inf), "X\\[1\\]: float pixels contain NaN or infinite"),
    ([np.zeros((64, 64, 3), np.uint8), np.zeros((32, 64, 3), np.uint8)], "X\\[1\\]: frame 1 has size"),
    ("does/not/exist.mp4", "does/not/exist.mp4"),
])
def test_detector_names_the_bad_clip(clip, message, package_face_images):
    face = package_face_images["astronaut"][None]
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        FaceDetector().fit_transform([face, clip])


def test_float_grayscale_and_rgba_frames_are_accepted(package_face_images):
    face = package_face_images["astronaut"]
    variants = [face[None] / 255.0, face[None].mean(axis=-1), np.concatenate([face, face[..., :1]], -1)[None]]
    tracks = FaceDetector().fit_transform(variants)
    assert [bool(t.found.all()) for t in tracks] == [True, True, True]


def test_model_saved_by_another_version_is_refused_clearly(tmp_path, monkeypatch):
    path = save_model(tiny_classifier().fit(X6, ["I", "II", "III"] * 2), tmp_path / "m.joblib")
    payload = joblib.load(path)
    payload["versions"]["fnpgrade"] = "0.0.1"
    joblib.dump(payload, path)
    with pytest.raises(ModelVersionError, match="saved by fnpgrade 0.0.1.*retrain"):
        load_model(path)
    model = load_model(path, allow_version_mismatch=True)
    assert model.predict(X6).shape == (6,)


def test_corrupt_model_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.joblib"
    path.write_bytes(b"definitely not a pickle")
    with pytest.raises(ModelVersionError, match="broken.joblib.*corrupt"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="missing.joblib"):
        load_model(tmp_path / "missing.joblib")


def test_saved_model_predicts_identically(tmp_path):
    clf = tiny_classifier().fit(X6, ["I", "II", "III"] * 2)
    restored = load_model(save_model(clf, tmp_path / "m.joblib"))
    np.testing.assert_array_equal(restored.predict_proba(X6), clf.predict_proba(X6))


def test_a_saved_clinical_grader_loads_without_torch(tmp_path):
    """The model file records the packages' versions as plain text: loading a grader that needs no network never
    imports torch (a second of start-up)."""
    import subprocess
    import sys

    from sklearn.dummy import DummyClassifier

    from fnpgrade.persistence import save_model

    path = tmp_path / "dummy.joblib"
    save_model(DummyClassifier().fit([[0], [1]], ["I", "II"]), path)
    code = (f"import sys; from fnpgrade.persistence import load_model; load_model({str(path)!r}); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
