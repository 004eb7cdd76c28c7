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

Backends live in an explicit registry of small classes sharing one base; each
loads its model lazily in ``load`` (never at import or construction), so
estimators stay cheap to clone and pickle.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

__all__ = [
    "IBUG68_TO_49", "BROW_49", "EYE_49", "NOSE_49", "MOUTH_49", "LEFT_EYE_49", "RIGHT_EYE_49",
    "to_49", "dlib_model_path", "LandmarkBackend", "DlibLandmarks", "LANDMARK_BACKENDS",
    "get_landmark_backend",
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


class LandmarkBackend:
    """Base class: predicts 68 iBUG landmarks inside a face box.

    Subclasses implement ``_load`` (build the model; called once, lazily) and
    ``_predict(image, box)`` returning ``(68, 2)`` float (x, y) in image pixels.
    """

    name = "base"

    def __init__(self, **options):
        self.options = options
        self._model = None

    def load(self):
        if self._model is None:
            self._model = self._load()
        return self

    def predict(self, image, box):
        """68 landmarks for the face in ``box`` = (x0, y0, x1, y1) of an RGB uint8 image."""
        self.load()
        return np.asarray(self._predict(image, np.asarray(box, dtype=float)), dtype=float)

    def __getstate__(self):
        # Loaded models are large and some (dlib) do not pickle: drop them and reload lazily.
        state = self.__dict__.copy()
        state["_model"] = None
        return state

    def _load(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict(self, image, box):  # pragma: no cover - abstract
        raise NotImplementedError


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


LANDMARK_BACKENDS = {"dlib": DlibLandmarks}


def get_landmark_backend(name, **options):
    """Instantiate a landmark backend by name (see ``LANDMARK_BACKENDS``)."""
    try:
        cls = LANDMARK_BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"Unknown landmark backend {name!r}; choose one of {sorted(LANDMARK_BACKENDS)}."
        ) from None
    return cls(**options)
