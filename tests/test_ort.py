"""Prediction by ONNX Runtime (``Runtime(engine="onnxruntime")``): torch's probabilities to float rounding."""

import pickle

import numpy as np
import pytest
import torch

from fnpgrade.classifier import PHCNNClassifier
from fnpgrade.clips import WindowedClip
from fnpgrade.nn import ort
from fnpgrade.nn.runtime import Runtime
from test_classifier import FAST, make_clips, make_measures_clips

ORT = Runtime(engine="onnxruntime")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clips():
    return make_clips(n_per_class=4, seed=0), make_clips(n_per_class=3, seed=1)


@pytest.fixture(scope="module")
def fitted(clips):
    (X, y), _ = clips
    return PHCNNClassifier(max_epochs=4, random_state=0, **FAST).fit(X, y)


@pytest.fixture
def exports(monkeypatch):
    """How many times torch's exporter ran in the test."""
    calls = []
    export = torch.onnx.export

    def counted(*args, **kwargs):
        calls.append(1)
        return export(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", counted)
    return calls


def test_onnxruntime_predicts_torch_probabilities(fitted, clips, exports):
    _, (X_test, _) = clips
    expected = fitted.predict_proba(X_test)
    fitted.set_params(runtime=ORT)
    try:
        got = fitted.predict_proba(X_test)
        again = fitted.predict_windows(X_test)
    finally:
        fitted.set_params(runtime=None)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    np.testing.assert_allclose(np.stack([p.mean(axis=0) for p in again]), got, atol=1e-6)
    assert len(exports) == 1  # the second call ran the kept session


def test_new_weights_make_a_new_session(clips, exports):
    (X, y), (X_test, _) = clips
    clf = PHCNNClassifier(max_epochs=1, random_state=0, runtime=ORT, **FAST).fit(X, y)
    first = clf.predict_proba(X_test)
    clf.partial_fit(X, y)  # trained further in place: the kept session would be stale
    second = clf.predict_proba(X_test)
    torch_now = clf.set_params(runtime=None).predict_proba(X_test)
    assert len(exports) == 2
    np.testing.assert_allclose(second, torch_now, atol=1e-5)
    assert not np.allclose(first, second)


def test_a_network_with_a_measures_branch(exports):
    (X, y), (X_test, _) = make_measures_clips(6, seed=0), make_measures_clips(4, seed=1)
    clf = PHCNNClassifier(measures=True, width=0.25, max_epochs=2, batch_size=12, train_split=None, random_state=0,
                          verbose=0).fit(X, y)
    expected = clf.predict_proba(X_test)
    np.testing.assert_allclose(clf.set_params(runtime=ORT).predict_proba(X_test), expected, atol=1e-5)


def test_saved_and_loaded_it_still_predicts_by_onnxruntime(fitted, clips):
    _, (X_test, _) = clips
    copy = pickle.loads(pickle.dumps(fitted.set_params(runtime=ORT)))
    fitted.set_params(runtime=None)
    assert copy.runtime_.engine == "onnxruntime"
    np.testing.assert_allclose(copy.predict_proba(X_test), fitted.predict_proba(X_test), atol=1e-5)


def test_what_it_refuses():
    with pytest.raises(ValueError, match="engine must be one of"):
        Runtime(engine="tensorrt")
    with pytest.raises(ValueError, match="engine='onnxruntime' predicts in float32; precision='bf16' needs"):
        Runtime(precision="bf16", engine="onnxruntime")
    with pytest.raises(ValueError, match="predicts on the CPU; the classifier's device is cuda"):
        ORT.prediction_module(torch.nn.Linear(2, 2), "cuda")


def test_a_runtime_pickled_before_the_engine_existed_predicts_with_torch():
    old = Runtime(n_threads=1)
    del old.__dict__["engine"]
    assert pickle.loads(pickle.dumps(old)).engine == "torch"


def test_sessions_kept_are_bounded(fitted, clips):
    _, (X_test, _) = clips
    fitted.set_params(runtime=ORT)
    try:
        for length in (1, 2, 3, 4, 2, 1):  # each window length is another export
            fitted.predict_proba([WindowedClip(c.face[:, :length], c.brow[:, :length], c.mouth[:, :length])
                                  for c in X_test[:2]])
    finally:
        fitted.set_params(runtime=None)
    assert len(ort._SESSIONS) <= ort._MAX_SESSIONS


@pytest.mark.parametrize("arch", ["phcnn", "face-n1-lstm", "senet"])
def test_the_other_conv_networks_export(arch, clips):
    """The registry's other conv networks predict alike through ONNX Runtime (vgg16-lstm: the same layers, larger)."""
    (X, y), (X_test, _) = clips
    clf = PHCNNClassifier(arch=arch, max_epochs=1, random_state=0, **FAST).fit(X[:6], y[:6])
    expected = clf.predict_proba(X_test[:4])
    np.testing.assert_allclose(clf.set_params(runtime=ORT).predict_proba(X_test[:4]), expected, atol=1e-5)


def test_a_network_that_does_not_export_is_refused_clearly(clips):
    """The pixel-LSTM baseline pools to a size torch's exporter cannot trace: the error says what to use instead."""
    (X, y), (X_test, _) = clips
    clf = PHCNNClassifier(arch="lstm", max_epochs=1, random_state=0, runtime=ORT, **FAST).fit(X[:6], y[:6])
    with pytest.raises(ValueError, match=r"the PixelLSTM network does not export to ONNX \(SymbolicValueError: .*"
                                         r"predict it with engine='torch'"):
        clf.predict_proba(X_test[:2])
