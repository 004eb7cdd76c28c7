"""FaceDetector: find and follow one face per clip, keep face-centred crops.

The detector streams each clip frame by frame (``fnpgrade.io.iter_frames``), so a
long high-resolution video never sits in memory whole: per frame it keeps only a
fixed-size square crop around the face (with a wide margin) and the face box in
source coordinates. The result per clip is a :class:`FaceTrack`, which the
:class:`~fnpgrade.preprocessing.roi.LandmarkROICropper` turns into the paper's
face / brow / mouth crops.

The parts live apart: the track type in :mod:`~fnpgrade.preprocessing.track`,
the detection backends and their registry (``DETECTOR_BACKENDS``) in
:mod:`~fnpgrade.preprocessing.detectors`, crop geometry in
:mod:`~fnpgrade.preprocessing.geometry`; this module holds the estimator and
its tracking rules. Their public names are importable from here too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from numbers import Integral, Real
from pathlib import Path

import cv2
import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..clips import frames_at
from ..config import crop_memory_budget
from ..io import IMAGE_EXTENSIONS, ClipRef, as_clip_array, describe_source, iter_frames
from .base import ClipTransformer
from .detectors import (DETECTOR_BACKENDS, DetectorBackend, DlibHOGDetector, HaarDetector, SFDDetector,
                        detect_rotated, get_detector_backend, loaded_detector, verifier_model, verify_face)
from .geometry import box_iou, crop_square, face_square, interpolate_missing, square_bounds
from .reread import ReReadCrops, rereadable
from .track import FaceTrack

__all__ = ["FaceTrack", "FaceDetector", "DetectorBackend", "HaarDetector", "DlibHOGDetector", "SFDDetector",
           "DETECTOR_BACKENDS", "get_detector_backend", "crop_square", "FaceCoverageError", "bridgeable_frames",
           "verify_face", "ASSUMED_FPS"]

#: Frame rate assumed for arrays and frame folders, which carry no time base
#: (the paper's 6 FPS, also that of the synthetic clips): ``max_gap_s`` is
#: counted in their frames at this rate.
ASSUMED_FPS = 6.0

#: Former name of :func:`~fnpgrade.preprocessing.geometry.interpolate_missing` (boxes ``(T, 4)``).
interpolate_boxes = interpolate_missing


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


#: Overlap (IoU) with the last box above which a found box is the followed face.
_FOLLOW_IOU = 0.3


def _most_overlapping(prev, boxes, minimum=_FOLLOW_IOU):
    """The box of ``boxes`` overlapping ``prev`` most, when by more than ``minimum`` (IoU); else None."""
    overlap = box_iou(prev, boxes)
    best = int(np.argmax(overlap))
    return boxes[best] if overlap[best] > minimum else None


@dataclass
class _Tracking:
    """What following one face through a clip remembers from frame to frame."""

    prev: np.ndarray | None = None  # last verified box, detection-image coordinates
    angle: float = 0.0              # in-plane angle the face was last found at
    since_full: int = 0             # frames since the last whole-frame search
    n_full: int = 0                 # whole-frame searches so far
    n_rejected: int = 0             # detections the second opinion rejected


class FaceDetector(ClipTransformer):
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
    near_size : float > 1 or None, default=None
        While a face is followed, search the whole frame first only at window
        sizes within this factor of its last box, and at every size only when
        nothing found there overlaps it (backends that search by size: ``"haar"``).
        Faster (the small windows are most of the cascade's cost), and not the
        same boxes in every frame: the cascade groups hits across neighbouring
        sizes, so a box can move by a few pixels where the face's hits reach
        beyond the range (``docs/performance.md`` measures both). ``None``
        searches every size.
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
        The fit-time report (set by ``fit_transform``, which ``Pipeline.fit``
        calls; ``transform`` leaves it alone), per clip: ``source``, ``n_frames_read``,
        ``n_found`` (frames with a verified face), ``n_rejected`` (detections
        that failed verification), ``n_interpolated``, ``n_dropped``,
        ``n_frames`` (kept), ``n_full_detections``, ``coverage``
        (``n_found / n_frames_read``), ``frame_rate`` (frames per second of the
        frames read), ``start_s`` (where the clip starts in its video) and
        ``blank``. Frame ``i`` of a track lies at
        ``start_s + frame_index[i] / frame_rate`` seconds.
    transform_report_ : list of dict
        The same, for the clips of the last ``transform`` (a prediction's).

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
        "near_size": [Interval(Real, 1, None, closed="neither"), None],
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

    near_size = None  # detectors pickled before the parameter existed search every size, as they did

    def __init__(self, backend="haar", min_face_size=40, select="largest", upscale=1.0, detect_width=320,
                 detect_every=1, near_size=None, crop_size=256, crop_margin=2.0, fps=None, missing="interpolate",
                 max_gap_s=0.5, min_coverage=0.5, no_face="raise", verify="auto", rotations=(-20, 20),
                 model_path=None, n_jobs=None, verbose=False):
        self.backend = backend
        self.min_face_size = min_face_size
        self.select = select
        self.upscale = upscale
        self.detect_width = detect_width
        self.detect_every = detect_every
        self.near_size = near_size
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
        self.backend_ = loaded_detector(self.backend, self._backend_options())
        if self._verifies():
            loaded_detector("dlib")  # the second opinion's model: load it now, not mid-video
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
        return self._map_clips(self._check_clips(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        return tags

    # -- ClipTransformer hooks ------------------------------------------------------------------

    _model_attribute = "backend_"
    # Frames, not clips: one long video would otherwise sit at "0/1" for minutes.
    _progress_unit = "frame"

    def _unloaded_model(self):
        return get_detector_backend(self.backend, **self._backend_options())

    def _worker_model(self):
        # joblib runs clips in parallel processes: one OpenCV thread each avoids oversubscribing the cores
        cv2.setNumThreads(1)
        return loaded_detector(self.backend, self._backend_options())

    def _progress_total(self, clips):
        counts = [_estimated_frames(source, self.fps) for source in clips]
        return None if any(c is None for c in counts) else sum(counts)

    def _progress_done(self, report):
        return report["n_frames_read"]

    # -- helpers ------------------------------------------------------------------------------

    def _backend_options(self):
        return {} if self.model_path is None else {"model_path": str(self.model_path)}

    def _checks_beside_search(self):
        """Whether a frame's check and crop run on a second thread beside the next frame's search.

        Not with the dlib backend: ``verify="hog"`` would run dlib's one detector on two threads at once.
        """
        return self.backend != "dlib"

    def _verifies(self):
        return self.verify == "hog" or (self.verify == "auto" and self.backend == "haar")

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
        return iter(as_clip_array(source, name))

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

    def _transform_one(self, source, index, model=None, progress=None):
        return self._track_clip(source, index, model, progress=progress)

    def _track_clip(self, source, index, backend=None, progress=None):
        """Read clip ``index`` frame by frame, follow its face and crop it: ``(FaceTrack, report)``.

        Each frame is searched on this thread while the previous frame's face is
        checked (:func:`verify_face`) and cropped on another (dlib and OpenCV
        release the GIL there). The search of frame ``t`` starts from frame
        ``t - 1``'s box as if the check will pass, as it almost always does; when
        it does not, frame ``t`` is searched again without it, so the boxes are
        exactly those of checking before searching on.
        """
        backend = backend or self.backend_
        name = describe_source(source, index)
        crops, boxes, crop_boxes, found = [], [], [], []
        tracking = _Tracking()
        shape = None
        n_read = 0
        reread = self._rereads(source)  # too many crops to hold: cut them again from the file when read
        if self._verifies():
            verifier_model()  # loaded here, not on the checking thread
        overlap = self._checks_beside_search()
        rejected = 0

        def settle(t, job):
            """Frame ``t``'s checked result into the lists; whether its face was kept."""
            nonlocal rejected
            box, crop, cbox, vetoed = job.result() if overlap else job
            rejected += vetoed
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
                return False
            found.append(True)
            boxes.append(box)
            crops.append(crop)
            crop_boxes.append(cbox)
            return True

        def check(frame, box, angle):
            return self._check_and_crop(frame, box, scale, angle, reread)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fnpgrade-check") as pool:
            run = pool.submit if overlap else (lambda func, *args: func(*args))  # the same steps, in turn
            pending = None  # (t, job) of the frame searched last, not yet settled
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
                before = replace(tracking)
                box = self._search(backend, frame, scale, min_side, tracking)
                job = run(check, frame, box, tracking.angle)
                if not overlap:  # checked before the next search: a vetoed face is not followed
                    if not settle(t, job):
                        tracking.prev = None
                    continue
                if pending is not None and not settle(*pending) and before.prev is not None:
                    # frame t - 1's face was rejected: frame t is searched as if nothing had been followed
                    tracking = replace(before, prev=None)
                    box = self._search(backend, frame, scale, min_side, tracking)
                    job = run(check, frame, box, tracking.angle)
                pending = (t, job)
            if pending is not None:
                settle(*pending)
        if n_read == 0:
            raise ValueError(f"{name}: the clip has no frames; remove it or supply frames.")
        tracking.n_rejected = rejected
        report = self._read_report(source, name, n_read, found, tracking)
        return self._finish(source, name, crops, boxes, crop_boxes, np.array(found), shape, report, reread)

    def _rereads(self, source):
        """Whether the clip's crops would exceed :func:`~fnpgrade.config.crop_memory_budget` (a file only)."""
        if not rereadable(source):
            return False
        n = _estimated_frames(source, self.fps)
        return n is not None and n * self.crop_size ** 2 * 3 > crop_memory_budget()

    def _search(self, backend, frame, scale, min_side, tracking):
        """The face box in ``frame`` (detection-image pixels), or None; advances ``tracking``.

        Follows the face near its last box between whole-frame searches
        (``detect_every``), searches the whole frame upright, then at the
        ``rotations``. Sets ``tracking.prev`` to what it found, as though
        :func:`verify_face` will keep it (:meth:`_track_clip` searches again when
        it does not).
        """
        height, width = frame.shape[:2]
        small = frame if scale == 1.0 else cv2.resize(
            frame, (max(1, int(round(width * scale))), max(1, int(round(height * scale)))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if self.backend == "haar" else small
        prev, box = tracking.prev, None
        followed = prev is not None and tracking.since_full < self.detect_every
        if followed:
            box = self._follow(backend, gray, prev, min_side, tracking.angle)
        if box is None:
            tracking.n_full += 1
            tracking.since_full = 0
            last_angle = tracking.angle
            box, tracking.angle = self._detect_full(backend, gray, min_side, prev, (0.0,))
            if box is None and prev is not None and not followed and self.detect_every > 1:
                # a scheduled whole-frame search missed a face the track still holds: keep following
                box, tracking.angle = self._follow(backend, gray, prev, min_side, last_angle), last_angle
            if box is None and self.rotations:
                box, tracking.angle = self._detect_full(backend, gray, min_side, prev, self.rotations)
        tracking.since_full += 1
        tracking.prev = box
        return box

    def _check_and_crop(self, frame, box, scale, angle, reread):
        """``(box, crop, crop_box, vetoed)`` of a face found in ``frame``, after :func:`verify_face`'s say.

        ``box`` (detection-image pixels, or None) comes back in source pixels,
        None when nothing was found or the check vetoed it (not a face to a
        second model: neither kept nor followed). The crop is None when the clip's
        crops are re-read (:meth:`_rereads`).
        """
        if box is None:
            return None, None, None, False
        box = box / scale
        if self._verifies() and not verify_face(frame, box, angle):
            return None, None, None, True
        crop, cbox = (None, self._crop_box(box)) if reread else self._crop(frame, box)
        return box, crop, cbox, False

    def _read_report(self, source, name, n_read, found, tracking):
        """The clip's report as read, before gaps are bridged or dropped (:meth:`_finish` updates it)."""
        n_found = int(np.sum(found))
        report = {"source": name, "n_frames_read": n_read, "n_found": n_found, "n_rejected": tracking.n_rejected,
                  "n_interpolated": 0, "n_dropped": 0, "n_frames": n_read, "n_full_detections": tracking.n_full,
                  "coverage": float(n_found) / n_read, "frame_rate": _frame_rate(source, self.fps),
                  "start_s": 0.0, "blank": False}
        if isinstance(source, ClipRef) and source.start:
            report["start_s"] = source.start / report["frame_rate"]
        return report

    def _detect_full(self, backend, gray, min_side, prev=None, angles=(0.0,)):
        """Search the whole detection image at each of ``angles`` (degrees) in turn.

        With several faces, the one overlapping the previous frame's box wins
        (one subject per clip: a false positive elsewhere does not take over
        the track); otherwise ``select`` decides.
        """
        for angle in (float(a) for a in angles):
            if prev is not None:
                box = self._detect_near_size(backend, gray, min_side, prev, angle)
                if box is not None:
                    return box, angle
            boxes = detect_rotated(backend, gray, angle, min_size=min_side)
            if len(boxes):
                kept = _most_overlapping(prev, boxes) if prev is not None and len(boxes) > 1 else None
                return (self._pick(boxes, gray.shape) if kept is None else kept), angle
        return None, 0.0

    def _detect_near_size(self, backend, gray, min_side, prev, angle):
        """``near_size``: the whole-frame search at sizes near ``prev``'s, when it finds ``prev``'s face; else None.

        A box found within the size range ``near_size`` that overlaps ``prev``
        by more than 0.3 (and ``1 / near_size ** 2``, the most a box outside the
        range can overlap it) is the one the search at every size would keep
        among its boxes; the boxes themselves can differ by OpenCV's grouping of
        hits across sizes. When nothing found there overlaps ``prev`` the search
        at every size decides.
        """
        if self.near_size is None or not backend.searches_sizes:
            return None
        side = prev[2] - prev[0]
        boxes = detect_rotated(backend, gray, angle, min_size=max(min_side, side / self.near_size),
                               max_size=side * self.near_size)
        if not len(boxes):
            return None
        return _most_overlapping(prev, boxes, max(_FOLLOW_IOU, self.near_size ** -2))

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
        candidates = detect_rotated(backend, gray[y0:y1, x0:x1], angle, min_size=lo, max_size=1.33 * side)
        if not len(candidates):
            return None
        candidates = candidates + np.array([x0, y0, x0, y0], float)
        return _most_overlapping(prev, candidates)

    def _crop(self, frame, box):
        return crop_square(frame, *face_square(box, self.crop_margin), self.crop_size)

    def _crop_box(self, box):
        return square_bounds(*face_square(box, self.crop_margin), self.crop_size)

    def _finish(self, source, name, crops, boxes, crop_boxes, found, shape, report, reread=False):
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
        if not found.all():  # bridged gaps: boxes from the detections on both sides
            boxes = interpolate_missing(boxes, found)
            crop_boxes[~found] = [self._crop_box(box) for box in boxes[~found]]
            report["n_interpolated"] = int((~found).sum())
        recipe = ReReadCrops(source, self.fps, frame_index, boxes, self.crop_margin, self.crop_size, name)
        if not reread:  # held in memory: the gaps' crops from a second read now
            for i, crop in frames_at(recipe, np.flatnonzero(~found)):
                crops[i] = crop
        crops = recipe if reread else _stack_releasing(crops)
        track = FaceTrack(crops=crops, boxes=boxes, crop_boxes=crop_boxes, found=found,
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

