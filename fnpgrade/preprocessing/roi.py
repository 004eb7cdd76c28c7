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
first. All geometry is one affine map per crop
(:func:`~fnpgrade.preprocessing.geometry.region_transforms`), so the same
numbers place landmarks in the crops.

Fitting every frame's crops to that frame's own landmarks (the paper's way,
``registration="frame"``) rescales and recentres each crop with the
expression: a smile widens the mouth's box, so the mouth fills the mouth crop
at rest and at peak alike, and one-sided movement partly cancels; landmark
jitter moves the crop from frame to frame. ``registration="clip"`` places the
crops once per clip, on the clip's median shape, and registers each frame to
that shape with a similarity transform fitted on the points expressions move
least (the eye corners and the nose, :data:`~fnpgrade.preprocessing.geometry.RIGID_49`), so the face moves inside
fixed crops as it does in front of the camera while head motion and jitter are
taken out.
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..clips import LazyFrames, RegionClip, frames_at
from ..config import frame_threads
from ..utils import check_clip_list, clip_name, threaded_map
from .backend import loaded_backend, loaded_copies
from .base import ClipTransformer
from .geometry import (REGISTRATIONS, RIGID_49, apply_affine, detector_box_to_dlib, interpolate_missing,
                       region_transforms, similarity_to)
from .landmarks import LANDMARK_BACKENDS, get_landmark_backend, to_49
from .occlusion import hand_near_face, occluded_frames
from .reread import WarpedFrames
from .track import FaceTrack

# The geometry (region_transforms, apply_affine, similarity_to, RIGID_49...) lives in
# fnpgrade.preprocessing.geometry; it is re-exported here, where it was first defined.
__all__ = ["LandmarkROICropper", "region_transforms", "apply_affine", "detector_box_to_dlib", "RIGID_49",
           "similarity_to"]

class LandmarkROICropper(ClipTransformer):
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
        Clips processed in parallel (joblib). Apart from that, MediaPipe
        landmarks one clip's frames on :func:`fnpgrade.config.frame_threads`
        threads (a copy of its graph each; the same points), one in a worker.
    verbose : bool, default=False
        Show a progress bar over clips (tqdm).

    Attributes
    ----------
    landmarks_ : LandmarkBackend
        The loaded landmark backend (model dropped when pickling, reloaded lazily).
    report_ : list of dict
        The fit-time report (set by ``fit_transform``, which ``Pipeline.fit``
        calls; ``transform`` leaves it alone), per clip: ``source``, ``n_frames``, ``n_landmarked``
        (predicted), ``n_landmark_missed`` (frames where the detector saw a face
        but the landmark model found none in its box), ``n_interpolated``
        (filled from neighbours), ``n_occluded`` (frames with a hand or other
        skin-coloured occluder at the face, :mod:`fnpgrade.preprocessing.occlusion`:
        marked in the clip's ``occluded``, left out of the measures), ``blank``.
    transform_report_ : list of dict
        The same, for the clips of the last ``transform`` (a prediction's).

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
        self.landmarks_ = loaded_backend(self._unloaded_model())
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
        return self._map_clips(check_clip_list(X, FaceTrack, "LandmarkROICropper.transform"))

    # -- ClipTransformer hooks ------------------------------------------------------------------

    _model_attribute = "landmarks_"

    def _unloaded_model(self):
        return get_landmark_backend(self.landmarks, **self._backend_options())

    def _worker_model(self):
        return loaded_backend(self._unloaded_model())

    # -- helpers ------------------------------------------------------------------------------

    def _backend_options(self):
        options = {} if self.model_path is None else {"model_path": str(self.model_path)}
        if self.landmarks == "fan":
            options["device"] = self.device
        return options

    def _transform_one(self, track, index, model=None, progress=None):
        """Landmarks and crops of track ``index``: ``(RegionClip, report)``."""
        backend = model or self.landmarks_
        name = clip_name(track, index)
        n = track.n_frames
        roi_h, roi_w = tuple(self.roi_size)
        report = {"source": name, "n_frames": n, "n_landmarked": 0, "n_landmark_missed": 0, "n_interpolated": 0,
                  "n_occluded": 0,
                  "blank": bool(track.blank)}
        if track.blank or not track.found.any():
            return self._blank_clip(n, name, report)
        boxes = track.to_crop(detector_box_to_dlib(track.boxes, track.backend).reshape(n, 2, 2)).reshape(n, 4)
        points = np.full((n, 49, 2), np.nan)
        hand = np.full(n, np.nan)

        def landmark(model, frame):
            t, crop = frame
            in_crop = model.predict(crop, boxes[t])
            return t, to_49(track.to_source(in_crop, t)), hand_near_face(crop, in_crop)

        # each frame is landmarked on its own (MediaPipe in static-image mode): copies of the model on threads
        # give the same points in the same order; a joblib worker (model given) keeps to one thread
        models = loaded_copies(backend, 1 if model is not None else frame_threads())
        for t, in_source, near in threaded_map(landmark, frames_at(track.crops, np.flatnonzero(track.found)),
                                               models):
            points[t] = in_source
            hand[t] = near
        # a backend may find no face in a detector's box (NaN points): such a frame is not landmarked
        known = track.found & np.isfinite(points).all(axis=(1, 2))
        report["n_landmarked"] = int(known.sum())
        report["n_landmark_missed"] = int(track.found.sum() - known.sum())
        report["n_interpolated"] = int(n - known.sum())
        occluded = occluded_frames(np.where(known, hand, np.nan))
        report["n_occluded"] = int(occluded.sum())
        if not known.any():
            return self._blank_clip(n, name, report)
        points = interpolate_missing(points, known)
        geometry = region_transforms(points, self.face_size, (roi_h, roi_w), self.face_margin, self.roi_padding,
                                     self.align, self.registration)
        # crop pixel c -> source p = s * c + (o + 0.5 s - 0.5): compose with the source -> output maps
        scale = (track.crop_boxes[:, 2] - track.crop_boxes[:, 0]) / track.crop_size
        shift = track.crop_boxes[:, :2] + 0.5 * scale[:, None] - 0.5
        outputs = {}
        for key, size in (("face", (self.face_size, self.face_size)), ("brow", (roi_h, roi_w)),
                          ("mouth", (roi_h, roi_w))):
            m = geometry[key]
            maps = np.stack([np.hstack([m[t, :, :2] * scale[t], (m[t, :, :2] @ shift[t] + m[t, :, 2])[:, None]])
                             for t in range(n)])
            frames = WarpedFrames(track.crops, maps, size)
            # crops held in memory give crops held in memory; re-read ones stay recipes (see reread.py)
            outputs[key] = frames if isinstance(track.crops, LazyFrames) else np.asarray(frames)
        clip = RegionClip(face=outputs["face"], brow=outputs["brow"], mouth=outputs["mouth"], landmarks=points,
                          face_landmarks=apply_affine(geometry["face"], points), found=known, source=name,
                          occluded=occluded)
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

