"""eFACE-style scores from the measures: static, dynamic and synkinesis items, 0-100 (100 normal).

eFACE (Banks et al., 2015) rates each item on a 0-100 line, 100 being the
healthy side's equal. Read here from the same measurements as Sunnybrook
(formulas in ``docs/eface.md``):

* **static** (the rest face): brow height, palpebral fissure, nasolabial fold
  (the nose wing's height), oral commissure at rest: ``100 * (1 - offset /
  limit)`` (never below 0), the limits in :data:`STATIC_LIMITS`;
* **dynamic**: brow elevation, gentle eye closure, full eye closure, oral
  commissure movement with the smile, lower lip movement (read on the open
  smile, which shows the lower teeth): ``100 * min(1, (affected / healthy) /
  0.85)`` (movement within the healthy range is normal:
  :func:`~fnpgrade.clinical.readings.share_of_normal`);
* **synkinesis**: ocular (the affected eye narrowing more on the smile and the
  pucker) and midfacial (the affected mouth corner moving more on eye closure):
  ``100 * (1 - excess / limit)``. The mentalis and platysmal items are not
  read (the chin and neck are outside the measured face).

Sub-scores are the means of their items; the total the mean of every item
scored. Items whose expression is missing are named in ``lacks``.
"""

from __future__ import annotations

import numpy as np

from .examination import WHOLE_VIDEO
from .readings import (eye_closure, examination_side, excess_movement, item_ratio, other_side, rest_offsets,
                       share_of_normal)

__all__ = ["eface_score", "STATIC_LIMITS", "SYNKINESIS_LIMITS", "DYNAMIC"]

#: The offset at which a static item reaches 0 (IOD; for the palpebral fissure, |log| of the openings' ratio).
STATIC_LIMITS = {"brow": 0.15, "palpebral_fissure": 0.7, "nasolabial_fold": 0.15, "oral_commissure": 0.15}

#: Dynamic items: (expression, flow regions; "eye closure" for the lids).
DYNAMIC = {"brow_elevation": ("brow_raise", ("brow",)), "gentle_eye_closure": ("gentle_eye_closure", "eye closure"),
           "full_eye_closure": ("tight_eye_closure", "eye closure"),
           "oral_commissure_movement": ("open_smile", ("mouth_corner", "commissure")),
           "lower_lip_movement": ("open_smile", ("lower_lip",))}

#: The excess movement at which a synkinesis item reaches 0 (eye: share of the opening; mouth: IOD).
SYNKINESIS_LIMITS = {"ocular": 0.5, "midfacial": 0.1}


def _clip100(value):
    return round(float(np.clip(value, 0.0, 100.0)), 1)


def eface_score(examination, affected=None):
    """Score one examination eFACE-style from its measurements.

    Parameters
    ----------
    examination : dict
        ``{expression: measurement}`` or ``{"whole_video": measurement}``.
    affected : {"left", "right"} or None
        Image side scored as affected; default the side that moves less over the examination.

    Returns
    -------
    score : dict
        ``static``, ``dynamic``, ``synkinesis``: ``{"items": {name: {"score", "value", "basis"}}, "score"}``
        (sub-score: the mean of the items scored, ``None`` if none); ``total`` (mean of every item scored);
        ``lacks``; ``affected_image_side``.
    """
    measured = {k: m for k, m in examination.items() if m is not None and len(m["frames"])}
    if affected is None:
        affected, _ = examination_side(measured.values())
    whole = measured.get(WHOLE_VIDEO)
    lacks = []
    healthy = None if affected is None else other_side(affected)

    static = {}
    rest_m = measured.get("rest") or whole or next(iter(measured.values()), None)
    if rest_m is None or affected is None:
        lacks.append("static items (no video)")
    else:
        o = rest_offsets(rest_m, affected)
        values = {"brow": abs(o["brow"]), "palpebral_fissure": abs(np.log(max(o["eye_opening_ratio"], 1e-6))),
                  "nasolabial_fold": abs(o["nose_wing"]),
                  "oral_commissure": abs(o["mouth_corner"])}
        for name, value in values.items():
            static[name] = {"score": _clip100(100 * (1 - value / STATIC_LIMITS[name])), "value": round(float(value), 3),
                            "basis": "rest face, affected against healthy side"}
    dynamic = {}
    for name, (expression, regions) in DYNAMIC.items():
        m = measured.get(expression, whole)
        ratio = None
        if m is not None and affected is not None:
            ratio = item_ratio(m, regions, affected)
        if ratio is None:
            lacks.append(f"{name} ({'no ' + expression + ' video' if m is None else 'no movement on either side'})")
        dynamic[name] = {"score": None if ratio is None else _clip100(100 * share_of_normal(ratio)),
                         "value": None if ratio is None else round(float(ratio), 3),
                         "basis": ("eye closure" if regions == "eye closure" else " + ".join(regions))
                                  + f" on {expression}: affected / healthy" + (" (whole video)" if m is whole and m is not None else "")}
    synkinesis = {}
    ocular = [measured[e] for e in ("open_smile", "lip_pucker") if e in measured]
    if ocular and affected is not None:
        excess = max(max(0.0, eye_closure(m)[affected] - eye_closure(m)[healthy]) for m in ocular)
        synkinesis["ocular"] = {"score": _clip100(100 * (1 - excess / SYNKINESIS_LIMITS["ocular"])),
                                "value": round(excess, 3), "basis": "affected eye closing more on smile / pucker"}
    else:
        lacks.append("ocular synkinesis (needs separate smile or pucker videos)")
    midfacial = [measured[e] for e in ("gentle_eye_closure", "tight_eye_closure") if e in measured]
    if midfacial and affected is not None:
        excess = max(excess_movement(m, ("mouth_corner", "commissure"), affected) for m in midfacial)
        synkinesis["midfacial"] = {"score": _clip100(100 * (1 - excess / SYNKINESIS_LIMITS["midfacial"])),
                                   "value": round(excess, 3), "basis": "affected mouth corner moving more on eye closure"}
    else:
        lacks.append("midfacial synkinesis (needs separate eye-closure videos)")
    lacks.append("mentalis and platysmal synkinesis (not read: chin and neck are outside the measured face)")

    def mean(items):
        scores = [v["score"] for v in items.values() if v["score"] is not None]
        return round(float(np.mean(scores)), 1) if scores else None

    every = [v["score"] for part in (static, dynamic, synkinesis) for v in part.values() if v["score"] is not None]
    return {"affected_image_side": affected,
            "static": {"items": static, "score": mean(static)},
            "dynamic": {"items": dynamic, "score": mean(dynamic)},
            "synkinesis": {"items": synkinesis, "score": mean(synkinesis)},
            "total": round(float(np.mean(every)), 1) if every else None, "lacks": lacks}
