"""Measures of the face: each side's movement and rest position, for grading and for the report.

:class:`FaceMeasures` turns registered face clips into a table of named
measures (:data:`FEATURE_NAMES`); :func:`measure_clip` measures one clip;
:mod:`~fnpgrade.measures.regions` says where each region sits.
"""

from .features import FEATURE_NAMES, measure_clip
from .regions import REGIONS, SIDES, face_frame, region_boxes
from .transformer import FaceMeasures

__all__ = ["FaceMeasures", "FEATURE_NAMES", "measure_clip", "REGIONS", "SIDES", "face_frame", "region_boxes"]
