"""Region sub-grades: forehead, eye, mid-face and mouth, the affected side against the healthy one.

Each region's movement is its peak excursion from the rest face over the
whole video, per side (optical flow, head motion removed;
:func:`~fnpgrade.measures.measure_video`). A region's **percent** is the affected side's movement as a
percentage of the healthy side's: the idea of the eFACE dynamic items and the
Sunnybrook voluntary-movement items (a movement compared with the normal
side), *not* their scores, which a clinician rates on a scale of their own.
The item each region corresponds to is named; nothing here is a validated
clinical score.

The eye also gets **closure completeness** from the eyelid landmarks: how far
the affected eye closes (lid opening at its most closed against its opening
at rest) as a percentage of how far the healthy eye closes in the same video.
Complete closure is the line between House-Brackmann 3 and 4.

A region's **level** is fnpgrade's reading of the percent, I (normal, >=
:data:`LEVEL_LIMITS` [0]), II (reduced) or III (barely perceptible or none,
< :data:`LEVEL_LIMITS` [1]), like the paper's levels; the limits were set on
synthetic faces (movement ratios of HB 1: 84-100 %, HB 5-6: about 10-40 %)
and are not validated on patients.
"""

from __future__ import annotations

import numpy as np

from .side import patient_side

__all__ = ["CLINICAL_REGIONS", "LEVEL_LIMITS", "region_scores", "eye_closure", "region_level"]

#: (key, name, measured regions, corresponding eFACE / Sunnybrook items).
CLINICAL_REGIONS = (
    ("forehead", "forehead and brow", ("brow",),
     "eFACE: brow elevation; Sunnybrook: forehead wrinkle"),
    ("eye", "eye", ("eye",),
     "eFACE: gentle and full eye closure; Sunnybrook: gentle eye closure"),
    ("midface", "mid-face (cheek, nose wing)", ("cheek", "nose_wing"),
     "eFACE: nasolabial fold depth with smile; Sunnybrook: snarl"),
    ("mouth", "mouth (commissure, lips)", ("commissure", "mouth_corner", "upper_lip", "lower_lip"),
     "eFACE: oral commissure movement with smile, lower lip movement; Sunnybrook: open mouth smile, lip pucker"),
)

#: Percent of the healthy side's movement: >= the first is level I, < the second level III.
LEVEL_LIMITS = (85.0, 30.0)

#: A region moved when one side's peak excursion is more than this many times the video's noise floor.
MOVED_NOISE_UNITS = 2.0

#: The healthy eye must close by at least this share of its opening for closure completeness to be read.
MIN_CLOSURE = 0.3


def region_level(percent):
    """Level ``"I"``/``"II"``/``"III"`` of a percent of the healthy side's movement (``None`` for ``None``)."""
    if percent is None:
        return None
    return "I" if percent >= LEVEL_LIMITS[0] else "III" if percent < LEVEL_LIMITS[1] else "II"


def eye_closure(measurement):
    """How far each eye closes over the video: ``{image side: share of its rest opening closed}`` (0-1).

    The rest opening is the eye's lid opening in the rest frame, the closed
    one its minimum over the video; ``None`` without landmarks.
    """
    if measurement is None:
        return {"left": None, "right": None}
    out = {}
    for side in ("left", "right"):
        values = np.asarray(measurement["eye_aperture"][side], float)
        opened = measurement["rest_aperture"][side]
        out[side] = float(np.clip(1 - values.min() / opened, 0, 1)) if len(values) and opened > 0 else None
    return out


def region_scores(measurement, affected_image_side, mirrored=False):
    """Per clinical region: each patient side's movement, the affected side's percent and a level.

    Parameters
    ----------
    measurement : dict or None
        The video's :func:`fnpgrade.measures.measure_video` result.
    affected_image_side : {"left", "right", None}
        The image side compared against the other (the affected side, or the
        side that moved less when none is clearly affected).
    mirrored : bool, default=False

    Returns
    -------
    regions : list of dict
        ``key``, ``name``, ``items`` (the eFACE / Sunnybrook items it
        corresponds to), ``movement`` (``{"left", "right"}``: patient sides,
        peak excursion from rest, the mean over the region's parts, in
        inter-ocular distances), ``percent`` (the compared side against the
        other, or ``None`` when the region did not move), ``level``; the eye
        adds ``closure`` (``{"left", "right"}``: share of the rest opening
        closed) and ``closure_percent``.
    """
    from ..measures.video import noise_floor, peaks

    other = {"left": "right", "right": "left"}
    compared = affected_image_side if affected_image_side in ("left", "right") else None
    closure = eye_closure(measurement)
    peak = peaks(measurement) if measurement is not None and len(measurement["frames"]) else None
    noise = noise_floor(measurement) if peak is not None else 0.0
    regions = []
    for key, name, parts, items in CLINICAL_REGIONS:
        totals = {side: float(sum(peak[p][side] for p in parts)) if peak else 0.0 for side in ("left", "right")}
        side = compared or min(totals, key=totals.get)
        strong = totals[other[side]]
        # a region whose peak never passed twice its noise floor did not move: its percent would compare noise
        moved = max(totals.values()) > MOVED_NOISE_UNITS * noise * len(parts)
        percent = round(100 * min(totals[side] / strong, 1.5), 1) if moved and strong > 0 else None
        entry = {"key": key, "name": name, "items": items, "compared_side": patient_side(side, mirrored),
                 "movement": {patient_side(s, mirrored): round(v / len(parts), 4) for s, v in totals.items()},
                 "percent": percent, "level": region_level(percent)}
        if key == "eye":
            entry["closure"] = {patient_side(s, mirrored): None if v is None else round(v, 3)
                                for s, v in closure.items()}
            healthy, weak = closure.get(other[side]), closure.get(side)
            entry["closure_percent"] = (None if healthy is None or weak is None or healthy < MIN_CLOSURE
                                        else round(100 * min(weak / healthy, 1.5), 1))
            if entry["closure_percent"] is not None:
                # the lids' own landmarks read closure; flow cannot follow a lid sliding over the eye
                entry["level"] = region_level(min(entry["closure_percent"], percent or entry["closure_percent"]))
        regions.append(entry)
    return regions
