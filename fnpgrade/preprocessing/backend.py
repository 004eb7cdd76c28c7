"""The base of the detector and landmark backends: a model loaded lazily, never pickled, loaded once per process.

:class:`LazyModelBackend` is the one base of ``DETECTOR_BACKENDS``
(:mod:`fnpgrade.preprocessing.detectors`) and ``LANDMARK_BACKENDS``
(:mod:`fnpgrade.preprocessing.landmarks`); :func:`loaded_backend` is their one
model cache.
"""

from __future__ import annotations

import abc

__all__ = ["LazyModelBackend", "loaded_backend", "loaded_copies"]


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
    #: Whether separate loaded copies may run at once on threads and gain (the native code releases the GIL
    #: and runs single-threaded). :func:`loaded_copies` gives one copy per thread.
    runs_on_threads = False

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


_LOADED = {}


def loaded_backend(backend, copy=0):
    """A loaded backend of ``backend``'s class and options, one per process.

    Loading a model (dlib's shape predictor, a torch network) takes far longer
    than running it on a frame: estimators and joblib workers share one loaded
    copy per configuration across clips, fits and clones.

    Parameters
    ----------
    backend : LazyModelBackend
        An (unloaded) backend; its class, its options and the weights file it
        would read (``weights_path()``, where it has one: a cached file may be
        replaced) make the key.
    copy : int, default=0
        Which of the process's loaded copies (``0``: the one shared copy; others
        are for threads running the model at once, :func:`loaded_copies`).

    Returns
    -------
    backend : LazyModelBackend
        The cached, loaded instance (``backend`` itself the first time).
    """
    weights = backend.weights_path() if hasattr(backend, "weights_path") else None
    key = (type(backend), weights, tuple(sorted((k, str(v)) for k, v in backend.options.items())), copy)
    if key not in _LOADED:
        if copy:
            backend = type(backend)(**backend.options)
        _LOADED[key] = backend.load()
    return _LOADED[key]


def loaded_copies(backend, n):
    """``backend`` (loaded) and ``n - 1`` more loaded copies of it, one per thread running the model.

    Only a backend with ``runs_on_threads`` gets more than itself: a model
    object is not safe to call from two threads at once, and one that holds the
    GIL would gain nothing. The copies are the process's (:func:`loaded_backend`),
    loaded once and kept for the next clip.
    """
    n = max(1, int(n)) if getattr(backend, "runs_on_threads", False) else 1
    return [backend] + [loaded_backend(backend, copy=k) for k in range(1, n)]
