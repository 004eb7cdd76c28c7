"""Small validation helpers shared by the estimators."""

from __future__ import annotations

import numpy as np

__all__ = ["check_clip_list", "clip_name"]


def clip_name(clip, index):
    """The name of clip ``index`` for messages: its ``source`` when it has one, else ``X[index]``."""
    source = getattr(clip, "source", "") or ""
    return str(source) if source else f"X[{index}]"


def check_clip_list(X, expected_type, where):
    """Check that ``X`` is a non-empty sequence of ``expected_type`` and return it as a list.

    Raises a ValueError naming the first clip of the wrong type and the step
    that would have produced the right one.
    """
    if isinstance(X, np.ndarray) and X.dtype != object:
        raise TypeError(
            f"{where}: expected a list of {expected_type.__name__}, one per clip; got an array of shape "
            f"{X.shape}. Pass the output of the previous pipeline step."
        )
    try:
        clips = list(X)
    except TypeError:
        raise TypeError(f"{where}: expected a list of {expected_type.__name__}; got {type(X).__name__}.") from None
    if not clips:
        raise ValueError(f"{where}: X is empty; at least one clip is needed.")
    for index, clip in enumerate(clips):
        if not isinstance(clip, expected_type):
            raise TypeError(
                f"{where}: X[{index}] is a {type(clip).__name__}, not a {expected_type.__name__}. "
                "Run the pipeline's earlier steps first (make_phcnn_pipeline chains them)."
            )
    return clips


def _is_missing(value):
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, float or numpy, is the only value unequal to itself
    except (TypeError, ValueError):
        return False


def check_labels(y, n_clips, groups=None, where="fit"):
    """Check one label (and one subject) per clip; warn when a subject has several labels.

    Parameters
    ----------
    y : array-like, shape (n_clips,)
    n_clips : int
    groups : array-like, shape (n_clips,), optional
        Subject ids.
    where : str
        The caller, for messages.

    Returns
    -------
    y, groups : ndarray
        ``groups`` is ``None`` when not given.

    Raises
    ------
    ValueError
        Wrong lengths, or missing (None / NaN) labels or subjects, naming the clips.

    Warns
    -----
    UserWarning
        When a subject appears with two different labels: in the paper's
        protocol a subject has one House-Brackmann grade.
    """
    # Look at the values as given: np.asarray(["I", nan]) would turn the NaN into the string "nan".
    values = y if isinstance(y, np.ndarray) else np.asarray(y, dtype=object)
    if values.ndim != 1 or len(values) != n_clips:
        raise ValueError(f"{where}: y must hold one label per clip: X has {n_clips} clips, y has shape "
                         f"{values.shape}.")
    missing = [i for i, v in enumerate(values.tolist()) if _is_missing(v)]
    if missing:
        raise ValueError(f"{where}: y has no label (None or NaN) for clip(s) {missing[:10]}; label every clip or "
                         "drop the unlabelled ones.")
    y = np.asarray(y)
    if groups is None:
        return y, None
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) != n_clips:
        raise ValueError(f"{where}: groups must hold one subject per clip: X has {n_clips} clips, groups has "
                         f"shape {groups.shape}.")
    missing = [i for i, v in enumerate(groups.tolist()) if _is_missing(v)]
    if missing:
        raise ValueError(f"{where}: groups has no subject (None or NaN) for clip(s) {missing[:10]}.")
    labels_of = {}
    for subject, label in zip(groups.tolist(), y.tolist()):
        labels_of.setdefault(subject, set()).add(label)
    mixed = {s: sorted(map(str, labels)) for s, labels in labels_of.items() if len(labels) > 1}
    if mixed:
        import warnings

        shown = dict(list(mixed.items())[:5])
        warnings.warn(f"{where}: {len(mixed)} subject(s) appear with more than one label, e.g. {shown}. In the "
                      "paper's protocol a subject has one House-Brackmann grade; check the labels.", UserWarning,
                      stacklevel=3)
    return y, groups
