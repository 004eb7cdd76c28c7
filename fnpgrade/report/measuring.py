"""Per-window measures of each side, with everything :func:`~fnpgrade.measures.measure_clip` returns.

:class:`~fnpgrade.measures.FaceMeasures` keeps only the row of features a
classifier needs; the report also needs the movement of each region on each
side, the eyelid openings frame by frame and the clip's noise. This module
measures registered face clips the way ``FaceMeasures`` does (same flow
preset, same key frames, same landmarks of found frames) and keeps it all, so
the report never measures a window twice.
"""

from __future__ import annotations

import numpy as np

__all__ = ["measure_windows", "measures_settings"]


def measures_settings(step=None):
    """``(flow_preset, max_key_frames, neutral)`` of a fitted ``FaceMeasures`` step, or its defaults for ``None``."""
    from ..measures import FaceMeasures

    step = step if step is not None else FaceMeasures()
    return (getattr(step, "flow_preset", "medium"), getattr(step, "max_key_frames", 6),
            bool(getattr(step, "neutral", False)))


def measure_windows(region_clips, flow_preset="medium", max_key_frames=6, neutral=False):
    """Measure each :class:`~fnpgrade.RegionClip` (registered per clip) with :func:`~fnpgrade.measures.measure_clip`.

    Parameters
    ----------
    region_clips : list of RegionClip
        From ``LandmarkROICropper(registration="clip")``, one per window.
    flow_preset : str, default="medium"
        DIS preset, as ``FaceMeasures(flow_preset=...)``.
    max_key_frames : int, default=6
        As ``FaceMeasures(max_key_frames=...)``.
    neutral : bool, default=False
        As ``FaceMeasures(neutral=...)``: each clip's first frame is the
        neutral face; the other frames are measured as a clip, and against it.

    Returns
    -------
    results : list of dict
        One :func:`~fnpgrade.measures.measure_clip` result per clip, plus
        ``noise``: the clip's noise floor in IOD (the larger of what the nose
        bridge moved and :data:`~fnpgrade.measures.features.NOISE_IOD`).
    """
    from ..measures.features import NOISE_IOD
    from ..measures.motion import DISFlow
    from ..measures.neutral import measure_with_neutral

    flow = DISFlow(flow_preset)
    results = []
    for clip in region_clips:
        if clip.face_landmarks is None:
            raise ValueError(f"{clip.source or 'a window'}: the clip has no face_landmarks; the report measures "
                             "the RegionClips of LandmarkROICropper(registration='clip').")
        # as FaceMeasures: frames whose face was not found carry interpolated geometry only
        landmarks = np.where(clip.found[:, None, None], clip.face_landmarks, np.nan)
        result = measure_with_neutral(clip.face, landmarks, flow, max_key_frames, neutral)
        reference = result["movement"].get("reference", {}).get("mid", 0.0) if result["movement"] else 0.0
        result["noise"] = float(max(NOISE_IOD, reference))
        results.append(result)
    return results
