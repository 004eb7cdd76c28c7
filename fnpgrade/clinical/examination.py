"""A person's examination: the standard expressions, each measured against the rest face.

The standard facial-nerve examination (the Sunnybrook, eFACE and Sir Charles
Bell Society sets) asks for a set of expressions: :data:`EXPRESSIONS`. An
*examination* here is a dict ``{expression: measurement}`` of
:func:`~fnpgrade.measures.measure_video` results, one per expression video,
or ``{"whole_video": measurement}`` for one video in which the person goes
through several expressions (every item then reads the whole video, and
what needs separate expressions, synkinesis, is reported as missing).

:func:`load_examinations` reads a CSV (``subject, expression, path``) the
way :func:`~fnpgrade.datasets.load_clip_folder` reads labels;
:func:`measure_examination` measures each video (:func:`fnpgrade.report.measure`).
"""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["EXPRESSIONS", "WHOLE_VIDEO", "ALIASES", "load_examinations", "measure_examination",
           "expression_name"]

#: The standard examination's expressions, in the order they are usually asked for.
EXPRESSIONS = ("rest", "brow_raise", "gentle_eye_closure", "tight_eye_closure", "closed_smile", "open_smile",
               "snarl", "lip_pucker")

#: The key of an examination measured from one video holding several expressions.
WHOLE_VIDEO = "whole_video"

#: Other names users and the synthetic generator give the same expressions.
ALIASES = {"raise_brows": "brow_raise", "forehead_wrinkle": "brow_raise", "brow_elevation": "brow_raise",
           "close_eyes_lightly": "gentle_eye_closure", "eye_closure": "gentle_eye_closure",
           "close_eyes_tightly": "tight_eye_closure", "full_eye_closure": "tight_eye_closure",
           "smile": "open_smile", "big_smile": "open_smile", "wrinkle_nose": "snarl", "nose_wrinkle": "snarl",
           "purse_lips": "lip_pucker", "pucker": "lip_pucker", "neutral": "rest", "video": WHOLE_VIDEO}


def expression_name(name, where=""):
    """The standard name of an expression (:data:`EXPRESSIONS`, an alias, or :data:`WHOLE_VIDEO`)."""
    key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in EXPRESSIONS and key != WHOLE_VIDEO:
        raise ValueError(f"{where}unknown expression {name!r}; use one of {list(EXPRESSIONS)} (or "
                         f"{WHOLE_VIDEO!r} for one video holding several), or an alias: {sorted(ALIASES)}.")
    return key


def load_examinations(csv_path):
    """Read an examination table: one row per video, columns ``subject``, ``expression``, ``path``.

    A ``visit`` column, where there is one, keeps a person's examinations
    apart (``subject/visit``). Relative paths are taken from the CSV's folder.

    Returns
    -------
    examinations : dict
        ``{subject: {expression: path}}`` in the table's order.

    Raises
    ------
    ValueError
        A column is missing, an expression is unknown, or one appears twice for a subject.
    """
    csv_path = Path(csv_path)
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    needed = {"subject", "expression", "path"}
    if not rows or not needed <= set(rows[0]):
        raise ValueError(f"{csv_path}: needs the columns {sorted(needed)} (one row per expression video); "
                         f"found {sorted(rows[0]) if rows else 'no rows'}.")
    out = {}
    for line, row in enumerate(rows, start=2):
        subject = row["subject"].strip() + (f"/{row['visit'].strip()}" if row.get("visit") else "")
        expression = expression_name(row["expression"], f"{csv_path}, line {line}: ")
        path = Path(row["path"].strip())
        path = path if path.is_absolute() else csv_path.parent / path
        if expression in out.setdefault(subject, {}):
            raise ValueError(f"{csv_path}, line {line}: {subject} has {expression!r} twice; give each expression "
                             "once per subject (a 'visit' column keeps examinations apart).")
        out[subject][expression] = str(path)
    return out


def measure_examination(videos, *, against="own", landmarks="mediapipe", mirrored=False):
    """Measure each expression video of one examination against its rest face.

    Parameters
    ----------
    videos : dict
        ``{expression: video}`` (a path or frames), expressions as in
        :func:`expression_name`; or one video (a path or frames): the whole-video examination.
    against : {"own", "rest_video"}, default="own"
        What each expression is measured from: its own video's rest face
        (found in it: the person between movements), or the rest video's
        face (its middle frame put in front of every video, as
        ``FaceMeasures(neutral=True)``; for videos that do not pass through
        rest, recorded by one camera in one sitting: same frame size).
    landmarks : str, default="mediapipe"
    mirrored : bool, default=False
        The videos are mirrored (front camera).

    Returns
    -------
    examination : dict
        ``{expression: measurement}``, ready for :func:`~fnpgrade.clinical.score_examination`.

    Notes
    -----
    A separate rest video, where given, is measured too: the scales' resting
    items read its rest face.
    """
    from ..report.measure import measure

    if not isinstance(videos, dict):
        videos = {WHOLE_VIDEO: videos}
    videos = {expression_name(name): video for name, video in videos.items()}
    if against not in ("own", "rest_video"):
        raise ValueError(f"measure_examination: against must be 'own' or 'rest_video'; got {against!r}.")
    neutral = against == "rest_video"
    if neutral:
        from ..io import read_clip
        from ..measures.neutral import with_neutral_frame

        if "rest" not in videos:
            raise ValueError("measure_examination: against='rest_video' needs a 'rest' video in the examination; "
                             f"it has {sorted(videos)}. Add one, or measure each video against its own rest face "
                             "(against='own').")
        names = list(videos)
        clips = [read_clip(v) if isinstance(v, (str, Path)) else v for v in videos.values()]
        clips = with_neutral_frame(clips, ["person"] * len(clips), [n == "rest" for n in names])
        videos = dict(zip(names, clips))
    return {name: measure(video, landmarks=landmarks, mirrored=mirrored, neutral=neutral,
                          n_bootstrap=0)["measurement"] for name, video in videos.items()}
