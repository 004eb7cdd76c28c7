"""Tests of the real-data loaders on small trees of real image and video files written here."""

import cv2
import numpy as np
import pytest

from fnpgrade.datasets import concat_datasets, load_ckplus, load_clip_folder, split_into_clips
from fnpgrade.datasets.ckplus import PAPER_CKPLUS_SUBJECTS
from fnpgrade.io import ClipRef, read_clip, write_video


def _frames(n, value0=0, size=32):
    """Frames whose brightness encodes their index (20 levels apart), to check slicing after compression."""
    return np.stack([np.full((size, size, 3), value0 + 20 * i, np.uint8) for i in range(n)])


def _write_folder(folder, n, value0=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(_frames(n, value0)):
        cv2.imwrite(str(folder / f"frame_{i + 1}.png"), frame)
    return folder


def _brightness(clip):
    return np.round(np.asarray(clip, float).mean(axis=(1, 2, 3)) / 20).astype(int).tolist()


@pytest.fixture
def yfp(tmp_path):
    """A YFP-style tree: two videos, one frame folder, labels.csv with slices."""
    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "p1.avi", _frames(10))
    write_video(tmp_path / "videos" / "p2.avi", _frames(6))
    _write_folder(tmp_path / "frames" / "p3_smile", 9)
    (tmp_path / "labels.csv").write_text(
        "Subject,Grade,Path,start,stop,notes\n"
        "p1,5,videos/p1.avi,0,4,first half\n"
        "p1,5,videos/p1.avi,4,10,\n"
        "p2,2,videos/p2.avi,,,\n"
        "p3,1,frames/p3_smile,,,\n"
    )
    return tmp_path


def test_load_clip_folder_values(yfp):
    X, y, groups = load_clip_folder(yfp)
    assert list(y) == ["III", "III", "II", "I"]
    assert list(groups) == ["p1", "p1", "p2", "p3"]
    assert isinstance(X[0], ClipRef) and (X[0].start, X[0].stop) == (0, 4)
    assert X[2] == str(yfp / "videos" / "p2.avi")
    # lazily read: slices and folders give the right frames
    assert _brightness(read_clip(X[0])) == [0, 1, 2, 3]
    assert _brightness(read_clip(X[1])) == [4, 5, 6, 7, 8, 9]
    assert _brightness(read_clip(X[3])) == list(range(9))
    _, y_hb, _ = load_clip_folder(yfp, target="hb")
    assert y_hb.tolist() == [5, 5, 2, 1]


def test_load_clip_folder_absolute_labels_and_fps(yfp):
    X, _, _ = load_clip_folder(yfp, labels=yfp / "labels.csv", fps=6)
    assert all(isinstance(x, ClipRef) and x.fps == 6 for x in X)


def test_levels_accepted_as_grades_for_level_target(tmp_path):
    _write_folder(tmp_path / "a", 4)
    (tmp_path / "labels.csv").write_text("subject,grade,path\ns1,III,a\n")
    assert list(load_clip_folder(tmp_path)[1]) == ["III"]
    with pytest.raises(ValueError, match="row 2.*grade='III'"):
        load_clip_folder(tmp_path, target="hb")


@pytest.mark.parametrize("rows, error, match", [
    ("s1,7,a\n", ValueError, r"labels.csv row 2: grade='7' is not a House-Brackmann grade"),
    ("s1,2,a\ns1,2,missing.mp4\n", FileNotFoundError, r"row 3: .*missing.mp4 does not exist"),
    ("s1,2,a\ns2,3,a\n", ValueError, r"row 3: duplicates row 2"),
    ("s1,2,empty\n", ValueError, r"row 2: the folder .*empty holds no frame images"),
    ("s1,2,bad\n", ValueError, r"row 2: the image .*broken.png cannot be read"),
    ("s1,2,zero.mp4\n", ValueError, r"row 2: the video .*zero.mp4 is empty"),
    (",2,a\n", ValueError, r"row 2: the subject is empty"),
])
def test_load_clip_folder_errors_name_the_row(tmp_path, rows, error, match):
    _write_folder(tmp_path / "a", 4)
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a png at all")
    (tmp_path / "zero.mp4").write_bytes(b"")
    (tmp_path / "labels.csv").write_text("subject,grade,path\n" + rows)
    with pytest.raises(error, match=match):
        load_clip_folder(tmp_path)


def test_load_clip_folder_full_validation_finds_a_bad_frame(tmp_path):
    _write_folder(tmp_path / "a", 4)
    (tmp_path / "a" / "frame_9.png").write_bytes(b"garbage")
    (tmp_path / "labels.csv").write_text("subject,grade,path\ns1,2,a\n")
    load_clip_folder(tmp_path)  # quick check reads the first frame only
    with pytest.raises(ValueError, match="frame_9.png cannot be read"):
        load_clip_folder(tmp_path, validate="full")


def test_load_clip_folder_bad_files_and_columns(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels file does not exist"):
        load_clip_folder(tmp_path)
    (tmp_path / "labels.csv").write_text("subject,path\ns1,a\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['grade'\]"):
        load_clip_folder(tmp_path)
    _write_folder(tmp_path / "a", 4)
    (tmp_path / "labels.csv").write_text("subject,grade,path,start,stop\ns1,2,a,3,1\n")
    with pytest.raises(ValueError, match="row 2: stop=1 must be greater than start=3"):
        load_clip_folder(tmp_path)
    (tmp_path / "labels.csv").write_text("subject,grade,path\n")
    with pytest.raises(ValueError, match="no rows"):
        load_clip_folder(tmp_path)


@pytest.fixture
def ckplus(tmp_path):
    images = tmp_path / "CK+" / "cohn-kanade-images"
    for subject, n_seq in (("S022", 2), ("S037", 1), ("S005", 1)):
        for k in range(1, n_seq + 1):
            seq = images / subject / f"{k:03d}"
            seq.mkdir(parents=True)
            for i, frame in enumerate(_frames(5)):
                cv2.imwrite(str(seq / f"{subject}_{k:03d}_{i + 1:08d}.png"), frame[..., 0])  # grayscale like CK+
    return tmp_path / "CK+"


def test_load_ckplus(ckplus):
    X, y, groups = load_ckplus(ckplus)
    assert list(groups) == ["S005", "S022", "S022", "S037"]
    assert set(y) == {"I"}
    clip = read_clip(X[1])
    assert clip.shape == (5, 32, 32, 3) and _brightness(clip) == list(range(5))
    X2, y2, g2 = load_ckplus(ckplus / "cohn-kanade-images", subjects=["S037"], target="hb")
    assert list(g2) == ["S037"] and y2.tolist() == [1]


def test_load_ckplus_paper_subjects_named(ckplus):
    assert len(PAPER_CKPLUS_SUBJECTS) == 9 and "S130" in PAPER_CKPLUS_SUBJECTS
    with pytest.raises(FileNotFoundError, match=r"S045"):
        load_ckplus(ckplus, subjects="paper")
    (ckplus / "cohn-kanade-images" / "S999").mkdir()
    with pytest.raises(ValueError, match="S999: the subject folder holds no sequence"):
        load_ckplus(ckplus)


def test_yfp_and_ckplus_concat(yfp, ckplus):
    data = concat_datasets(load_clip_folder(yfp), load_ckplus(ckplus, subjects=["S022"]))
    X, y, groups = data
    assert len(X) == 6 and list(y[-2:]) == ["I", "I"] and list(groups[-2:]) == ["S022", "S022"]
    X, y, groups = concat_datasets(load_clip_folder(yfp), load_clip_folder(yfp), names=["a", "b"])
    assert groups[0] == "a/p1" and groups[-1] == "b/p3"
    with pytest.raises(ValueError, match="subject 'p1' appears in dataset 0 and dataset 1"):
        concat_datasets(load_clip_folder(yfp), load_clip_folder(yfp))
    with pytest.raises(ValueError, match="mix levels"):
        concat_datasets(load_clip_folder(yfp), load_ckplus(ckplus, target="hb"))


def test_split_arrays():
    X = [_frames(10), _frames(3), _frames(8)]
    with pytest.warns(UserWarning, match=r"X\[1\] \(3 frames\)"):
        Xc, yc, gc = split_into_clips(X, ["III", "I", "II"], ["a", "b", "c"], length=4)
    assert len(Xc) == 4 and list(yc) == ["III", "III", "II", "II"] and list(gc) == ["a", "a", "c", "c"]
    assert _brightness(Xc[1]) == [4, 5, 6, 7]
    Xk, _, _ = split_into_clips(X[:1], ["I"], None, length=4, drop_last=False)
    assert [len(c) for c in Xk] == [4, 4, 2]
    Xs, _, _ = split_into_clips(X[:1], ["I"], None, length=4, stride=2)
    assert [_brightness(c)[0] for c in Xs] == [0, 2, 4, 6]


def test_split_videos_folders_and_slices(yfp):
    X, y, groups = load_clip_folder(yfp)
    Xc, yc, gc = split_into_clips(X, y, groups, length=4)
    # p1 slices [0:4] and [4:10] -> 1 + 1 clips; p2 (6 frames) -> 1; p3 folder (9 frames) -> 2
    assert len(Xc) == 5 and list(gc) == ["p1", "p1", "p2", "p3", "p3"]
    assert all(isinstance(c, ClipRef) for c in Xc)
    assert (Xc[1].start, Xc[1].stop) == (4, 8)
    assert _brightness(read_clip(Xc[1])) == [4, 5, 6, 7]
    assert _brightness(read_clip(Xc[4])) == [4, 5, 6, 7]


def test_split_errors():
    with pytest.raises(ValueError, match="'length' parameter of split_into_clips"):
        split_into_clips([_frames(4)], ["I"], length=0)
    with pytest.raises(ValueError, match="1 clips but y has 2"):
        split_into_clips([_frames(4)], ["I", "II"])
