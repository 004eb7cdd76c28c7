"""Expressions as landmark displacements, and House-Brackmann weakness of one side.

Each expression moves the 68 iBUG landmarks plus the extra forehead, cheek and
temple points (:func:`fnpgrade.datasets.identities.extra_points`) by vectors
given in inter-ocular distances (IOD) at full intensity. A side factor scales
the movement of each point by the strength of the muscles on its side of the
face; points on the midline get the mean of both sides. The House-Brackmann
grade sets the affected side's strength per region (forehead, eye, mouth) and
a resting droop of brow, lower lid, cheek and mouth corner.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EXPRESSIONS", "HB_WEAKNESS", "EFFORT", "EYE_CLOSURE", "expression_displacement", "droop_displacement", "side_weights",
           "side_strength"]

#: Expressions the generator performs (the paper's YFP movements).
EXPRESSIONS = ("rest", "raise_brows", "close_eyes_lightly", "close_eyes_tightly", "smile", "purse_lips",
               "wrinkle_nose")

#: Remaining strength of the affected side per region, and resting droop (IOD), per HB grade.
#: HB1 normal; HB2 slight weakness; HB3 obvious asymmetry, eye closes completely with effort;
#: HB4 incomplete eye closure, no forehead movement; HB5 barely perceptible motion; HB6 none.
HB_WEAKNESS = {
    1: dict(forehead=1.00, eye=1.00, mouth=1.00, droop=0.000),
    2: dict(forehead=0.65, eye=0.90, mouth=0.65, droop=0.000),
    3: dict(forehead=0.45, eye=0.85, mouth=0.50, droop=0.030),
    4: dict(forehead=0.15, eye=0.60, mouth=0.38, droop=0.045),
    5: dict(forehead=0.00, eye=0.20, mouth=0.08, droop=0.085),
    6: dict(forehead=0.00, eye=0.00, mouth=0.00, droop=0.100),
}

#: How far each expression closes the eyes at full intensity on a healthy side (0 open, 1 shut).
EYE_CLOSURE = {"close_eyes_lightly": 1.0, "close_eyes_tightly": 1.0, "smile": 0.2, "wrinkle_nose": 0.3}

#: Effort multipliers: squeezing the eyes shut recruits more of a weak orbicularis oculi
#: (HB3's "complete closure with effort").
EFFORT = {"close_eyes_tightly": {"eye": 1.2}}

# index sets of the 68 + 9 control points (68..72 forehead, 73..74 cheeks, 75..76 temples)
_BROW_L, _BROW_R = list(range(17, 22)), list(range(22, 27))
_UPPER_LID_L, _LOWER_LID_L = [37, 38], [41, 40]
_UPPER_LID_R, _LOWER_LID_R = [43, 44], [47, 46]
_FOREHEAD = [68, 69, 70, 71, 72]
_CHEEK_L, _CHEEK_R = [73], [74]
_MOUTH_CORNER_L, _MOUTH_CORNER_R = [48, 60], [54, 64]
_REGION = np.full(77, "mouth", dtype=object)
_REGION[list(range(17, 27)) + _FOREHEAD + [75, 76]] = "forehead"
_REGION[list(range(36, 48))] = "eye"


def side_weights(points, mid_x, iod):
    """Weight of the image-left side for each point (1 left, 0 right, 0.5 on the midline)."""
    return 1.0 / (1.0 + np.exp((points[:, 0] - mid_x) / (0.06 * iod)))


def expression_displacement(name, points):
    """Full-intensity displacement ``(77, 2)`` (pixels) of the control points for one expression.

    Parameters
    ----------
    name : str
        One of :data:`EXPRESSIONS`.
    points : ndarray, shape (77, 2)
        The 68 landmarks followed by the 9 extra points, at rest.
    """
    if name not in EXPRESSIONS:
        raise ValueError(f"Unknown expression {name!r}; choose from {EXPRESSIONS}.")
    iod = np.linalg.norm(points[42:48].mean(0) - points[36:42].mean(0))
    d = np.zeros_like(points)
    up = np.array([0.0, -1.0])

    def move(idx, vec):
        d[idx] += np.asarray(vec) * iod

    def lids(amount):
        # the upper lid is lowered by fnpgrade.datasets.eyelids (see EYE_CLOSURE); the lower lid rises a little
        for upper, lower in ((_UPPER_LID_L, _LOWER_LID_L), (_UPPER_LID_R, _LOWER_LID_R)):
            d[lower] += amount * (points[upper] - points[lower]) * 0.08

    if name == "raise_brows":
        move(_BROW_L + _BROW_R, 0.20 * up)
        move([19, 24], 0.04 * up)
        move(_FOREHEAD, 0.08 * up)
        move([37, 38, 43, 44], 0.03 * up)
    elif name == "close_eyes_lightly":
        lids(1.0)
        move(_BROW_L + _BROW_R, -0.02 * up)
    elif name == "close_eyes_tightly":
        lids(1.0)
        move(_BROW_L + _BROW_R, -0.08 * up)
        move([21, 22], [0, 0.02])
        d[21, 0] += 0.03 * iod
        d[22, 0] -= 0.03 * iod
        move([41, 40, 47, 46], 0.03 * up)
        move(_CHEEK_L + _CHEEK_R, 0.06 * up)
        move(_MOUTH_CORNER_L + _MOUTH_CORNER_R, 0.03 * up)
    elif name == "smile":
        move(_MOUTH_CORNER_L, [-0.17, -0.14])
        move(_MOUTH_CORNER_R, [0.17, -0.14])
        move([49, 59, 61, 67], [-0.08, -0.07])
        move([53, 55, 63, 65], [0.08, -0.07])
        move([50, 51, 52], 0.03 * up)
        move([56, 57, 58], 0.01 * up)
        move(_CHEEK_L, [-0.03, -0.07])
        move(_CHEEK_R, [0.03, -0.07])
        move([31], [-0.02, -0.02])
        move([35], [0.02, -0.02])
        move([40, 41, 46, 47], 0.03 * up)
    elif name == "purse_lips":
        centre = points[48:68].mean(0)
        d[48:68] += (centre - points[48:68]) * np.array([0.30, 0.05])
        move([50, 51, 52, 61, 62, 63], 0.02 * up)
        move([56, 57, 58, 65, 66, 67], -0.02 * up)
        move(_CHEEK_L, [0.03, 0.0])
        move(_CHEEK_R, [-0.03, 0.0])
    elif name == "wrinkle_nose":
        move([31, 32, 33, 34, 35], 0.07 * up)
        move([29, 30], 0.04 * up)
        move([21, 22, 20, 23], -0.05 * up)
        move([48, 49, 50, 51, 52, 53, 54, 60, 61, 62, 63, 64], 0.04 * up)
        move([40, 41, 46, 47], 0.04 * up)
        move(_CHEEK_L + _CHEEK_R, 0.05 * up)
    return d


def droop_displacement(points, affected_left, droop):
    """Resting droop ``(77, 2)`` (pixels) of brow, lower lid, cheek and mouth corner on the affected side."""
    iod = np.linalg.norm(points[42:48].mean(0) - points[36:42].mean(0))
    d = np.zeros_like(points)
    if droop <= 0:
        return d
    brow, lower, cheek, corner = ((_BROW_L, _LOWER_LID_L, _CHEEK_L, _MOUTH_CORNER_L + [49, 59]) if affected_left
                                  else (_BROW_R, _LOWER_LID_R, _CHEEK_R, _MOUTH_CORNER_R + [53, 55]))
    inward = 1.0 if affected_left else -1.0
    d[brow, 1] += droop * iod
    d[lower, 1] += 0.5 * droop * iod
    d[cheek, 1] += 0.8 * droop * iod
    d[corner, 1] += 1.2 * droop * iod
    d[corner[:2], 0] += inward * 0.4 * droop * iod
    return d


def side_strength(points, mid_x, iod, affected_left, weakness, region_mult=None):
    """Per-point movement factor ``(77,)``: 1 on the healthy side, the HB strength on the affected side."""
    w_left = side_weights(points, mid_x, iod)
    w_aff = w_left if affected_left else 1 - w_left
    strength = np.array([weakness[r] for r in _REGION], float)
    if region_mult is not None:
        strength = np.minimum(1.0, strength * np.array([region_mult.get(r, 1.0) for r in _REGION]))
    return (1 - w_aff) + w_aff * strength
