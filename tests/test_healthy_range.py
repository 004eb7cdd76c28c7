"""HB I means within the healthy range: the default clinical grader combines its classifier with the face's asymmetry."""

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

from fnpgrade.measures import VIDEO_FEATURE_NAMES
from fnpgrade.measures.healthy import HEALTHY_RATIO, HealthyRangeClassifier, asymmetry_evidence


def _rows(asymmetry, largest=0.1, noise=0.005):
    """Measure rows with only the columns the healthy range reads set (the rest: 0)."""
    rows = np.zeros((len(asymmetry), len(VIDEO_FEATURE_NAMES)))
    rows[:, VIDEO_FEATURE_NAMES.index("side_asymmetry")] = asymmetry
    rows[:, VIDEO_FEATURE_NAMES.index("expression_amount")] = largest
    rows[:, VIDEO_FEATURE_NAMES.index("reference_movement")] = noise
    return rows


def test_the_evidence_steps_at_the_healthy_line_and_is_neutral_when_the_face_did_not_move():
    line = -np.log(HEALTHY_RATIO)
    w = asymmetry_evidence(_rows([0.0, line - 0.1, line, line + 0.1, 0.8]))
    assert w[0] < 0.01 and w[1] < 0.05 and w[2] == pytest.approx(0.5) and w[3] > 0.95 and w[4] > 0.99
    still = asymmetry_evidence(_rows([0.8, 0.0], largest=0.015))  # 1.5 noise floors: nothing to compare
    assert np.allclose(still, 0.5)
    assert asymmetry_evidence(_rows([np.nan]))[0] == 0.5  # not measured: no evidence either way


def test_symmetric_faces_are_graded_i_and_clearly_one_sided_faces_never():
    # a classifier that learned "II" from its training faces (prior: II 0.6, I 0.2, III 0.2)
    X = _rows([0.02, 0.05, 0.4, 0.9])
    y = np.array(["I", "II", "II", "II", "III"])
    grader = HealthyRangeClassifier(DummyClassifier(strategy="prior")).fit(_rows(np.zeros(5)), y)
    proba = grader.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(grader.predict(X)) == ["I", "I", "II", "II"]
    assert proba[2, 0] < 0.01 and proba[2, 1] == pytest.approx(0.75, abs=0.01)  # II : III stays the classifier's 3 : 1
    # HB grades: 1 is the healthy class; a face that did not move leaves the classifier alone
    hb = HealthyRangeClassifier(DummyClassifier(strategy="prior")).fit(_rows(np.zeros(5)), [1, 2, 2, 3, 6])
    assert list(hb.predict(_rows([0.0, 0.5]))) == [1, 2]
    np.testing.assert_allclose(hb.predict_proba(_rows([0.9], largest=0.01)), [[0.2, 0.4, 0.2, 0.2]])


def test_labels_without_a_healthy_class_pass_through_and_other_columns_are_refused():
    grader = HealthyRangeClassifier(DummyClassifier(strategy="prior")).fit(_rows(np.zeros(4)), ["II", "II", "III", "III"])
    np.testing.assert_allclose(grader.predict_proba(_rows([0.0])), [[0.5, 0.5]])
    with pytest.raises(ValueError, match="FaceMeasures"):
        HealthyRangeClassifier(DummyClassifier()).fit(np.zeros((4, 3)), [1, 1, 2, 2])


def test_it_is_the_default_grader_of_the_measures_pipeline():
    from fnpgrade import make_measures_pipeline

    final = make_measures_pipeline(random_state=3).steps[-1][1]
    assert isinstance(final, HealthyRangeClassifier)
    assert final.estimator.get_params()["random_state"] == 3 and final.estimator.n_estimators == 300
