"""Clinical scales from the measures: Sunnybrook and eFACE-style scores of a person's examination.

No model is trained: each item is a documented rule on the whole-video
measurement (:func:`fnpgrade.measures.measure_video`) of the expression it
asks for, affected side against healthy side. See ``docs/sunnybrook.md`` and ``docs/eface.md``.

>>> from fnpgrade.clinical import measure_examination, score_examination
>>> exam = measure_examination({"rest": "rest.mp4", "brow_raise": "brows.mp4"})  # doctest: +SKIP
>>> score_examination(exam)["sunnybrook"]["lacks"]                                 # doctest: +SKIP
"""

from .eface import eface_score
from .examination import EXPRESSIONS, WHOLE_VIDEO, load_examinations, measure_examination
from .readings import examination_side
from .sunnybrook import sunnybrook_score

__all__ = ["EXPRESSIONS", "WHOLE_VIDEO", "load_examinations", "measure_examination", "score_examination",
           "sunnybrook_score", "eface_score", "examination_side"]


def score_examination(examination, mirrored=False):
    """Sunnybrook and eFACE-style scores of one examination, with the affected side they score.

    Parameters
    ----------
    examination : dict
        ``{expression: measurement}`` (:func:`measure_examination`).
    mirrored : bool, default=False
        The videos are mirrored (front camera): for naming the patient's side.

    Returns
    -------
    scores : dict
        ``affected_side`` (the patient's side scored as affected, ``"none"``
        when the sides differ by less than the healthy range),
        ``affected_image_side``, ``movement_percent`` (the weaker side's
        movement over the other's, all readings of all expressions),
        ``sunnybrook`` (:func:`sunnybrook_score`), ``eface`` (:func:`eface_score`),
        ``expressions`` (``{expression: "measured" | "missing"}``).
    """
    from ..report.side import CLEAR_RATIO, patient_side

    weaker, ratio = examination_side(examination.values())
    clear = weaker is not None and ratio < CLEAR_RATIO
    present = {k for k, m in examination.items() if m is not None}
    expressions = ({WHOLE_VIDEO: "measured" if WHOLE_VIDEO in present else "missing"} if WHOLE_VIDEO in examination
                   else {e: "measured" if e in present else "missing" for e in EXPRESSIONS})
    return {"affected_side": patient_side(weaker, mirrored) if clear else "none",
            "affected_image_side": weaker if clear else "none",
            "movement_percent": None if weaker is None else round(100 * ratio, 1),
            "sunnybrook": sunnybrook_score(examination, weaker), "eface": eface_score(examination, weaker),
            "expressions": expressions}
