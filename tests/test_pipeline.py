"""End to end: synthetic clips from real photos -> make_phcnn_pipeline -> grades."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, cross_validate

from fnpgrade import LEVELS, make_palsy_clips, make_phcnn_pipeline
from fnpgrade.metrics import SCORING


@pytest.fixture(scope="module")
def palsy_data():
    X, y, groups = make_palsy_clips(n_subjects=6, clips_per_subject=3, random_state=0)
    return X, np.asarray(y, dtype=object), np.asarray(groups)


@pytest.fixture(scope="module")
def windows(palsy_data):
    X, _, _ = palsy_data
    return make_phcnn_pipeline()[:-1].fit_transform(X)


def test_pipeline_steps_and_params_round_trip():
    pipe = make_phcnn_pipeline(arch="phcnn", width=0.5, window=6, max_epochs=3, random_state=1)
    assert [name for name, _ in pipe.steps] == ["detector", "cropper", "windower", "classifier"]
    params = pipe.get_params()
    assert params["classifier__arch"] == "phcnn" and params["classifier__width"] == 0.5
    assert params["windower__length"] == 6 and params["classifier__max_epochs"] == 3
    cloned = clone(pipe)
    assert cloned.get_params()["classifier__random_state"] == 1
    cloned.set_params(classifier__lr=0.01, windower__length=4)
    assert cloned.get_params()["classifier__lr"] == 0.01
    assert params["cropper__registration"] == "frame"  # the paper's per-frame crops unless asked
    assert make_phcnn_pipeline(mirror_augment=True).get_params()["classifier__mirror_augment"] is True
    with pytest.raises(TypeError, match="no longer takes registration="):
        make_phcnn_pipeline(registration="clip")  # follows measures=; set_params(cropper__registration=...)


def test_measures_switch_adds_frame_measures_on_registered_crops():
    pipe = make_phcnn_pipeline(measures=True, width=0.25)
    assert [name for name, _ in pipe.steps] == ["detector", "cropper", "measures", "windower", "classifier"]
    params = pipe.get_params()
    assert params["cropper__registration"] == "clip" and params["classifier__measures"] is True
    assert params["classifier__mirror_augment"] is True  # the measured configuration, unless asked otherwise
    assert make_phcnn_pipeline(measures=True, mirror_augment=False).get_params()["classifier__mirror_augment"] is False
    assert make_phcnn_pipeline().get_params()["classifier__measures"] is False
    # with the sampler, the jittered copies are measured on their own frames
    augmented = make_phcnn_pipeline(measures=True, augment=True)
    assert [name for name, _ in augmented.steps][2:4] == ["sampler", "measures"]


def test_measures_pipeline_fits_and_predicts_new_subjects(palsy_data):
    X, y, groups = palsy_data
    train, test = np.flatnonzero(groups != groups[-1])[::2], np.flatnonzero(groups == groups[-1])
    pipe = make_phcnn_pipeline(measures=True, width=0.125, max_epochs=2, batch_size=8, random_state=0)
    pipe.fit([X[i] for i in train], y[train], classifier__groups=groups[train])
    assert pipe.named_steps["classifier"].n_measures_ == len(pipe.named_steps["measures"].get_feature_names_out())
    proba = pipe.predict_proba([X[i] for i in test])
    assert proba.shape == (len(test), len(pipe.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_preprocessing_yields_one_windowed_clip_per_clip(palsy_data, windows):
    X, _, _ = palsy_data
    assert len(windows) == len(X)
    for w in windows:
        assert w.face.shape[1:] == (4, 128, 128, 3) and w.face.dtype == np.uint8
        assert w.brow.shape[2:] == (40, 120, 3) and w.mouth.shape[2:] == (40, 120, 3)


def test_fit_then_predict_held_out_subjects(palsy_data):
    X, y, groups = palsy_data
    held_out = groups == groups[-1]
    pipe = make_phcnn_pipeline(width=0.125, max_epochs=3, batch_size=16, random_state=0)
    train = np.flatnonzero(~held_out)
    pipe.fit([X[i] for i in train], y[train], classifier__groups=groups[train])
    test = np.flatnonzero(held_out)
    pred = pipe.predict([X[i] for i in test])
    proba = pipe.predict_proba([X[i] for i in test])
    assert len(pred) == len(test) and set(pred) <= set(LEVELS)
    assert proba.shape == (len(test), len(pipe.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert np.array_equal(pipe.classes_[proba.argmax(axis=1)], pred)


def test_cross_validate_grouped_by_subject(palsy_data):
    X, y, groups = palsy_data
    pipe = make_phcnn_pipeline(width=0.125, max_epochs=2, batch_size=16, random_state=0)
    cv = GroupKFold(n_splits=2)
    scores = cross_validate(pipe, X, y, groups=groups, cv=cv, scoring=SCORING, error_score="raise")
    # the same numbers as a hand-written loop: folds by subject, a fresh clone per fold, deterministic fits
    from sklearn.metrics import get_scorer

    for k, (train, test) in enumerate(cv.split(X, y, groups)):
        assert not set(groups[train]) & set(groups[test])
        fitted = clone(pipe).fit([X[i] for i in train], y[train])
        for name, scorer in SCORING.items():
            scorer = get_scorer(scorer) if isinstance(scorer, str) else scorer
            assert scores[f"test_{name}"][k] == pytest.approx(scorer(fitted, [X[i] for i in test], y[test])), name
