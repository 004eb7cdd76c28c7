"""ClipTransformer: the base of the per-clip preprocessing steps.

A per-clip step maps a list of clips to a list of results, one per clip, with
one report dict per clip: ``transform_report_`` after every ``transform``, and
``report_``, the fit-time report, after ``fit_transform`` (which is what
``Pipeline.fit`` calls), so that predicting never overwrites what training saw. What they all need, and what the base
does once: run the clips in order or in joblib workers (each worker uses its
process's loaded model, not a copy unpickled per clip), show a progress bar,
collect the reports, and pickle without the loaded model.
"""

from __future__ import annotations

import abc

from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["ClipTransformer"]


class ClipTransformer(TransformerMixin, BaseEstimator, abc.ABC):
    """Base class of the steps that transform each clip on its own.

    Subclasses implement :meth:`_transform_one` and, when they hold a model,
    name its fitted attribute in ``_model_attribute`` and implement
    :meth:`_unloaded_model` and :meth:`_worker_model`. They call
    :meth:`_map_clips` from ``transform``. Their ``__init__`` takes ``n_jobs``
    and ``verbose``.

    The progress bar counts clips; a step whose clips can be long (a video)
    counts frames instead by overriding :meth:`_progress_total` and
    :meth:`_progress_done`, and by advancing the ``progress`` bar it is given
    while it reads the clip.
    """

    #: Fitted attribute holding a loaded :class:`~fnpgrade.preprocessing.backend.LazyModelBackend`
    #: (dropped when pickling), or None.
    _model_attribute = None
    #: Unit of the progress bar.
    _progress_unit = "clip"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # a step that holds a model must say what pickles in its place, or pickling would lose it
        if cls._model_attribute is not None and cls._unloaded_model is ClipTransformer._unloaded_model:
            raise TypeError(f"{cls.__name__} holds a model in {cls._model_attribute!r} and must implement "
                            "_unloaded_model() (the unloaded backend that pickles in its place).")

    @abc.abstractmethod
    def _transform_one(self, clip, index, model=None, progress=None):
        """``(result, report)`` for clip ``index``, using ``model`` (default: the fitted one)."""

    def _unloaded_model(self):
        """A fresh, unloaded copy of the model backend (what pickles in its place); None: no model."""
        return None

    def _worker_model(self):
        """The model to use in a joblib worker process (the process's cached loaded copy)."""
        return None

    def _progress_total(self, clips):
        return len(clips)

    def _progress_done(self, report):
        """How far a clip finished in a worker advances the bar."""
        return 1

    def _map_clips(self, clips):
        """Transform every clip, in order; set ``transform_report_``; return the results as a list."""
        bar = self._progress_bar(clips)
        results = []
        try:
            if self.n_jobs in (None, 1) or len(clips) == 1:
                per_clip = self._progress_unit == "clip"
                for index, clip in enumerate(clips):
                    results.append(self._transform_one(clip, index, progress=None if per_clip else bar))
                    if bar is not None and per_clip:
                        bar.update(1)
            else:
                from joblib import Parallel, delayed

                parallel = Parallel(n_jobs=self.n_jobs, return_as="generator")
                for result in parallel(delayed(_transform_in_worker)(self, clip, index)
                                       for index, clip in enumerate(clips)):
                    results.append(result)
                    if bar is not None:  # workers cannot update the parent's bar: count a clip when it is done
                        bar.update(self._progress_done(result[1]))
        finally:
            if bar is not None:
                bar.close()
        self.transform_report_ = [report for _, report in results]
        return [result for result, _ in results]

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, transform ``X``, and keep its report as the fit-time ``report_``.

        Parameters
        ----------
        X : list
            The clips.
        y : ignored
        **fit_params : dict
            Passed to ``fit``.

        Returns
        -------
        Xt : list or ndarray
            As ``transform``.
        """
        out = self.fit(X, y, **fit_params).transform(X)
        self.report_ = list(self.transform_report_)
        return out

    def _progress_bar(self, clips):
        if not self.verbose:
            return None
        from ..utils import progress_bar

        desc = type(self).__name__
        if self._progress_unit != "clip":
            desc += f" ({len(clips)} clip{'s' * (len(clips) != 1)})"
        # shown on a terminal only: redirected to a file or a pipe, no bar (tqdm's disable=None)
        return progress_bar(total=self._progress_total(clips), desc=desc, unit=self._progress_unit)

    def __getstate__(self):
        state = self.__dict__.copy()
        if self._model_attribute is not None and self._model_attribute in state:
            state[self._model_attribute] = self._unloaded_model()  # loaded models do not pickle
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags


def _transform_in_worker(estimator, clip, index):
    return estimator._transform_one(clip, index, model=estimator._worker_model())
