import numpy as np
import pytest
from hypothesis import given, strategies as st

from fnpgrade.grading import LEVELS, check_hb_grades, check_levels, grade_by_subject, hb_to_level


def test_paper_table_one_mapping():
    assert hb_to_level([1, 2, 3, 4, 5, 6]).tolist() == ["I", "II", "II", "II", "III", "III"]
    assert hb_to_level(1) == "I"
    assert LEVELS == ("I", "II", "III")


def test_accepts_integral_floats_and_numeric_strings():
    assert hb_to_level([2.0, "5", np.int64(1)]).tolist() == ["II", "III", "I"]


@pytest.mark.parametrize("bad", [0, 7, -1, 2.5, float("nan"), "II", "", None, True])
def test_rejects_non_grades_naming_position(bad):
    with pytest.raises(ValueError, match=r"grades\[1\].*House-Brackmann"):
        check_hb_grades([1, bad])


def test_levels_validation_names_label():
    assert check_levels(["I", "III"]).tolist() == ["I", "III"]
    with pytest.raises(ValueError, match=r"y\[1\] = 'IV'"):
        check_levels(["I", "IV"])


@given(st.lists(st.integers(1, 6), min_size=1, max_size=50))
def test_mapping_is_monotone_in_grade(grades):
    rank = {lev: i for i, lev in enumerate(LEVELS)}
    levels = hb_to_level(grades)
    order = np.argsort(grades, kind="stable")
    ranks = [rank[levels[i]] for i in order]
    assert ranks == sorted(ranks)


@given(st.integers())
def test_any_integer_is_graded_or_rejected(value):
    if 1 <= value <= 6:
        assert hb_to_level(value) in LEVELS
    else:
        with pytest.raises(ValueError):
            hb_to_level(value)


def test_grade_by_subject_pools_each_subjects_clips():
    proba = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1], [0.2, 0.5, 0.3]])
    ids, grades, mean = grade_by_subject(proba, [7, 3, 7, 3, 7], np.array(["I", "II", "III"]))
    assert ids.tolist() == [3, 7]
    np.testing.assert_allclose(mean, [[0.3, 0.3, 0.4], [1.0 / 3, 1.0 / 3, 1.0 / 3]])
    assert grades[0] == "III"  # one clear clip outvotes one that looked normal
    with pytest.raises(ValueError, match="one per clip"):
        grade_by_subject(proba, [1, 2], ["I", "II", "III"])
    with pytest.raises(ValueError, match="one column per class"):
        grade_by_subject(proba, [1] * 5, ["I", "II"])
