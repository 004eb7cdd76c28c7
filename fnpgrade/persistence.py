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

__all__ = ["save_model", "load_model", "ModelVersionError"]

_FORMAT = "fnpgrade-model/1"


class ModelVersionError(ValueError):
    """A model file was written by another fnpgrade version than the one loading it."""


def _versions():
    import sklearn
    import torch

    from . import __version__

    return {"fnpgrade": __version__, "torch": torch.__version__, "scikit-learn": sklearn.__version__,
            "python": platform.python_version()}


def save_model(model, path, compress=3):
    """Write a fitted pipeline (or estimator) with the versions that made it.

    Parameters
    ----------
    model : estimator
        Typically the fitted pipeline from :func:`~fnpgrade.make_phcnn_pipeline`.
    path : str or path-like
    compress : int, default=3
        joblib compression level.

    Returns
    -------
    path : pathlib.Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"format": _FORMAT, "versions": _versions(), "model": model}, path, compress=compress)
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
        return payload  # a plain joblib dump: nothing recorded to check
    saved, current = payload["versions"], _versions()
    if saved["fnpgrade"] != current["fnpgrade"] and not allow_version_mismatch:
        raise ModelVersionError(
            f"{path}: saved by fnpgrade {saved['fnpgrade']}, but fnpgrade {current['fnpgrade']} is installed. "
            f"Install fnpgrade=={saved['fnpgrade']}, retrain, or pass allow_version_mismatch=True to load anyway."
        )
    return payload["model"]
