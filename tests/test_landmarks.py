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
    assert set(LANDMARK_BACKENDS) == {"dlib", "fan"}
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
