"""Measures of the face: each side's movement and rest position, for grading and for the report.

:class:`FaceMeasures` turns registered face clips into a table of named
measures (:data:`FEATURE_NAMES`); :func:`measure_clip` measures one clip; with ``neutral=True`` each clip is
also measured against the person's neutral face (:mod:`~fnpgrade.measures.neutral`);
:mod:`~fnpgrade.measures.regions` says where each region sits.
"""

from .features import FEATURE_NAMES, measure_clip
from .regions import REGIONS, SIDES, face_frame, region_boxes
from .frames import FRAME_FEATURE_NAMES, frame_measures
from .neutral import NEUTRAL_FEATURE_NAMES, measure_from_neutral, with_neutral_frame
from .transformer import FaceMeasures, FrameMeasures

__all__ = ["FaceMeasures", "FrameMeasures", "FRAME_FEATURE_NAMES", "frame_measures", "FEATURE_NAMES", "measure_clip",
           "NEUTRAL_FEATURE_NAMES", "measure_from_neutral", "with_neutral_frame", "REGIONS", "SIDES", "face_frame",
           "region_boxes"]
