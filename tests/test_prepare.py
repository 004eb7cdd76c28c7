"""preprocess_once: a grader's preprocessing once over all clips, faceless clips left out with their labels."""

import numpy as np
import pytest
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

from fnpgrade import make_measures_pipeline, make_palsy_clips, make_phcnn_pipeline, preprocess_once
from fnpgrade.prepare import NoFaceToLearnFromError, groups_fit_params, split_at_learning


@pytest.fixture(scope="module")
def clips():
    X, y, groups = make_palsy_clips(n_subjects=6, clips_per_subject=2, random_state=0)  # SYNTHETIC
    # a black clip in the middle: no face, so it must leave together with its label and subject
    X = list(X[:5]) + [np.zeros_like(X[0])] + list(X[5:])
    y = np.r_[y[:5], ["III"], y[5:]].astype(object)
    groups = np.r_[groups[:5], ["nobody"], groups[5:]].astype(object)
    return X, y, groups


# six subjects drawn from fewer real people: a fold may lack a level, which is not what is tested here
@pytest.mark.filterwarnings("ignore:Number of classes in training fold")
def test_a_faceless_clip_leaves_with_its_label_and_subject(clips):
    pytest.importorskip("mediapipe")
    X, y, groups = clips
    pipe = make_measures_pipeline(no_face="blank", random_state=0)
    prepared = preprocess_once(pipe, X, y, groups)
    assert prepared.kept.tolist() == [i != 5 for i in range(len(X))]
    assert [r["source"] for r in prepared.left_out] == ["X[5]"] and prepared.left_out[0]["coverage"] == 0.0
    assert "nobody" not in prepared.groups and len(prepared.y) == len(prepared.X) == len(X) - 1
    assert np.array_equal(prepared.y, np.delete(y, 5)) and np.array_equal(prepared.groups, np.delete(groups, 5))
    assert (prepared.coverage > 0.5).all()
    # the same measures as the preprocessing steps run by hand on the clips with a face
    by_hand = make_measures_pipeline(random_state=0)[:-1].fit_transform([x for i, x in enumerate(X) if i != 5])
    np.testing.assert_allclose(prepared.X, by_hand)
    # the learner is the grader's own last step: fitting it leaves the whole grader fitted
    proba = cross_val_predict(prepared.learner, prepared.X, prepared.y, groups=prepared.groups,
                              cv=StratifiedGroupKFold(2),
                              method="predict_proba")
    assert proba.shape == (len(X) - 1, len(set(prepared.y)))
    prepared.learner.fit(prepared.X, prepared.y)
    assert pipe.predict([X[0]]).shape == (1,)


def test_no_clip_with_a_face_is_an_error_that_says_so():
    pipe = make_measures_pipeline(no_face="blank", landmarks="dlib")
    with pytest.raises(NoFaceToLearnFromError, match="none of the 2 clips shows enough face"):
        preprocess_once(pipe, [np.zeros((4, 64, 64, 3), np.uint8)] * 2, ["I", "II"])


def test_the_learner_starts_at_the_first_step_that_learns():
    measures = make_measures_pipeline(landmarks="dlib")
    head, learner = split_at_learning(measures)
    assert [n for n, _ in head.steps] == ["detector", "cropper", "measures"]
    assert [n for n, _ in learner.steps] == ["classifier"] and learner.steps[0][1] is measures.steps[-1][1]
    network = make_phcnn_pipeline(measures=True, landmarks="dlib")
    head, learner = split_at_learning(network)
    assert [n for n, _ in head.steps] == ["detector", "cropper", "measures", "windower"]
    # the jittering over-sampler acts in training only: it and every step after it are fitted per fold
    augmented = make_phcnn_pipeline(augment=True, landmarks="dlib")
    head, learner = split_at_learning(augmented)
    assert [n for n, _ in head.steps] == ["detector", "cropper"]
    assert [n for n, _ in learner.steps] == ["sampler", "windower", "classifier"]
    # the over-sampler copies within a subject and the network validates on held-out subjects: both get groups
    assert sorted(groups_fit_params(learner, ["a"])) == ["classifier__groups", "sampler__groups"]
    assert groups_fit_params(measures, ["a"]) == {}


def test_a_pipeline_that_does_not_find_the_face_is_refused():
    with pytest.raises(TypeError, match="first step is not a FaceDetector"):
        preprocess_once(make_measures_pipeline(landmarks="dlib")[1:], [np.zeros((4, 64, 64, 3), np.uint8)])


def test_graders_sharing_a_pipeline_memory_find_the_faces_once(clips, tmp_path, monkeypatch):
    from fnpgrade.preprocessing.detect import FaceDetector

    X, y, groups = clips
    calls = []
    transform = FaceDetector.transform
    monkeypatch.setattr(FaceDetector, "transform", lambda self, clips: calls.append(len(clips)) or transform(self, clips))
    measures = make_measures_pipeline(no_face="blank", landmarks="dlib", memory=str(tmp_path), random_state=0)
    network = make_phcnn_pipeline(no_face="blank", width=0.125, max_epochs=1, memory=str(tmp_path), random_state=0)
    a, b = preprocess_once(measures, X, y, groups), preprocess_once(network, X, y, groups)
    assert calls == [len(X)]  # the second grader's detector came from the cache
    assert a.kept.tolist() == b.kept.tolist() == [i != 5 for i in range(len(X))]
    assert a.left_out == b.left_out == [{"source": "X[5]", "coverage": 0.0}]
    # the cached detector is put into the grader: once its learner is fitted, the whole grader predicts
    b.learner.fit(b.X, b.y, **groups_fit_params(b.learner, b.groups))
    assert network.predict([X[0]]).shape == (1,)
