"""The base of the detector and landmark backends: a model loaded lazily, never pickled."""

from __future__ import annotations

import abc

__all__ = ["LazyModelBackend"]


class LazyModelBackend(abc.ABC):
    """A backend whose model is built on first use and dropped when pickled.

    Loading in ``__init__`` would make estimators slow to clone and impossible
    to pickle (dlib and OpenCV models do not pickle); subclasses implement
    ``_load`` and the estimators call ``load`` in ``fit``.

    Parameters
    ----------
    **options
        Backend-specific options (e.g. ``model_path``), kept in ``self.options``.
    """

    name = "base"

    def __init__(self, **options):
        self.options = options
        self._model = None

    def load(self):
        """Build the model once; return self."""
        if self._model is None:
            self._model = self._load()
        return self

    def __getstate__(self):
        # Loaded models are large and some (OpenCV, dlib) do not pickle: drop them, reload lazily.
        state = self.__dict__.copy()
        state["_model"] = None
        return state

    @abc.abstractmethod
    def _load(self):
        """Build and return the model (called once, lazily)."""
