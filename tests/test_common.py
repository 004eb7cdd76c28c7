"""Checks every public estimator must pass (scikit-learn conventions, DESIGN §6)."""

import inspect
import pickle
import re

import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError


def _estimators():
    from fnpgrade import (FaceDetector, JitterOverSampler, LandmarkROICropper, PHCNNClassifier,
                          SequenceWindower)

    return [FaceDetector(), LandmarkROICropper(), SequenceWindower(), JitterOverSampler(),
            PHCNNClassifier(width=0.125, max_epochs=1)]


ESTIMATOR_NAMES = ["FaceDetector", "LandmarkROICropper", "SequenceWindower", "JitterOverSampler", "PHCNNClassifier"]


@pytest.fixture(params=ESTIMATOR_NAMES)
def estimator(request):
    return {type(e).__name__: e for e in _estimators()}[request.param]


def _own_params(est):
    return list(inspect.signature(type(est).__init__).parameters)[1:]


def test_init_only_stores_parameters(estimator):
    params = estimator.get_params(deep=False)
    for name in _own_params(estimator):
        if name in ("args", "kwargs"):
            continue
        assert name in params, f"{type(estimator).__name__}.{name} is not returned by get_params"


def test_clone_and_set_params_round_trip(estimator):
    cloned = clone(estimator)
    assert type(cloned) is type(estimator)
    params = estimator.get_params(deep=False)
    cloned_params = cloned.get_params(deep=False)
    for key, value in params.items():
        if callable(value) or key.startswith("callbacks"):
            continue
        assert repr(cloned_params[key]) == repr(value), key
    name = "random_state" if "random_state" in params else next(iter(params))
    new_value = 7 if name == "random_state" else params[name]
    cloned.set_params(**{name: new_value})
    assert cloned.get_params(deep=False)[name] == new_value


def test_unfitted_estimator_pickles(estimator):
    restored = pickle.loads(pickle.dumps(estimator))
    assert type(restored) is type(estimator)


def test_not_fitted_error_before_fit(estimator):
    method = next((m for m in ("transform", "predict", "predict_proba") if hasattr(estimator, m)), None)
    if method is None:  # samplers have no inference method: they only run at fit time
        assert hasattr(estimator, "fit_resample")
        return
    with pytest.raises(NotFittedError):
        getattr(estimator, method)([object()])


def test_docstring_documents_every_parameter(estimator):
    doc = inspect.getdoc(type(estimator)) or ""
    assert "Parameters\n----------" in doc
    assert "Examples\n--------" in doc
    documented = set(re.findall(r"^(\w+)\s*:", doc, flags=re.MULTILINE))
    # numpydoc allows "a, b : type" lines
    for line in re.findall(r"^([\w, ]+)\s*:", doc, flags=re.MULTILINE):
        documented.update(part.strip() for part in line.split(","))
    missing = [p for p in _own_params(estimator) if p not in documented and p not in ("args", "kwargs")]
    assert not missing, f"{type(estimator).__name__} does not document {missing}"
