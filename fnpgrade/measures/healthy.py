"""The healthy range: how unlike its two sides a healthy face moves, and a grader that respects it.

House-Brackmann I is "normal symmetrical function in all areas"; every
other grade has a weaker side. Healthy faces are not perfectly symmetric,
so *symmetric* means within the range measured on healthy faces: the weaker
side moves at least :data:`HEALTHY_RATIO` of the other (the weighted geometric
mean of the measurement's readings, :func:`~fnpgrade.measures.video.side_asymmetry`;
the report's affected-side rule, :mod:`fnpgrade.report.side`, draws the same
line). A classifier trained on measures learns this line only as well as
its training faces show it: one trained on synthetic faces, which are
symmetric when healthy, calls a real healthy face with its natural
asymmetry "II".

:class:`HealthyRangeClassifier` puts the clinical definition beside the
learned one. Its classifier's probabilities are combined with the
asymmetry's evidence for "a side is weaker", a logistic step around the
healthy line (a product of the two experts):

* ``P(lowest grade)`` is multiplied by ``1 - w`` and every other grade's by
  ``w``, then renormalised, where ``w = 1 / (1 + exp(-(a - a0) / softness))``,
  ``a`` the face's asymmetry (``|log(weaker / stronger)|``) and
  ``a0 = -log(HEALTHY_RATIO)``;
* a face that barely moved (its largest movement under
  :data:`MIN_NOISE_UNITS` times the noise floor) gives no evidence
  (``w = 0.5``): the classifier decides alone.

Well inside the healthy range the grade is the lowest; well beyond it never
is; near the line the classifier's own probabilities decide.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_array, check_is_fitted

from .video import NOISE_IOD, VIDEO_FEATURE_NAMES

__all__ = ["HEALTHY_RATIO", "MIN_NOISE_UNITS", "SOFTNESS", "noise_units", "asymmetry_evidence", "HealthyRangeClassifier"]

#: The weaker side moves less than this share of the other (weighted geometric mean over the readings): beyond the
#: healthy range. Healthy faces' sides differ by up to about 15 % in these readings (``docs/results.md``).
HEALTHY_RATIO = 0.85

#: Below this many times the noise floor, the face did not move enough to compare its sides.
MIN_NOISE_UNITS = 2.0

#: Width of the logistic step around the healthy line, in units of ``log(weaker / stronger)``: about the
#: spread of the asymmetry between resamples of one video's frames.
SOFTNESS = 0.03

_ASYMMETRY = VIDEO_FEATURE_NAMES.index("side_asymmetry")
_LARGEST = VIDEO_FEATURE_NAMES.index("expression_amount")
_NOISE = VIDEO_FEATURE_NAMES.index("reference_movement")

# the healthy grade by the label sets fnpgrade trains on, compared as text: levels, HB grades (numbers or text)
_HEALTHY_LABELS = ("I", "1")


def noise_units(largest, noise):
    """The face's largest peak movement in noise floors (the nose bridge's peak, at least
    :data:`~fnpgrade.measures.video.NOISE_IOD`): below :data:`MIN_NOISE_UNITS`, it did not move enough to compare
    its sides. One rule for the grader (from the measures' columns) and the report's side (from the
    measurement)."""
    return np.asarray(largest, float) / np.maximum(NOISE_IOD, np.asarray(noise, float))


def asymmetry_evidence(features, softness=SOFTNESS):
    """Per row of :data:`~fnpgrade.measures.VIDEO_FEATURE_NAMES` measures, the evidence that a side is weaker.

    Parameters
    ----------
    features : array-like, shape (n_clips, len(VIDEO_FEATURE_NAMES))
        :class:`~fnpgrade.measures.FaceMeasures` output.
    softness : float, default=SOFTNESS

    Returns
    -------
    weight : ndarray, shape (n_clips,)
        0 (well within the healthy range) to 1 (well beyond it); 0.5 where the face barely moved or
        was not measured.
    """
    features = np.asarray(features, float)
    asymmetry = features[:, _ASYMMETRY]
    with np.errstate(over="ignore", invalid="ignore"):
        weight = 1.0 / (1.0 + np.exp(-(asymmetry + np.log(HEALTHY_RATIO)) / softness))
        moved = noise_units(features[:, _LARGEST], features[:, _NOISE]) >= MIN_NOISE_UNITS
    return np.where(moved & np.isfinite(weight), weight, 0.5)


class HealthyRangeClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A classifier of face measures whose lowest grade means "within the healthy range".

    Wraps a classifier trained on :class:`~fnpgrade.measures.FaceMeasures`
    rows and combines its probabilities with the face's side-to-side
    asymmetry (see the module docstring): a face whose sides move alike is
    graded I (HB1), one with a clearly weaker side is never. The default
    grader of :func:`~fnpgrade.make_measures_pipeline`.

    Parameters
    ----------
    estimator : classifier
        Any scikit-learn classifier with ``predict_proba``, fitted on a clone.
    softness : float, default=SOFTNESS
        Width of the step around the healthy line (``log`` units); smaller is
        a harder rule, larger leaves more to the classifier.

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone.
    classes_ : ndarray
        As the estimator's. The healthy class is ``"I"`` (levels) or ``1``
        (House-Brackmann grades); without it the probabilities pass unchanged.
    n_features_in_ : int

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from fnpgrade.measures.healthy import HealthyRangeClassifier
    >>> grader = HealthyRangeClassifier(RandomForestClassifier(n_estimators=50, random_state=0))
    >>> grader.softness
    0.03
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "softness": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, estimator, softness=SOFTNESS):
        self.estimator = estimator
        self.softness = softness

    def _check_features(self, X, where):
        X = check_array(X, ensure_all_finite="allow-nan", dtype=float)
        if X.shape[1] != len(VIDEO_FEATURE_NAMES):
            raise ValueError(f"HealthyRangeClassifier.{where}: X has {X.shape[1]} columns; it reads the "
                             f"{len(VIDEO_FEATURE_NAMES)} columns of FaceMeasures (VIDEO_FEATURE_NAMES). Put it "
                             "after a FaceMeasures step, or use your classifier without it.")
        return X

    def fit(self, X, y, **fit_params):
        """Fit a clone of ``estimator`` on the measures ``X`` and grades ``y``.

        Parameters
        ----------
        X : array-like, shape (n_clips, len(VIDEO_FEATURE_NAMES))
        y : array-like, shape (n_clips,)
        **fit_params
            Passed to the estimator's ``fit`` (e.g. ``sample_weight``).

        Returns
        -------
        self
        """
        self._validate_params()
        X = self._check_features(X, "fit")
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        self.classes_ = self.estimator_.classes_
        self.n_features_in_ = X.shape[1]
        return self

    def _healthy_index(self):
        names = [str(c) for c in self.classes_]
        return next((names.index(label) for label in _HEALTHY_LABELS if label in names), None)

    def predict_proba(self, X):
        """Grade probabilities, the classifier's combined with the asymmetry's evidence.

        Parameters
        ----------
        X : array-like, shape (n_clips, len(VIDEO_FEATURE_NAMES))

        Returns
        -------
        proba : ndarray, shape (n_clips, n_classes)
        """
        check_is_fitted(self, "estimator_")
        X = self._check_features(X, "predict_proba")
        proba = np.asarray(self.estimator_.predict_proba(X), float)
        healthy = self._healthy_index()
        if healthy is None or len(self.classes_) < 2:
            return proba
        weight = asymmetry_evidence(X, self.softness)[:, None]
        proba = proba * np.where(np.arange(proba.shape[1]) == healthy, 1.0 - weight, weight)
        total = proba.sum(axis=1, keepdims=True)
        # both experts certain and opposed (the classifier sure of I, the asymmetry sure it is not): 1/k each
        return np.where(total > 1e-12, proba / np.maximum(total, 1e-12), 1.0 / proba.shape[1])

    def predict(self, X):
        """The most probable grade per clip (:meth:`predict_proba`'s arg-max)."""
        check_is_fitted(self, "estimator_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
