"""FaceMeasures: registered face clips -> a table of named, side-comparing measures."""

from __future__ import annotations

import dataclasses
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..clips import RegionClip
from ..preprocessing.base import ClipTransformer
from ..utils import check_clip_list, clip_name
from .frames import FRAME_FEATURE_NAMES, frame_measures
from .motion import FLOW_PRESETS, DISFlow
from .video import VIDEO_FEATURE_NAMES, measure_video, video_features, weaker_side

__all__ = ["FaceMeasures", "FrameMeasures"]


class _MeasuresStep(ClipTransformer):
    """What both measures steps share: nothing to learn, named outputs, landmarks of the found frames."""

    #: Names of the measures the step computes.
    _feature_names = ()

    def fit(self, X=None, y=None):
        """Check the parameters. Nothing is learned.

        Parameters
        ----------
        X : list of RegionClip, optional
            Ignored.
        y : ignored

        Returns
        -------
        self : estimator
        """
        self._validate_params()
        self.n_features_out_ = len(self._names_out())
        return self

    def _names_out(self):
        return self._feature_names

    def get_feature_names_out(self, input_features=None):
        """Names of the measures (see :mod:`fnpgrade.measures.features` and :mod:`~fnpgrade.measures.frames`)."""
        check_is_fitted(self)
        return np.asarray(self._names_out(), dtype=object)

    def _found_landmarks(self, clip, index):
        """The clip's face-crop landmarks, NaN in frames whose face was not found (only interpolated) or is occluded."""
        if clip.face_landmarks is None:
            raise ValueError(f"{clip_name(clip, index)}: the clip has no face_landmarks; {type(self).__name__} needs "
                             "the RegionClips of a LandmarkROICropper (registration='clip').")
        # frames with a hand at the face: the landmarks draw a calm face under it, the flow reads the hand
        usable = clip.found if clip.occluded is None else clip.found & ~clip.occluded
        return np.where(usable[:, None, None], clip.face_landmarks, np.nan)


class FaceMeasures(_MeasuresStep):
    """Measure each clip as a clinician watches it: every frame against the rest face, side against side.

    Takes the :class:`~fnpgrade.RegionClip` s of a
    :class:`~fnpgrade.LandmarkROICropper` with ``registration="clip"`` (face
    frames registered to one another) and returns one row of
    :data:`~fnpgrade.measures.VIDEO_FEATURE_NAMES` per clip, whatever its
    length (a 4-frame window or a whole recording): from here on the data is
    an ordinary 2-D array for any scikit-learn classifier.

    Each clip is measured by :func:`~fnpgrade.measures.measure_video`: the
    person's rest face is found in the clip (or is its first frame, see
    ``neutral``), each region's excursion from it on each side is read with
    dense optical flow (landmark models pull faces toward symmetry) and with
    the landmarks, and each region's peak is compared side against side.
    Nothing is learned: ``fit`` only checks the parameters.

    Parameters
    ----------
    flow_preset : {"medium", "fast", "ultrafast"}, default="medium"
        DIS optical-flow preset (slower presets follow small movements better).
    max_frames : int, default=32
        Frames of a clip compared with its rest frame (spread evenly over
        longer clips; the cost grows linearly with it).
    neutral : bool, default=False
        The first frame of every clip is the person's rest face (a recording
        that starts at rest, or :func:`~fnpgrade.measures.with_neutral_frame`
        put the person's rest frame there). Without it the rest face is found
        in each clip (:func:`~fnpgrade.measures.video.find_rest_frame`). Use
        it when each person was filmed at rest; clips to grade must then start
        at rest too.
    n_jobs : int or None, default=None
        Clips measured in parallel (joblib).
    verbose : bool, default=False
        Show a progress bar over clips.

    Attributes
    ----------
    n_features_out_ : int
        Number of measures.
    report_ : list of dict
        The fit-time report (set by ``fit_transform``; ``transform`` writes
        ``transform_report_`` instead), per clip: ``source``, ``n_frames``,
        ``rest_frame`` (index of the rest face in the clip), ``weaker_side``
        (image side that moved less, ``None`` without a face) and ``blank``
        (no usable landmarks: the row is NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade import FaceDetector, LandmarkROICropper
    >>> from fnpgrade.measures import FaceMeasures
    >>> from fnpgrade.datasets.media import package_faces
    >>> clip = np.stack([package_faces()["astronaut"]] * 2)
    >>> regions = LandmarkROICropper(registration="clip", face_size=192).fit_transform(
    ...     FaceDetector().fit_transform([clip]))
    >>> measures = FaceMeasures().fit(regions)
    >>> measures.transform(regions).shape == (1, len(measures.get_feature_names_out()))
    True
    """

    _parameter_constraints = {
        "flow_preset": [StrOptions(set(FLOW_PRESETS))],
        "max_frames": [Interval(Integral, 1, None, closed="left")],
        "neutral": ["boolean"],
        "n_jobs": [Integral, None],
        "verbose": ["boolean", Integral],
    }

    _feature_names = VIDEO_FEATURE_NAMES

    def __init__(self, flow_preset="medium", max_frames=32, neutral=False, n_jobs=None, verbose=False):
        self.flow_preset = flow_preset
        self.max_frames = max_frames
        self.neutral = neutral
        self.n_jobs = n_jobs
        self.verbose = verbose

    def transform(self, X):
        """One row of measures per clip.

        Parameters
        ----------
        X : list of RegionClip
            The output of ``LandmarkROICropper(registration="clip")``.

        Returns
        -------
        measures : ndarray of float, shape (n_clips, n_features_out_)
            NaN rows for clips without usable landmarks (counted in ``transform_report_``).
        """
        check_is_fitted(self)
        return np.stack(self._map_clips(check_clip_list(X, RegionClip, "FaceMeasures.transform")))

    def measure(self, clip, index=0):
        """The whole :func:`~fnpgrade.measures.measure_video` result of one clip (what the report reads).

        Parameters
        ----------
        clip : RegionClip
        index : int, default=0
            The clip's position, for error messages.

        Returns
        -------
        measurement : dict or None
            ``None`` when no frame has landmarks.
        """
        # frames where the face was not found carry interpolated geometry only: measure real frames
        landmarks = self._found_landmarks(clip, index)
        if self.neutral and clip.found[0]:
            landmarks[0] = clip.face_landmarks[0]  # the given rest face stays the rest face, whatever it reads
        return measure_video(clip.face, landmarks, rest="first" if self.neutral else "auto",
                             flow=DISFlow(self.flow_preset), max_frames=self.max_frames)

    def _transform_one(self, clip, index, model=None, progress=None):
        measurement = self.measure(clip, index)
        report = {"source": clip_name(clip, index), "n_frames": clip.n_frames,
                  "rest_frame": None if measurement is None else int(measurement["rest_index"]),
                  "weaker_side": weaker_side(measurement), "blank": measurement is None}
        return video_features(measurement), report


class FrameMeasures(_MeasuresStep):
    """Attach per-frame movement measures to each clip, for a network's measures branch.

    Takes and returns :class:`~fnpgrade.RegionClip` s (from
    ``LandmarkROICropper(registration="clip")``); each returned clip carries
    ``measures``, a ``(T, K)`` array of
    :data:`~fnpgrade.measures.frames.FRAME_FEATURE_NAMES`: how far each region
    of each side has moved since the clip's first frame (optical flow, head
    motion removed), symmetric in the two sides. The
    :class:`~fnpgrade.SequenceWindower` windows them with the frames and
    :class:`~fnpgrade.PHCNNClassifier` feeds them to the network beside the
    pixels. Nothing is learned.

    Parameters
    ----------
    flow_preset : {"medium", "fast", "ultrafast"}, default="medium"
        DIS optical-flow preset.
    n_jobs : int or None, default=None
        Clips measured in parallel (joblib).
    verbose : bool, default=False
        Show a progress bar over clips.

    Attributes
    ----------
    n_features_out_ : int
        Measures per frame ``K``.
    report_ : list of dict
        The fit-time report (set by ``fit_transform``; ``transform`` writes
        ``transform_report_`` instead), per clip: ``source``, ``n_frames``.

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade import FaceDetector, LandmarkROICropper
    >>> from fnpgrade.measures import FrameMeasures
    >>> from fnpgrade.datasets.media import package_faces
    >>> clip = np.stack([package_faces()["astronaut"]] * 2)
    >>> regions = LandmarkROICropper(registration="clip").fit_transform(FaceDetector().fit_transform([clip]))
    >>> FrameMeasures().fit_transform(regions)[0].measures.shape
    (2, 29)
    """

    _parameter_constraints = {
        "flow_preset": [StrOptions(set(FLOW_PRESETS))],
        "n_jobs": [Integral, None],
        "verbose": ["boolean", Integral],
    }

    _feature_names = FRAME_FEATURE_NAMES

    def __init__(self, flow_preset="medium", n_jobs=None, verbose=False):
        self.flow_preset = flow_preset
        self.n_jobs = n_jobs
        self.verbose = verbose

    def transform(self, X):
        """The same clips with ``measures`` attached.

        Parameters
        ----------
        X : list of RegionClip

        Returns
        -------
        clips : list of RegionClip
        """
        check_is_fitted(self)
        return self._map_clips(check_clip_list(X, RegionClip, "FrameMeasures.transform"))

    def _transform_one(self, clip, index, model=None, progress=None):
        measures = frame_measures(clip.face, self._found_landmarks(clip, index), DISFlow(self.flow_preset))
        return dataclasses.replace(clip, measures=measures), {"source": clip_name(clip, index),
                                                              "n_frames": clip.n_frames}
