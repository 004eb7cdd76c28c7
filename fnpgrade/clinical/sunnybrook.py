"""The Sunnybrook Facial Grading System, scored from the measures.

Sunnybrook (Ross et al., 1996) scores three parts, always of the affected
side against the healthy one:

* **resting symmetry** (x5): eye (palpebral fissure) normal 0, narrow or wide
  1; cheek (nasolabial fold) normal 0, less or more pronounced 1, absent 2;
  mouth normal 0, corner dropped or pulled up/out 1;
* **voluntary movement** (x4): five expressions, each 1 (unable to initiate)
  to 5 (complete): brow raise, gentle eye closure, open-mouth smile, snarl,
  lip pucker;
* **synkinesis**: for each of the five, 0 (none) to 3 (severe) involuntary
  movement of other regions;

composite = voluntary (20-100) - resting (0-20) - synkinesis (0-15).

How each item is read here (the formulas are in ``docs/sunnybrook.md``): a
voluntary item from the affected side's peak movement over the healthy
side's in the expression's own region (:data:`VOLUNTARY`), as a share of
normal movement (the healthy range counts as complete), cut at
:data:`VOLUNTARY_STEPS`; resting items from the rest face's side-to-side
offsets cut at :data:`REST_OFFSET_IOD`; synkinesis from how much more the
affected side moved, in the regions the expression should leave still, than
the healthy side did. Fold depth, tone and tears are not seen: the cheek
item reads the nose wing's height, which drops with the fold.
"""

from __future__ import annotations

import numpy as np

from .examination import WHOLE_VIDEO
from .readings import (eye_closure, examination_side, excess_movement, item_ratio, other_side, rest_offsets,
                       share_of_normal)

__all__ = ["sunnybrook_score", "VOLUNTARY", "VOLUNTARY_STEPS", "REST_OFFSET_IOD", "EYE_OPENING_RATIO",
           "SYNKINESIS_STEPS", "MIN_ITEMS_FOR_ESTIMATE"]

#: Voluntary items: (expression, flow regions read; "eye closure" for the lids). The snarl reads the cheek beside
#: the nose, which it lifts, not the nose wing: the nose moves as one piece, pulled by the healthy side too (on the
#: synthetic HB5-6 examinations the paralysed nose wing read 0.4-0.8 of the healthy one).
VOLUNTARY = {"brow_raise": ("brow",), "gentle_eye_closure": "eye closure",
             "open_smile": ("mouth_corner", "commissure", "cheek"), "snarl": ("cheek",),
             "lip_pucker": ("upper_lip", "lower_lip")}

#: Share of normal movement (:func:`~fnpgrade.clinical.readings.share_of_normal`: the affected / healthy ratio over
#: the healthy range, capped at 1) from which an item scores 2, 3, 4, 5 (below the first: 1, unable to initiate).
VOLUNTARY_STEPS = (0.10, 0.35, 0.60, 0.85)

#: A rest-face offset counts from this many IOD (about 2.5 mm in an adult face); the cheek item's "absent" from
#: twice it.
REST_OFFSET_IOD = 0.04

#: The affected eye's rest opening outside [r, 1/r] of the healthy eye's counts as narrow / wide.
EYE_OPENING_RATIO = 0.8

#: Voluntary items needed for ``composite_estimate`` (the composite from the items a video shows).
MIN_ITEMS_FOR_ESTIMATE = 3

#: Synkinesis 1, 2, 3 from this excess movement of a region that should stay still (IOD), or of eye closure
#: (share of the opening) for the eye.
SYNKINESIS_STEPS = {"flow": (0.03, 0.06, 0.10), "eye": (0.15, 0.30, 0.50)}

# regions that should stay still during each expression (synkinesis: the affected side moving them)
_STILL = {"brow_raise": ("mouth_corner", "commissure"), "gentle_eye_closure": ("mouth_corner", "commissure"),
          "open_smile": "eye closure", "snarl": ("brow",), "lip_pucker": "eye closure"}


def _step(value, steps):
    return int(np.searchsorted(steps, value, side="right"))



def sunnybrook_score(examination, affected=None):
    """Score one examination on the Sunnybrook scale from its measurements.

    Parameters
    ----------
    examination : dict
        ``{expression: measurement}`` (:func:`~fnpgrade.clinical.measure_examination`),
        or ``{"whole_video": measurement}``.
    affected : {"left", "right"} or None
        Image side to score as affected; default the side that moves less over
        the examination (:func:`~fnpgrade.clinical.readings.examination_side`).

    Returns
    -------
    score : dict
        ``resting``, ``voluntary``, ``synkinesis``: each ``{"items": {name: {"score", "basis", "value"}},
        "score"}`` (an item's score is ``None`` where its expression is missing or was not performed);
        ``composite`` (``None`` unless every voluntary and resting item was scored; missing synkinesis items
        count 0 and are named), ``composite_estimate`` (the composite with the voluntary part taken as the mean of
        the items scored times five: for a video that leaves an expression out; ``None`` with fewer than
        :data:`MIN_ITEMS_FOR_ESTIMATE` voluntary items), ``lacks`` (what is missing, in words),
        ``affected_image_side``.
    """
    measured = {k: m for k, m in examination.items() if m is not None and len(m["frames"])}
    if affected is None:
        affected, _ = examination_side(measured.values())
    lacks = []
    whole = measured.get(WHOLE_VIDEO)

    def source(expression):
        return measured.get(expression, whole)

    voluntary = {}
    for expression, regions in VOLUNTARY.items():
        m = source(expression)
        ratio = None if m is None or affected is None else item_ratio(m, regions, affected, closure_floor=0.05)
        basis = "eye closure" if regions == "eye closure" else " + ".join(regions)
        if m is None:
            lacks.append(f"{expression} (no video)")
        elif ratio is None:
            lacks.append(f"{expression} (no movement on either side)")
        voluntary[expression] = {"score": None if ratio is None else 1 + _step(share_of_normal(ratio), VOLUNTARY_STEPS),
                                 "value": None if ratio is None else round(float(ratio), 3),
                                 "basis": f"{basis}: affected / healthy peak movement"
                                          + (" (whole video)" if m is whole and m is not None else "")}
    rest_m = measured.get("rest") or whole or next(iter(measured.values()), None)
    resting = {}
    if rest_m is None or affected is None:
        lacks.append("resting symmetry (no video)")
        resting = {k: {"score": None, "value": None, "basis": ""} for k in ("eye", "cheek", "mouth")}
    else:
        offsets = rest_offsets(rest_m, affected)
        where = "the rest video" if rest_m is measured.get("rest") else "the video's rest face"
        opening = offsets["eye_opening_ratio"]
        resting["eye"] = {"score": int(not EYE_OPENING_RATIO <= opening <= 1 / EYE_OPENING_RATIO),
                          "value": round(opening, 3), "basis": "eye opening, affected / healthy, median over the frames with both eyes open"}
        droop = offsets["nose_wing"]
        resting["cheek"] = {"score": 2 if abs(droop) >= 2 * REST_OFFSET_IOD else int(abs(droop) >= REST_OFFSET_IOD),
                            "value": round(droop, 3), "basis": f"nose wing lower on the affected side, IOD ({where})"}
        # the height only: how far each corner sits from the midline changes with the slightest head turn
        mouth = offsets["mouth_corner"]
        resting["mouth"] = {"score": int(abs(mouth) >= REST_OFFSET_IOD), "value": round(mouth, 3),
                            "basis": f"mouth corner lower (or higher) on the affected side, IOD ({where})"}
    synkinesis = {}
    for expression, still in _STILL.items():
        m = measured.get(expression)
        if m is None or affected is None:
            synkinesis[expression] = {"score": None, "value": None,
                                      "basis": "needs the expression's own video"}
            continue
        if still == "eye closure":
            closure = eye_closure(m)
            excess = max(0.0, closure[affected] - closure[other_side(affected)])
            score, basis = _step(excess, SYNKINESIS_STEPS["eye"]), "eye closing more on the affected side (share)"
        else:
            excess = excess_movement(m, still, affected)
            score, basis = _step(excess, SYNKINESIS_STEPS["flow"]), f"{' + '.join(still)} moving more on the " \
                                                                     "affected side (IOD)"
        synkinesis[expression] = {"score": score, "value": round(float(excess), 3), "basis": basis}
    missing_synkinesis = [k for k, v in synkinesis.items() if v["score"] is None]
    if missing_synkinesis:
        lacks.append("synkinesis of " + ", ".join(missing_synkinesis) + " (separate expression videos needed; "
                     "counted 0)")
    complete = all(v["score"] is not None for v in (*voluntary.values(), *resting.values()))
    scored = [v["score"] for v in voluntary.values() if v["score"] is not None]
    rest_scored = all(v["score"] is not None for v in resting.values())
    parts = {"voluntary": sum(v["score"] or 0 for v in voluntary.values()) * 4,
             "resting": sum(v["score"] or 0 for v in resting.values()) * 5,
             "synkinesis": sum(v["score"] or 0 for v in synkinesis.values())}
    return {"affected_image_side": affected,
            "resting": {"items": resting, "score": parts["resting"]},
            "voluntary": {"items": voluntary, "score": parts["voluntary"]},
            "synkinesis": {"items": synkinesis, "score": parts["synkinesis"]},
            "composite": parts["voluntary"] - parts["resting"] - parts["synkinesis"] if complete else None,
            "composite_estimate": (round(4 * len(VOLUNTARY) * float(np.mean(scored)) - parts["resting"]
                                         - parts["synkinesis"], 1)
                                   if len(scored) >= MIN_ITEMS_FOR_ESTIMATE and rest_scored else None),
            "lacks": lacks}
