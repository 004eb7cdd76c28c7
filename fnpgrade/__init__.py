"""fnpgrade: grade facial nerve paralysis from face videos (PHCNN-LSTM, Liu et al.).

Every step is a scikit-learn estimator; :func:`make_phcnn_pipeline` chains
``FaceDetector -> LandmarkROICropper -> SequenceWindower -> PHCNNClassifier``.

Names are imported lazily, so ``import fnpgrade`` stays fast and does not load
torch until a network is needed.
"""

from .lazy import lazy_exports

__version__ = "0.3.0"

# public name -> module that defines it
_EXPORTS = {
    "FaceDetector": "fnpgrade.preprocessing.detect",
    "FaceTrack": "fnpgrade.preprocessing.detect",
    "LandmarkROICropper": "fnpgrade.preprocessing.roi",
    "SequenceWindower": "fnpgrade.preprocessing.windows",
    "RegionClip": "fnpgrade.clips",
    "WindowedClip": "fnpgrade.clips",
    "PHCNNClassifier": "fnpgrade.classifier",
    "Runtime": "fnpgrade.nn.runtime",
    "JitterOverSampler": "fnpgrade.augment",
    "make_phcnn_pipeline": "fnpgrade.pipeline",
    "make_measures_pipeline": "fnpgrade.pipeline",
    "FaceMeasures": "fnpgrade.measures",
    "FrameMeasures": "fnpgrade.measures",
    "HealthyRangeClassifier": "fnpgrade.measures",
    "make_palsy_clips": "fnpgrade.datasets",
    "load_clip_folder": "fnpgrade.datasets",
    "load_ckplus": "fnpgrade.datasets",
    "split_into_clips": "fnpgrade.datasets",
    "concat_datasets": "fnpgrade.datasets",
    "read_clip": "fnpgrade.io",
    "hb_to_level": "fnpgrade.grading",
    "grade_by_subject": "fnpgrade.grading",
    "grade_videos": "fnpgrade.apply",
    "preprocess_once": "fnpgrade.prepare",
    "LEVELS": "fnpgrade.grading",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


__getattr__, __dir__ = lazy_exports("fnpgrade", _EXPORTS, globals())
