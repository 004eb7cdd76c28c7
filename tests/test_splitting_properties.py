"""Property-based tests (hypothesis) for cutting videos into clips."""

import warnings

import numpy as np
from hypothesis import given, settings, strategies as st

from fnpgrade.datasets import split_into_clips


def _video(n_frames):
    # frame t holds the value t, so every clip can be traced back to its frames
    return np.broadcast_to((np.arange(n_frames) % 256).astype(np.uint8)[:, None, None, None],
                           (n_frames, 2, 2, 3))


@settings(max_examples=80, deadline=None)
@given(lengths=st.lists(st.integers(0, 40), min_size=1, max_size=6), length=st.integers(1, 8),
       stride=st.integers(1, 8))
def test_clips_are_consecutive_frames_with_their_video_label(lengths, length, stride):
    lengths = [n for n in lengths if n > 0] or [1]
    X = [_video(n) for n in lengths]
    y = np.array([f"label{i}" for i in range(len(X))], dtype=object)
    groups = np.arange(len(X)) * 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # videos shorter than length warn by design
        clips, y_clips, g_clips = split_into_clips(X, y, groups, length=length, stride=stride)
    expected = sum(len(range(0, n - length + 1, stride)) for n in lengths if n >= length)
    assert len(clips) == len(y_clips) == len(g_clips) == expected
    for clip, label, group in zip(clips, y_clips, g_clips):
        assert len(clip) == length
        values = clip[:, 0, 0, 0].astype(int)
        assert np.all(np.diff(values) % 256 == 1)  # consecutive frames
        source = int(group) // 10
        assert label == y[source]
        assert values[0] + length <= lengths[source] or lengths[source] > 255


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), length=st.integers(1, 8))
def test_keeping_the_last_piece_covers_every_frame(n, length):
    clips, _, _ = split_into_clips([_video(n)], ["I"], length=length, drop_last=False)
    covered = np.concatenate([c[:, 0, 0, 0] for c in clips]) if clips else np.array([], np.uint8)
    assert sorted(covered.tolist()) == list(range(n))
