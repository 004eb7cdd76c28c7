"""A whole video measured as a clinician watches it: every frame against the person's rest face.

A clinician grades an expression by comparing its peak with the face at rest,
one side against the other. This module does that for any registered face
clip, from a 4-frame window to a minute of talking:

1. **The rest face.** Given (``rest="first"``: the clip starts at rest, or
   the person's rest frame was put in front of it) or found
   (``rest="auto"``): the frame whose mouth is closed and no wider than
   usual, whose eyes are open as usual and whose brows sit as usual, and
   that moves least from its neighbours (:func:`find_rest_frame`).
2. **Every frame against it.** Dense optical flow from the rest frame to up
   to ``max_frames`` frames spread over the clip (head motion removed),
   averaged in each region's box on each side; the landmarks' own
   displacement from rest (after the head's similarity is taken out) beside
   it; each eye's lid opening. Where the head turns, the side facing away is
   foreshortened: horizontal movement on each side is divided by that
   side's share of the face's width in that frame (:func:`side_widths`).
3. **Peaks and balance.** Each region's peak excursion per side (the 90th
   percentile over the frames: the expression's fullest moment, not one
   mis-tracked frame; less the region's own resting jitter, what the flow
   reads in the frames the landmarks show at rest), the weaker side's peak
   over the stronger's, and the two sides' movement summed over the frames (how they
   move together).

Nothing depends on where a window starts: the rest face and the peaks are
the video's own. The same measurement feeds the grader
(:class:`~fnpgrade.measures.FaceMeasures`), the report's side and regions,
and ``fnpgrade measure``.
"""

from __future__ import annotations

import cv2
import numpy as np

from .motion import DISFlow, key_frames, region_excursions
from .regions import LANDMARK_SIDES, REGIONS, SIDES, face_frame, region_boxes

__all__ = ["VIDEO_FEATURE_NAMES", "VIDEO_REGIONS", "measure_video", "video_features", "find_rest_frame",
           "side_widths", "commissure_boxes", "LANDMARK_REGIONS", "eye_aperture", "eye_aperture_gap", "weak_strong_ratio", "peaks",
           "noise_floor", "weaker_side", "side_evidence", "evidence_weights", "side_asymmetry", "pooled_side_asymmetry", "NOISE_IOD", "PEAK_QUANTILE"]

#: Movements below this (in inter-ocular distances, about 0.6 mm on an adult face) are noise in a ratio.
NOISE_IOD = 0.01

#: Appearance change (mean grey-level change, 0-1) treated as noise in ratios.
NOISE_APPEARANCE = 0.01

#: Eye closure (share of the rest opening) treated as noise in the closure's side ratio.
CLOSURE_NOISE = 0.05

#: A side reading counts fully in the face's balance once its stronger side moved this many noise floors
#: beyond the floor (:func:`evidence_weights`).
FULL_EVIDENCE_UNITS = 8.0

#: A region's peak excursion is this quantile of its excursion over the measured frames.
PEAK_QUANTILE = 0.9

#: A measured frame whose landmark groups all stay within this distance of rest (IOD) shows the face at rest.
QUIET_IOD = 0.03

#: With at least this many such frames, what each region's flow reads in them (its resting jitter) is taken off
#: its peak: on the real-motion videos the flow of a side in shadow read 20-50 % more movement than the lit
#: side of a healthy face.
MIN_QUIET_FRAMES = 3

#: ... in a video of at least this many measured frames (a short clip is all expression or all rest).
MIN_FRAMES_FOR_JITTER = 8

_HEIGHT_PARTS = ("brow", "lower_lid", "nose_wing", "mouth_corner")
# 49-point layout: nose bridge, inner eye corners (iBUG 39, 42): the head's similarity is fitted on them
_STABLE_49 = [10, 11, 12, 13, 22, 25]
#: Landmark groups read per region (mirror partners): the landmarks' own excursion beside the flow's.
LANDMARK_REGIONS = {"brow": LANDMARK_SIDES["brow"], "eye": LANDMARK_SIDES["upper_lid"],
                     "nose_wing": LANDMARK_SIDES["nose_wing"], "mouth_corner": LANDMARK_SIDES["mouth_corner"],
                     "upper_lip": {"left": [32], "right": [36]}, "lower_lip": {"left": [42], "right": [38]}}
_OUTER_EYE = {"left": 19, "right": 28}   # iBUG 36 | 45

#: Regions read by the flow: the clinical regions and the commissure's skin (see :func:`commissure_boxes`).
VIDEO_REGIONS = tuple(region for region, _ in REGIONS) + ("commissure",)
_MID_LINE = [10, 11, 12, 13, 16]         # nose bridge and tip


def _names():
    names = []
    for region in VIDEO_REGIONS:
        names += [f"{region}_peak_weak", f"{region}_peak_strong", f"{region}_peak_ratio",
                  f"{region}_log_ratio_affected", f"{region}_together_ratio"]
    for region in LANDMARK_REGIONS:
        names += [f"{region}_landmark_ratio", f"{region}_landmark_log_ratio_affected"]
    names += ["eye_closure_weak", "eye_closure_strong", "eye_closure_ratio", "eye_change_ratio",
              "eye_aperture_asymmetry_max", "eye_aperture_asymmetry_median"]
    names += [f"rest_{part}_height_asymmetry" for part in _HEIGHT_PARTS]
    names += ["rest_mouth_corner_width_asymmetry", "side_asymmetry", "side_agreement", "expression_amount",
              "reference_movement"]
    return tuple(names)


#: Names of :func:`video_features`' columns, in order.
VIDEO_FEATURE_NAMES = _names()


def weak_strong_ratio(weak, strong, noise):
    """``(weak + noise) / (strong + noise)``: 1 when both sides move alike, 0 when one is still (beyond the noise)."""
    return (weak + noise) / (strong + noise)


def eye_aperture(face_points):
    """Per frame and image side: lid opening over eye width, ``(T, 2)`` (left, right)."""
    out = []
    for side in SIDES:
        upper = face_points[:, LANDMARK_SIDES["upper_lid"][side]].mean(axis=1)
        lower = face_points[:, LANDMARK_SIDES["lower_lid"][side]].mean(axis=1)
        eye = face_points[:, LANDMARK_SIDES["eye"][side]]
        width = np.linalg.norm(eye[:, 0] - eye[:, 3], axis=-1)
        out.append(np.linalg.norm(lower - upper, axis=-1) / np.maximum(width, 1e-6))
    return np.stack(out, axis=1)


def eye_aperture_gap(face_points):
    """Per frame: difference of the two eyes' lid openings over the wider one's, ``(T,)`` in [0, 1].

    0 when both eyes are equally open (or shut); 1 when one is shut and the
    other open: the sign of incomplete closure. Read from landmarks
    (MediaPipe's refined eyelid points follow the lids; dlib's prior holds them open).
    """
    return _aperture_gap(eye_aperture(face_points))


def _aperture_gap(aperture):
    return np.abs(aperture[:, 0] - aperture[:, 1]) / np.maximum(aperture.max(axis=1), 1e-6)


def side_widths(landmarks):
    """Per frame, each side's share of the face's width: ``(T, 2)`` (left, right), 0.5 each when frontal.

    The distance from the nose (bridge and tip) to each outer eye corner along
    the eye line. A head turned by 20 degrees shows the side facing away
    about a fifth narrower; movement on that side is foreshortened alike.
    """
    landmarks = np.asarray(landmarks, float)
    mid = landmarks[:, _MID_LINE].mean(axis=1)
    widths = np.stack([np.abs(landmarks[:, _OUTER_EYE[s], 0] - mid[:, 0]) for s in SIDES], axis=1)
    return widths / np.maximum(widths.sum(axis=1, keepdims=True), 1e-6)


def _rest_cues(landmarks):
    """Per frame: mouth width, mouth opening, eye opening, brow height, mouth-corner lift (IOD units), head turn."""
    cues = np.full((len(landmarks), 6), np.nan)
    for t, p in enumerate(landmarks):
        if not np.isfinite(p).all():
            continue
        frame = face_frame(p)
        f = frame.to_face(p)
        cues[t, 0] = np.linalg.norm(f[31] - f[37])
        cues[t, 1] = np.linalg.norm(f[44] - f[47]) + 0.5 * np.linalg.norm(f[34] - f[40])
        cues[t, 2] = eye_aperture(p[None])[0].mean()
        cues[t, 3] = -(f[0:10, 1].mean())  # brows above the eye line (y grows downwards)
        cues[t, 4] = f[[34, 40], 1].mean() - f[[31, 37], 1].mean()  # corners above the lips' middle: a smile
        widths = side_widths(p[None])[0]
        cues[t, 5] = abs(np.log(widths[0] / max(widths[1], 1e-6)))  # a turned head: one side narrower
    return cues


def find_rest_frame(landmarks):
    """The frame of a registered clip that shows the face at rest.

    The frame closest to the clip's own resting values (mouth closed: its
    least opening; mouth corners at their lowest against the lips' middle
    and the mouth no wider than usual (its 30th percentile), as smiles lift
    and widen it; eyes open (the 70th percentile of their opening: blinks,
    squeezing and crying close them, a rest face never does); brows where
    they usually are; the head facing the camera, both sides equally wide)
    and moving least from its neighbours. Units are inter-ocular distances, so the choice does
    not depend on the face's size.

    Parameters
    ----------
    landmarks : ndarray, shape (T, 49, 2)
        NaN in frames without landmarks.

    Returns
    -------
    index : int or None
        ``None`` when no frame has landmarks.
    """
    landmarks = np.asarray(landmarks, float)
    cues = _rest_cues(landmarks)
    known = np.isfinite(cues).all(axis=1)
    if not known.any():
        return None
    values = cues[known]
    resting = np.array([np.quantile(values[:, 0], 0.3), values[:, 1].min(), np.quantile(values[:, 2], 0.7),
                        np.median(values[:, 3]), values[:, 4].min(), 0.0])
    # a clearly visible change of each (IOD; the turn: log of the sides' width ratio, about 10 degrees). Lips
    # a little apart are common at rest, lids lowered never: the eyes weigh more than the mouth's opening
    scales = np.array([0.06, 0.06, 0.03, 0.03, 0.015, 0.15])
    score = np.abs(cues - resting) / scales
    score = score.sum(axis=1)
    # quiet: how far the landmarks moved from the neighbouring known frames (IOD)
    idx = np.flatnonzero(known)
    iod = np.array([face_frame(landmarks[t]).iod for t in idx])
    speed = np.zeros(len(idx))
    if len(idx) > 1:
        steps = np.linalg.norm(np.diff(landmarks[idx], axis=0), axis=-1).mean(axis=1) / iod[1:]
        speed = np.nanmean(np.stack([np.r_[np.nan, steps], np.r_[steps, np.nan]]), axis=0)
    total = score[known] + speed / 0.02
    return int(idx[int(np.argmin(total))])


def commissure_boxes(points49):
    """Per image side, a box on the skin beside the mouth corner, outside the lips: ``{side: (x0, y0, x1, y1)}``.

    A smile pulls this skin up and out (the modiolus, where the smile's
    muscles meet); the box on the corner itself also holds the lips, whose
    parting and the teeth it shows move the flow there on a still side too.
    """
    frame = face_frame(points49)
    d = frame.iod
    out = {}
    for side, sign in (("left", -1.0), ("right", 1.0)):
        corner = points49[LANDMARK_SIDES["mouth_corner"][side][0]]
        centre = corner + sign * 0.16 * d * frame.x_axis - 0.04 * d * frame.y_axis
        out[side] = np.array([centre[0] - 0.1 * d, centre[1] - 0.1 * d, centre[0] + 0.1 * d, centre[1] + 0.1 * d])
    return out


def _head_aligned(landmarks, rest):
    """Each frame's landmarks moved onto the rest frame by the similarity fitted on the stable points."""
    out = np.full_like(landmarks, np.nan)
    target = rest[_STABLE_49].astype(np.float32)
    for t, p in enumerate(landmarks):
        if not np.isfinite(p).all():
            continue
        matrix, _ = cv2.estimateAffinePartial2D(p[_STABLE_49].astype(np.float32), target, method=cv2.LMEDS)
        if matrix is None:
            continue
        out[t] = p @ matrix[:, :2].T + matrix[:, 2]
    return out


def measure_video(face, landmarks, rest="auto", flow=None, max_frames=32):
    """Measure one registered face clip against its rest face.

    Parameters
    ----------
    face : ndarray of uint8, shape (T, H, W, 3)
        RGB face frames registered to one another
        (``LandmarkROICropper(registration="clip")``).
    landmarks : ndarray, shape (T, 49, 2)
        The landmarks in the same pixels (NaN where unknown).
    rest : {"auto", "first"} or int, default="auto"
        The rest face: found (:func:`find_rest_frame`), the first frame
        with landmarks (the clip starts at rest, or the person's rest frame
        was put in front of it), or a frame index.
    flow : callable or None
        Optical flow between grey frames; default DIS "medium".
    max_frames : int, default=32
        Frames compared with the rest frame (spread evenly over longer clips).

    Returns
    -------
    result : dict or None
        ``None`` when no frame has landmarks. Otherwise: ``rest_index``;
        ``frames`` (the measured frames' indices); ``series``
        ``{region: {side: (K,)}}``: each measured frame's excursion from rest
        (IOD, flow, foreshortening removed), the regions of
        :data:`~fnpgrade.measures.regions.REGIONS` plus ``"reference"``
        (the nose bridge: noise); ``landmark_series`` alike from the
        landmarks; ``eye_change`` ``{side: (K,)}`` (grey-level change in the
        eye box); ``eye_aperture`` ``{side: (T',)}`` over the frames with
        landmarks and ``aperture_frames`` their indices; ``rest_aperture``
        ``{side: float}``; ``rest_points`` (the rest face in IOD units);
        ``side_widths`` ``(K, 2)``.
    """
    landmarks = np.asarray(landmarks, float)
    known = np.isfinite(landmarks).all(axis=(1, 2))
    if not known.any():
        return None
    if isinstance(rest, str):
        if rest == "first":
            rest_index = int(np.flatnonzero(known)[0])
        elif rest == "auto":
            rest_index = find_rest_frame(landmarks)
        else:
            raise ValueError(f"measure_video: rest must be 'auto', 'first' or a frame index; got {rest!r}.")
    else:
        rest_index = int(rest)
        if not known[rest_index]:
            raise ValueError(f"measure_video: the rest frame {rest_index} has no landmarks.")
    others = np.flatnonzero(known)
    others = others[others != rest_index]
    others = others[key_frames(len(others), max_frames)] if len(others) else others
    rest_points = landmarks[rest_index]
    frame = face_frame(rest_points)
    widths = side_widths(landmarks[others]) if len(others) else np.zeros((0, 2))
    rest_width = side_widths(rest_points[None])[0]
    series = {region: {side: np.zeros(len(others)) for side in SIDES} for region in VIDEO_REGIONS}
    series["reference"] = {"mid": np.zeros(len(others))}
    eye_change = {side: np.zeros(len(others)) for side in SIDES}
    if len(others):
        face_box = (*rest_points.min(axis=0), *rest_points.max(axis=0))
        # one read of the measured frames (a long video's are made again from the file: reread.py)
        grey = np.stack([cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
                         for image in face[np.r_[rest_index, others]]])
        boxes = {**region_boxes(rest_points), "commissure": commissure_boxes(rest_points)}
        displacement, change = region_excursions(grey, boxes, flow or DISFlow(),
                                                 face_box=face_box, pairs=[(0, k) for k in range(1, len(grey))])
        for region, sides in displacement.items():
            for side, vectors in sides.items():
                v = frame.vectors_to_face(vectors)
                if side in SIDES:
                    # a side turned away from the camera shows its sideways movement shortened
                    v[:, 0] *= rest_width[SIDES.index(side)] / np.clip(widths[:, SIDES.index(side)], 0.25, 0.75)
                series[region][side] = np.hypot(v[:, 0], v[:, 1])
        eye_change = {side: change["eye"][side] for side in SIDES}
    aligned = _head_aligned(landmarks[others], rest_points) if len(others) else np.zeros((0, 49, 2))
    landmark_series = {}
    for region, groups in LANDMARK_REGIONS.items():
        landmark_series[region] = {}
        for k, side in enumerate(SIDES):
            moved = aligned[:, groups[side]].mean(axis=1) - rest_points[groups[side]].mean(axis=0)
            v = frame.vectors_to_face(moved)
            if len(v):
                v[:, 0] *= rest_width[k] / np.clip(widths[:, k], 0.25, 0.75)
            landmark_series[region][side] = np.nan_to_num(np.hypot(v[:, 0], v[:, 1]), nan=0.0)
    aperture_frames = np.flatnonzero(known)
    apertures = eye_aperture(landmarks[aperture_frames])
    return {"rest_index": rest_index, "frames": others, "series": series, "landmark_series": landmark_series,
            "eye_change": eye_change, "eye_aperture": {s: apertures[:, k] for k, s in enumerate(SIDES)},
            "aperture_frames": aperture_frames,
            "rest_aperture": {s: float(apertures[list(aperture_frames).index(rest_index), k])
                              for k, s in enumerate(SIDES)},
            "rest_points": frame.to_face(rest_points), "side_widths": widths}


def _peak(values, baseline=0.0):
    """The 90th percentile of ``values`` (the expression's fullest moment, not one mis-tracked frame), less
    ``baseline``."""
    values = np.asarray(values, float)
    return float(_row_peaks(values[None], baseline)[0])


def _row_peaks(values, baseline=0.0):
    """:func:`_peak` of each row of ``values`` ``(B, n)`` (``baseline`` a float or one per row): ``(B,)``.

    The rows are a measurement's frame resamples: one quantile call for all of them gives each row the value
    it gets alone (the same partition and interpolation, row by row)."""
    if values.shape[1] == 0:
        return np.zeros(len(values))
    above = np.quantile(values, PEAK_QUANTILE, axis=1) - baseline
    return np.where(above > 0, above, 0.0)  # as max(0.0, x): a NaN counts as no movement


def _row_medians(values, keep):
    """The median of each row of ``values`` ``(B, n)`` over its ``keep`` entries (``np.median`` of
    ``values[b, keep[b]]``, which differs in length from row to row); NaN where a row keeps none."""
    count = keep.sum(axis=1)
    ordered = np.sort(np.where(keep, values, np.inf), axis=1)
    rows = np.arange(len(values))
    low = ordered[rows, np.maximum(count - 1, 0) // 2]
    high = ordered[rows, np.minimum(count // 2, values.shape[1] - 1)]
    return np.where(count == 0, np.nan, np.where(count % 2 == 1, low, (low + high) / 2))


def _picks(measurement, frames):
    """``frames`` as a ``(B, n)`` array of positions in ``measurement["frames"]`` (``None``: all, one row)."""
    if frames is None:
        return np.arange(len(measurement["frames"]))[None]
    frames = np.asarray(frames, int)
    return frames if frames.ndim == 2 else frames.reshape(1, -1)


def _resampled(frames):
    """Whether ``frames`` holds several rows of positions (frame resamples), each answered on its own."""
    return frames is not None and np.ndim(frames) == 2


def _series_rows(values, picks):
    return np.asarray(values, float)[picks]


def _quiet(measurement, picks):
    """Which measured frames of each row of ``picks`` show the face at rest by its landmarks (every group
    within :data:`QUIET_IOD`): ``(B, n)``."""
    moved = [_series_rows(values, picks) for sides in measurement["landmark_series"].values()
             for values in sides.values()]
    return np.max(moved, axis=0) <= QUIET_IOD if moved else np.zeros(picks.shape, bool)


def _peak_rows(measurement, picks):
    """:func:`peaks` of each row of ``picks`` ``(B, n)``: ``{region: {side: (B,)}}``."""
    quiet = _quiet(measurement, picks)
    jitter_known = (picks.shape[1] >= MIN_FRAMES_FOR_JITTER) & (quiet.sum(axis=1) >= MIN_QUIET_FRAMES)
    out = {}
    for region, sides in measurement["series"].items():
        out[region] = {}
        for side, values in sides.items():
            values = _series_rows(values, picks)
            baseline = 0.0
            if region != "reference" and jitter_known.any():
                baseline = np.where(jitter_known, _row_medians(values, quiet), 0.0)
            out[region][side] = _row_peaks(values, baseline)
    return out


def peaks(measurement, frames=None):
    """``{region: {side: IOD}}``: each region's peak excursion from rest by the flow, over ``frames`` (positions
    in ``measurement["frames"]``; all by default), and ``"reference"`` (the noise: the nose bridge's peak).

    Where at least :data:`MIN_QUIET_FRAMES` of at least :data:`MIN_FRAMES_FOR_JITTER` measured frames show the
    face at rest by its landmarks, what each region reads in them (its resting jitter: flow noise, larger on a
    side in shadow) is taken off its peak.

    A 2-D ``frames`` ``(B, n)`` (frame resamples) gives each region and side an array of ``B`` peaks, each what
    its row gives alone.
    """
    rows = _peak_rows(measurement, _picks(measurement, frames))
    if _resampled(frames):
        return rows
    return {region: {side: float(values[0]) for side, values in sides.items()} for region, sides in rows.items()}


def landmark_peak(measurement, region, side, frames=None):
    """A landmark group's peak displacement from rest (IOD, head motion removed) on one image side."""
    values = np.asarray(measurement["landmark_series"][region][side])
    return _peak(values if frames is None else values[np.asarray(frames, int)])


def noise_floor(measurement, frames=None):
    """The measurement's noise floor in IOD: the nose bridge's peak excursion, at least :data:`NOISE_IOD`."""
    return max(NOISE_IOD, peaks(measurement, frames)["reference"]["mid"])


def video_features(measurement, frames=None):
    """The row of :data:`VIDEO_FEATURE_NAMES` of one :func:`measure_video` result (NaN for ``None``).

    Parameters
    ----------
    measurement : dict or None
    frames : array-like of int or None
        Positions among ``measurement["frames"]`` to use (a stretch of the
        video, or a bootstrap resample); ``None``: all. A 2-D array
        ``(B, n)`` gives one row per resample (each row as it would be alone).

    Returns
    -------
    features : ndarray of float, shape (len(VIDEO_FEATURE_NAMES),), or (B, len(VIDEO_FEATURE_NAMES))
    """
    several = _resampled(frames)
    if measurement is None:
        nan = np.full(len(VIDEO_FEATURE_NAMES), np.nan)
        return np.tile(nan, (len(frames), 1)) if several else nan
    rows = _feature_rows(measurement, _picks(measurement, frames))
    return rows if several else rows[0]


def _feature_rows(measurement, picks):
    """:func:`video_features` of each row of ``picks`` ``(B, n)``: ``(B, len(VIDEO_FEATURE_NAMES))``."""
    n_rows, n = picks.shape
    peak = _peak_rows(measurement, picks)
    noise = peak["reference"]["mid"]
    floor = np.maximum(NOISE_IOD, noise)
    evidence, strength = _reading_rows(measurement, picks, peak)
    weights = _weights(strength)
    balance = _balance(evidence, weights)
    left_weaker = balance < 0

    def weaker_stronger(values):
        return (np.where(left_weaker, values["left"], values["right"]),
                np.where(left_weaker, values["right"], values["left"]))

    out = []
    for region in VIDEO_REGIONS:
        left, right = peak[region]["left"], peak[region]["right"]
        weak, strong = np.minimum(left, right), np.maximum(left, right)
        weaker, stronger = weaker_stronger(peak[region])
        log_affected = np.log((weaker + floor) / (stronger + floor))
        sums = [_series_rows(measurement["series"][region][side], picks).sum(axis=1) for side in SIDES]
        together = weak_strong_ratio(np.minimum(*sums), np.maximum(*sums), floor * max(n, 1))
        out += [weak, strong, weak_strong_ratio(weak, strong, floor), log_affected, together]
    for region in LANDMARK_REGIONS:
        values = {side: _row_peaks(_series_rows(measurement["landmark_series"][region][side], picks))
                  for side in SIDES}
        weak, strong = np.minimum(values["left"], values["right"]), np.maximum(values["left"], values["right"])
        weaker, stronger = weaker_stronger(values)
        out += [weak_strong_ratio(weak, strong, floor), np.log((weaker + floor) / (stronger + floor))]
    # eye closure from the lids' landmarks: the share of the rest opening each eye closes at its most closed
    # (over every landmarked frame: the same for every row)
    closure = _closures(measurement)
    c_weak, c_strong = min(closure), max(closure)
    change = [_row_peaks(_series_rows(measurement["eye_change"][side], picks)) for side in SIDES]
    aperture = measurement["eye_aperture"]
    gap = _aperture_gap(np.stack([aperture["left"], aperture["right"]], axis=1))
    out += [c_weak, c_strong, weak_strong_ratio(c_weak, c_strong, CLOSURE_NOISE),
            weak_strong_ratio(np.minimum(*change), np.maximum(*change), NOISE_APPEARANCE),
            float(np.quantile(gap, 0.95)), float(np.median(gap))]
    rest = measurement["rest_points"]
    for part in _HEIGHT_PARTS:
        heights = [rest[LANDMARK_SIDES[part][side], 1].mean() for side in SIDES]
        out.append(float(abs(heights[0] - heights[1])))
    corners = [rest[LANDMARK_SIDES["mouth_corner"][side][0], 0] for side in SIDES]
    out.append(float(abs(corners[0] + corners[1])))  # x_left < 0 < x_right
    out.append(np.abs(balance))
    # the share of the readings (weighted as in the balance) agreeing on the weaker side: a palsy weakens every
    # region of one side
    agreeing = _balance(np.sign(evidence) == np.sign(balance)[:, None], weights)
    out.append(np.where(balance != 0, agreeing, 0.0))
    out.append(np.max([peak[region][side] for region in VIDEO_REGIONS for side in SIDES], axis=0))
    out.append(noise)
    return np.stack([np.broadcast_to(np.asarray(column, float), (n_rows,)) for column in out], axis=1)


def _closures(measurement):
    """How far each eye closes at its most closed, as a share of its rest opening (left, right)."""
    aperture, rest_open = measurement["eye_aperture"], measurement["rest_aperture"]
    return [float(np.clip(1 - np.min(aperture[side]) / max(rest_open[side], 1e-6), 0, 1)) for side in SIDES]


def _readings(measurement, frames=None, peak=None):
    """Each reading's ``log(left / right)`` and how far its stronger side moved, in noise floors (``peak``:
    :func:`peaks` of the same frames, when already at hand); one row per row of a 2-D ``frames``, else 1-D."""
    picks = _picks(measurement, frames)
    if peak is not None:  # peaks' floats (one row) or arrays (one per row)
        peak = {r: {s: np.atleast_1d(v) for s, v in sides.items()} for r, sides in peak.items()}
    evidence, strength = _reading_rows(measurement, picks, peak)
    return (evidence, strength) if _resampled(frames) else (evidence[0], strength[0])


def _reading_rows(measurement, picks, peak=None):
    """:func:`_readings` of each row of ``picks`` ``(B, n)`` (``peak``: :func:`_peak_rows` of the same rows):
    evidence and strength, ``(B, n_readings)`` each."""
    peak = _peak_rows(measurement, picks) if peak is None else peak
    floor = np.maximum(NOISE_IOD, peak["reference"]["mid"])
    pairs = [(peak[region]["left"], peak[region]["right"], floor) for region in VIDEO_REGIONS]
    for region in LANDMARK_REGIONS:
        values = [_row_peaks(_series_rows(measurement["landmark_series"][region][side], picks)) for side in SIDES]
        pairs.append((values[0], values[1], floor))
    closure = _closures(measurement)
    pairs.append((closure[0], closure[1], CLOSURE_NOISE))
    left, right, noise = (np.stack([np.broadcast_to(np.asarray(v, float), (len(picks),)) for v in column], axis=1)
                          for column in zip(*pairs))
    return np.log((left + noise) / (right + noise)), np.maximum(left, right) / noise


def side_evidence(measurement, frames=None):
    """Each reading's ``log(left / right)``: negative where the image-left side moves less.

    The readings: each region's peak excursion from the flow, each landmark
    group's peak displacement, and how far each eye closes.

    Returns
    -------
    evidence : ndarray of float, shape (n_readings,)
    """
    return _readings(measurement, frames)[0]


def evidence_weights(measurement, frames=None):
    """How much each reading of :func:`side_evidence` counts in the face's balance, 0-1.

    A region that did not move says nothing about which side is weaker: a
    clinician compares the sides in the expressions performed. A reading
    counts in proportion to how far its stronger side moved beyond the noise
    floor, fully from :data:`FULL_EVIDENCE_UNITS` floors beyond it; so the
    noise of a still brow or a lip that barely moved does not dilute the
    regions that moved, while every region that moved counts once, whatever
    its size (the mouth moves most, but a palsy weakens the brow and the eye
    as much).
    """
    return _weights(_readings(measurement, frames)[1])


def _weights(strength):
    return np.clip((strength - 1.0) / FULL_EVIDENCE_UNITS, 0.0, 1.0)


def _balance(evidence, weights):
    """The weighted mean of ``evidence`` (0 without weight): a float for 1-D readings, one per row for 2-D."""
    if np.ndim(weights) == 1:
        return float(_balance(np.asarray(evidence)[None], np.asarray(weights)[None])[0])
    total = np.sum(weights, axis=1)
    weighted = np.sum(weights * evidence, axis=1)
    return np.where(total > 0, weighted / np.where(total > 0, total, 1.0), 0.0)


def side_asymmetry(measurement, frames=None, peak=None):
    """``log(left / right)`` of the face's movement (0 symmetric): the readings' mean weighted by
    :func:`evidence_weights` (``peak``: :func:`peaks` of the same frames, when already at hand). A 2-D
    ``frames`` ``(B, n)`` gives one value per row (frame resample)."""
    evidence, strength = _readings(measurement, frames, peak)
    return _balance(evidence, _weights(strength))


def pooled_side_asymmetry(measurements):
    """:func:`side_asymmetry` of several measurements (an examination's expressions), their readings pooled into
    one weighted mean."""
    readings = [_readings(m) for m in measurements]
    evidence, strength = (np.concatenate(parts) for parts in zip(*readings))
    return _balance(evidence, _weights(strength))


def weaker_side(measurement):
    """The image side that moves less by :func:`side_asymmetry` (``None`` without a measurement)."""
    if measurement is None:
        return None
    return "left" if side_asymmetry(measurement) < 0 else "right"
