"""LandmarkROICropper on real photos and a real video: the paper's face / brow / mouth crops."""

import pickle

import cv2
import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from fnpgrade import FaceDetector, FaceTrack, LandmarkROICropper, RegionClip, SequenceWindower
from fnpgrade.preprocessing.landmarks import BROW_49, EYE_49, LEFT_EYE_49, MOUTH_49, NOSE_49, RIGHT_EYE_49
from fnpgrade.preprocessing.roi import RIGID_49, apply_affine, region_transforms, similarity_to


def _frame(face, matrix=None, flip=False, size=(480, 640)):
    """The photo centred on a grey 640x480 frame, then moved by a 2x3 affine ``matrix`` and/or mirrored."""
    frame = np.full(size + (3,), 90, np.uint8)
    h, w = face.shape[:2]
    y0, x0 = (size[0] - h) // 2, (size[1] - w) // 2
    frame[y0:y0 + h, x0:x0 + w] = face
    if matrix is not None:
        frame = cv2.warpAffine(frame, matrix, (size[1], size[0]), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(90, 90, 90))
    return np.ascontiguousarray(frame[:, ::-1]) if flip else frame


@pytest.fixture(scope="module")
def face(package_face_images):
    return cv2.resize(package_face_images["astronaut"], (384, 384), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def steps():
    return FaceDetector().fit(), LandmarkROICropper().fit()


def _run(steps, frames, **params):
    detector, cropper = steps
    if params:
        cropper = LandmarkROICropper(**params).fit()
    return cropper.transform(detector.transform([np.stack(frames)]))[0]


def _inside(points, height, width):
    return np.all((points[..., 0] >= 0) & (points[..., 0] <= width - 1)
                  & (points[..., 1] >= 0) & (points[..., 1] <= height - 1))


def _iod(points):
    return np.linalg.norm(points[LEFT_EYE_49].mean(0) - points[RIGHT_EYE_49].mean(0))


def _corr(a, b):
    a = a.astype(float).ravel() - a.mean()
    b = b.astype(float).ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def test_region_clip_shapes_and_coordinates(steps, face):
    region = _run(steps, [_frame(face)] * 2)
    assert isinstance(region, RegionClip) and region.source == "X[0]"
    assert region.face.shape == (2, 128, 128, 3) and region.face.dtype == np.uint8
    assert region.brow.shape == region.mouth.shape == (2, 40, 120, 3)
    assert region.landmarks.shape == region.face_landmarks.shape == (2, 49, 2) and region.found.all()
    # source coordinates: the astronaut's eyes sit where the photo was pasted (photo x 128..512, y 48..432)
    eyes = region.landmarks[0, EYE_49]
    assert np.all((eyes[:, 0] > 128 + 100) & (eyes[:, 0] < 128 + 260) & (eyes[:, 1] > 48 + 60) & (eyes[:, 1] < 48 + 160))
    # face-crop coordinates: the same points through the face crop's affine map, inside the crop
    geometry = region_transforms(region.landmarks)
    np.testing.assert_allclose(region.face_landmarks, apply_affine(geometry["face"], region.landmarks))
    assert _inside(region.face_landmarks, 128, 128)


def _similarity(angle=0.0, scale=1.0, shift=(0.0, 0.0), centre=(320.0, 240.0)):
    matrix = cv2.getRotationMatrix2D(centre, angle, scale)
    matrix[:, 2] += shift
    return matrix


MOVES = {
    "shift_left_down": dict(shift=(-70, 40)),
    "shift_right_up": dict(shift=(60, -45)),
    "rotate_+15": dict(angle=15),
    "rotate_-15": dict(angle=-15),
    "scale_0.7": dict(scale=0.7),
    "scale_1.3": dict(scale=1.3),
}


@pytest.fixture(scope="module")
def reference(steps, face):
    return _run(steps, [_frame(face)])


@pytest.mark.parametrize("move", sorted(MOVES))
def test_rois_follow_shifts_rotations_and_scaling(steps, face, reference, move):
    matrix = _similarity(**MOVES[move])
    region = _run(steps, [_frame(face, matrix)])
    assert region.found.all()
    # landmarks move with the face (normalised mean error, as for landmark benchmarks)
    expected = apply_affine(matrix, reference.landmarks[0])
    assert np.linalg.norm(region.landmarks[0] - expected, axis=1).mean() / _iod(expected) < 0.08
    # eye (and brow) landmarks fall inside the brow ROI, mouth landmarks inside the mouth ROI
    geometry = region_transforms(region.landmarks[0])
    assert _inside(apply_affine(geometry["brow"], region.landmarks[0][np.r_[BROW_49, EYE_49]]), 40, 120)
    assert _inside(apply_affine(geometry["mouth"], region.landmarks[0][MOUTH_49]), 40, 120)
    assert not _inside(apply_affine(geometry["mouth"], region.landmarks[0][EYE_49]), 40, 120)
    # and the crops show the same face parts (after rotation: with the roll removed)
    if "rotate" in move:
        region = _run(steps, [_frame(face, matrix)], align=True)
    for key in ("brow", "mouth", "face"):
        assert _corr(getattr(region, key)[0], getattr(reference, key)[0]) > 0.8, key


def test_rois_follow_mirroring(steps, face, reference):
    region = _run(steps, [_frame(face, flip=True)])
    mirrored = reference.landmarks[0].copy()
    mirrored[:, 0] = 639 - mirrored[:, 0]
    for part in (BROW_49, EYE_49, NOSE_49, MOUTH_49):  # point order swaps sides; compare each part's centre
        assert np.linalg.norm(region.landmarks[0, part].mean(0) - mirrored[part].mean(0)) < 0.05 * _iod(mirrored)
    geometry = region_transforms(region.landmarks[0])
    assert _inside(apply_affine(geometry["brow"], region.landmarks[0][EYE_49]), 40, 120)
    assert _inside(apply_affine(geometry["mouth"], region.landmarks[0][MOUTH_49]), 40, 120)
    for key in ("brow", "mouth"):
        assert _corr(getattr(region, key)[0][:, ::-1], getattr(reference, key)[0]) > 0.8, key


def test_align_removes_the_roll(steps, face):
    region = _run(steps, [_frame(face, _similarity(angle=12))], align=True)
    points = region.face_landmarks[0]
    dx, dy = points[RIGHT_EYE_49].mean(0) - points[LEFT_EYE_49].mean(0)
    assert abs(np.degrees(np.arctan2(dy, dx))) < 2.0
    unaligned = _run(steps, [_frame(face, _similarity(angle=12))])
    dx, dy = unaligned.face_landmarks[0, RIGHT_EYE_49].mean(0) - unaligned.face_landmarks[0, LEFT_EYE_49].mean(0)
    assert abs(np.degrees(np.arctan2(dy, dx))) > 8.0


def test_face_at_the_border_is_padded_not_shifted(steps, face, reference):
    region = _run(steps, [_frame(face, _similarity(shift=(-260, 0)))])  # brows 7 px from the left edge
    assert region.found.all()
    # the face keeps its place in the crop (as in a centred photo) ...
    np.testing.assert_allclose(region.face_landmarks[0].mean(0), reference.face_landmarks[0].mean(0), atol=4)
    # ... and the crop columns beyond the frame's left edge are black padding
    inverse = cv2.invertAffineTransform(region_transforms(region.landmarks[0])["face"])
    source_x = inverse[0, 0] * np.arange(128) + inverse[0, 2]
    outside = source_x < -1
    assert outside.sum() >= 3 and region.face[0][:, outside].max() == 0
    assert _corr(region.mouth[0], reference.mouth[0]) > 0.8


def test_frames_without_face_get_interpolated_landmarks(steps, face):
    a, b = _frame(face, _similarity(shift=(-20, 0))), _frame(face, _similarity(shift=(20, 0)))
    cropper = LandmarkROICropper().fit()
    tracks = FaceDetector(missing="interpolate").fit_transform([np.stack([a, np.zeros_like(a), b])])
    region = cropper.transform(tracks)[0]
    assert region.found.tolist() == [True, False, True]
    np.testing.assert_allclose(region.landmarks[1], region.landmarks[[0, 2]].mean(0))
    assert cropper.transform_report_ == [{"source": "X[0]", "n_frames": 3, "n_landmarked": 2, "n_landmark_missed": 0,
                                "n_interpolated": 1, "n_occluded": 0, "blank": False}]
    assert region.face[1].max() == 0  # the blank frame stays blank: nothing is invented


def test_frames_where_the_landmark_model_finds_no_face_are_counted_and_interpolated(face):
    # a backend such as MediaPipe answers NaN when it finds no face in the detector's box
    a, b = _frame(face, _similarity(shift=(-20, 0))), _frame(face, _similarity(shift=(20, 0)))
    cropper = LandmarkROICropper().fit()
    real = cropper.landmarks_

    class MissesTheSecondFrame:
        calls = 0

        def predict(self, image, box):
            self.calls += 1
            return np.full((68, 2), np.nan) if self.calls == 2 else real.predict(image, box)

    tracks = FaceDetector().fit_transform([np.stack([a, a, b])])
    cropper.landmarks_ = MissesTheSecondFrame()
    region = cropper.transform(tracks)[0]
    assert region.found.tolist() == [True, False, True]
    assert np.isfinite(region.landmarks).all() and np.isfinite(region.face_landmarks).all()
    assert cropper.transform_report_[0]["n_landmark_missed"] == 1 and cropper.transform_report_[0]["n_landmarked"] == 2
    cropper.landmarks_ = type("Never", (), {"predict": lambda self, image, box: np.full((68, 2), np.nan)})()
    assert cropper.transform(tracks)[0].face.max() == 0 and cropper.transform_report_[0]["blank"]


def test_blank_track_gives_black_crops_and_nan_landmarks():
    track = FaceTrack(crops=np.zeros((3, 64, 64, 3), np.uint8), boxes=np.full((3, 4), np.nan),
                      crop_boxes=np.full((3, 4), np.nan), found=np.zeros(3, bool), frame_index=np.arange(3),
                      n_frames_read=3, frame_size=(100, 100), source="empty.mp4", blank=True)
    cropper = LandmarkROICropper().fit()
    region = cropper.transform([track])[0]
    assert region.n_frames == 3 and region.face.max() == 0 and np.isnan(region.landmarks).all()
    assert not region.found.any() and cropper.transform_report_[0]["blank"]


def test_real_video_end_to_end(pyfeat_path):
    path = pyfeat_path("single_face.mp4")
    tracks = FaceDetector(fps=6, detect_every=3).fit_transform([path])
    region = LandmarkROICropper().fit_transform(tracks)[0]
    assert region.n_frames == 15 and region.found.all() and region.source == path
    geometry = region_transforms(region.landmarks)
    assert _inside(apply_affine(geometry["brow"], region.landmarks[:, EYE_49]), 40, 120)
    assert _inside(apply_affine(geometry["mouth"], region.landmarks[:, MOUTH_49]), 40, 120)
    assert _inside(region.landmarks, 360, 640)


def test_roi_montage_writes_a_png(tmp_path, steps, face):
    from fnpgrade.plots import roi_montage

    region = _run(steps, [_frame(face), _frame(face, _similarity(angle=10))])
    fig = roi_montage(region, path=tmp_path / "montage.png")
    image = cv2.imread(str(tmp_path / "montage.png"))
    assert image is not None and image.shape[0] > 200 and len(fig.axes) == 6
    with pytest.raises(TypeError, match="expects one RegionClip"):
        roi_montage([region])


def test_n_jobs_and_pickling_keep_results(steps, face):
    frames = [np.stack([_frame(face)]), np.stack([_frame(face, _similarity(shift=(30, 10)))] * 2)]
    tracks = steps[0].transform(frames)
    serial = steps[1].transform(tracks)
    parallel = LandmarkROICropper(n_jobs=2).fit().transform(tracks)
    restored = pickle.loads(pickle.dumps(steps[1]))
    assert restored.landmarks_._model is None  # the 100 MB predictor is not pickled
    again = restored.transform(tracks)
    assert [c.n_frames for c in parallel] == [1, 2]
    for a, b, c in zip(serial, parallel, again):
        np.testing.assert_array_equal(a.face, b.face)
        np.testing.assert_array_equal(a.landmarks, c.landmarks)


def test_pipeline_memory_caches_preprocessing(tmp_path, face, monkeypatch):
    calls = []
    original = FaceDetector._track_clip

    def counting(self, source, index, *args, **kwargs):
        calls.append(index)
        return original(self, source, index, *args, **kwargs)

    monkeypatch.setattr(FaceDetector, "_track_clip", counting)
    X = [np.stack([_frame(face)] * 4), np.stack([_frame(face, _similarity(shift=(20, 0)))] * 4)]
    pipe = Pipeline([("detector", FaceDetector()), ("cropper", LandmarkROICropper()),
                     ("windower", SequenceWindower())], memory=str(tmp_path / "cache"))
    first = pipe.fit(X).transform(X)
    assert len(calls) == 4  # fit_transform on 2 clips, then transform on 2 clips
    pipe2 = Pipeline([("detector", FaceDetector()), ("cropper", LandmarkROICropper()),
                      ("windower", SequenceWindower())], memory=str(tmp_path / "cache"))
    pipe2.fit(X)
    assert len(calls) == 4  # the second fit reused the cached detector and cropper outputs
    np.testing.assert_array_equal(pipe2.transform(X)[1].brow, first[1].brow)


def test_parameters_and_inputs_are_checked():
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="'landmarks' parameter of LandmarkROICropper"):
        LandmarkROICropper(landmarks="intraface").fit()
    with pytest.raises(ValueError, match="'roi_size' parameter of LandmarkROICropper"):
        LandmarkROICropper(roi_size=(40,)).fit()
    with pytest.raises(TypeError, match=r"X\[0\] is a ndarray, not a FaceTrack"):
        LandmarkROICropper().fit().transform([np.zeros((2, 8, 8, 3), np.uint8)])


def test_cropper_progress_bar(terminal_stderr, steps, face):
    tracks = steps[0].transform([np.stack([_frame(face)])])
    terminal = terminal_stderr()
    LandmarkROICropper(verbose=True).fit_transform(tracks)
    assert "LandmarkROICropper" in terminal.getvalue()


# -- registration="clip": fixed crops per clip, frames registered on the rigid points ------------------

def test_similarity_to_recovers_a_similarity_and_passes_nan():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(13, 2)) * 40 + 200
    angle, scale, shift = 0.3, 1.25, np.array([12.0, -7.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = np.stack([target @ rot.T + shift, target, np.full_like(target, np.nan)])
    matrices = similarity_to(source, target)
    assert matrices.shape == (3, 2, 3)
    np.testing.assert_allclose(apply_affine(matrices[:2], source[:2]), np.stack([target, target]), atol=1e-9)
    np.testing.assert_allclose(matrices[0, :, :2] @ rot, np.eye(2), atol=1e-12)  # the inverse of the move
    assert np.isnan(matrices[2]).all()
    np.testing.assert_allclose(similarity_to(source[0], target), matrices[0])


def _smiling(reference, amount):
    """The 49 points with the mouth corners pulled out and up by ``amount`` x the inter-ocular distance."""
    points = reference.copy()
    iod = _iod(points)
    left, right = MOUTH_49[0], MOUTH_49[6]  # iBUG 48 and 54
    points[left] += np.array([-1.0, -0.5]) * amount * iod
    points[right] += np.array([1.0, -0.5]) * amount * iod
    return points


def test_clip_registration_keeps_movement_that_frame_registration_normalises_away(reference):
    rest = reference.landmarks[0]
    moved = apply_affine(_similarity(angle=5, shift=(9, -4), scale=1.1), _smiling(rest, 0.15))
    frames = np.stack([rest, moved])
    left, right = MOUTH_49[0], MOUTH_49[6]

    def mouth_width(geometry):  # mouth-corner distance in mouth-crop pixels, per frame
        inside = apply_affine(geometry["mouth"], frames)
        return np.linalg.norm(inside[:, left] - inside[:, right], axis=1)

    per_frame = mouth_width(region_transforms(frames))
    per_clip = mouth_width(region_transforms(frames, registration="clip"))
    # the paper's per-frame boxes stretch the wider smile back to the crop's width ...
    assert abs(per_frame[1] / per_frame[0] - 1) < 0.02
    # ... fixed crops show it: 0.3 iod wider, the head's move and scale taken out
    np.testing.assert_allclose(per_clip[1] / per_clip[0], 1 + 0.3 * _iod(rest) / np.linalg.norm(rest[left] - rest[right]),
                               rtol=0.02)
    # the rigid points sit at the same crop pixels in every frame
    face = apply_affine(region_transforms(frames, registration="clip")["face"], frames)
    assert np.abs(face[1, RIGID_49] - face[0, RIGID_49]).max() < 1e-6
    with pytest.raises(ValueError, match="registration must be one of"):
        region_transforms(frames, registration="median")


def test_clip_registration_holds_the_face_still_through_head_motion(steps, face, reference):
    moves = [None, _similarity(shift=(14, -9)), _similarity(angle=6, scale=1.08), _similarity(angle=-4, shift=(-10, 6))]
    frames = [_frame(face, m) for m in moves]
    per_clip = _run(steps, frames, registration="clip")
    per_frame = _run(steps, frames)
    assert per_clip.found.all()
    for key in ("face", "brow", "mouth"):
        crops = getattr(per_clip, key)
        assert min(_corr(crops[t], crops[0]) for t in range(1, 4)) > 0.9, key
    # the same face parts as the paper's crops, and the rigid points still in the crop
    assert _corr(per_clip.face[0], per_frame.face[0]) > 0.8
    drift = per_clip.face_landmarks[:, RIGID_49] - per_clip.face_landmarks[0, RIGID_49]
    assert np.linalg.norm(drift, axis=-1).mean() < 1.5  # dlib's jitter, in 128-px face-crop pixels


def test_mediapipe_on_threads_gives_the_landmarks_of_one_thread(monkeypatch, pyfeat_path):
    """Face Mesh runs in static-image mode (no state between frames): copies of it on threads landmark a real
    recording exactly as one copy on the calling thread does, frame for frame."""
    pytest.importorskip("mediapipe")
    track = FaceDetector(fps=10).fit_transform([pyfeat_path("single_face.mp4")])
    results = {}
    for threads in ("1", "3"):
        monkeypatch.setenv("FNPGRADE_FRAME_THREADS", threads)
        cropper = LandmarkROICropper(landmarks="mediapipe", registration="clip").fit()
        results[threads] = (cropper.transform(track)[0], cropper.transform_report_[0])
    one, many = results["1"][0], results["3"][0]
    assert np.isfinite(one.landmarks).all()
    np.testing.assert_array_equal(one.landmarks, many.landmarks)
    np.testing.assert_array_equal(one.face, many.face)
    np.testing.assert_array_equal(one.occluded, many.occluded)
    assert results["1"][1] == results["3"][1]
