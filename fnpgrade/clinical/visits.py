"""Visits compared: how much a score moves on its own, and whether a change between visits exceeds that.

A score read from video carries the measurement's own noise: which frames
caught the expression's peak, the flow's jitter. :func:`score_spread`
resamples each video's measured frames (a bootstrap) and scores again; the
spread of those scores is the score's noise on that examination.
:func:`compare_visits` then calls a change between two visits real only when
it exceeds both visits' noise (1.96 standard deviations of the difference).
"""

from __future__ import annotations

import numpy as np

__all__ = ["resample_measurement", "score_spread", "compare_visits", "headline_scores"]


def resample_measurement(measurement, rng):
    """``measurement`` with its measured frames (and its eye-opening frames) drawn again with replacement."""
    if measurement is None or not len(measurement["frames"]):
        return measurement
    k = len(measurement["frames"])
    pick = rng.integers(0, k, k)
    lids = rng.integers(0, len(measurement["aperture_frames"]), len(measurement["aperture_frames"]))
    out = dict(measurement)
    out["frames"] = np.asarray(measurement["frames"])[pick]
    for key in ("series", "landmark_series"):
        out[key] = {region: {side: np.asarray(v)[pick] for side, v in sides.items()}
                    for region, sides in measurement[key].items()}
    out["eye_change"] = {side: np.asarray(v)[pick] for side, v in measurement["eye_change"].items()}
    out["side_widths"] = np.asarray(measurement["side_widths"])[pick]
    out["eye_aperture"] = {side: np.asarray(v)[lids] for side, v in measurement["eye_aperture"].items()}
    out["aperture_frames"] = np.asarray(measurement["aperture_frames"])[lids]
    return out


def headline_scores(scores):
    """``{"sunnybrook": composite (or its estimate), "eface": total}`` of :func:`~fnpgrade.clinical.score_examination`."""
    sb = scores["sunnybrook"]
    return {"sunnybrook": sb["composite"] if sb["composite"] is not None else sb["composite_estimate"],
            "eface": scores["eface"]["total"]}


def score_spread(examination, n_bootstrap=100, random_state=0):
    """The standard deviation of the headline scores over frame resamples of the examination's videos.

    Parameters
    ----------
    examination : dict
        ``{expression: measurement}``.
    n_bootstrap : int, default=100
    random_state : int, default=0

    Returns
    -------
    spread : dict
        ``{"sunnybrook": sd, "eface": sd}`` (``None`` where the score is not given).
    """
    from . import score_examination

    rng = np.random.default_rng(random_state)
    draws = {"sunnybrook": [], "eface": []}
    for _ in range(int(n_bootstrap)):
        again = {k: resample_measurement(m, rng) for k, m in examination.items()}
        for key, value in headline_scores(score_examination(again)).items():
            if value is not None:
                draws[key].append(value)
    return {key: round(float(np.std(values)), 2) if len(values) > 1 else None for key, values in draws.items()}


def compare_visits(visits):
    """Each visit's headline scores and their change from the first visit, with whether it exceeds the noise.

    Parameters
    ----------
    visits : list of (str, dict, dict)
        ``(visit name, scores, spread)`` in time order: :func:`~fnpgrade.clinical.score_examination`'s result and
        :func:`score_spread`'s.

    Returns
    -------
    rows : list of dict
        Per visit: ``visit``, per score (``sunnybrook``, ``eface``) its value, ``<score>_sd``,
        ``<score>_change`` (from the first visit) and ``<score>_beyond_noise`` (``True`` when the change is larger
        than 1.96 standard deviations of the difference, ``None`` where a score or its spread is missing);
        ``scored_image_side`` (the side that moved less that visit) and ``regions``: per Sunnybrook voluntary item
        (its region and expression), that side's movement as a percentage of the other's (``None`` not performed), and
        ``regions_change`` from the first visit (no noise estimate: read with the scores' own).
    """
    rows = []
    first = None
    for name, scores, spread in visits:
        values = headline_scores(scores)
        # the side the items were scored on (the weaker one, named even within the healthy range)
        row = {"visit": name, "scored_image_side": scores["sunnybrook"].get("affected_image_side")}
        items = scores["sunnybrook"].get("voluntary", {}).get("items", {})
        row["regions"] = {item: None if v.get("value") is None else round(100 * float(v["value"]), 1)
                          for item, v in items.items()}
        before = rows[0]["regions"] if rows else {}
        row["regions_change"] = {item: None if value is None or before.get(item) is None
                                 else round(value - before[item], 1) for item, value in row["regions"].items()}
        for key, value in values.items():
            row[key], row[f"{key}_sd"] = value, spread.get(key)
            row[f"{key}_change"] = row[f"{key}_beyond_noise"] = None
            if first is not None and value is not None and first[0][key] is not None:
                change = value - first[0][key]
                row[f"{key}_change"] = round(float(change), 1)
                sds = (spread.get(key), first[1].get(key))
                if None not in sds:
                    row[f"{key}_beyond_noise"] = bool(abs(change) > 1.96 * float(np.hypot(*sds)))
        if first is None:
            first = (values, spread)
        rows.append(row)
    return rows
