"""Model cards: what a saved grader was trained on, stored with it and printed before its grades.

A clinician reading a grade needs to know what the model is and where it came
from: which grader (the clinical measures grader, the paper's network, or a
pipeline of your own) with which steps and settings, real patients or
synthetic faces, how many people, which grades, at which frame rate and clip
length, and how well it graded people it was not trained on, when that was
measured. :func:`make_model_card` records that when the model is trained
(:func:`describe_model` reads the steps from the pipeline itself);
:func:`~fnpgrade.persistence.save_model` stores it in the model file, building
one from the pipeline when none is given; ``fnpgrade predict`` prints
:func:`format_model_card` above its grades.
"""

from __future__ import annotations

import datetime

import numpy as np

__all__ = ["make_model_card", "describe_model", "format_model_card", "at_chance"]


def _counts(values):
    labels, counts = np.unique(np.asarray(values, dtype=str), return_counts=True)
    return {str(k): int(v) for k, v in zip(labels, counts)}


def _validation_accuracy(model):
    """The kept epoch's validation accuracy from a skorch history, or None (no history / no split)."""
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    history = getattr(final, "history_", None) or getattr(final, "history", None)
    if not history:
        return None
    try:
        scores = [row["valid_acc"] for row in history if "valid_acc" in row]
    except TypeError:
        return None
    if not scores:
        return None
    # the kept epoch: the last one PHCNNClassifier's best-epoch checkpoint flagged ("event_best")
    kept = [row for row in history if isinstance(row, dict) and row.get("event_best") and "valid_acc" in row]
    if kept:
        return float(kept[-1]["valid_acc"])
    return float(max(scores))


#: Parameters of each step class worth a line on the card (all simple parameters are stored).
_KEY_PARAMS = {
    "FaceDetector": ("backend", "fps"),
    "LandmarkROICropper": ("landmarks", "registration"),
    "SequenceWindower": ("length",),
    "FaceMeasures": ("neutral",),
    "PHCNNClassifier": ("arch", "width", "max_epochs", "batch_size", "lr"),
    "AcceleratedPHCNNClassifier": ("arch", "width", "max_epochs", "batch_size", "lr"),
    "RandomForestClassifier": ("n_estimators", "class_weight"),
    "HealthyRangeClassifier": ("estimator", "estimator__n_estimators", "estimator__class_weight", "softness"),
}
#: Parameters that say how a model ran, not what it is.
_RUN_PARAMS = {"verbose", "n_jobs", "memory", "device", "checkpoint_dir", "runtime"}


def _simple(value):
    """``value`` as JSON when it is a plain setting (a number, text, flag or a short tuple of them), else a miss."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (tuple, list)) and len(value) <= 8 and all(
            v is None or isinstance(v, (bool, str, int, float, np.integer, np.floating)) for v in value):
        return [_simple(v) for v in value]
    return _MISSING


_MISSING = object()


def _steps_of(model):
    if model is None:
        return []
    return list(model.steps) if hasattr(model, "steps") else [(type(model).__name__.lower(), model)]


def describe_model(model):
    """What a grader is: which kind, and its steps with their settings.

    Parameters
    ----------
    model : estimator or None
        A pipeline (from :func:`~fnpgrade.make_measures_pipeline`,
        :func:`~fnpgrade.make_phcnn_pipeline` or your own) or a single
        estimator.

    Returns
    -------
    description : dict
        ``grader``: ``"measures"`` (a :class:`~fnpgrade.measures.FaceMeasures`
        step, the clinical grader), ``"network"`` (a
        :class:`~fnpgrade.PHCNNClassifier` final step) or ``"custom"``
        (anything else); ``None`` without a model. ``steps``: one dict per step,
        ``name``, ``class`` and ``params`` (its plain settings: numbers, text,
        flags; objects and run-time settings such as ``n_jobs`` or ``device``
        left out).

    Examples
    --------
    >>> from fnpgrade import make_measures_pipeline
    >>> from fnpgrade.model_card import describe_model
    >>> info = describe_model(make_measures_pipeline())
    >>> info["grader"], [step["class"] for step in info["steps"]]
    ('measures', ['FaceDetector', 'LandmarkROICropper', 'FaceMeasures', 'HealthyRangeClassifier'])
    >>> info["steps"][2]["params"]["neutral"]
    False
    """
    steps = []
    for name, step in _steps_of(model):
        if step is None or step == "passthrough":
            continue
        params = {}
        getter = getattr(step, "get_params", None)
        for key, value in (getter(deep=False) if getter else {}).items():
            if key in _RUN_PARAMS:
                continue
            if hasattr(value, "get_params"):  # a wrapped estimator: its class, and its settings prefixed sklearn's way
                params[key] = type(value).__name__
                params.update({f"{key}__{k}": _simple(v) for k, v in value.get_params(deep=False).items()
                               if k not in _RUN_PARAMS and _simple(v) is not _MISSING})
                continue
            value = _simple(value)
            if value is not _MISSING:
                params[key] = value
        steps.append({"name": str(name), "class": type(step).__name__, "params": params})
    classes = [s["class"] for s in steps]
    if not steps:
        grader = None
    elif "FaceMeasures" in classes:
        grader = "measures"
    elif hasattr(_steps_of(model)[-1][1], "predict_windows") or classes[-1].endswith("PHCNNClassifier"):
        grader = "network"
    else:
        grader = "custom"
    return {"grader": grader, "steps": steps}


def _training_clips_from_model(model):
    """``(n_clips, coverage)`` the first step's fit-time report recorded (a FaceDetector's), or ``(None, None)``."""
    steps = _steps_of(model)
    report = getattr(steps[0][1], "report_", None) if steps else None
    if not isinstance(report, list) or not report or not all(isinstance(r, dict) for r in report):
        return None, None
    kept = [r for r in report if not r.get("blank")]
    coverage = [r["coverage"] for r in kept if "coverage" in r]
    return len(kept), (coverage or None)


def make_model_card(model, y=None, groups=None, *, synthetic, data_name="", target=None, fps=None,
                    clip_length=None, settings=None, n_clips_skipped=0, coverage=None, validation=None):
    """Describe a fitted grader and what it was trained on.

    Parameters
    ----------
    model : estimator or None
        The fitted pipeline. Its steps and their settings are recorded
        (:func:`describe_model`); its final step's skorch history, when there
        is one, gives the internal validation accuracy.
    y : array-like or None, default=None
        The training labels (one per clip actually used); ``None``: not
        recorded (the clip count is then read from the face detector's
        fit-time report when the model has one).
    groups : array-like or None, default=None
        Subject ids of those clips.
    synthetic : bool or None
        True when the clips were made by :func:`fnpgrade.make_palsy_clips`
        (warped photos, not patients), False for your own videos, None when
        not known (a card built from the model alone). Keyword-only and
        required: a card must never leave this to a default.
    data_name : str, default=""
        A short name of the data (a folder name, never a machine path).
    target : {"level", "hb"} or None, default=None
        What the model predicts; ``None``: read from its classes (HB grades are
        numbers 1-6, levels I/II/III).
    fps : float or None
        The frame rate videos were resampled to (``None``: their own rate).
    clip_length : int or None
        Frames per training clip, when videos were cut into clips.
    settings : dict or None
        Training settings worth repeating (for the network: architecture,
        preset, width, epochs, ...).
    n_clips_skipped : int, default=0
        Clips left out because too few of their frames showed a face.
    coverage : array-like or None
        Face coverage of each training clip (frames with a verified face /
        frames read).
    validation : dict or None, default=None
        Held-out scores measured on people the model was not trained on
        (person-wise cross-validation), e.g. ``{"method": "person-wise
        5-fold cross-validation", "clip_accuracy": ..., "person_accuracy":
        ..., "brier": ..., "n_subjects": ...}`` (``brier``: the multiclass Brier
        score of the held-out probabilities, their calibration). ``None``: not measured; the card says so.
        Never fill it with training-set scores.

    Returns
    -------
    card : dict
        JSON-ready; keys ``fnpgrade_version``, ``created``, ``grader``,
        ``steps``, ``synthetic``, ``data``, ``target``, ``classes``,
        ``n_clips``, ``n_subjects``, ``label_counts``, ``fps``,
        ``clip_length``, ``settings``, ``n_clips_skipped``,
        ``coverage_min``, ``coverage_median``, ``validation``,
        ``validation_accuracy`` (the network's internal validation split,
        which holds out clips, and people when subject ids are given) and
        ``chance_accuracy``.

    Examples
    --------
    >>> from fnpgrade.model_card import make_model_card
    >>> card = make_model_card(None, ["I", "II", "II"], ["a", "b", "c"], synthetic=True, fps=6)
    >>> card["n_subjects"], card["label_counts"], card["chance_accuracy"], card["target"]
    (3, {'I': 1, 'II': 2}, 0.667, 'level')
    """
    from . import __version__

    description = describe_model(model)
    n_clips = None
    if y is None:
        counts, chance = None, None
        n_clips, recorded = _training_clips_from_model(model)
        coverage = recorded if coverage is None else coverage
    else:
        y = np.asarray(y, dtype=object)
        counts = _counts(y)
        n_clips = int(len(y))
        # "chance" here is what always answering the commonest label scores (at least 1/K)
        chance = max(max(counts.values()) / len(y), 1.0 / len(counts)) if len(y) else None
    coverage = None if coverage is None or not len(coverage) else np.asarray(coverage, dtype=float)
    classes = getattr(model, "classes_", None)
    classes = [str(c) for c in (classes if classes is not None else sorted(counts or {}))]
    if target is None:
        target = "hb" if classes and all(c.isdigit() for c in classes) else "level"
    return {
        "fnpgrade_version": __version__,
        "created": datetime.date.today().isoformat(),
        "grader": description["grader"],
        "steps": description["steps"],
        "synthetic": None if synthetic is None else bool(synthetic),
        "data": str(data_name),
        "target": target,
        "classes": classes,
        "n_clips": n_clips,
        "n_subjects": None if groups is None else int(len(set(np.asarray(groups, dtype=str)))),
        "label_counts": counts,
        "fps": fps,
        "clip_length": clip_length,
        "settings": dict(settings or {}),
        "n_clips_skipped": int(n_clips_skipped),
        "coverage_min": None if coverage is None else round(float(coverage.min()), 3),
        "coverage_median": None if coverage is None else round(float(np.median(coverage)), 3),
        "validation": None if validation is None else dict(validation),
        "validation_accuracy": None if model is None else _validation_accuracy(model),
        "chance_accuracy": None if chance is None else round(float(chance), 3),
    }


def _step_text(step):
    keys = _KEY_PARAMS.get(step["class"], ())
    shown = ", ".join(f"{k} {step['params'][k]}" for k in keys if k in step["params"])
    return f"{step['class']} ({shown})" if shown else step["class"]


def _headline(card):
    grader, settings = card.get("grader"), card.get("settings") or {}
    steps = card.get("steps") or []
    details = ", ".join(f"{k} {settings[k]}" for k in ("width", "epochs", "preset") if k in settings)
    if grader == "measures":
        final = steps[-1]["class"] if steps else "a classifier"
        what = f"measures grader (the clinical grader: measures of each side's face -> {final})"
    elif grader == "network" or (grader is None and "arch" in settings):
        arch = settings.get("arch") or next((s["params"].get("arch") for s in steps if "arch" in s["params"]), None)
        what = f"network grader ({arch or 'network'}{f', {details}' if details else ''})"
    elif grader == "custom":
        what = f"custom pipeline ({' -> '.join(s['class'] for s in steps)})"
    else:
        what = "grader"
    return f"Model card: {what}, fnpgrade {card.get('fnpgrade_version')}, trained {card.get('created')}"


def format_model_card(card):
    """The card as a few lines of text for a console.

    Parameters
    ----------
    card : dict or None
        From :func:`make_model_card` (``None``: a model saved without one).

    Returns
    -------
    text : str
    """
    if not card:
        return ("Model card: none (saved without one, by an older fnpgrade or a plain joblib.dump): what this "
                "model was trained on is unknown.")
    lines = [_headline(card)]
    if card.get("steps"):
        lines.append("  steps: " + " -> ".join(_step_text(s) for s in card["steps"]))
    what = "HB grades" if card.get("target") == "hb" else "levels"
    counts = ", ".join(f"{k}={v}" for k, v in (card.get("label_counts") or {}).items())
    subjects = card.get("n_subjects")
    if card.get("synthetic") is None and card.get("label_counts") is None:
        clips = f"{card['n_clips']} clips; " if card.get("n_clips") is not None else ""
        lines.append(f"  training data not recorded ({clips}saved from Python without a card; "
                     "fnpgrade.model_card.make_model_card records it); predicts "
                     f"{what} {', '.join(card.get('classes') or [])}")
    else:
        kind = {True: "SYNTHETIC data (faces warped from photos, not patients)", False: "real data",
                None: "data of unrecorded origin"}[card.get("synthetic")]
        name = f" {card['data']!r}" if card.get("data") else ""
        people = "unknown subjects" if subjects is None else f"{subjects} subject{'s' * (subjects != 1)}"
        lines.append(f"  trained on {kind}{name}: {card.get('n_clips')} clips of {people}; {what} {counts}")
    if card.get("n_clips_skipped"):
        n = card["n_clips_skipped"]
        lines.append(f"  {n} clip{'s' * (n != 1)} left out of training: too little face in "
                     f"{'them' if n != 1 else 'it'}")
    rate = f"{card['fps']:g} fps" if card.get("fps") else "the videos' own frame rate"
    clips = f"clips of {card['clip_length']} frames" if card.get("clip_length") else "whole videos as clips"
    lines.append(f"  videos read at {rate}; {clips}")
    if "validation" in card:
        lines.append("  held-out accuracy (people not trained on): " + _validation_text(card.get("validation")))
    accuracy, chance = card.get("validation_accuracy"), card.get("chance_accuracy")
    if accuracy is not None:
        lines.append(f"  validation accuracy {accuracy:.2f} (chance {chance:.2f}; the network's internal "
                     "validation split)"
                     + ("  <- AT CHANCE: this model has not learned to grade" if at_chance(card) else ""))
    return "\n".join(lines)


def _validation_text(validation):
    if not validation:
        return "not measured when this model was saved; 'fnpgrade cv' with the same options measures it"
    parts = [f"{label} {validation[key]:.2f}" for key, label in (("clip_accuracy", "per clip"),
                                                                   ("person_accuracy", "per person"))
             if validation.get(key) is not None]
    if validation.get("brier") is not None:
        parts.append(f"Brier score {validation['brier']:.2f} (a uniform answer {validation['uniform_brier']:.2f})")
    method = validation.get("method")
    return (", ".join(parts) or "recorded") + (f" ({method})" if method else "")


def at_chance(card, margin=0.05):
    """Whether a card's validation accuracy is within ``margin`` of chance (``False`` when unknown)."""
    accuracy, chance = (card or {}).get("validation_accuracy"), (card or {}).get("chance_accuracy")
    return accuracy is not None and chance is not None and accuracy <= chance + margin

