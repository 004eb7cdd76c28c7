"""The classifier's data path: windows of many clips, gathered a batch at a time.

skorch reads a list X as several inputs, so the classifier hands it a
:class:`WindowDataset` instead. The dataset keeps the clips' own ``uint8``
arrays (no copy of the data set is made) and an index of ``(clip, window)``
pairs; :class:`WindowLoader` gathers a whole batch with one ``np.stack`` per
input instead of per-item ``__getitem__`` plus default collate. Pixels stay
``uint8`` until the network converts them on its device; the clips' per-frame
``measures`` (when they carry them) travel as ``float32``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..clips import WindowedClip
from ..utils import check_clip_list

__all__ = ["WindowDataset", "WindowLoader", "INPUTS", "MEASURES"]

#: The image arrays of a :class:`~fnpgrade.WindowedClip` a network can read.
INPUTS = ("face", "brow", "mouth")

#: The name of the per-frame measures input (``WindowedClip.measures``, ``(W, L, K)`` float32).
MEASURES = "measures"


def _name(clips, i):
    return f"X[{i}] ({clips[i].source or 'no source'})"


class WindowDataset(Dataset):
    """All windows of a list of clips, each with its clip's label and group.

    Parameters
    ----------
    clips : list of WindowedClip
    y : array-like of int, shape (n_clips,), optional
        Encoded label per clip; every window inherits it.
    groups : array-like, shape (n_clips,), optional
        Subject per clip (used by the validation split).
    index : ndarray of int, shape (n_windows, 2), optional
        ``(clip, window)`` pairs this dataset covers; default all windows in order.

    Attributes
    ----------
    n_measures : int or None
        Measures per frame ``K`` when every clip carries ``measures``; None
        when none does. Some clips with and some without, or clips with
        different ``K``, raise a ValueError naming the first clip that differs
        from ``X[0]``.

    Notes
    -----
    ``dataset[i]`` accepts an int, a slice or an array of positions and returns
    ``(X, y)`` with ``X`` a dict of ``uint8`` tensors ``(n, L, H, W, 3)`` (and
    ``measures``, float32 ``(n, L, K)``, where the clips carry them) and
    ``y`` an int64 tensor (or None without labels).
    """

    def __init__(self, clips, y=None, groups=None, index=None):
        self.clips = check_clip_list(clips, WindowedClip, "PHCNNClassifier")
        lengths = {c.length for c in self.clips}
        if len(lengths) != 1:
            bad = next(i for i, c in enumerate(self.clips) if c.length != self.clips[0].length)
            raise ValueError(
                f"X[{bad}] ({self.clips[bad].source or 'no source'}): windows of {self.clips[bad].length} frames, "
                f"but X[0] has {self.clips[0].length}. All clips must be windowed with the same length "
                "(one SequenceWindower)."
            )
        for name in INPUTS:
            shapes = {getattr(c, name).shape[2:] for c in self.clips}
            if len(shapes) != 1:
                raise ValueError(f"'{name}' images differ in size between clips: {sorted(shapes)}; crop all clips "
                                 "with the same LandmarkROICropper.")
        self.n_measures = self._check_measures(self.clips)
        n = len(self.clips)
        self.y = None if y is None else np.asarray(y, dtype=np.int64)
        self.groups = None if groups is None else np.asarray(groups)
        for name, value in (("y", self.y), ("groups", self.groups)):
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries but X has {n} clips; give one per clip.")
        if index is None:
            counts = [c.n_windows for c in self.clips]
            index = np.column_stack([np.repeat(np.arange(n), counts), np.concatenate([np.arange(k) for k in counts])])
        self.index = np.asarray(index, dtype=np.int64).reshape(-1, 2)

    @staticmethod
    def _check_measures(clips):
        """``K`` when every clip carries measures, None when none does; a ValueError naming the clip otherwise."""
        first = clips[0].measures
        for i, clip in enumerate(clips[1:], start=1):
            if (clip.measures is None) != (first is None):
                has, lacks = (i, 0) if first is None else (0, i)
                raise ValueError(
                    f"{_name(clips, lacks)} carries no per-frame measures but {_name(clips, has)} does. Give every "
                    "clip measures (FrameMeasures after the cropper: make_phcnn_pipeline(measures=True)) or none.")
            if first is not None and clip.measures.shape[-1] != first.shape[-1]:
                raise ValueError(
                    f"{_name(clips, i)} has {clip.measures.shape[-1]} measures per frame but X[0] has "
                    f"{first.shape[-1]}; measure all clips with the same FrameMeasures.")
        return None if first is None else int(first.shape[-1])

    def measures_scaling(self):
        """``(center, scale)`` of the windows' measures (:func:`~fnpgrade.nn.branches.robust_scaling`).

        A ValueError when the clips carry none. Overlapping windows count a
        frame as often as the network sees it, as the branch's batch norms do.
        """
        from .branches import robust_scaling

        if self.n_measures is None:
            raise ValueError(f"measures=True, but {_name(self.clips, 0)} carries no per-frame measures (nor does any "
                             "clip). Compute them with FrameMeasures after the cropper: "
                             "make_phcnn_pipeline(measures=True).")
        return robust_scaling(np.concatenate([c.measures[w].reshape(-1, self.n_measures) for c, w in
                                              ((self.clips[i], w) for i, w in self.index)]))

    def check_measures(self, expected):
        """Refuse clips without the ``expected`` measures per frame a network was trained on (naming X[0])."""
        if expected is None:
            return
        first = _name(self.clips, 0)
        if self.n_measures is None:
            raise ValueError(f"{first} carries no per-frame measures, but the classifier was trained with "
                             f"measures=True on {expected} per frame; transform the clips as in training "
                             "(FrameMeasures after the cropper).")
        if self.n_measures != expected:
            raise ValueError(f"{first} has {self.n_measures} measures per frame, but the classifier was trained "
                             f"on {expected}; measure the clips with the same FrameMeasures as in training.")

    def __len__(self):
        return len(self.index)

    @property
    def clip_of_window(self):
        """Clip number of every window, shape ``(n_windows,)``."""
        return self.index[:, 0]

    @property
    def window_y(self):
        """Label of every window (its clip's), or None."""
        return None if self.y is None else self.y[self.index[:, 0]]

    def subset(self, positions):
        """A dataset over some of these windows, sharing the pixel arrays (no copy, no re-validation)."""
        new = object.__new__(type(self))
        new.clips, new.y, new.groups, new.n_measures = self.clips, self.y, self.groups, self.n_measures
        new.index = self.index[np.asarray(positions, dtype=np.int64)]
        return new

    def frame_shapes(self):
        """``{input: (H, W)}`` image size of each input."""
        return {name: tuple(getattr(self.clips[0], name).shape[2:4]) for name in INPUTS}

    def gather(self, positions, inputs=INPUTS):
        """The batch at ``positions``: ``(dict of tensors, int64 labels or None)``.

        ``inputs`` names the arrays gathered: images as ``uint8``, ``"measures"``
        as ``float32`` (asking for it from clips without measures raises).
        """
        pairs = self.index[positions]
        X = {}
        for name in inputs:
            if name == MEASURES and self.n_measures is None:
                raise ValueError(f"{_name(self.clips, 0)} carries no per-frame measures, which this network reads; "
                                 "compute them with FrameMeasures after the cropper "
                                 "(make_phcnn_pipeline(measures=True)).")
            arrays = [getattr(self.clips[c], name)[w] for c, w in pairs]
            X[name] = torch.from_numpy(np.stack(arrays))
        y = None if self.y is None else torch.from_numpy(self.y[pairs[:, 0]])
        return X, y

    def __getitem__(self, item):
        if isinstance(item, (int, np.integer)):
            X, y = self.gather(np.array([item]))
            return {k: v[0] for k, v in X.items()}, (None if y is None else y[0])
        positions = np.arange(len(self))[item] if isinstance(item, slice) else np.asarray(item)
        return self.gather(positions)


class WindowLoader:
    """Iterate over a :class:`WindowDataset` in batches, gathering each batch at once.

    A drop-in for ``torch.utils.data.DataLoader`` as skorch's
    ``iterator_train`` / ``iterator_valid``.

    Parameters
    ----------
    dataset : WindowDataset
    batch_size : int, default=64
    shuffle : bool, default=False
        New order every pass (training).
    drop_last : bool, default=False
        Drop the last incomplete batch. When shuffling, a last batch of a
        single window is always dropped (batch norm cannot train on one
        sample; the order changes every pass, so no window is always left out).
    inputs : tuple of str, default=("face", "brow", "mouth")
        Which arrays to gather (networks that read only the face skip the ROIs;
        a network with a measures branch adds ``"measures"``).
    seed : int or None, default=None
        Seed of the shuffling order.
    start_epoch : int, default=0
        Number of passes already made: the order of pass ``e`` depends only on
        ``(seed, e)``, so a run resumed from a checkpoint sees the same orders
        as an uninterrupted one.
    pin_memory : bool, default=False
        Pin batches (faster, non-blocking copies to a GPU).
    """

    def __init__(self, dataset, batch_size=64, shuffle=False, drop_last=False, inputs=INPUTS, seed=None,
                 start_epoch=0, pin_memory=False):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.inputs = tuple(inputs)
        self.pin_memory = pin_memory
        self.seed = np.random.SeedSequence().entropy if seed is None else seed
        self.epoch = start_epoch

    def _n_used(self, n):
        stop = n - n % self.batch_size if self.drop_last else n
        if self.shuffle and stop > 1 and stop % self.batch_size == 1:
            stop -= 1
        return stop

    def __len__(self):
        return -(-self._n_used(len(self.dataset)) // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)
        self.epoch += 1
        stop = self._n_used(n)
        for start in range(0, stop, self.batch_size):
            X, y = self.dataset.gather(order[start:start + self.batch_size], self.inputs)
            if self.pin_memory:
                X = {k: v.pin_memory() for k, v in X.items()}
            yield X, y
