"""The person's rest face in front of their clips, for ``FaceMeasures(neutral=True)``.

A clinician compares each expression with the patient's face at rest: "raise
your brows" is graded by how far each brow rose from where it sits at rest.
A clip cut from the middle of a movement has no rest face of its own; with
the person's rest frame put in front of it (:func:`with_neutral_frame`) and
``FaceMeasures(neutral=True)``, every frame is measured against that frame
(:func:`~fnpgrade.measures.measure_video` with ``rest="first"``). The rest
frame may come from another recording of the same person, with its own light
and camera: the flow reads locally contrast-normalised images and the head's
position is taken out of every flow field.
"""

from __future__ import annotations

import numpy as np

__all__ = ["with_neutral_frame"]


def with_neutral_frame(clips, subjects, is_rest):
    """Each clip with its person's neutral face put in front, for ``FaceMeasures(neutral=True)``.

    The neutral face of a subject is the middle frame of the subject's first
    rest clip (a clip in which the face does nothing: the start of a
    House-Brackmann or Sunnybrook examination). The rest clips get it too,
    so every sample has the same form.

    Parameters
    ----------
    clips : list of ndarray, shape (T, H, W, 3)
        The clips (arrays of frames; read video files with
        :func:`fnpgrade.read_clip` first).
    subjects : array-like, shape (n_clips,)
        The person in each clip.
    is_rest : array-like of bool, shape (n_clips,)
        Which clips show the face at rest.

    Returns
    -------
    clips : list of ndarray, shape (T + 1, H, W, 3)

    Raises
    ------
    ValueError
        When a subject has no rest clip (naming the subjects), or a rest
        frame's size differs from the clip's.

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade.measures import with_neutral_frame
    >>> rest, smile = np.zeros((4, 8, 8, 3), np.uint8), np.ones((4, 8, 8, 3), np.uint8)
    >>> out = with_neutral_frame([smile, rest], subjects=["p1", "p1"], is_rest=[False, True])
    >>> out[0].shape, int(out[0][0].max()), int(out[0][1].max())
    ((5, 8, 8, 3), 0, 1)
    """
    subjects = np.asarray(subjects)
    is_rest = np.asarray(is_rest, bool)
    if not (len(clips) == len(subjects) == len(is_rest)):
        raise ValueError(f"with_neutral_frame: {len(clips)} clips, {len(subjects)} subjects and {len(is_rest)} "
                         "rest flags; give one of each per clip.")
    neutral = {}
    for clip, subject, rest in zip(clips, subjects, is_rest):
        if rest and subject not in neutral:
            frames = np.asarray(clip)
            neutral[subject] = frames[len(frames) // 2]
    missing = sorted({str(s) for s in subjects if s not in neutral})
    if missing:
        raise ValueError(f"with_neutral_frame: no rest clip for subject(s) {', '.join(missing[:10])}"
                         f"{' ...' if len(missing) > 10 else ''}; record each person at rest (or leave their clips "
                         "out, or grade without neutral=True).")
    out = []
    for index, (clip, subject) in enumerate(zip(clips, subjects)):
        frames = np.asarray(clip)
        rest = neutral[subject]
        if rest.shape != frames.shape[1:]:
            raise ValueError(f"with_neutral_frame: clip {index} (subject {subject}) has frames of {frames.shape[1:]} "
                             f"but the subject's rest frame is {rest.shape}; resize them to one size first.")
        out.append(np.concatenate([rest[None], frames]))
    return out
