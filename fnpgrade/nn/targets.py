"""The classifier's targets: labels encoded in ``classes`` order, and the loss weight of each class."""

from __future__ import annotations

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from ..utils import check_labels

__all__ = ["encode_labels", "class_weights"]


def encode_labels(y, n_clips, classes=None, where="PHCNNClassifier"):
    """``(classes, codes)``: the labels in output order (``classes``, else sorted ``y``) and ``y`` as their indices.

    A ValueError names labels missing from ``classes`` and refuses a single class.
    """
    y, _ = check_labels(y, n_clips, where=where)
    classes = np.asarray(classes) if classes is not None else np.unique(y)
    lookup = {label: i for i, label in enumerate(classes.tolist())}
    unknown = [label for label in np.unique(y).tolist() if label not in lookup]
    if unknown:
        raise ValueError(f"y holds labels {unknown} that are not in classes={classes.tolist()}.")
    if len(np.unique(y)) < 2:
        raise ValueError(f"y holds a single class ({y[0]!r}); a classifier needs at least two.")
    return classes, np.array([lookup[label] for label in y.tolist()], dtype=np.int64)


def class_weights(class_weight, classes, codes):
    """Loss weight per class: ``"balanced"`` (inverse class frequency of the clips, the paper's K_i), a dict
    label -> weight (missing labels get 1), or None (no weights)."""
    if class_weight is None:
        return None
    if class_weight == "balanced":
        present = np.unique(codes)
        weights = np.ones(len(classes))
        weights[present] = compute_class_weight("balanced", classes=present, y=codes)
        return weights
    return np.array([float(class_weight.get(label, 1.0)) for label in classes.tolist()])
