"""How far each region moves: dense optical flow read in landmark-placed boxes.

Landmark models pull a face toward symmetry (a shape prior), so a weak side's
small movement is read as larger than it is and a strong side's as smaller.
Dense optical flow has no such prior: it follows the skin's texture. Here the
flow (OpenCV's DIS, a dense inverse-search method) is computed between frames
of a registered face and averaged in each region's box; a region's
*excursion* is the largest distance between its positions over the frames
(in IOD), so it is the whole movement within the clip whichever frame the
movement starts or peaks on. The eyelids are a special case: a lid sliding
over the eye is an occlusion more than a warp, so eye closure is also read as
the change of appearance in the eye box.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

__all__ = ["FLOW_PRESETS", "DISFlow", "local_contrast", "region_excursions", "remove_head_motion", "key_frames"]

#: OpenCV DIS presets by name (``flow_preset=`` of the measures steps).
FLOW_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


class DISFlow:
    """OpenCV's DIS optical flow between two grey uint8 images (``flow[y, x] = (dx, dy)`` in pixels).

    Both images are first put through :func:`local_contrast`, so that a
    side in shadow moves as much as a lit one. The OpenCV object is created on first use and not pickled.
    """

    def __init__(self, preset="medium"):
        if preset not in FLOW_PRESETS:
            raise ValueError(f"Unknown DIS preset {preset!r}; choose one of {sorted(FLOW_PRESETS)}.")
        self.preset = preset
        self._dis = None

    def __call__(self, first, second):
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(FLOW_PRESETS[self.preset])
        return self._dis.calc(local_contrast(first), local_contrast(second), None)

    def __getstate__(self):
        return {"preset": self.preset, "_dis": None}


def local_contrast(grey, sigma=6.0):
    """``grey`` with its local mean removed and its local contrast set to one level, as uint8.

    Real faces are lit from one side: the shaded half has less contrast, and
    DIS (which matches patches of grey levels and smooths the field where the
    texture is weak) reads less movement there than on the lit half, so a
    healthy face looks one-sided. Each pixel is replaced by its difference
    from a Gaussian-weighted local mean over the local standard deviation
    (the structure-texture idea of flow under changing light, Wedel et al.
    2009). The Gaussian window's sigma is ``sigma`` pixels (6: about a tenth
    of the inter-ocular distance on the 192-pixel face the clip measures read,
    a seventh on the network's 128-pixel face).
    Measured on the healthy ``single_face.mp4`` (left side 20-30 grey levels
    darker): nose-wing movement ratio weaker/stronger side 0.52 -> 0.94,
    cheek 0.63 -> 0.81.

    Parameters
    ----------
    grey : ndarray of uint8, shape (H, W)
    sigma : float, default=6.0
        Standard deviation of the Gaussian window, in pixels.

    Returns
    -------
    ndarray of uint8, shape (H, W)
        Mean 128, one local standard deviation = 40 levels.
    """
    g = grey.astype(np.float32)
    mean = cv2.GaussianBlur(g, (0, 0), sigma)
    var = cv2.GaussianBlur((g - mean) ** 2, (0, 0), sigma)
    # +25 (a standard deviation of 5 levels) keeps flat, noisy skin from being blown up to full contrast
    return np.clip((g - mean) / np.sqrt(var + 25.0) * 40.0 + 128.0, 0, 255).astype(np.uint8)


def key_frames(n_frames, max_frames):
    """Indices of at most ``max_frames`` frames spread evenly over ``n_frames`` (all of them if fewer)."""
    if n_frames <= max_frames:
        return np.arange(n_frames)
    return np.unique(np.round(np.linspace(0, n_frames - 1, max_frames)).astype(int))


def _box_slices(box, shape):
    x0, y0, x1, y1 = box
    h, w = shape
    xs = slice(int(np.clip(np.floor(x0), 0, w - 1)), int(np.clip(np.ceil(x1), 1, w)))
    ys = slice(int(np.clip(np.floor(y0), 0, h - 1)), int(np.clip(np.ceil(y1), 1, h)))
    return ys, xs


def remove_head_motion(field, face_box, step=6, threshold=0.5):
    """Flow ``field`` less the similarity (head motion) that best explains it over the face, robustly.

    Returns the residual field and the fitted 2x3 similarity (``None`` when
    it could not be fitted, and then the field is returned unchanged).

    Registration on landmarks leaves the landmark model's jitter (about 1% of
    the inter-ocular distance per frame with dlib), as large as the movements
    of a weak side. Facial movements are local, so a similarity fitted to the
    flow over the whole face with RANSAC follows the head and ignores them;
    what remains is the face's own movement.

    Parameters
    ----------
    field : ndarray, shape (H, W, 2)
    face_box : (x0, y0, x1, y1)
        Where the face is (the grid of sample points).
    step : int, default=6
        Grid spacing of the sample points, in pixels.
    threshold : float, default=0.5
        RANSAC inlier distance, in pixels.

    Returns
    -------
    field : ndarray, shape (H, W, 2)
    matrix : ndarray, shape (2, 3), or None
        Maps a pixel of the first frame to where the head puts it in the second.
    """
    (ys, xs) = _box_slices(face_box, field.shape[:2])
    gy, gx = np.mgrid[ys.start:ys.stop:step, xs.start:xs.stop:step]
    src = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    if len(src) < 8:
        return field, None
    dst = src + field[gy.ravel(), gx.ravel()]
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=threshold,
                                            maxIters=200, refineIters=10)
    if matrix is None:
        return field, None
    h, w = field.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    head = np.stack([matrix[0, 0] * xx + matrix[0, 1] * yy + matrix[0, 2] - xx,
                     matrix[1, 0] * xx + matrix[1, 1] * yy + matrix[1, 2] - yy], axis=-1)
    return field - head, matrix


def region_excursions(grey, boxes, flow=None, face_box=None, appearance=("eye",), pairs=None):
    """Per region and side, the movement within the clip as displacement vectors between frames.

    Flow is computed between pairs of frames (by default every pair, earlier ->
    later); a region's displacement for a pair is the mean flow in its box in
    the pair's first frame.

    Parameters
    ----------
    grey : ndarray of uint8, shape (T, H, W)
        Grey frames registered on the landmarks.
    boxes : dict or sequence of dict
        ``boxes[region][side]`` -> ``(x0, y0, x1, y1)`` in pixels (see
        :func:`fnpgrade.measures.regions.region_boxes`), the same in every
        frame; or one such dict per frame, placed on that frame's landmarks,
        so that a pair ``(i, j)`` reads the flow where the tissue is in frame
        ``i`` (a box placed on a smiling mouth corner would read the cheek
        beside a neutral one, and a turned head places the two sides' boxes
        unequally on it).
    flow : callable or None
        ``flow(a, b) -> (H, W, 2)``; default :class:`DISFlow` ("medium").
    face_box : (x0, y0, x1, y1) or None
        Where the face is: head motion fitted there is removed from every flow
        field (:func:`remove_head_motion`); ``None`` keeps the raw flow.
    appearance : tuple of str, default=("eye",)
        Regions whose change of appearance is also measured: the mean
        absolute grey-level change (0-1) between the two frames of a pair, the
        later frame moved back by the fitted head motion.
    pairs : sequence of (int, int) or None
        The ``(from, to)`` frame pairs; ``None``: every pair, in the order of
        ``itertools.combinations(range(T), 2)``.

    Returns
    -------
    displacement : dict
        ``displacement[region][side]`` -> ndarray ``(P, 2)``: the mean image
        displacement (pixels) for each of the ``P`` frame pairs, in order.
    change : dict
        ``change[region][side]`` -> ndarray ``(P,)`` for the ``appearance`` regions.
    """
    flow = flow or DISFlow()
    pairs = list(itertools.combinations(range(len(grey)), 2)) if pairs is None else list(pairs)
    per_frame = [boxes] * len(grey) if isinstance(boxes, dict) else list(boxes)
    if len(per_frame) != len(grey):
        raise ValueError(f"region_excursions: {len(per_frame)} sets of boxes for {len(grey)} frames; pass one dict "
                         "for every frame, or one per frame.")
    out = {region: {side: np.zeros((len(pairs), 2)) for side in sides} for region, sides in per_frame[0].items()}
    change = {region: {side: np.zeros(len(pairs)) for side in per_frame[0][region]} for region in appearance}
    h, w = grey.shape[1:]
    for p, (i, j) in enumerate(pairs):
        field, head = flow(grey[i], grey[j]), None
        if face_box is not None:
            field, head = remove_head_motion(field, face_box)
        slices = {region: {side: _box_slices(box, (h, w)) for side, box in sides.items()}
                  for region, sides in per_frame[i].items()}
        for region, sides in slices.items():
            for side, (ys, xs) in sides.items():
                out[region][side][p] = field[ys, xs].reshape(-1, 2).mean(axis=0)
        if appearance:
            later = grey[j] if head is None else cv2.warpAffine(grey[j], head, (w, h), flags=cv2.INTER_LINEAR
                                                                 | cv2.WARP_INVERSE_MAP,
                                                                 borderMode=cv2.BORDER_REPLICATE)
            diff = np.abs(later.astype(np.float32) - grey[i].astype(np.float32)) / 255.0
            for region in appearance:
                for side, (ys, xs) in slices[region].items():
                    change[region][side][p] = float(diff[ys, xs].mean())
    return out, change
