"""make_phcnn_pipeline: the whole grader as one scikit-learn Pipeline."""

from __future__ import annotations

from sklearn.pipeline import Pipeline

__all__ = ["make_phcnn_pipeline", "make_measures_pipeline", "acts_at_prediction", "STEP_NAMES",
           "MEASURES_STEP_NAMES"]

#: Names of the pipeline's steps, for ``set_params`` and fit parameters
#: (e.g. ``pipe.fit(X, y, classifier__groups=groups)``); ``sampler`` and ``measures``
#: only with ``augment=True`` / ``measures=True``.
STEP_NAMES = ("detector", "cropper", "sampler", "measures", "windower", "classifier")

#: Names of the steps of :func:`make_measures_pipeline`.
MEASURES_STEP_NAMES = ("detector", "cropper", "measures", "classifier")


def acts_at_prediction(step):
    """Whether a pipeline step transforms clips at prediction: neither ``None``/``"passthrough"`` nor a sampler
    (samplers act in training only, as in imbalanced-learn's ``Pipeline``)."""
    return step not in (None, "passthrough") and not hasattr(step, "fit_resample")

#: Side of the registered face crop the measures are read on: at 192 px the
#: inter-ocular distance is about 55 px, so 1% of it (the noise floor of the
#: movement ratios) is half a pixel of flow.
MEASURES_FACE_SIZE = 192


def make_phcnn_pipeline(arch="phcnn-lstm", detector="haar", landmarks="dlib", window=4, memory=None,
                        augment=False, fps=None, missing="interpolate", no_face="raise", n_jobs=None,
                        verbose=False, measures=False, **classifier_params):
    """Build ``FaceDetector -> LandmarkROICropper [-> FrameMeasures] -> SequenceWindower -> PHCNNClassifier``.

    Parameters
    ----------
    arch : str, default="phcnn-lstm"
        The network (see :class:`~fnpgrade.PHCNNClassifier`): ``"phcnn-lstm"``,
        ``"phcnn"``, ``"face-n1-lstm"``, ``"vgg16-lstm"``, ``"senet"`` or ``"lstm"``.
    detector : str, default="haar"
        Face detector backend (``"haar"`` is the paper's Viola-Jones).
    landmarks : str, default="dlib"
        Landmark backend (``"dlib"`` ships offline; ``"fan"`` needs local weights).
    window : int, default=4
        Frames per window (the paper's 4-frame sequences).
    memory : str, joblib.Memory or None
        Cache the fitted preprocessing steps (they learn nothing, so
        cross-validation folds and grid points reuse them).
    augment : bool, default=False
        Insert a :class:`~fnpgrade.JitterOverSampler` (fit time only) after the
        crops; the pipeline is then an ``imblearn.pipeline.Pipeline``.
    fps : float or None
        Resample videos to this rate while reading (the paper's data is 6 FPS).
    missing : {"interpolate", "drop", "raise"}, default="interpolate"
        What the detector does with frames where no face is found.
    no_face : {"raise", "blank"}, default="raise"
        What the detector does with a clip without any face: raise naming it,
        or keep it as blank frames flagged in the detector's ``report_``.
    n_jobs : int or None
        Parallel clips in preprocessing (joblib).
    verbose : bool, default=False
        Progress bars for preprocessing; skorch's epoch table for training.
    measures : bool, default=False
        Give the network the face's movement as numbers beside the pixels: a
        :class:`~fnpgrade.measures.FrameMeasures` step after the cropper
        attaches per-frame measures of each region's movement on each side
        (optical flow, head motion removed) and the classifier gets
        ``measures=True``, which adds them to the fused face, brow and mouth
        features before the LSTM. Use it to grade people the network has not
        seen in training: on pixels alone it learns the training faces
        (``docs/results.md``). ``"phcnn-lstm"`` and ``"phcnn"`` only. The
        classifier then mirrors training windows (``mirror_augment=True``
        unless given; it helped unseen people, see
        ``benchmarks/results/network_measures.md``). The cropper
        registers the frames of a clip to
        one another (``registration="clip"``: the measures are read on a still
        face); without measures it fits the crops to each frame's landmarks
        (``"frame"``, the paper). Either can be set with
        ``set_params(cropper__registration=...)``; for the network on pixels
        alone the two graded new people alike
        (``benchmarks/results/identity_generalisation.md``).
    **classifier_params
        Passed to :class:`~fnpgrade.PHCNNClassifier` (``width``, ``max_epochs``,
        ``lr``, ``class_weight``, ``random_state``, ...). ``device`` defaults
        to CUDA where PyTorch sees a GPU, else the CPU.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``detector``, ``cropper``, [``sampler``,] [``measures``,]
        ``windower``, ``classifier``.

    Examples
    --------
    >>> from fnpgrade import make_phcnn_pipeline
    >>> pipe = make_phcnn_pipeline(width=0.25, max_epochs=5)
    >>> [name for name, _ in pipe.steps]
    ['detector', 'cropper', 'windower', 'classifier']
    >>> [name for name, _ in make_phcnn_pipeline(measures=True).steps]
    ['detector', 'cropper', 'measures', 'windower', 'classifier']
    """
    from .classifier import PHCNNClassifier
    from .preprocessing.detect import FaceDetector
    from .preprocessing.roi import LandmarkROICropper
    from .preprocessing.windows import SequenceWindower

    if "registration" in classifier_params:  # a parameter of the pipeline until measures= decided it
        raise TypeError("make_phcnn_pipeline no longer takes registration=: the crops are registered per clip "
                        "with measures=True and per frame (the paper) without; to override, "
                        "pipe.set_params(cropper__registration='clip' or 'frame').")
    registration = "clip" if measures else "frame"
    if measures:
        classifier_params.setdefault("mirror_augment", True)
    classifier_params.setdefault("verbose", int(bool(verbose)))
    if "device" not in classifier_params:  # a GPU when there is one; the classifier alone keeps skorch's "cpu"
        from .nn.runtime import resolve_device

        classifier_params["device"] = resolve_device("auto")
    steps = [
        ("detector", FaceDetector(backend=detector, fps=fps, missing=missing, no_face=no_face, n_jobs=n_jobs,
                                  verbose=verbose)),
        ("cropper", LandmarkROICropper(landmarks=landmarks, registration=registration, n_jobs=n_jobs,
                                       verbose=verbose)),
    ]
    if augment:
        from imblearn.pipeline import Pipeline as ImbPipeline

        from .augment import JitterOverSampler

        steps.append(("sampler", JitterOverSampler(random_state=classifier_params.get("random_state"))))
        pipeline_class = ImbPipeline
    else:
        pipeline_class = Pipeline
    if measures:
        from .measures import FrameMeasures

        # after the sampler: jittered copies are measured on their own (moved) frames and landmarks
        steps.append(("measures", FrameMeasures(n_jobs=n_jobs)))
    steps += [
        ("windower", SequenceWindower(length=window)),
        ("classifier", PHCNNClassifier(arch=arch, measures=bool(measures), **classifier_params)),
    ]
    return pipeline_class(steps, memory=memory)


def make_measures_pipeline(classifier=None, detector="haar", landmarks="mediapipe", neutral=False, memory=None,
                           fps=None, missing="interpolate", no_face="raise", n_jobs=None, verbose=False,
                           random_state=None):
    """Build ``FaceDetector -> LandmarkROICropper -> FaceMeasures -> classifier``: the clinical grader.

    Grades from what a clinician looks at: how far each side of the face
    moves from the rest face over the whole clip or video (brow, eyelids,
    cheek, nose wing, mouth corner, lips; dense optical flow placed by
    landmarks, and the landmarks themselves), how completely each eye closes,
    and how the sides sit at rest (droop), always one side against the other
    (:func:`~fnpgrade.measures.measure_video`). The
    measures are an ordinary 2-D array, so any scikit-learn classifier grades
    them and cross-validation takes seconds once preprocessing is cached
    (``memory=``). Use it to grade people the model has never seen; the
    paper's network (:func:`make_phcnn_pipeline`) learns faces as well as
    palsy from few people.

    Parameters
    ----------
    classifier : estimator or None, default=None
        Any scikit-learn classifier with ``predict_proba``. ``None``:
        ``HealthyRangeClassifier(RandomForestClassifier(n_estimators=300,
        class_weight="balanced"))``: the forest learns from a few dozen clips
        (gradient boosting's leaves of 20 samples gave a constant answer on 24
        training clips) and handles missing measures (clips without a face)
        natively; :class:`~fnpgrade.measures.HealthyRangeClassifier` grades a
        face whose sides move alike I and one with a clearly weaker side never
        (``docs/measures.md``). Wrap your own classifier in it to keep that.
    landmarks : {"mediapipe", "dlib", "fan"}, default="mediapipe"
        Landmark backend placing the regions and reading eyelids and rest
        positions. MediaPipe Face Mesh (the optional ``mediapipe`` install,
        see ``docs/install.md``) follows the eyelids where dlib's shape prior
        holds them open, and grades unseen people better (``docs/measures.md``).
        ``"dlib"`` needs nothing more.
    neutral : bool, default=False
        Every clip starts with the person's neutral face (put there by
        :func:`~fnpgrade.measures.with_neutral_frame` from the person's rest
        clip, or a recording that starts at rest): movement is measured
        against it instead of against a rest face found in the clip
        (:class:`~fnpgrade.measures.FaceMeasures` ``neutral``). Use it
        whenever each person was also filmed at rest; the clips to grade must
        then start with it too.
    detector, memory, fps, missing, no_face, n_jobs, verbose
        As in :func:`make_phcnn_pipeline`.
    random_state : int, RandomState or None, default=None
        Seeds the default classifier.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``detector``, ``cropper`` (``registration="clip"``, face crops of
        192 px), ``measures`` (:class:`~fnpgrade.measures.FaceMeasures`),
        ``classifier``.

    Examples
    --------
    >>> from fnpgrade import make_measures_pipeline
    >>> pipe = make_measures_pipeline(random_state=0)
    >>> [name for name, _ in pipe.steps]
    ['detector', 'cropper', 'measures', 'classifier']
    """
    from sklearn.ensemble import RandomForestClassifier

    from .measures import FaceMeasures, HealthyRangeClassifier
    from .preprocessing.detect import FaceDetector
    from .preprocessing.roi import LandmarkROICropper

    if classifier is None:
        classifier = HealthyRangeClassifier(RandomForestClassifier(n_estimators=300, class_weight="balanced",
                                                                   random_state=random_state))
    steps = [
        ("detector", FaceDetector(backend=detector, fps=fps, missing=missing, no_face=no_face, n_jobs=n_jobs,
                                  verbose=verbose)),
        ("cropper", LandmarkROICropper(landmarks=landmarks, registration="clip", face_size=MEASURES_FACE_SIZE,
                                       n_jobs=n_jobs, verbose=verbose)),
        ("measures", FaceMeasures(neutral=neutral, n_jobs=n_jobs, verbose=verbose)),
        ("classifier", classifier),
    ]
    return Pipeline(steps, memory=memory)
