"""Fit-time augmentation of region clips: jittered copies for small classes and short subjects.

The paper (Sec. IV-A) translates and rotates the sequences of patients with
fewer than 16 sequences. :class:`JitterOverSampler` does that, and balances
classes the way imbalanced-learn's over-samplers do, on lists of
:class:`~fnpgrade.RegionClip`. It is an imbalanced-learn sampler, so in an
``imblearn.pipeline.Pipeline`` it runs during ``fit`` only, never at predict.
"""

from __future__ import annotations

import numbers
from collections import Counter

import cv2
import numpy as np
from imblearn.base import BaseSampler
from imblearn.utils import check_sampling_strategy, check_target_type
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets

from .clips import RegionClip

__all__ = ["JitterOverSampler", "jitter_clip"]


def _affine(shape, angle, dx, dy):
    h, w = shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), float(angle), 1.0)
    m[:, 2] += (dx, dy)
    return m


def _warp_stack(frames, matrix):
    h, w = frames.shape[1:3]
    return np.stack([cv2.warpAffine(f, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
                     for f in frames])


def jitter_clip(clip, shift, angle, source=None):
    """A copy of a :class:`~fnpgrade.RegionClip` translated by ``shift`` (dx, dy pixels) and rotated by ``angle`` degrees.

    The same motion is applied to every frame of the face crop and of both
    regions (the shift scaled to each region's width relative to the face
    crop, rotations about each image's centre); ``face_landmarks`` follow the
    face crop, ``landmarks`` (source-frame coordinates) are kept.
    """
    dx, dy = float(shift[0]), float(shift[1])
    face_w = clip.face.shape[2]
    m_face = _affine(clip.face.shape[1:], angle, dx, dy)
    regions = {}
    for name in ("brow", "mouth"):
        arr = getattr(clip, name)
        k = arr.shape[2] / face_w
        regions[name] = _warp_stack(arr, _affine(arr.shape[1:], angle, dx * k, dy * k))
    face_landmarks = None
    if clip.face_landmarks is not None:
        face_landmarks = clip.face_landmarks @ m_face[:, :2].T + m_face[:, 2]
    return RegionClip(face=_warp_stack(clip.face, m_face), brow=regions["brow"], mouth=regions["mouth"],
                      landmarks=clip.landmarks.copy(), face_landmarks=face_landmarks, found=clip.found.copy(),
                      source=source if source is not None else clip.source,
                      occluded=None if clip.occluded is None else clip.occluded.copy())


class JitterOverSampler(BaseSampler):
    """Over-sample region clips with randomly translated and rotated copies.

    Two rules add copies, both at fit time only:

    1. subjects with fewer than ``min_sequences`` clips get copies of their
       clips (cycled in order, each with its own random jitter) up to
       ``min_sequences`` (the paper's rule); this needs ``groups``;
    2. then classes are balanced as ``sampling_strategy`` asks, counted after
       rule 1, drawing clips of each class at random and jittering them.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        As in imbalanced-learn's over-samplers: ``"auto"`` / ``"not majority"``
        bring every class but the majority up to the majority's count,
        ``"minority"``, ``"not minority"``, ``"all"``; a float is the desired
        minority / majority ratio (binary only); a dict gives the target count
        per class; a callable returns such a dict from ``y``.
    min_sequences : int or None, default=16
        Subjects with fewer clips are topped up to this many (the paper's 16).
        ``None`` or 0 disables the rule; it also needs ``groups``.
    max_shift : float, default=6.0
        Largest translation, in pixels of the 128-pixel face crop (regions get
        the same shift relative to their width), drawn uniformly per copy.
    max_rotation : float, default=8.0
        Largest in-plane rotation, in degrees, drawn uniformly per copy.
    random_state : int, RandomState instance or None, default=None
        Controls which clips are copied and their jitter.

    Attributes
    ----------
    sampling_strategy_ : dict
        Copies added per class by rule 2.
    sample_indices_ : ndarray of int, shape (n_samples_out,)
        Index into ``X`` of the clip each output clip comes from (the inputs
        first, in order, then the copies).
    n_subject_copies_ : int
        Copies added by rule 1.

    Notes
    -----
    ``groups`` reach the sampler as ``fit_resample(X, y, groups=groups)``,
    through an imbalanced-learn pipeline as ``pipe.fit(X, y,
    sampler__groups=groups)``, or with scikit-learn metadata routing enabled
    via ``JitterOverSampler().set_fit_resample_request(groups=True)`` (then
    ``cross_validate(..., params={"groups": groups})`` passes them). Without
    groups only rule 2 runs.

    Examples
    --------
    >>> from collections import Counter
    >>> import numpy as np
    >>> from fnpgrade import RegionClip
    >>> from fnpgrade.augment import JitterOverSampler
    >>> def clip(v):
    ...     return RegionClip(face=np.full((4, 128, 128, 3), v, np.uint8), brow=np.zeros((4, 40, 120, 3), np.uint8),
    ...                       mouth=np.zeros((4, 40, 120, 3), np.uint8), landmarks=np.zeros((4, 49, 2)))
    >>> X, y = [clip(i) for i in range(5)], ["I", "III", "III", "III", "III"]
    >>> X_res, y_res = JitterOverSampler(random_state=0).fit_resample(X, y)
    >>> sorted(Counter(y_res.tolist()).items())
    [('I', 4), ('III', 4)]
    >>> X_res, y_res = JitterOverSampler(min_sequences=3, random_state=0).fit_resample(
    ...     X, y, groups=[0, 1, 1, 1, 1])
    >>> len(X_res)  # subject 0 topped up to 3 clips; then classes are even
    8
    """

    _sampling_type = "over-sampling"

    _parameter_constraints: dict = {
        "sampling_strategy": [Interval(numbers.Real, 0, 1, closed="right"),
                              StrOptions({"auto", "minority", "not minority", "not majority", "all"}),
                              dict, callable],
        "min_sequences": [Interval(numbers.Integral, 0, None, closed="left"), None],
        "max_shift": [Interval(numbers.Real, 0, None, closed="left")],
        "max_rotation": [Interval(numbers.Real, 0, 180, closed="both")],
        "random_state": ["random_state"],
    }

    def __init__(self, sampling_strategy="auto", min_sequences=16, max_shift=6.0, max_rotation=8.0,
                 random_state=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.min_sequences = min_sequences
        self.max_shift = max_shift
        self.max_rotation = max_rotation
        self.random_state = random_state

    def _check_X_y(self, X, y, accept_sparse=None):
        # X is a list of RegionClip, not a 2-D array: validate it here instead of check_array.
        if isinstance(X, RegionClip) or not hasattr(X, "__len__"):
            raise TypeError("JitterOverSampler expects a list of RegionClip (the LandmarkROICropper's output); "
                            f"got {type(X).__name__}.")
        X = list(X)
        for i, clip in enumerate(X):
            if not isinstance(clip, RegionClip):
                raise TypeError(f"X[{i}] is a {type(clip).__name__}, not a RegionClip; put JitterOverSampler "
                                "after LandmarkROICropper and before SequenceWindower in the pipeline.")
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} clips but y has {len(y)} labels; give one label per clip.")
        return X, y, binarize_y

    def fit(self, X, y, **params):
        """Check inputs and compute ``sampling_strategy_``; use :meth:`fit_resample` to get clips.

        Parameters
        ----------
        X : list of RegionClip
        y : array-like of shape (n_clips,)
        **params : dict
            ``groups`` (subject of each clip), as in :meth:`fit_resample`.

        Returns
        -------
        self : JitterOverSampler
        """
        self.fit_resample(X, y, **params)
        return self

    def fit_resample(self, X, y, groups=None):
        """Return the clips plus jittered copies, and their labels.

        Parameters
        ----------
        X : list of RegionClip
        y : array-like of shape (n_clips,)
        groups : array-like of shape (n_clips,), optional
            Subject of each clip, for the ``min_sequences`` rule.

        Returns
        -------
        X_resampled : list of RegionClip
        y_resampled : ndarray of shape (n_clips_out,)
        """
        self._validate_params()
        check_classification_targets(y)
        X, y, _ = self._check_X_y(X, y)
        if groups is not None:
            groups = np.asarray(groups)
            if len(groups) != len(X):
                raise ValueError(f"groups has {len(groups)} entries but X has {len(X)} clips.")
        return self._fit_resample(X, y, groups=groups)

    def _fit_resample(self, X, y, groups=None):
        rng = check_random_state(self.random_state)
        indices = list(range(len(X)))
        # Rule 1: top up short subjects (the paper's < 16 sequences rule).
        if groups is not None and self.min_sequences:
            for subject, count in Counter(groups.tolist()).items():
                if count < self.min_sequences:
                    members = np.flatnonzero(groups == subject)
                    indices.extend(members[np.arange(self.min_sequences - count) % len(members)].tolist())
        self.n_subject_copies_ = len(indices) - len(X)
        # Rule 2: balance classes, counted after rule 1.
        base = np.asarray(indices, dtype=int)
        y_mid = y[base]
        self.sampling_strategy_ = check_sampling_strategy(self.sampling_strategy, y_mid, self._sampling_type)
        for label, n_new in self.sampling_strategy_.items():
            pool = base[y_mid == label]
            if n_new > 0:
                indices.extend(rng.choice(pool, size=n_new, replace=True).tolist())
        self.sample_indices_ = np.asarray(indices, dtype=int)
        out = list(X)
        for k, i in enumerate(self.sample_indices_[len(X):]):
            shift = rng.uniform(-self.max_shift, self.max_shift, 2)
            angle = rng.uniform(-self.max_rotation, self.max_rotation)
            src = X[i].source or f"X[{i}]"
            out.append(jitter_clip(X[i], shift, angle, source=f"{src} (jitter {k})"))
        return out, y[self.sample_indices_]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags
