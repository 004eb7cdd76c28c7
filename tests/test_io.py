import cv2
import numpy as np
import pytest

from fnpgrade.io import ClipRef, frames_of, iter_frames, read_clip, write_video


def _moving_square_frames(n=30, size=(96, 128)):
    frames = np.zeros((n, *size, 3), np.uint8)
    for t in range(n):
        frames[t, 20:50, 10 + 2 * t:40 + 2 * t] = (255, 0, 0)  # red square moving right
        frames[t, -10:, :] = t * 8  # bottom band encodes the frame index
    return frames


def test_array_inputs_are_converted():
    gray = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5)
    clip = read_clip(gray)
    assert clip.shape == (2, 4, 5, 3) and clip.dtype == np.uint8
    assert np.array_equal(clip[..., 0], gray) and np.array_equal(clip[..., 2], gray)
    rgba = np.full((1, 3, 3, 4), 200, np.uint8)
    assert read_clip(rgba).shape == (1, 3, 3, 3)
    unit = np.full((1, 2, 2, 3), 0.5)
    assert read_clip(unit)[0, 0, 0, 0] == 128
    assert read_clip(np.full((1, 2, 2, 3), 100.0))[0, 0, 0, 0] == 100


@pytest.mark.parametrize("bad, message", [
    (np.zeros((0, 4, 4, 3), np.uint8), "0 frames"),
    (np.zeros((4, 4), np.uint8), "clip array must be"),
    (np.full((1, 2, 2, 3), np.nan), "NaN"),
    (np.full((1, 2, 2, 3), 300.0), "0..255"),
    (np.zeros((1, 2, 2, 5), np.uint8), "clip array must be"),
])
def test_bad_arrays_raise_clearly(bad, message):
    with pytest.raises(ValueError, match=message):
        read_clip(bad)


def test_mp4_written_by_opencv_is_read_back_in_rgb(tmp_path):
    frames = _moving_square_frames()
    path = write_video(tmp_path / "clip.mp4", frames, fps=30)
    clip = read_clip(path)
    assert clip.shape == frames.shape
    # lossy codec: compare colour and position, not bytes
    red = clip[10, 35, 35 + 20]
    assert red[0] > 180 and red[1] < 80 and red[2] < 80
    assert np.abs(clip.astype(int) - frames).mean() < 6


def test_video_resampled_to_fps_keeps_time_order(tmp_path):
    frames = _moving_square_frames(n=30)
    path = write_video(tmp_path / "clip.avi", frames, fps=30)
    clip = read_clip(path, fps=6)
    assert len(clip) == 6
    band = clip[:, -5, 5, 0].astype(int)
    # frames 0, 5, 10, ... were kept: the band brightness is 8 * index
    assert np.all(np.abs(band - np.arange(0, 30, 5) * 8) <= 6)


def test_frame_folder_natural_order(tmp_path):
    for i in (1, 2, 10):
        cv2.imwrite(str(tmp_path / f"frame{i}.png"), np.full((4, 4, 3), i, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    clip = read_clip(tmp_path)
    assert clip[:, 0, 0, 0].tolist() == [1, 2, 10]


def test_cliref_slices_frames(tmp_path):
    for i in range(6):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((4, 4, 3), i * 10, np.uint8))
    clip = read_clip(ClipRef(str(tmp_path), start=2, stop=5))
    assert clip[:, 0, 0, 0].tolist() == [20, 30, 40]
    assert str(ClipRef("v.mp4", 4, 8)) == "v.mp4[4:8]"


def test_missing_and_broken_sources_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        read_clip(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.mp4.*0 bytes"):
        read_clip(empty)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"this is not a video" * 100)
    with pytest.raises(ValueError, match="corrupt.mp4"):
        read_clip(corrupt)
    folder = tmp_path / "noimages"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="noimages.*no frame images"):
        read_clip(folder)


def test_folder_with_mixed_frame_sizes_raises(tmp_path):
    cv2.imwrite(str(tmp_path / "0.png"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "1.png"), np.zeros((5, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="one size"):
        read_clip(tmp_path)


def test_iter_frames_streams_one_frame_at_a_time(tmp_path):
    path = write_video(tmp_path / "clip.avi", _moving_square_frames(n=12), fps=12)
    frames = iter_frames(path)
    first = next(frames)
    assert first.shape == (96, 128, 3)
    assert sum(1 for _ in frames) == 11


@pytest.mark.parametrize("kind", ["video", "video at 6 fps", "folder", "span of a video", "array"])
def test_frames_of_gives_the_frames_iter_frames_gives(tmp_path, kind):
    """The frames a re-read asks for are those the first read saw: same decoder, same resampling, same span."""
    frames = _moving_square_frames(n=30)
    fps = 6 if kind == "video at 6 fps" else None
    if kind == "folder":
        for i, frame in enumerate(frames):
            cv2.imwrite(str(tmp_path / f"{i}.png"), frame)
        source = str(tmp_path)
    elif kind == "array":
        source = frames
    else:
        source = str(write_video(tmp_path / "clip.avi", frames, fps=30))
        if kind == "span of a video":
            source = ClipRef(source, start=3, stop=20, fps=10)
    every = list(iter_frames(source, fps=fps))
    wanted = [0, 2, len(every) - 1, len(every) + 4]  # the last one is past the end: not yielded
    got = list(frames_of(source, wanted, fps=fps))
    assert [i for i, _ in got] == wanted[:3]
    for i, frame in got:
        np.testing.assert_array_equal(frame, every[i])
