"""Cutting long videos into fixed-length clips, and joining datasets."""

from __future__ import annotations

import numbers
import os
import warnings
from pathlib import Path

import numpy as np

from ..io import IMAGE_EXTENSIONS, ClipRef, as_clip_array, describe_source, iter_frames
from ..preprocessing.windows import window_starts

__all__ = ["split_into_clips", "concat_datasets", "count_frames"]


def count_frames(source, fps=None):
    """Number of frames a clip has when read with ``fps`` (frame folders: images; videos: decoded frames)."""
    if isinstance(source, ClipRef):
        n = count_frames(source.path, fps=source.fps if source.fps is not None else fps)
        start = source.start or 0
        stop = n if source.stop is None else min(source.stop, n)
        return max(0, stop - start)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such video file or frame folder; check the path.")
        if path.is_dir():
            return sum(1 for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith("."))
        if fps is None:
            import cv2

            capture = cv2.VideoCapture(str(path))
            try:
                n = 0
                while capture.grab():
                    n += 1
            finally:
                capture.release()
            if n:
                return n
        return sum(1 for _ in iter_frames(path, fps=fps))
    return len(np.asarray(source))


def _labels(values):
    values = np.asarray(values)
    return values.astype(object) if values.dtype.kind in "US" else values


def split_into_clips(X, y, groups=None, length=4, stride=None, fps=None, drop_last=True):
    """Cut each video into consecutive clips of ``length`` frames, keeping labels and subjects.

    The paper cuts its long YFP videos into 4-frame sequences (5420 of them).

    Parameters
    ----------
    X : list of ndarray, path or ClipRef
        Clips: ``(T, H, W[, C])`` arrays, videos, frame folders, or slices of them.
    y : array-like, shape (n_clips,)
    groups : array-like, shape (n_clips,), optional
    length : int, default=4
        Frames per output clip.
    stride : int, optional
        Frames between the starts of consecutive clips (default ``length``: no overlap).
    fps : float, optional
        Resample videos to this rate before cutting (the paper: 6). Ignored for
        arrays and frame folders.
    drop_last : bool, default=True
        Drop a final piece shorter than ``length`` (else keep it shorter).

    Returns
    -------
    X_clips : list
        Array inputs give array views ``X[i][s:s + length]``; path inputs give
        :class:`~fnpgrade.io.ClipRef` slices (nothing is read but the frame count).
    y_clips : ndarray
    groups_clips : ndarray or None

    Notes
    -----
    An input shorter than ``length`` gives no clip; a warning names such inputs.

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade.datasets import split_into_clips
    >>> X = [np.zeros((10, 8, 8, 3), np.uint8), np.zeros((4, 8, 8, 3), np.uint8)]
    >>> Xc, yc, gc = split_into_clips(X, ["II", "I"], ["a", "b"], length=4)
    >>> [len(c) for c in Xc], list(yc), list(gc)
    ([4, 4, 4], ['II', 'II', 'I'], ['a', 'a', 'b'])
    """
    stride = _check_lengths(length, stride)
    X = list(X)
    y = _labels(y)
    if len(y) != len(X):
        raise ValueError(f"X has {len(X)} clips but y has {len(y)} labels; give one label per clip.")
    if groups is not None:
        groups = _labels(groups)
        if len(groups) != len(X):
            raise ValueError(f"X has {len(X)} clips but groups has {len(groups)} entries.")
    out_X, idx, short = [], [], []
    for i, source in enumerate(X):
        where = describe_source(source, i)
        n, make = _sliceable(source, where, fps)
        pieces = _pieces(n, length, stride, drop_last)
        if not pieces:
            short.append(f"{where} ({n} frames)")
        for s, e in pieces:
            out_X.append(make(s, e))
            idx.append(i)
    if short:
        warnings.warn(f"{len(short)} clip(s) shorter than length={length} gave no clips: "
                      f"{', '.join(short[:5])}{' ...' if len(short) > 5 else ''}.", stacklevel=2)
    idx = np.asarray(idx, dtype=int)
    return out_X, y[idx], (groups[idx] if groups is not None else None)


def _check_lengths(length, stride):
    """Validate ``length`` and ``stride`` (default ``length``); return the stride."""
    if not isinstance(length, numbers.Integral) or length < 1:
        raise ValueError(f"The 'length' parameter of split_into_clips must be an int in [1, inf). Got {length!r} instead.")
    stride = length if stride is None else stride
    if not isinstance(stride, numbers.Integral) or stride < 1:
        raise ValueError(f"The 'stride' parameter of split_into_clips must be an int in [1, inf). Got {stride!r} instead.")
    return stride


def _sliceable(source, where, fps):
    """``(n_frames, make)`` for one input: ``make(s, e)`` is its frames ``s:e`` (an array view or a ClipRef)."""
    if isinstance(source, (str, os.PathLike, ClipRef)):
        ref = source if isinstance(source, ClipRef) else ClipRef(str(source), None, None, fps)
        if ref.fps is None and fps is not None:
            ref = ClipRef(ref.path, ref.start, ref.stop, fps)
        offset = ref.start or 0
        return count_frames(ref), lambda s, e: ClipRef(ref.path, offset + s, offset + e, ref.fps)
    array = as_clip_array(source, where) if not isinstance(source, np.ndarray) or source.ndim != 4 else source
    return len(array), lambda s, e: array[s:e]


def _pieces(n, length, stride, drop_last):
    """``(start, stop)`` of the clips cut from ``n`` frames (the windower's grid, without its end cover)."""
    starts = window_starts(n, length, stride, cover_end=False).tolist() if n >= length else []
    pieces = [(s, s + length) for s in starts]
    if not drop_last:
        covered = pieces[-1][1] if pieces else 0
        last_start = (starts[-1] + stride) if starts else 0
        if last_start < n and (not pieces or covered < n):
            pieces.append((last_start, n))
    return pieces


def concat_datasets(*datasets, names=None):
    """Join several ``(X, y, groups)`` datasets into one.

    Parameters
    ----------
    *datasets : tuples (X, y, groups)
        For example the outputs of :func:`load_clip_folder` and :func:`load_ckplus`.
    names : sequence of str, optional
        A prefix per dataset: groups become ``"name/subject"``. Without names,
        a subject id that appears in two datasets is an error (two datasets'
        subject "1" are rarely one person).

    Returns
    -------
    X : list
    y : ndarray
    groups : ndarray of object

    Examples
    --------
    >>> from fnpgrade.datasets import concat_datasets
    >>> X, y, g = concat_datasets((["a.mp4"], ["III"], ["p1"]), (["b"], ["I"], ["S022"]))
    >>> X, list(y), list(g)
    (['a.mp4', 'b'], ['III', 'I'], ['p1', 'S022'])
    """
    if not datasets:
        raise ValueError("concat_datasets needs at least one (X, y, groups) dataset.")
    if names is not None and len(names) != len(datasets):
        raise ValueError(f"names has {len(names)} entries for {len(datasets)} datasets.")
    X, ys, gs, kinds, owner = [], [], [], set(), {}
    for k, data in enumerate(datasets):
        if len(data) != 3:
            raise ValueError(f"dataset {k} must be a tuple (X, y, groups); got {len(data)} items.")
        Xk, yk, gk = data
        Xk, yk = list(Xk), np.asarray(yk, dtype=object)
        if gk is None:
            raise ValueError(f"dataset {k} has no groups; subject ids are needed for subject-wise evaluation.")
        gk = np.asarray(gk, dtype=object)
        if not (len(Xk) == len(yk) == len(gk)):
            raise ValueError(f"dataset {k}: X, y and groups have lengths {len(Xk)}, {len(yk)}, {len(gk)}.")
        kinds.update("level" if isinstance(v, str) else "hb" for v in yk)
        if names is not None:
            gk = np.array([f"{names[k]}/{g}" for g in gk], dtype=object)
        else:
            for g in dict.fromkeys(gk.tolist()):
                if g in owner and owner[g] != k:
                    raise ValueError(f"subject {g!r} appears in dataset {owner[g]} and dataset {k}; pass names=[...] "
                                     "to prefix each dataset's subjects, or rename them.")
                owner[g] = k
        X.extend(Xk)
        ys.append(yk)
        gs.append(gk)
    if len(kinds) > 1:
        raise ValueError("the datasets mix levels ('I'/'II'/'III') and HB grades; load them all with the same "
                         "target.")
    y = np.concatenate(ys)
    if kinds == {"hb"}:
        y = y.astype(int)
    return X, y, np.concatenate(gs)
