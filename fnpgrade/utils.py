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
