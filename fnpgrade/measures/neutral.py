"""Movement against the person's neutral face, as a clinician grades it.

A clinician compares each expression with the patient's face at rest: "raise
your brows" is graded by how far each brow rose from where it sits at rest.
A clip that starts mid-movement (a window cut from a longer recording) shows
only part of a movement between its own frames, and a clip held at the peak
shows almost none. With the person's neutral face as the clip's first frame
(``FaceMeasures(neutral=True)``), every other frame is also compared with it:
how far each region of each side is from rest at the clip's fullest
expression, and how much each eye's appearance changed from open at rest.

The neutral frame may come from another recording of the same person (the
rest clip of an examination), with its own light and camera: frames are
compared after grey levels are normalised over the face, and the head's
position is taken out of every flow field (a similarity fitted robustly over
the face, as for the clip's own frames).
"""

from __future__ import annotations

import cv2
import numpy as np

from .features import NOISE_APPEARANCE, NOISE_IOD, _ratio, largest_movements, measure_clip
from .motion import DISFlow, key_frames, region_excursions
from .regions import REGIONS, SIDES, face_frame, region_boxes

__all__ = ["NEUTRAL_FEATURE_NAMES", "measure_from_neutral", "measure_with_neutral", "with_neutral_frame",
           "normalise_grey"]


def _names():
    names = []
    for region, _ in REGIONS:
        names += [f"{region}_from_neutral_weak", f"{region}_from_neutral_strong", f"{region}_from_neutral_ratio"]
    return tuple(names) + ("eye_closure_from_neutral_weak", "eye_closure_from_neutral_strong",
                           "eye_closure_from_neutral_ratio")


#: Names of the measures against the neutral face (``FaceMeasures(neutral=True)`` appends them).
NEUTRAL_FEATURE_NAMES = _names()


def normalise_grey(rgb, box, spread=40.0):
    """Grey frame with zero mean and ``spread`` grey levels of standard deviation over ``box``, as uint8.

    Two recordings of one face differ in exposure, contrast and white
    balance; flow and appearance change compare grey levels, so both frames
    are brought to the same mean and contrast over the face first.
    """
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = grey.shape
    x0, y0, x1, y1 = (int(np.clip(v, 0, lim)) for v, lim in zip(box, (w - 1, h - 1, w, h)))
    face = grey[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    return np.clip((grey - face.mean()) / (face.std() + 1e-6) * spread + 128.0, 0, 255).astype(np.uint8)


def measure_from_neutral(face, landmarks, flow=None, max_frames=24, noise=NOISE_IOD,
                         noise_appearance=NOISE_APPEARANCE):
    """Each region's largest movement away from the neutral face (frame 0), per side.

    Parameters
    ----------
    face : ndarray of uint8, shape (T, H, W, 3)
        Registered RGB face frames; frame 0 is the person's neutral face.
    landmarks : ndarray, shape (T, 49, 2)
        Landmarks in the same pixels, NaN where unknown. Frame 0's place the
        regions.
    flow : callable or None
        Optical flow between grey frames; default DIS "medium".
    max_frames : int, default=24
        Frames compared with the neutral one (spread evenly over longer clips).
    noise, noise_appearance : float
        Floors of the weak-over-strong ratios (IOD; grey-level change), as in
        :func:`~fnpgrade.measures.measure_clip`.

    Returns
    -------
    result : dict
        ``features`` (:data:`NEUTRAL_FEATURE_NAMES`; NaN when frame 0 or every
        other frame lacks landmarks), ``movement`` ``{region: {side: IOD}}``
        and ``eye_closure`` ``{side: grey-level change}``.
    """
    landmarks = np.asarray(landmarks, float)
    known = np.isfinite(landmarks).all(axis=(1, 2))
    nan = {"features": np.full(len(NEUTRAL_FEATURE_NAMES), np.nan), "movement": {}, "eye_closure": {}}
    if len(face) < 2 or not known[0] or not known[1:].any():
        return nan
    neutral = landmarks[0]
    others = 1 + np.flatnonzero(known[1:])
    others = others[key_frames(len(others), max_frames)]
    face_box = (*neutral.min(axis=0), *neutral.max(axis=0))
    grey = np.stack([normalise_grey(face[t], face_box) for t in np.r_[0, others]])
    displacement, change = region_excursions(grey, region_boxes(neutral), flow or DISFlow(), face_box=face_box,
                                             pairs=[(0, k) for k in range(1, len(grey))])
    movement = largest_movements(displacement, face_frame(neutral))
    closure = {side: float(change["eye"][side].max()) for side in SIDES}
    features = []
    for region, _ in REGIONS:
        weak, strong = min(movement[region].values()), max(movement[region].values())
        features += [weak, strong, _ratio(weak, strong, noise)]
    weak, strong = min(closure.values()), max(closure.values())
    features += [weak, strong, _ratio(weak, strong, noise_appearance)]
    return {"features": np.asarray(features, float), "movement": movement, "eye_closure": closure}


def measure_with_neutral(face, landmarks, flow=None, max_key_frames=6, neutral=True):
    """What ``FaceMeasures(neutral=...)`` measures of one clip: :func:`~fnpgrade.measures.measure_clip`'s result.

    With ``neutral``, frame 0 is the person's neutral face: the clip is the
    frames after it (:func:`~fnpgrade.measures.measure_clip`), its
    ``features`` are followed by :func:`measure_from_neutral`'s, and
    ``neutral_found`` says whether those could be measured. Without it, the
    clip is measured as it is.
    """
    flow = flow or DISFlow()
    first = 1 if neutral else 0  # the neutral frame is a reference, not part of the expression
    result = measure_clip(face[first:], landmarks[first:], flow, max_key_frames)
    if neutral:
        from_neutral = measure_from_neutral(face, landmarks, flow)["features"]
        result["features"] = np.concatenate([result["features"], from_neutral])
        result["neutral_found"] = bool(np.isfinite(from_neutral).all())
    return result


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
