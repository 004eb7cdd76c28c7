"""``make_palsy_videos``: synthetic examination videos that move the way real video moves.

:func:`~fnpgrade.make_palsy_clips` makes 4-frame clips with one smooth rise of
one expression. Real video holds expressions, starts them at any moment,
blinks, talks, drifts and is lit from one side. Each video made here is one
synthetic person (identity, HB grade, affected side, as in
:func:`~fnpgrade.make_palsy_clips`) going through several expressions of an
examination in a row, each with an onset, a hold and a release at random
times, with rests between them; blinks; speech-like mouth movement; slow
head drift and roll; a lighting gradient across the face; JPEG compression;
a frame rate from 6 to 30 fps and a face from about 80 px wide upwards.
Only the affected side's strength and its resting droop depend on the grade.

SYNTHETIC: warped photos of real faces, not patients.
"""

from __future__ import annotations

import numbers

import cv2
import numpy as np
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ..grading import hb_to_level
from .expressions import EFFORT, EXPRESSIONS, EYE_CLOSURE, expression_displacement, side_strength
from .eyelids import close_eyelids
from .identities import real_faces
from .synthetic import allocate_grades, morph_clusters, deal_grades, make_subject, photometric_jitter, PersonGroups
from .warp import similarity_matrix, warp_points_image

__all__ = ["make_palsy_videos", "write_palsy_videos"]

#: Seconds of each phase of one expression: (min, max) onset, hold, release, and the rest before it.
PHASES = {"onset": (0.3, 0.8), "hold": (0.4, 2.0), "release": (0.3, 0.8), "rest": (0.3, 1.5)}


def _timeline(expressions, fps, rng):
    """Per expression, its intensity over the video's frames: ``(n_expressions, T)`` in 0..1."""
    pieces, spans = [], []
    t = 0.0
    for _ in expressions:
        rest, onset, hold, release = (rng.uniform(*PHASES[k]) for k in ("rest", "onset", "hold", "release"))
        start = t + rest
        spans.append((start, onset, hold, release, rng.uniform(0.7, 1.0)))
        t = start + onset + hold + release
    t += rng.uniform(*PHASES["rest"])
    n = max(2, int(round(t * fps)))
    times = np.arange(n) / fps
    for start, onset, hold, release, peak in spans:
        rise = np.clip((times - start) / onset, 0, 1)
        fall = np.clip((times - start - onset - hold) / release, 0, 1)
        pieces.append(peak * np.sin(np.pi / 2 * rise) ** 2 * (1 - np.sin(np.pi / 2 * fall) ** 2))
    return np.stack(pieces), times


def _blinks(times, rng):
    """Eye closure of spontaneous blinks (0..1): about one every 3 s, 0.15-0.25 s long."""
    out = np.zeros(len(times))
    t = rng.uniform(0.5, 3.0)
    while t < times[-1]:
        width = rng.uniform(0.15, 0.25)
        out = np.maximum(out, np.clip(1 - np.abs(times - t) / (width / 2), 0, 1))
        t += rng.uniform(1.5, 5.0)
    return out


def _speech(times, rng):
    """Speech-like opening of the mouth (0..1): a few bursts of a 3-6 Hz syllable rhythm."""
    out = np.zeros(len(times))
    for _ in range(rng.integers(0, 3)):
        start, length = rng.uniform(0, times[-1]), rng.uniform(0.5, 2.0)
        rate = rng.uniform(3, 6)
        inside = (times >= start) & (times < start + length)
        out[inside] = 0.5 * (1 - np.cos(2 * np.pi * rate * (times[inside] - start))) * rng.uniform(0.4, 1.0)
    return out


def _speech_displacement(rest):
    """Mouth opening (jaw-driven, both sides alike): lower lip and chin down, in pixels at full opening."""
    iod = np.linalg.norm(rest[42:48].mean(0) - rest[36:42].mean(0))
    d = np.zeros_like(rest)
    d[[55, 56, 57, 58, 59, 65, 66, 67], 1] += 0.12 * iod
    d[[6, 7, 8, 9, 10], 1] += 0.10 * iod
    d[[5, 11], 1] += 0.05 * iod
    return d


def make_palsy_videos(n_subjects=12, expressions_per_video=4, faces=None, target="level", grades=None,
                      random_state=None, *, fps=(6.0, 30.0), face_width=(80, 240), return_info=False):
    """Synthetic examination videos: one person per video, several expressions in a row, as real video moves.

    Parameters
    ----------
    n_subjects : int, default=12
        Videos (one synthetic person each, with one HB grade and one affected side).
    expressions_per_video : int, default=4
        Expressions performed one after another (drawn without repetition
        from the examination's seven, rest excluded: rest is between them).
    faces, target, grades, random_state
        As :func:`~fnpgrade.make_palsy_clips`.
    fps : float or (float, float), default=(6.0, 30.0)
        Frame rate, or a range drawn per video.
    face_width : int or (int, int), default=(80, 240)
        Approximate width of the face in pixels (inter-ocular distance x 2.5), or a range drawn per video.
    return_info : bool, default=False
        Also return a dict describing each video: ``subject``, ``family``, ``hb``, ``level``,
        ``affected_side`` (image side), ``mirrored``, ``fps``, ``expressions`` and ``intensity``
        (``(n_expressions, T)``).

    Returns
    -------
    X : list of ndarray of uint8, shape (T, S, S, 3)
    y : ndarray, shape (n_subjects,)
    groups : ndarray of int
        People (as in :func:`~fnpgrade.make_palsy_clips`).
    info : dict, only with ``return_info=True``

    Examples
    --------
    >>> from fnpgrade.datasets.videos import make_palsy_videos
    >>> X, y, groups = make_palsy_videos(n_subjects=2, expressions_per_video=1, faces="package", fps=6.0,
    ...                                  face_width=100, random_state=0)
    >>> len(X), X[0].dtype, X[0].shape[1] == X[0].shape[2]
    (2, dtype('uint8'), True)
    """
    if not isinstance(n_subjects, numbers.Integral) or n_subjects < 1:
        raise ValueError(f"n_subjects must be an int >= 1; got {n_subjects!r}.")
    moving = [e for e in EXPRESSIONS if e != "rest"]
    if not 1 <= expressions_per_video <= len(moving):
        raise ValueError(f"expressions_per_video must be in 1..{len(moving)}; got {expressions_per_video!r}.")
    if target not in ("level", "hb"):
        raise ValueError(f"target must be 'level' or 'hb'; got {target!r}.")
    fps_range = (float(fps), float(fps)) if np.isscalar(fps) else tuple(float(v) for v in fps)
    width_range = (float(face_width), float(face_width)) if np.isscalar(face_width) else tuple(map(float, face_width))
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31 - 1))
    with threadpool_limits(limits=1, user_api="blas"):
        bases = real_faces(faces, size=256)
        families = list(dict.fromkeys(b.family for b in bases))
        by_family = {f: [b for b in bases if b.family == f] for f in families}
        clusters = morph_clusters(families, 0.5, rng)
        hb = deal_grades(allocate_grades(n_subjects, grades, rng), len(clusters), rng) if not (
            grades is not None and not isinstance(grades, dict)) else allocate_grades(n_subjects, grades, rng)
        people = PersonGroups(families)
        X, info = [], {k: [] for k in ("subject", "family", "hb", "level", "affected_side", "mirrored", "fps",
                                       "expressions", "intensity")}
        for s in range(n_subjects):
            subject = make_subject(s, clusters[s % len(clusters)], len(clusters), by_family, int(hb[s]), moving,
                                    1.0, 0.5, rng)
            people.add(subject)
            chosen = [moving[i] for i in rng.permutation(len(moving))[:expressions_per_video]]
            rate = float(rng.uniform(*fps_range))
            frames, intensity = _render_video(subject, chosen, rate, rng.uniform(*width_range), rng)
            X.append(frames)
            info["subject"].append(s)
            info["family"].append(subject.family)
            info["hb"].append(subject.grade)
            info["level"].append(hb_to_level(subject.grade))
            info["affected_side"].append("left" if subject.affected_left != subject.mirrored else "right")
            info["mirrored"].append(subject.mirrored)
            info["fps"].append(rate)
            info["expressions"].append(tuple(chosen))
            info["intensity"].append(intensity)
    hb_videos = np.asarray(info["hb"], int)
    y = hb_videos if target == "hb" else hb_to_level(hb_videos)
    groups = np.asarray([people.group_of(s) for s in info["subject"]], int)
    if not return_info:
        return X, y, groups
    out = {k: np.asarray(v) if k in ("subject", "hb", "mirrored", "fps") else np.asarray(v, dtype=object)
           for k, v in info.items() if k not in ("expressions", "intensity")}
    for k in ("expressions", "intensity"):
        out[k] = np.empty(n_subjects, dtype=object)
        out[k][:] = info[k]
    return X, y, groups, out


def _render_video(subject, expressions, fps, face_width, rng):
    """The frames of one examination video of ``subject``, and its per-expression intensity."""
    rest, image, points68 = subject.rest, subject.image, subject.points68
    intensity, times = _timeline(expressions, fps, rng)
    blinks, speech = _blinks(times, rng), _speech(times, rng)
    movements = [expression_displacement(e, rest) for e in expressions]
    factors = [side_strength(rest, subject.mid_x, subject.iod, subject.affected_left, subject.weakness,
                             EFFORT.get(e)) for e in expressions]
    blink_factor = side_strength(rest, subject.mid_x, subject.iod, subject.affected_left, subject.weakness)
    talk = _speech_displacement(rest)
    # one camera per video: the face about face_width px wide, drifting and rolling slowly
    scale = face_width / (2.5 * subject.iod)
    size = int(np.clip(round(256 * scale * rng.uniform(1.0, 1.4)), 96, 720))
    centre = np.array([size / 2, size / 2]) + rng.uniform(-0.05, 0.05, 2) * size
    drift = rng.normal(0, 0.02 * size, (2, 2))  # a slow sway: amplitude and phase per axis
    roll = rng.uniform(-8, 8)
    sway = rng.uniform(0.1, 0.4)  # Hz
    photo = dict(contrast=1 + rng.uniform(-0.2, 0.2), brightness=rng.uniform(-20, 20),
                 gains=(1 + rng.uniform(-0.08, 0.08, 3)).astype(np.float32),
                 gamma=float(np.exp(rng.uniform(-0.2, 0.2))), blur=rng.uniform(0, 1.0), noise=rng.uniform(0, 3))
    light = rng.uniform(-0.35, 0.35)  # brightness gradient across the face (one side in shadow)
    ramp = 1 + light * (np.arange(size, dtype=np.float32) - size / 2) / size
    quality = int(rng.integers(45, 90))
    frames = []
    for k, t in enumerate(times):
        target = rest + subject.droop + talk * speech[k]
        closing = blinks[k]
        for movement, factor, e, level in zip(movements, factors, expressions, intensity[:, k]):
            target = target + level * factor[:, None] * movement
            closing = max(closing, EYE_CLOSURE.get(e, 0.0) * level)
        lidded, _ = close_eyelids(image, points68, (closing * blink_factor[37], closing * blink_factor[43]))
        warped = warp_points_image(lidded, rest, target) if np.any(target != rest) else lidded
        phase = 2 * np.pi * sway * t
        where = centre + drift[:, 0] * np.sin(phase) + drift[:, 1] * np.cos(0.7 * phase)
        # turn and scale about the photo's centre (the face), then put it where the camera sees it now
        matrix = similarity_matrix(scale, roll + 2.0 * np.sin(0.5 * phase), (128.0, 128.0), where - 128.0)
        frame = cv2.warpAffine(warped, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        if subject.mirrored:
            frame = frame[:, ::-1]
        frame = np.clip(frame.astype(np.float32) * ramp[None, :, None], 0, 255).astype(np.uint8)
        frame = photometric_jitter(frame, photo, rng, 1.0)
        ok, buffer = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        frames.append(cv2.imdecode(buffer, cv2.IMREAD_COLOR)[..., ::-1] if ok else frame)
    return np.ascontiguousarray(np.stack(frames)), intensity


def write_palsy_videos(folder, n_subjects=36, random_state=0, target="hb"):
    """:func:`make_palsy_videos` written once as MPEG-4 files under ``folder`` and reused.

    For training on many long videos without holding them in memory
    (``fnpgrade train --reference``): the videos are made in one call (so
    the grades are dealt over all of them), written, and read back from
    disk by the pipeline like any user's video.

    Parameters
    ----------
    folder : str or path-like
        Where the videos go; a subfolder per ``(n_subjects, random_state)``.
    n_subjects, random_state, target
        As :func:`make_palsy_videos`.

    Returns
    -------
    paths : list of str
    y : ndarray, shape (n_subjects,)
    groups : ndarray of int
        People, as :func:`make_palsy_videos` gives them.
    """
    import json
    from pathlib import Path

    from ..io import write_video

    where = Path(folder) / f"n{n_subjects}_seed{random_state}_v1"
    index = where / "videos.json"
    if not index.exists():
        X, _, groups, info = make_palsy_videos(n_subjects=n_subjects, target="hb", random_state=random_state,
                                               return_info=True)
        where.mkdir(parents=True, exist_ok=True)
        rows = []
        for k, (frames, rate) in enumerate(zip(X, info["fps"])):
            path = where / f"subject_{k:03d}.mp4"
            write_video(path, frames, fps=float(rate))
            rows.append({"path": path.name, "hb": int(info["hb"][k]), "group": int(groups[k])})
        index.write_text(json.dumps(rows))
    rows = json.loads(index.read_text())
    hb = np.asarray([row["hb"] for row in rows], int)
    return ([str(where / row["path"]) for row in rows], hb if target == "hb" else hb_to_level(hb),
            np.asarray([row["group"] for row in rows], int))
