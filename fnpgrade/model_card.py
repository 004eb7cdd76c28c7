"""Model cards: what a saved grader was trained on, stored with it and printed before its grades.

A clinician reading a grade needs to know where the model came from: real
patients or synthetic faces, how many people, which grades, at which frame
rate and clip length. :func:`make_model_card` records that when the model is
trained; :func:`~fnpgrade.persistence.save_model` stores it in the model file;
``fnpgrade predict`` prints :func:`format_model_card` above its grades.
"""

from __future__ import annotations

import datetime

import numpy as np

__all__ = ["make_model_card", "format_model_card", "at_chance"]


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
    best = history[-1].get("best_epoch") if isinstance(history[-1], dict) else None
    if isinstance(best, (int, np.integer)) and 1 <= best <= len(history) and "valid_acc" in history[int(best) - 1]:
        return float(history[int(best) - 1]["valid_acc"])
    return float(max(scores))


def make_model_card(model, y, groups=None, *, synthetic, data_name="", target="level", fps=None,
                    clip_length=None, settings=None, n_clips_skipped=0, coverage=None):
    """Describe what a fitted grader was trained on.

    Parameters
    ----------
    model : estimator
        The fitted pipeline (its final step's skorch history, when there is one,
        gives the validation accuracy).
    y : array-like
        The training labels (one per clip actually used).
    groups : array-like or None
        Subject ids of those clips.
    synthetic : bool
        True when the clips were made by :func:`fnpgrade.make_palsy_clips`
        (warped photos, not patients). Keyword-only and required: a card must
        never leave this to a default.
    data_name : str, default=""
        A short name of the data (a folder name, never a machine path).
    target : {"level", "hb"}, default="level"
    fps : float or None
        The frame rate videos were resampled to (``None``: their own rate).
    clip_length : int or None
        Frames per training clip, when videos were cut into clips.
    settings : dict or None
        Training settings worth repeating (architecture, width, epochs, ...).
    n_clips_skipped : int, default=0
        Clips left out because too few of their frames showed a face.
    coverage : array-like or None
        Face coverage of each training clip (frames with a verified face /
        frames read).

    Returns
    -------
    card : dict
        JSON-ready; keys ``fnpgrade_version``, ``created``, ``synthetic``,
        ``data``, ``target``, ``classes``, ``n_clips``, ``n_subjects``,
        ``label_counts``, ``fps``, ``clip_length``, ``settings``,
        ``n_clips_skipped``, ``coverage_min``, ``coverage_median``,
        ``validation_accuracy`` and ``chance_accuracy``.

    Examples
    --------
    >>> from fnpgrade.model_card import make_model_card
    >>> card = make_model_card(None, ["I", "II", "II"], ["a", "b", "c"], synthetic=True, fps=6)
    >>> card["n_subjects"], card["label_counts"], card["chance_accuracy"]
    (3, {'I': 1, 'II': 2}, 0.667)
    """
    from . import __version__

    y = np.asarray(y, dtype=object)
    counts = _counts(y)
    coverage = None if coverage is None or not len(coverage) else np.asarray(coverage, dtype=float)
    # "chance" here is what always answering the commonest label scores (at least 1/K)
    chance = max(max(counts.values()) / len(y), 1.0 / len(counts)) if len(y) else None
    return {
        "fnpgrade_version": __version__,
        "created": datetime.date.today().isoformat(),
        "synthetic": bool(synthetic),
        "data": str(data_name),
        "target": target,
        "classes": [str(c) for c in getattr(model, "classes_", sorted(counts))],
        "n_clips": int(len(y)),
        "n_subjects": None if groups is None else int(len(set(np.asarray(groups, dtype=str)))),
        "label_counts": counts,
        "fps": fps,
        "clip_length": clip_length,
        "settings": dict(settings or {}),
        "n_clips_skipped": int(n_clips_skipped),
        "coverage_min": None if coverage is None else round(float(coverage.min()), 3),
        "coverage_median": None if coverage is None else round(float(np.median(coverage)), 3),
        "validation_accuracy": None if model is None else _validation_accuracy(model),
        "chance_accuracy": None if chance is None else round(float(chance), 3),
    }


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
    settings = card.get("settings") or {}
    what = settings.get("arch", "grader")
    details = ", ".join(f"{k} {settings[k]}" for k in ("width", "epochs", "preset") if k in settings)
    lines = [f"Model card: {what}{f' ({details})' if details else ''}, fnpgrade {card.get('fnpgrade_version')}, "
             f"trained {card.get('created')}"]
    kind = "SYNTHETIC data (faces warped from photos, not patients)" if card.get("synthetic") else "real data"
    counts = ", ".join(f"{k}={v}" for k, v in (card.get("label_counts") or {}).items())
    subjects = card.get("n_subjects")
    name = f" {card['data']!r}" if card.get("data") else ""
    lines.append(f"  trained on {kind}{name}: "
                 f"{card.get('n_clips')} clips of {subjects if subjects is not None else 'unknown'} subjects; "
                 f"{'HB grades' if card.get('target') == 'hb' else 'levels'} {counts}")
    if card.get("n_clips_skipped"):
        n = card["n_clips_skipped"]
        lines.append(f"  {n} clip{'s' * (n != 1)} left out of training: too little face in "
                     f"{'them' if n != 1 else 'it'}")
    rate = f"{card['fps']:g} fps" if card.get("fps") else "the videos' own frame rate"
    clips = f"clips of {card['clip_length']} frames" if card.get("clip_length") else "whole videos as clips"
    lines.append(f"  videos read at {rate}; {clips}")
    accuracy, chance = card.get("validation_accuracy"), card.get("chance_accuracy")
    if accuracy is not None:
        lines.append(f"  validation accuracy {accuracy:.2f} (chance {chance:.2f})"
                     + ("  <- AT CHANCE: this model has not learned to grade" if at_chance(card) else ""))
    return "\n".join(lines)


def at_chance(card, margin=0.05):
    """Whether a card's validation accuracy is within ``margin`` of chance (``False`` when unknown)."""
    accuracy, chance = (card or {}).get("validation_accuracy"), (card or {}).get("chance_accuracy")
    return accuracy is not None and chance is not None and accuracy <= chance + margin

