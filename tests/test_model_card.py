"""Model cards describe the model they are saved with: its grader, steps and settings, what it was trained on,
and whether its held-out accuracy was measured. Fast: unfitted pipelines and a dummy classifier, no video."""

import json

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

from fnpgrade import make_measures_pipeline, make_phcnn_pipeline
from fnpgrade.model_card import at_chance, describe_model, format_model_card, make_model_card
from fnpgrade.persistence import load_model_with_card, save_model

LEVELS_Y = ["I", "I", "II", "II", "III", "III"]
SUBJECTS = ["a", "a", "b", "b", "c", "c"]


def test_a_measures_card_names_the_grader_its_steps_and_no_network():
    """Before: `fnpgrade train --grader measures` printed and saved 'phcnn-lstm, preset small (width 0.25, ...'."""
    card = make_model_card(make_measures_pipeline(neutral=True, random_state=0), LEVELS_Y, SUBJECTS, synthetic=False,
                           data_name="study", fps=6)
    assert card["grader"] == "measures" and card["target"] == "level"
    steps = {step["class"]: step["params"] for step in card["steps"]}
    assert steps["LandmarkROICropper"]["landmarks"] == "mediapipe" and steps["FaceMeasures"]["neutral"] is True
    assert steps["HealthyRangeClassifier"]["estimator"] == "RandomForestClassifier"
    assert steps["HealthyRangeClassifier"]["estimator__n_estimators"] == 300
    assert "verbose" not in steps["FaceDetector"] and "n_jobs" not in steps["FaceMeasures"]  # how it ran, not what
    assert card["synthetic"] is False and card["n_subjects"] == 3 and card["label_counts"] == {"I": 2, "II": 2,
                                                                                              "III": 2}
    assert card["validation"] is None
    text = format_model_card(card)
    assert text.startswith("Model card: measures grader (the clinical grader")
    assert "phcnn" not in text and "preset" not in text
    assert "FaceMeasures (neutral True)" in text and "LandmarkROICropper (landmarks mediapipe" in text
    assert "trained on real data 'study': 6 clips of 3 subjects; levels I=2, II=2, III=2" in text
    assert "held-out accuracy (people not trained on): not measured" in text
    json.dumps(card)  # JSON-ready


def test_a_network_card_names_the_architecture_and_its_settings():
    pipe = make_phcnn_pipeline(width=0.25, max_epochs=30)
    card = make_model_card(pipe, [1, 2, 5, 6], ["a", "b", "c", "d"], synthetic=True,
                           settings={"arch": "phcnn-lstm", "preset": "small", "width": 0.25, "epochs": 30})
    assert card["grader"] == "network" and card["target"] == "hb"  # numbers 1-6 are HB grades
    classifier = card["steps"][-1]
    assert classifier["class"] == "PHCNNClassifier" and classifier["params"]["arch"] == "phcnn-lstm"
    text = format_model_card(card)
    assert text.startswith("Model card: network grader (phcnn-lstm, width 0.25, epochs 30, preset small)")
    assert "SYNTHETIC data" in text and "HB grades 1=1, 2=1, 5=1, 6=1" in text and "4 clips of 4 subjects" in text


def test_a_card_records_held_out_scores_when_given_and_says_so_when_not():
    validation = {"method": "person-wise 3-fold cross-validation", "clip_accuracy": 0.5, "person_accuracy": 2 / 3,
                  "n_subjects": 3}
    card = make_model_card(None, LEVELS_Y, SUBJECTS, synthetic=False, validation=validation)
    assert card["validation"] == validation
    assert ("held-out accuracy (people not trained on): per clip 0.50, per person 0.67 (person-wise 3-fold "
            "cross-validation)") in format_model_card(card)
    assert "not measured" in format_model_card(make_model_card(None, LEVELS_Y, SUBJECTS, synthetic=False))


def test_save_model_from_python_writes_a_card_built_from_the_model(tmp_path):
    """Before: a model saved with save_model from Python was announced as 'saved without one, by an older
    fnpgrade'."""
    model = DummyClassifier(strategy="prior").fit(np.zeros((6, 1)), LEVELS_Y)
    _, card = load_model_with_card(save_model(model, tmp_path / "m.joblib"))
    assert card["grader"] == "custom" and card["steps"][0]["class"] == "DummyClassifier"
    assert card["classes"] == ["I", "II", "III"] and card["target"] == "level" and card["fnpgrade_version"]
    assert card["synthetic"] is None and card["label_counts"] is None and card["validation"] is None
    text = format_model_card(card)
    assert "older fnpgrade" not in text and "Model card: custom pipeline (DummyClassifier)" in text
    assert "training data not recorded" in text and "make_model_card records it" in text
    # a card given is kept as given
    given = make_model_card(model, LEVELS_Y, SUBJECTS, synthetic=True)
    assert load_model_with_card(save_model(model, tmp_path / "n.joblib", card=given))[1] == given


def test_describe_model_kinds():
    assert describe_model(None) == {"grader": None, "steps": []}
    assert describe_model(make_measures_pipeline())["grader"] == "measures"
    assert describe_model(make_phcnn_pipeline())["grader"] == "network"
    assert describe_model(DummyClassifier())["grader"] == "custom"


@pytest.mark.parametrize("accuracy, expected", [(0.35, True), (0.9, False), (None, False)])
def test_at_chance(accuracy, expected):
    card = make_model_card(None, LEVELS_Y, SUBJECTS, synthetic=True)
    card["validation_accuracy"] = accuracy
    assert at_chance(card) is expected


def test_a_card_from_an_older_fnpgrade_still_formats():
    old = {"fnpgrade_version": "0.0.9", "created": "2025-01-01", "synthetic": False, "data": "study",
           "target": "level", "classes": ["I", "II"], "n_clips": 4, "n_subjects": 2, "label_counts": {"I": 2, "II": 2},
           "settings": {"arch": "phcnn-lstm", "width": 0.25}, "validation_accuracy": None, "chance_accuracy": 0.5}
    text = format_model_card(old)
    assert text.startswith("Model card: network grader (phcnn-lstm, width 0.25)")
    assert "held-out accuracy" not in text  # an old card had no such slot: nothing claimed either way
