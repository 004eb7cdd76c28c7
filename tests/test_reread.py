"""A long video's face crops re-read from the file (``fnpgrade.preprocessing.reread``).

Past the crop-memory budget the detector keeps recipes, not pixels: every test
here compares a track re-read from the file with the same track held in
memory (budget lifted), and asserts the same pixels, boxes and measures.
"""

import pickle
import tracemalloc

import cv2
import numpy as np
import pytest

from fnpgrade import FaceDetector, LandmarkROICropper, SequenceWindower
from fnpgrade.config import CROP_MEMORY_MB, crop_memory_budget
from fnpgrade.io import ClipRef, write_video
from fnpgrade.measures import FaceMeasures
from fnpgrade.preprocessing.reread import ReReadCrops, WarpedFrames


@pytest.fixture
def budget(monkeypatch):
    """``budget(megabytes)`` sets ``$FNPGRADE_CROP_MEMORY_MB`` for the test."""
    def set_budget(megabytes):
        monkeypatch.setenv("FNPGRADE_CROP_MEMORY_MB", str(megabytes))
    return set_budget


def _both(budget, detector, source):
    """The track held in memory and the track re-read from the file, with their reports."""
    budget(10_000)
    held = detector.fit_transform([source])[0], dict(detector.report_[0])
    budget(0)
    reread = detector.fit_transform([source])[0], dict(detector.report_[0])
    return held, reread


def _moving_face_video(path, face, n_frames, blank=()):
    """The face photo drifting over a grey canvas; the frames in ``blank`` show the canvas alone."""
    small = cv2.resize(face, (240, 240), interpolation=cv2.INTER_AREA)
    frames = np.full((n_frames, 300, 400, 3), 90, np.uint8)
    for t in range(n_frames):
        if t not in blank:
            x = 40 + 2 * t % 100
            frames[t, 30:270, x:x + 240] = small
    return write_video(path, frames, fps=6.0)


def _measures_steps():
    return (LandmarkROICropper(landmarks="dlib", registration="clip", face_size=192).fit(),
            FaceMeasures().fit())


def test_re_read_crops_and_measures_equal_those_held_in_memory(pyfeat_path, budget):
    """A real recording: the same crops, the same registered faces and the same measures row, bit for bit."""
    path = pyfeat_path("single_face.mp4")
    (held, held_report), (reread, reread_report) = _both(budget, FaceDetector(), path)
    assert isinstance(held.crops, np.ndarray) and isinstance(reread.crops, ReReadCrops)
    assert held_report == reread_report
    np.testing.assert_array_equal(np.asarray(reread.crops), held.crops)
    np.testing.assert_array_equal(reread.crop_boxes, held.crop_boxes)
    np.testing.assert_array_equal(reread.crops[[5, 2, 5]], held.crops[[5, 2, 5]])  # any order, repeats too

    cropper, measures = _measures_steps()
    held_clip, reread_clip = cropper.transform([held])[0], cropper.transform([reread])[0]
    assert isinstance(reread_clip.face, WarpedFrames) and isinstance(held_clip.face, np.ndarray)
    for key in ("face", "brow", "mouth"):
        np.testing.assert_array_equal(np.asarray(getattr(reread_clip, key)), getattr(held_clip, key))
    np.testing.assert_array_equal(reread_clip.landmarks, held_clip.landmarks)
    np.testing.assert_array_equal(reread_clip.select([7, 3]).face[:], held_clip.face[[7, 3]])
    np.testing.assert_array_equal(measures.transform([reread_clip]), measures.transform([held_clip]))
    windower = SequenceWindower(length=4).fit()  # the network's windows: (W, L) frame indices
    held_windows, reread_windows = windower.transform([held_clip])[0], windower.transform([reread_clip])[0]
    np.testing.assert_array_equal(reread_windows.face, held_windows.face)
    np.testing.assert_array_equal(reread_windows.mouth, held_windows.mouth)


def test_bridged_gaps_are_cut_at_their_interpolated_boxes(tmp_path, package_face_images, budget):
    """Frames without a face inside a short gap get crops at the interpolated box, re-read or held alike."""
    path = _moving_face_video(tmp_path / "gap.mp4", package_face_images["astronaut"], 16, blank=(7, 8))
    (held, held_report), (reread, reread_report) = _both(budget, FaceDetector(), str(path))
    assert held_report["n_interpolated"] == reread_report["n_interpolated"] == 2
    assert not reread.found[7] and not reread.found[8]
    np.testing.assert_array_equal(reread.crop_boxes, held.crop_boxes)
    np.testing.assert_array_equal(np.asarray(reread.crops), held.crops)


def test_a_span_read_at_a_lower_rate_is_re_read_alike(pyfeat_path, budget):
    """A ClipRef (frames 4-15 of the video resampled to 6 fps): the re-read follows the same resampling."""
    span = ClipRef(pyfeat_path("WolfgangLanger_Pexels.mp4"), start=4, stop=16)
    (held, _), (reread, _) = _both(budget, FaceDetector(fps=6), span)
    assert reread.n_frames == 12
    np.testing.assert_array_equal(np.asarray(reread.crops), held.crops)


def test_a_pickled_track_reads_its_crops_again(pyfeat_path, budget):
    """A re-read track travels (joblib workers, a Pipeline memory) as its recipe; its cache stays behind."""
    budget(0)
    track = FaceDetector().fit_transform([pyfeat_path("single_face.mp4")])[0]
    first = track.crops[[0, 1]]
    assert len(track.crops._cache) == 2
    copy = pickle.loads(pickle.dumps(track))
    assert copy.crops._cache == {}
    np.testing.assert_array_equal(copy.crops[[0, 1]], first)


def test_a_video_changed_after_detection_is_refused_naming_it(tmp_path, package_face_images, budget):
    path = _moving_face_video(tmp_path / "clip.mp4", package_face_images["astronaut"], 12)
    budget(0)
    track = FaceDetector().fit_transform([str(path)])[0]
    _moving_face_video(path, package_face_images["astronaut"], 5)  # the file is replaced by a shorter one
    with pytest.raises(ValueError, match=r"clip\.mp4: frames \[5, 6, 7, 8, 9\] could not be read again.*"
                                         r"FNPGRADE_CROP_MEMORY_MB"):
        np.asarray(track.crops)


def test_the_budget_setting(monkeypatch):
    monkeypatch.delenv("FNPGRADE_CROP_MEMORY_MB", raising=False)
    assert crop_memory_budget() == CROP_MEMORY_MB * 2 ** 20
    monkeypatch.setenv("FNPGRADE_CROP_MEMORY_MB", "0.5")
    assert crop_memory_budget() == 2 ** 19
    monkeypatch.setenv("FNPGRADE_CROP_MEMORY_MB", "lots")
    with pytest.raises(ValueError, match=r"FNPGRADE_CROP_MEMORY_MB must be a number of MiB; got 'lots'"):
        crop_memory_budget()


def test_memory_held_while_measuring_stays_bounded(tmp_path, package_face_images, budget):
    """Measuring a re-read clip holds a few frames at a time, not every crop and every registered face."""
    path = str(_moving_face_video(tmp_path / "long.mp4", package_face_images["astronaut"], 120))
    cropper, measures = _measures_steps()
    peaks, rows = {}, {}
    for megabytes in (10_000, 0):
        budget(megabytes)
        detector = FaceDetector().fit()
        tracemalloc.start()
        rows[megabytes] = measures.transform(cropper.transform(detector.transform([path])))
        peaks[megabytes] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    np.testing.assert_array_equal(rows[0], rows[10_000])
    held_frames = 120 * (256 * 256 * 3 + 192 * 192 * 3)  # the crops and the registered faces alone
    assert peaks[10_000] > held_frames
    assert peaks[0] < 0.4 * peaks[10_000]  # 0.25 measured: what is left is the measurement's own 33 frames and flow
