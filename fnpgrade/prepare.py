"""preprocess_once: the steps of a grader that learn nothing, run once over all clips, faceless clips left out.

Face detection, landmarks, crops, windows and measures learn nothing from the
data, so running them once on every clip before cross-validation leaks
nothing between folds and saves running them once per fold (minutes per
fold on videos). What remains to be fitted per fold is the *learner*: the
pipeline's steps from the first one that learns (an over-sampler, the
classifier). A clip in which the detector found too little face
(``FaceDetector(no_face="blank")``) is left out here, with its labels and
subject, and named, because a step cannot drop it: an imbalanced-learn
sampler resamples ``X`` and ``y`` only, not the ``groups`` later steps
receive (imbalanced-learn issue #457).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

__all__ = ["Preprocessed", "NoFaceToLearnFromError", "preprocess_once", "split_at_learning", "take_rows",
           "groups_fit_params"]


class NoFaceToLearnFromError(ValueError):
    """No clip given to :func:`preprocess_once` shows enough face: nothing is left to learn from."""


@dataclass
class Preprocessed:
    """What :func:`preprocess_once` returns: the learner's inputs, faceless clips left out.

    Attributes
    ----------
    X : list
        The learner's input, one entry per kept clip (windows, registered
        face clips, or a measures array for the clinical grader).
    y, groups : ndarray or None
        Labels and subjects of the kept clips.
    kept : ndarray of bool, shape (n_clips,)
        Which input clips were kept; index any other per-clip array with it.
    left_out : list of dict
        ``source`` and ``coverage`` of each clip left out for too little face.
    coverage : ndarray of float
        The face coverage of each kept clip.
    learner : Pipeline
        The steps still to be fitted (shared with the grader: fitting it fits
        the grader, whose preprocessing is fitted already).
    """

    X: object
    y: np.ndarray | None
    groups: np.ndarray | None
    kept: np.ndarray
    left_out: list
    coverage: np.ndarray
    learner: object


def split_at_learning(pipe):
    """``(preprocessing, learner)``: the leading steps that learn nothing, and the rest (fitted per fold).

    The preprocessing steps are fnpgrade's own (detector, cropper, measures,
    windower): fitted on nothing, safe to run once on all clips. The first
    other step (the jittering over-sampler, which acts in training only, or
    the classifier) and all after it are the learner. Both parts
    share ``pipe``'s step objects, so fitting them fits ``pipe``.
    """
    from .measures import FaceMeasures, FrameMeasures
    from .preprocessing.detect import FaceDetector
    from .preprocessing.roi import LandmarkROICropper
    from .preprocessing.windows import SequenceWindower

    preprocessing = (FaceDetector, LandmarkROICropper, SequenceWindower, FaceMeasures, FrameMeasures)
    k = 0
    while k < len(pipe.steps) - 1 and isinstance(pipe.steps[k][1], preprocessing):
        k += 1
    return pipe[:k], pipe[k:]


def preprocess_once(pipe, X, y=None, groups=None):
    """Run a grader's preprocessing once over all clips; leave out those without enough face.

    Parameters
    ----------
    pipe : Pipeline
        A grader from :func:`~fnpgrade.make_measures_pipeline` or
        :func:`~fnpgrade.make_phcnn_pipeline` (its first step a
        :class:`~fnpgrade.FaceDetector`). Build it with ``no_face="blank"``
        to have faceless clips left out and named; with ``"raise"`` (the
        default) the first one stops the run with its name. Graders built
        with the same ``memory=`` folder and detector settings find the faces
        of the same clips once: the later ones take the fitted detector and
        its tracks from the cache, and it is put into ``pipe``.
    X : list
        Clips: video paths, frame folders or ``(T, H, W, 3)`` arrays.
    y, groups : array-like of shape (n_clips,), optional
        Labels and subject ids, filtered alike.

    Returns
    -------
    prepared : Preprocessed
        ``prepared.learner`` is what remains to fit, on ``prepared.X``; use it
        in ``cross_val_predict(prepared.learner, prepared.X, prepared.y,
        groups=prepared.groups, ...)`` or fit it with
        ``**groups_fit_params(prepared.learner, prepared.groups)``.

    Raises
    ------
    NoFaceToLearnFromError
        When no clip has enough face (a ``ValueError``).

    Examples
    --------
    >>> from sklearn.model_selection import GroupKFold, cross_val_predict
    >>> from fnpgrade import make_measures_pipeline, make_palsy_clips, preprocess_once
    >>> X, y, groups = make_palsy_clips(n_subjects=6, clips_per_subject=2, random_state=0)
    >>> prepared = preprocess_once(make_measures_pipeline(no_face="blank", random_state=0), X, y, groups)
    >>> proba = cross_val_predict(prepared.learner, prepared.X, prepared.y, groups=prepared.groups,
    ...                           cv=GroupKFold(2), method="predict_proba")
    >>> proba.shape[0] == int(prepared.kept.sum()) == len(X) - len(prepared.left_out)
    True
    """
    from .apply import face_detector

    face_detector(pipe)
    preprocessing, learner = split_at_learning(pipe)
    Xt = preprocessing.fit_transform(X)
    # with Pipeline(memory=...) a step fitted before (the same detector on the same clips, for another grader)
    # comes back from the cache as a fitted copy: put the fitted steps into the grader itself
    pipe.steps[:len(preprocessing.steps)] = preprocessing.steps
    detector = face_detector(pipe)
    report = detector.report_
    kept = np.array([not r["blank"] for r in report])
    if not kept.any():
        raise NoFaceToLearnFromError(f"preprocess_once: none of the {len(report)} clips shows enough face (coverage "
                                     f"at least min_coverage={detector.min_coverage:g}); check them with "
                                     "'fnpgrade preview'.")
    if not kept.all():
        Xt = take_rows(Xt, np.flatnonzero(kept))
    y = None if y is None else np.asarray(y)[kept]
    groups = None if groups is None else np.asarray(groups)[kept]
    left_out = [{"source": r["source"], "coverage": r["coverage"]} for r in report if r["blank"]]
    coverage = np.array([r["coverage"] for r in report], dtype=float)[kept]
    return Preprocessed(X=Xt, y=y, groups=groups, kept=kept, left_out=left_out, coverage=coverage,
                        learner=learner)


def take_rows(X, index):
    """Rows ``index`` of a learner's input: a measures array, or a list of clips or windows."""
    return X[index] if isinstance(X, np.ndarray) else [X[i] for i in index]


def groups_fit_params(pipe, groups):
    """``{step__groups: groups}`` for each step of ``pipe`` whose ``fit`` (or ``fit_resample``) takes subject ids.

    The network holds out whole subjects for its validation split, the
    jittering over-sampler copies within a subject: both need the subjects
    of the clips they are fitted on.
    """
    params = {}
    for name, step in pipe.steps:
        method = getattr(step, "fit_resample", None) or getattr(step, "fit", None)
        if method is not None and "groups" in inspect.signature(method).parameters:
            params[f"{name}__groups"] = groups
    return params
