"""Which side of the face is weaker: from each side's peak movement from rest over the whole video.

A palsy weakens one side of the face: every region of that side moves less
than its mirror partner. The measures read each region's excursion from the
rest face on each side of the *image*, frame by frame
(:func:`~fnpgrade.measures.measure_video`); this module sums the regions'
peaks per side, decides whether one side is clearly weaker, and names it as
the *patient's* side.

Side convention
---------------
An ordinary (rear or webcam, not mirrored) camera faces the patient, so the
image's left is the patient's **right**. Front-camera "selfie" videos are
often stored mirrored; then the image's left is the patient's left. Pass
``mirrored=True`` for those. Everything the report calls "left"/"right"
without "image" is the patient's side.

The decision
------------
Each reading of the measurement (each region's peak excursion from rest by
optical flow, each landmark group's peak displacement, each eye's closure)
gives ``log(left / right)``; their weighted mean is the face's asymmetry
(:func:`fnpgrade.measures.video.side_asymmetry`): a reading counts by how far
its stronger side moved beyond the noise floor, fully once it moved clearly
(:func:`fnpgrade.measures.video.evidence_weights`), so a region that did not
move says nothing, and each that moved counts once so that the mouth, which
moves most, does not decide alone. The side with the
negative share is the weaker. It is called *affected* only when both hold:

* **beyond the healthy range**: the weaker side moves less than
  :data:`CLEAR_RATIO` of the other (the weighted geometric mean over the readings).
  Healthy faces are not symmetric: on the project's real healthy recordings
  the readings' mean differs between sides by up to about 12 % (8 videos,
  originals and shams; ``benchmarks/results/real_motion.md``), so 15 % is the line;
* **movement to compare**: the largest peak excursion is at least
  :data:`MIN_NOISE_UNITS` times the measurement's noise floor (what the nose
  bridge, which no expression moves, moved; at least 1 % of the inter-ocular
  distance), so a still video says "none".

Otherwise the report says ``"none"``, and that the difference lies within the
range of healthy faces; except where a grader has graded the video above
normal (``graded_palsy``, the report with a model): a palsy has a side, so
the weaker side is named, and the report says its deficit lies within the
healthy range. The confidence is the share of bootstrap resamples of
the measured frames that reach the same decision. How often the rule names
the right side on real-motion video, the person held out, is measured by
``benchmarks/bench_real_motion.py`` (``docs/results.md``).
"""

from __future__ import annotations

import numpy as np

from ..measures.healthy import HEALTHY_RATIO, MIN_NOISE_UNITS, noise_units
from ..measures.video import VIDEO_REGIONS

__all__ = ["patient_side", "image_side", "affected_side", "CLEAR_RATIO", "MIN_NOISE_UNITS", "side_convention",
           "MOVEMENT_REGIONS"]

#: The weaker side is called affected only when it moves less than this share of the stronger side (the healthy
#: range's line, :data:`fnpgrade.measures.healthy.HEALTHY_RATIO`), and when the largest movement is at least
#: :data:`MIN_NOISE_UNITS` noise floors (see the module docstring).
CLEAR_RATIO = HEALTHY_RATIO

#: Regions whose movement is compared (the measures' regions; the nose bridge is the noise reference).
MOVEMENT_REGIONS = VIDEO_REGIONS


def side_convention(mirrored):
    """The sentence the report prints about sides."""
    if mirrored:
        return ("Sides are the patient's own. The video was declared mirrored (a front-camera 'selfie' video): the "
                "image's left is the patient's left.")
    return ("Sides are the patient's own. The video is taken as not mirrored (an ordinary camera facing the "
            "patient): the image's left is the patient's right. For a mirrored (front-camera 'selfie') video, "
            "make the report again with mirrored=True (--mirrored).")


def patient_side(image_side, mirrored=False):
    """The patient's side shown on ``image_side`` (``"left"``/``"right"``; ``None`` and ``"none"`` pass through).

    Examples
    --------
    >>> from fnpgrade.report.side import patient_side
    >>> patient_side("left"), patient_side("left", mirrored=True), patient_side("none")
    ('right', 'left', 'none')
    """
    if image_side in (None, "none"):
        return image_side
    if image_side not in ("left", "right"):
        raise ValueError(f"image_side must be 'left', 'right' or 'none'; got {image_side!r}.")
    if mirrored:
        return image_side
    return "right" if image_side == "left" else "left"


def image_side(patient, mirrored=False):
    """The image side showing the patient's ``patient`` side (the inverse of :func:`patient_side`)."""
    return patient_side(patient, mirrored)  # the map is its own inverse


def frame_resamples(rng, n_frames, n_resamples):
    """``(n_resamples, n_frames)`` positions among ``n_frames`` measured frames, drawn with replacement (the
    report's bootstraps). Drawn one resample at a time, as they always were: the same resamples on any numpy."""
    return np.array([rng.integers(0, n_frames, n_frames) for _ in range(n_resamples)], int).reshape(-1, n_frames)


def _decide(measurement, picks, clear_ratio, min_noise_units):
    """Each row of ``picks`` (positions among the measured frames, ``(B, n)``) decided: the weaker image side
    (``True``: left), the movement ratio, the noise units and whether the side is clearly weaker, ``(B,)`` each."""
    from ..measures.video import peaks, side_asymmetry

    peak = peaks(measurement, picks)  # once per resample, for the balance and the noise units alike
    asymmetry = side_asymmetry(measurement, picks, peak)
    ratio = np.exp(-np.abs(asymmetry))
    largest = np.max([peak[r][s] for r in MOVEMENT_REGIONS for s in ("left", "right")], axis=0)
    units = noise_units(largest, peak["reference"]["mid"])
    return asymmetry < 0, ratio, units, (ratio < clear_ratio) & (units >= min_noise_units)


def affected_side(measurement, mirrored=False, clear_ratio=CLEAR_RATIO, min_noise_units=MIN_NOISE_UNITS,
                  n_bootstrap=500, random_state=0, graded_palsy=False):
    """Decide the affected side of one video from its whole-video measurement.

    Parameters
    ----------
    measurement : dict or None
        :func:`fnpgrade.measures.measure_video`'s result (each region's
        excursion from rest per image side and frame).
    mirrored : bool, default=False
        Whether the video is mirrored (see the module docstring).
    clear_ratio, min_noise_units : float
        The decision's thresholds (see the module docstring).
    n_bootstrap : int, default=500
        Resamples of the measured frames for the confidence.
    random_state : int, default=0
    graded_palsy : bool, default=False
        A grader has graded the video above normal (the report with a model
        passes its grade). A palsy has a side: the weaker side is then named
        even when its deficit lies within the range of healthy faces (the
        result says so, ``within_healthy_range``), as a clinician who sees a
        palsy names the side that moves less. The face must still have moved
        beyond the noise. ``False``: the measures alone decide.

    Returns
    -------
    side : dict
        ``side`` (patient's ``"left"``/``"right"``/``"none"``), ``image_side``
        (image side, or ``"none"``), ``weaker_image_side`` (the side that moved
        less, even when not clearly), ``movement_percent`` (the weaker side's
        movement as a percentage of the other's: the weighted geometric mean over
        the readings), ``within_healthy_range`` (that percentage is not below
        ``clear_ratio``), ``noise_units`` (the largest movement over the noise
        floor), ``confidence`` (0-1: share of frame resamples
        agreeing with the decision), ``n_frames`` (frames measured against
        rest), ``reason`` (a sentence).
    """
    n_frames = 0 if measurement is None else len(measurement["frames"])
    if not n_frames:
        return {"side": "none", "image_side": "none", "weaker_image_side": None, "movement_percent": None,
                "within_healthy_range": None, "noise_units": 0.0, "confidence": 0.0, "n_frames": n_frames,
                "reason": "no frame with a measurable face moved from rest: the side cannot be decided."}

    def decide(picks):
        left, ratio, units, clear = _decide(measurement, picks, clear_ratio, min_noise_units)
        return left, ratio, units, clear | (graded_palsy & (units >= min_noise_units))

    left, ratio, units, named = decide(np.arange(n_frames)[None])
    left, ratio, noise_units, named = bool(left[0]), float(ratio[0]), float(units[0]), bool(named[0])
    weaker = "left" if left else "right"
    rng = np.random.default_rng(random_state)
    w, _, _, n = decide(frame_resamples(rng, n_frames, int(n_bootstrap)))
    agree = int(np.sum(n & (w == left)) if named else np.sum(~n))
    confidence = agree / max(1, int(n_bootstrap))
    percent = round(100 * ratio, 1)
    within = bool(ratio >= clear_ratio)
    if named and not within:
        reason = (f"the patient's {patient_side(weaker, mirrored)} side (image {weaker}) moved {percent:.0f}% as far "
                  "from rest as the other side (mean over the regions' readings)")
    elif named:
        reason = (f"the grade says a palsy, and the patient's {patient_side(weaker, mirrored)} side (image {weaker}) "
                  f"moved less: {percent:.0f}% as far as the other, within the range measured on healthy faces "
                  f"(below {100 * clear_ratio:.0f}% the measures alone would name it)")
    elif within:
        reason = (f"both sides moved alike: the weaker (image {weaker}) moved {percent:.0f}% as far as the other, "
                  f"not below {100 * clear_ratio:.0f}%: within the range measured on healthy faces")
    else:
        reason = (f"the image {weaker} side moved {percent:.0f}% as far as the other, but the face barely moved "
                  f"(its largest movement {noise_units:.1f} times the noise floor, {min_noise_units:g} needed): "
                  "record the standard expressions (raise brows, close eyes, smile)")
    return {"side": patient_side(weaker, mirrored) if named else "none", "image_side": weaker if named else "none",
            "weaker_image_side": weaker, "movement_percent": percent, "within_healthy_range": within,
            "noise_units": round(noise_units, 3), "confidence": round(float(confidence), 3), "n_frames": n_frames,
            "reason": reason}
