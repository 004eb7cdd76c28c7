"""Saving and loading whole fitted pipelines, with version checks.

Security: joblib and pickle files execute code when loaded. Load model files
only from sources you trust. Network weights alone can be saved and loaded
safely with ``PHCNNClassifier.save_params`` / ``load_params`` (``torch.load``
with ``weights_only=True``).
"""

from __future__ import annotations

import platform
from pathlib import Path

import joblib

__all__ = ["save_model", "load_model", "load_model_with_card", "ModelVersionError"]

_FORMAT = "fnpgrade-model/1"


class ModelVersionError(ValueError):
    """A model file was written by another fnpgrade version than the one loading it."""


def _versions():
    # read from the installed packages' metadata: loading a clinical grader never needs torch, and importing it
    # costs a second
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"fnpgrade": __version__, "torch": installed("torch"), "scikit-learn": installed("scikit-learn"),
            "python": platform.python_version()}


def save_model(model, path, compress=3, card=None):
    """Write a fitted pipeline (or estimator) with the versions that made it and its model card.

    Parameters
    ----------
    model : estimator
        Typically the fitted pipeline from :func:`~fnpgrade.make_phcnn_pipeline`.
    path : str or path-like
    compress : int, default=3
        joblib compression level.
    card : dict or None, default=None
        What the model is and was trained on
        (:func:`fnpgrade.model_card.make_model_card`); ``fnpgrade predict``
        prints it above its grades. ``None``: a card is built from the model
        itself (its grader, steps and settings, classes and target; the
        training data are then recorded as unknown: pass a card from
        ``make_model_card(model, y, groups, synthetic=...)`` to record them).
        ``fnpgrade train`` writes a full one.

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from sklearn.dummy import DummyClassifier
    >>> from fnpgrade.persistence import load_model_with_card, save_model
    >>> path = save_model(DummyClassifier().fit([[0], [1]], ["I", "II"]), pathlib.Path(tempfile.mkdtemp()) / "m.joblib")
    >>> card = load_model_with_card(path)[1]
    >>> card["grader"], card["steps"][0]["class"], card["target"], card["synthetic"]
    ('custom', 'DummyClassifier', 'level', None)
    """
    if card is None:
        from .model_card import make_model_card

        card = make_model_card(model, synthetic=None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"format": _FORMAT, "versions": _versions(), "model": model, "card": card}, path,
                compress=compress)
    return path


def load_model(path, allow_version_mismatch=False):
    """Load a model written by :func:`save_model` (or a plain ``joblib.dump`` of a pipeline).

    Only load files from trusted sources: loading runs code from the file.

    Parameters
    ----------
    path : str or path-like
    allow_version_mismatch : bool, default=False
        Load a model saved by another fnpgrade version anyway (its predictions
        may differ; retraining is the safe fix).

    Returns
    -------
    model : estimator

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelVersionError
        If the file was saved by another fnpgrade version, or cannot be
        unpickled with the installed packages.
    """
    return load_model_with_card(path, allow_version_mismatch=allow_version_mismatch)[0]


def load_model_with_card(path, allow_version_mismatch=False):
    """Load a model and its model card (see :func:`load_model` for the checks).

    Parameters
    ----------
    path : str or path-like
    allow_version_mismatch : bool, default=False

    Returns
    -------
    model : estimator
    card : dict or None
        The card saved with the model; ``None`` for files saved without one.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file.")
    try:
        payload = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - unpickling fails in many ways; each means the same to the user
        raise ModelVersionError(
            f"{path}: could not be loaded with the installed fnpgrade/torch/scikit-learn ({exc!r}). The file is "
            "corrupt or was written by incompatible versions; retrain the model with this installation."
        ) from exc
    if not (isinstance(payload, dict) and payload.get("format") == _FORMAT):
        return payload, None  # a plain joblib dump: nothing recorded to check
    saved, current = payload["versions"], _versions()
    if saved["fnpgrade"] != current["fnpgrade"] and not allow_version_mismatch:
        raise ModelVersionError(
            f"{path}: saved by fnpgrade {saved['fnpgrade']}, but fnpgrade {current['fnpgrade']} is installed. "
            f"Install fnpgrade=={saved['fnpgrade']}, retrain, or pass allow_version_mismatch=True to load anyway."
        )
    return payload["model"], payload.get("card")
