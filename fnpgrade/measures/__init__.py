"""Measures of the face: each side's movement from rest and rest position, for grading and for the report.

:func:`measure_video` measures one registered face clip (any length) against
its rest face; :func:`video_features` turns that into a row of named measures
(:data:`VIDEO_FEATURE_NAMES`); :class:`FaceMeasures` does both for a pipeline;
:class:`HealthyRangeClassifier` grades them with the healthy range as HB I's line;
:func:`with_neutral_frame` puts a person's rest frame in front of their clips;
:mod:`~fnpgrade.measures.regions` says where each region sits.
"""

from .frames import FRAME_FEATURE_NAMES, frame_measures
from .healthy import HealthyRangeClassifier
from .neutral import with_neutral_frame
from .regions import REGIONS, SIDES, face_frame, region_boxes
from .transformer import FaceMeasures, FrameMeasures
from .video import VIDEO_FEATURE_NAMES, find_rest_frame, measure_video, video_features

__all__ = ["FaceMeasures", "FrameMeasures", "HealthyRangeClassifier", "FRAME_FEATURE_NAMES", "frame_measures", "VIDEO_FEATURE_NAMES",
           "measure_video", "video_features", "find_rest_frame", "with_neutral_frame", "REGIONS", "SIDES",
           "face_frame", "region_boxes"]
