"""Tests of JitterOverSampler (fit-time jittered copies of region clips)."""

from collections import Counter

import numpy as np
import pytest
from imblearn.pipeline import Pipeline
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from fnpgrade import RegionClip
from fnpgrade.augment import JitterOverSampler, jitter_clip


def _clip(value, n_frames=4, source=""):
    rng = np.random.default_rng(value)
    face = np.zeros((n_frames, 128, 128, 3), np.uint8)
    face[:, 54:74, 54:74] = 200  # a bright square in the middle, to follow the jitter
    face[:, :, :, 2] = value
    brow = rng.integers(0, 255, (n_frames, 40, 120, 3), dtype=np.uint8)
    mouth = rng.integers(0, 255, (n_frames, 40, 120, 3), dtype=np.uint8)
    lm = rng.uniform(0, 128, (n_frames, 49, 2))
    return RegionClip(face=face, brow=brow, mouth=mouth, landmarks=lm, face_landmarks=lm.copy(), source=source)


@pytest.fixture
def data():
    X = [_clip(i, source=f"clip{i}") for i in range(10)]
    y = np.array(["I"] * 2 + ["II"] * 3 + ["III"] * 5, dtype=object)
    groups = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    return X, y, groups


def test_auto_balances_classes(data):
    X, y, _ = data
    sampler = JitterOverSampler(random_state=0)
    X_res, y_res = sampler.fit_resample(X, y)
    assert Counter(y_res.tolist()) == {"I": 5, "II": 5, "III": 5}
    assert len(X_res) == 15 and all(isinstance(c, RegionClip) for c in X_res)
    assert sampler.sampling_strategy_ == {"I": 3, "II": 2}
    # inputs come first and unchanged; copies come from clips of their own class
    np.testing.assert_array_equal(sampler.sample_indices_[:10], np.arange(10))
    assert all(X_res[i] is X[i] for i in range(10))
    assert (y[sampler.sample_indices_] == y_res).all()


def test_dict_strategy_counts(data):
    X, y, _ = data
    X_res, y_res = JitterOverSampler(sampling_strategy={"I": 4, "II": 3, "III": 5}, random_state=0).fit_resample(X, y)
    assert Counter(y_res.tolist()) == {"I": 4, "II": 3, "III": 5}


def test_min_sequences_rule_tops_up_subjects(data):
    X, y, groups = data
    sampler = JitterOverSampler(sampling_strategy={"I": 4, "II": 4, "III": 5}, min_sequences=4, random_state=0)
    X_res, y_res = sampler.fit_resample(X, y, groups=groups)
    src_groups = groups[sampler.sample_indices_]
    counts = Counter(src_groups.tolist())
    assert counts == {0: 4, 1: 4, 2: 5}
    assert sampler.n_subject_copies_ == 3
    # then classes: counted after rule 1, so the dict asks for nothing more
    assert sum(sampler.sampling_strategy_.values()) == 0


def test_min_sequences_needs_groups(data):
    X, y, _ = data
    sampler = JitterOverSampler(sampling_strategy={"I": 2, "II": 3, "III": 5}, min_sequences=16, random_state=0)
    X_res, _ = sampler.fit_resample(X, y)
    assert len(X_res) == 10 and sampler.n_subject_copies_ == 0


def test_copies_are_jittered_and_deterministic(data):
    X, y, _ = data
    a = JitterOverSampler(random_state=3).fit_resample(X, y)[0]
    b = JitterOverSampler(random_state=3).fit_resample(X, y)[0]
    for ca, cb in zip(a[10:], b[10:]):
        np.testing.assert_array_equal(ca.face, cb.face)
        assert "jitter" in ca.source
    changed = [not np.array_equal(c.face, X[i].face)
               for c, i in zip(a[10:], JitterOverSampler(random_state=3).fit(X, y).sample_indices_[10:])]
    assert all(changed)


def test_jitter_clip_translates_face_and_landmarks():
    clip = _clip(1)
    moved = jitter_clip(clip, shift=(5, -3), angle=0.0)
    # the bright square moved by (dx, dy) = (5, -3)
    ys, xs = np.nonzero(moved.face[0, :, :, 0] > 150)
    assert (xs.min(), ys.min()) == (59, 51)
    np.testing.assert_allclose(moved.face_landmarks, clip.face_landmarks + [5, -3])
    np.testing.assert_array_equal(moved.landmarks, clip.landmarks)
    assert moved.brow.shape == clip.brow.shape and moved.mouth.shape == clip.mouth.shape
    same = jitter_clip(clip, shift=(0, 0), angle=0.0)
    np.testing.assert_array_equal(same.face, clip.face)


class _CountingClassifier(ClassifierMixin, BaseEstimator):
    """Predicts the majority label; records how many clips each call saw."""

    def fit(self, X, y):
        self.n_fit_ = len(X)
        self.classes_ = np.unique(y)
        self.majority_ = Counter(np.asarray(y).tolist()).most_common(1)[0][0]
        return self

    def predict(self, X):
        self.n_predict_ = len(X)
        return np.array([self.majority_] * len(X), dtype=object)


def test_runs_at_fit_time_only_in_imblearn_pipeline(data):
    X, y, groups = data
    pipe = Pipeline([("sampler", JitterOverSampler(min_sequences=4, random_state=0)), ("clf", _CountingClassifier())])
    pipe.fit(X, y, sampler__groups=groups)
    # rule 1 adds 3 copies (subjects 0 and 1 to four clips), rule 2 evens classes at the majority's count
    assert pipe.named_steps["clf"].n_fit_ == 15
    pred = pipe.predict(X)
    assert len(pred) == 10 and pipe.named_steps["clf"].n_predict_ == 10


def test_clone_keeps_params():
    s = JitterOverSampler(sampling_strategy="all", min_sequences=8, max_shift=3, max_rotation=2, random_state=1)
    assert clone(s).get_params() == s.get_params()


@pytest.mark.parametrize("X, match", [
    ([np.zeros((4, 8, 8, 3), np.uint8)], r"X\[0\].*RegionClip"),
    (np.zeros((3, 4)), "RegionClip"),
])
def test_rejects_non_region_clips(X, match):
    with pytest.raises(TypeError, match=match):
        JitterOverSampler().fit_resample(X, ["I"] * len(X))


def test_errors_on_bad_lengths_and_params(data):
    X, y, groups = data
    with pytest.raises(ValueError, match="groups has 3 entries"):
        JitterOverSampler().fit_resample(X, y, groups=groups[:3])
    with pytest.raises(ValueError, match="10 clips but y has 9"):
        JitterOverSampler().fit_resample(X, y[:9])
    with pytest.raises(ValueError, match="max_rotation"):
        JitterOverSampler(max_rotation=-1).fit_resample(X, y)


def test_groups_through_metadata_routing(data):
    import sklearn

    X, y, groups = data
    with sklearn.config_context(enable_metadata_routing=True):
        sampler = JitterOverSampler(min_sequences=4, random_state=0).set_fit_resample_request(groups=True)
        clf = _CountingClassifier()
        pipe = Pipeline([("sampler", sampler), ("clf", clf)])
        pipe.fit(X, y, groups=groups)
        assert pipe.named_steps["clf"].n_fit_ == 15
        assert pipe.named_steps["sampler"].n_subject_copies_ == 3
