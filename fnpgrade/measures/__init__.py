"""Measures of the face: each side's movement and rest position, for grading and for the report.

:class:`FaceMeasures` turns registered face clips into a table of named
measures (:data:`FEATURE_NAMES`); :func:`measure_clip` measures one clip;
:mod:`~fnpgrade.measures.regions` says where each region sits.
"""

from .features import FEATURE_NAMES, measure_clip
from .regions import REGIONS, SIDES, face_frame, region_boxes
from .frames import FRAME_FEATURE_NAMES, frame_measures
from .transformer import FaceMeasures, FrameMeasures

__all__ = ["FaceMeasures", "FrameMeasures", "FRAME_FEATURE_NAMES", "frame_measures", "FEATURE_NAMES", "measure_clip", "REGIONS", "SIDES", "face_frame", "region_boxes"]
