"""SequenceWindower: cut each clip into fixed-length windows of frames."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..clips import RegionClip, WindowedClip
from ..utils import check_clip_list

__all__ = ["SequenceWindower", "window_starts"]


def window_starts(n_frames, length, stride, cover_end=True):
    """First-frame indices of the windows of a clip of ``n_frames`` frames.

    Windows start every ``stride`` frames. With ``cover_end`` a last window
    ending on the last frame is added when the regular grid would leave trailing
    frames out, so no frame is dropped. A clip shorter than ``length`` has one
    window starting at 0 (the caller pads it).

    Examples
    --------
    >>> window_starts(10, 4, 4).tolist()
    [0, 4, 6]
    >>> window_starts(10, 4, 4, cover_end=False).tolist()
    [0, 4]
    """
    if n_frames <= length:
        return np.zeros(1, dtype=int)
    starts = np.arange(0, n_frames - length + 1, stride)
    if cover_end and starts[-1] + length < n_frames:
        starts = np.append(starts, n_frames - length)
    return starts


class SequenceWindower(TransformerMixin, BaseEstimator):
    """Cut every :class:`~fnpgrade.RegionClip` into windows of ``length`` frames.

    The number of samples never changes: clip ``i`` becomes one
    :class:`~fnpgrade.WindowedClip` holding all of its windows. With 4-frame
    clips and ``length=4`` this is the paper's protocol (one window per clip).

    Parameters
    ----------
    length : int, default=4
        Frames per window (the paper's sequence length).
    stride : int or None, default=None
        Frames between window starts; ``None`` means ``length`` (no overlap).
    cover_end : bool, default=True
        Add a last window ending on the last frame when the stride grid would
        leave trailing frames out, so no frame is lost.
    short : {"pad", "raise"}, default="pad"
        What to do with a clip shorter than ``length``: ``"pad"`` repeats its
        last frame (counted in the reports), ``"raise"`` raises naming the clip.

    Attributes
    ----------
    stride_ : int
        The stride used (``length`` when ``stride`` is None).
    report_ : list of dict
        Set by ``fit`` (and ``fit_transform``) from the clips it was given,
        and not changed by ``transform``: per clip ``source``, ``n_frames``,
        ``n_windows`` and ``n_padded``. Empty when ``fit`` got no clips.
    transform_report_ : list of dict
        The same facts for the clips of the last ``transform`` (e.g. the
        clips a pipeline just predicted), so predicting never overwrites what
        was reported at fit time.

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade import RegionClip, SequenceWindower
    >>> clip = RegionClip(np.zeros((8, 128, 128, 3), np.uint8), np.zeros((8, 40, 120, 3), np.uint8),
    ...                   np.zeros((8, 40, 120, 3), np.uint8), np.zeros((8, 49, 2)))
    >>> [w.face.shape for w in SequenceWindower(length=4).fit_transform([clip])]
    [(2, 4, 128, 128, 3)]
    """

    _parameter_constraints = {
        "length": [Interval(Integral, 1, None, closed="left")],
        "stride": [Interval(Integral, 1, None, closed="left"), None],
        "cover_end": ["boolean"],
        "short": [StrOptions({"pad", "raise"})],
    }

    def __init__(self, length=4, stride=None, cover_end=True, short="pad"):
        self.length = length
        self.stride = stride
        self.cover_end = cover_end
        self.short = short

    def fit(self, X=None, y=None):
        """Validate the parameters and report how the clips would be windowed. Nothing is learned.

        Parameters
        ----------
        X : list of RegionClip, optional
            The training clips: ``report_`` describes them (no window is cut
            here). ``None`` or an empty list gives an empty report.
        y : ignored

        Returns
        -------
        self : SequenceWindower
        """
        self._validate_params()
        self.stride_ = self.length if self.stride is None else self.stride
        if X is None or (isinstance(X, (list, tuple)) and not len(X)):
            self.report_ = []
        else:
            clips = check_clip_list(X, RegionClip, "SequenceWindower.fit")
            self.report_ = [self._report_one(clip, index) for index, clip in enumerate(clips)]
        return self

    def transform(self, X):
        """Window every clip.

        Parameters
        ----------
        X : list of RegionClip

        Returns
        -------
        windows : list of WindowedClip
            One per input clip, in order.
        """
        check_is_fitted(self)
        clips = check_clip_list(X, RegionClip, "SequenceWindower.transform")
        out = [self._window_one(clip, index) for index, clip in enumerate(clips)]
        # report_ stays the fit-time report: transforming new clips (predicting) must not overwrite it
        self.transform_report_ = [self._report_one(clip, index) for index, clip in enumerate(clips)]
        return out

    def _starts(self, clip, index):
        """Window starts of one clip; raises (naming the clip) for a short clip when ``short="raise"``."""
        n, length = clip.n_frames, self.length
        if n < length and self.short == "raise":
            raise ValueError(
                f"{clip.source or f'X[{index}]'}: the clip has {n} frames, fewer than the window length "
                f"{length}. Use SequenceWindower(short='pad') to repeat its last frame, a shorter length, "
                "or drop the clip."
            )
        return window_starts(n, length, self.stride_, self.cover_end)

    def _report_one(self, clip, index):
        return {"source": clip.source or f"X[{index}]", "n_frames": clip.n_frames,
                "n_windows": len(self._starts(clip, index)), "n_padded": max(0, self.length - clip.n_frames)}

    def _window_one(self, clip, index):
        n, length = clip.n_frames, self.length
        n_padded = max(0, length - n)
        starts = self._starts(clip, index)
        # index[w, l] = frame used at position l of window w (padding repeats the last frame)
        frame_index = np.minimum(starts[:, None] + np.arange(length)[None, :], n - 1)
        return WindowedClip(
            face=clip.face[frame_index], brow=clip.brow[frame_index], mouth=clip.mouth[frame_index],
            starts=starts, n_padded=n_padded, source=clip.source,
            measures=None if clip.measures is None else clip.measures[frame_index],
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags
