import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from fnpgrade.metrics import (SCORING, grading_report, ordinal_labels, per_level_sensitivity_specificity,
                              quadratic_weighted_kappa)


def test_kappa_uses_level_order_not_alphabet():
    y_true = ["I", "II", "III", "II", "I"]
    y_pred = ["I", "III", "III", "II", "II"]
    expected = cohen_kappa_score([0, 1, 2, 1, 0], [0, 2, 2, 1, 1], weights="quadratic")
    assert quadratic_weighted_kappa(y_true, y_pred) == pytest.approx(expected)


def test_kappa_penalises_two_level_errors_more():
    one_off = quadratic_weighted_kappa(["I", "II", "III"] * 3, ["II", "II", "III"] * 3)
    two_off = quadratic_weighted_kappa(["I", "II", "III"] * 3, ["III", "II", "III"] * 3)
    assert two_off < one_off < 1.0


def test_ordinal_labels():
    assert ordinal_labels(["III"], ["I"]) == ["I", "II", "III"]
    assert ordinal_labels([5, 2]) == [1, 2, 3, 4, 5, 6]
    assert ordinal_labels(["b", "a"]) == ["a", "b"]


def test_report_values_on_a_worked_example():
    report = grading_report(["I", "II", "III", "II"], ["I", "III", "III", "II"])
    assert report["accuracy"] == 0.75
    assert report["recall"] == pytest.approx(0.75)
    assert report["precision"] == pytest.approx((1 * 1 + 1.0 * 2 + 0.5 * 1) / 4)
    assert report["per_level"]["II"] == {"sensitivity": 0.5, "specificity": 1.0, "support": 2}
    assert report["per_level"]["III"]["specificity"] == pytest.approx(2 / 3)
    assert report["gmean"] == pytest.approx((1 * 0.5 * 1) ** (1 / 3))


def test_hb_grade_labels_work():
    report = grading_report([1, 2, 5, 6], [1, 2, 5, 5])
    assert report["accuracy"] == 0.75
    assert set(per_level_sensitivity_specificity([1, 5], [1, 5])) == {1, 2, 3, 4, 5, 6}


def test_scoring_dict_works_with_cross_validate():
    from sklearn.dummy import DummyClassifier
    from sklearn.model_selection import cross_validate

    X = np.zeros((12, 1))
    y = np.array(["I", "II", "III"] * 4, dtype=object)
    scores = cross_validate(DummyClassifier(strategy="most_frequent"), X, y, cv=4, scoring=SCORING)
    assert set(f"test_{k}" for k in SCORING) <= set(scores)
    assert np.allclose(scores["test_accuracy"], 1 / 3)


def test_subject_grading_report_grades_each_person_from_all_their_clips():
    import numpy as np

    from fnpgrade.metrics import subject_grading_report

    # s1's rest clip looks normal (I), its two expression clips show level III: the person is III
    proba = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1], [0.7, 0.2, 0.1]])
    y = ["III", "III", "III", "II", "I"]
    report = subject_grading_report(y, proba, ["s1", "s1", "s1", "s2", "s3"], ["I", "II", "III"])
    assert report["accuracy"] == 1.0 and report["n_subjects"] == 3 and report["qwk"] == 1.0
    with pytest.raises(ValueError, match="several levels"):
        subject_grading_report(["I", "II"], proba[:2], ["s1", "s1"], ["I", "II", "III"])
