"""Internal validation split that keeps clips, and subjects, whole."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

__all__ = ["ClipValidSplit"]


class ClipValidSplit:
    """Split a :class:`~fnpgrade.nn.data.WindowDataset` into training and validation parts.

    The unit is the subject when the dataset carries groups, else the clip, so
    windows of one clip (or one person) are never on both sides. With
    ``stratified=True`` the split is the first fold of ``StratifiedGroupKFold``
    (about ``valid_size`` of the units, class proportions kept where the groups
    allow); otherwise a ``GroupShuffleSplit``.

    Parameters
    ----------
    valid_size : float, default=0.2
        Fraction of the units held out, in (0, 1).
    stratified : bool, default=True
    random_state : int or None, default=None
        ``None`` lets the classifier pass its own ``random_state``.

    Examples
    --------
    >>> from fnpgrade.nn.split import ClipValidSplit
    >>> ClipValidSplit(0.25)
    ClipValidSplit(valid_size=0.25, stratified=True, random_state=None)
    """

    def __init__(self, valid_size=0.2, stratified=True, random_state=None):
        if not 0 < valid_size < 1:
            raise ValueError(f"valid_size must be in (0, 1); got {valid_size!r}.")
        self.valid_size = valid_size
        self.stratified = stratified
        self.random_state = random_state

    def __repr__(self):
        return (f"ClipValidSplit(valid_size={self.valid_size!r}, stratified={self.stratified!r}, "
                f"random_state={self.random_state!r})")

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self):
        return hash(repr(self))

    def split_clips(self, y, groups=None, random_state=None):
        """Clip numbers ``(train, valid)``; ``valid`` is empty when there are fewer than 2 units."""
        n = len(y)
        units = np.arange(n) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
        n_units = units.max() + 1
        seed = self.random_state if self.random_state is not None else random_state
        if n_units < 2:
            return np.arange(n), np.array([], dtype=int)
        n_splits = int(min(n_units, max(2, round(1 / self.valid_size))))
        with warnings.catch_warnings():
            # few members per class is expected on small data; the split still keeps units whole
            warnings.simplefilter("ignore", UserWarning)
            try:
                if not self.stratified:
                    raise ValueError("not stratified")
                splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
                train, valid = next(splitter.split(np.zeros(n), y, units))
            except ValueError:
                # every class smaller than the number of folds: stratification is impossible
                splitter = GroupShuffleSplit(n_splits=1, test_size=self.valid_size, random_state=seed)
                train, valid = next(splitter.split(np.zeros(n), y, units))
        return np.sort(train), np.sort(valid)

    def __call__(self, dataset, y=None, random_state=None, **fit_params):
        """Return ``(dataset_train, dataset_valid)``; ``dataset_valid`` is None if no split is possible."""
        if dataset.y is None:
            raise ValueError("The validation split needs labels; pass y to fit.")
        train_clips, valid_clips = self.split_clips(dataset.y, dataset.groups, random_state)
        if not len(valid_clips):
            warnings.warn("Only one clip/subject: training without a validation set; the best epoch is chosen "
                          "by training loss.", UserWarning)
            return dataset, None
        in_valid = np.isin(dataset.clip_of_window, valid_clips)
        return dataset.subset(np.flatnonzero(~in_valid)), dataset.subset(np.flatnonzero(in_valid))
