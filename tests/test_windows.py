import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fnpgrade import RegionClip, SequenceWindower
from fnpgrade.preprocessing.windows import window_starts


def region_clip(n_frames, source=""):
    # frame t is filled with value t, so windows can be checked by content
    value = np.arange(n_frames, dtype=np.uint8)[:, None, None, None]
    return RegionClip(
        face=np.broadcast_to(value, (n_frames, 128, 128, 3)).copy(),
        brow=np.broadcast_to(value, (n_frames, 40, 120, 3)).copy(),
        mouth=np.broadcast_to(value, (n_frames, 40, 120, 3)).copy(),
        landmarks=np.zeros((n_frames, 49, 2)),
        source=source,
    )


def test_paper_protocol_one_window_per_four_frame_clip():
    out = SequenceWindower().fit_transform([region_clip(4), region_clip(4)])
    assert len(out) == 2
    assert out[0].face.shape == (1, 4, 128, 128, 3)
    assert out[0].brow.shape == (1, 4, 40, 120, 3)
    assert out[0].face[0, :, 0, 0, 0].tolist() == [0, 1, 2, 3]


def test_long_clip_windows_cover_every_frame_and_keep_sample_count():
    windower = SequenceWindower(length=4, stride=4).fit([])
    out = windower.transform([region_clip(10), region_clip(8)])
    assert [w.n_windows for w in out] == [3, 2]
    assert out[0].starts.tolist() == [0, 4, 6]
    covered = set(out[0].face[:, :, 0, 0, 0].ravel().tolist())
    assert covered == set(range(10))
    assert windower.transform_report_[0] == {"source": "X[0]", "n_frames": 10, "n_windows": 3, "n_padded": 0}
    assert windower.report_ == []  # fitted on no clips


def test_fit_report_is_kept_when_new_clips_are_transformed():
    windower = SequenceWindower(length=4).fit([region_clip(10, source="train.mp4"), region_clip(2)])
    fit_report = [{"source": "train.mp4", "n_frames": 10, "n_windows": 3, "n_padded": 0},
                  {"source": "X[1]", "n_frames": 2, "n_windows": 1, "n_padded": 2}]
    assert windower.report_ == fit_report
    windower.transform([region_clip(5, source="new.mp4")])  # e.g. a pipeline predicting
    assert windower.report_ == fit_report
    assert windower.transform_report_ == [{"source": "new.mp4", "n_frames": 5, "n_windows": 2, "n_padded": 0}]
    # fit_transform reports the same clips in both
    windower = SequenceWindower(length=4)
    windower.fit_transform([region_clip(8)])
    assert windower.report_ == windower.transform_report_ == [
        {"source": "X[0]", "n_frames": 8, "n_windows": 2, "n_padded": 0}]


def test_overlapping_stride():
    out = SequenceWindower(length=4, stride=2).fit_transform([region_clip(8)])
    assert out[0].starts.tolist() == [0, 2, 4]


def test_short_clip_padded_by_repeating_last_frame_and_reported():
    windower = SequenceWindower(length=4)
    out = windower.fit_transform([region_clip(2)])
    assert out[0].face[0, :, 0, 0, 0].tolist() == [0, 1, 1, 1]
    assert out[0].n_padded == 2 and windower.report_[0]["n_padded"] == 2 == windower.transform_report_[0]["n_padded"]


def test_short_clip_raise_names_the_clip():
    with pytest.raises(ValueError, match="subj3.mp4.*2 frames.*window length 4"):
        SequenceWindower(short="raise").fit_transform([region_clip(2, source="subj3.mp4")])


@pytest.mark.parametrize("params", [{"length": 0}, {"stride": 0}, {"short": "crop"}])
def test_invalid_parameters_rejected_in_fit(params):
    with pytest.raises(ValueError, match="SequenceWindower"):
        SequenceWindower(**params).fit([])


def test_wrong_input_type_names_the_clip():
    with pytest.raises(TypeError, match=r"X\[1\] is a ndarray.*RegionClip"):
        SequenceWindower().fit_transform([region_clip(4), np.zeros((4, 8, 8, 3))])
    with pytest.raises(ValueError, match="empty"):
        SequenceWindower().fit_transform([])


def test_transform_before_fit_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SequenceWindower().transform([region_clip(4)])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), length=st.integers(1, 12), stride=st.integers(1, 12))
def test_window_starts_properties(n, length, stride):
    starts = window_starts(n, length, stride)
    assert starts[0] == 0 and np.all(np.diff(starts) > 0)
    if n >= length:
        assert starts[-1] + length <= n
        if stride > length:  # the user asked to skip frames between windows
            return
        covered = np.zeros(n, bool)
        for s in starts:
            covered[s:s + length] = True
        assert covered.all()
    else:
        assert starts.tolist() == [0]
