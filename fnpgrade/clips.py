"""The values that flow between pipeline steps, one per clip.

Every preprocessing step returns a list with one of these per clip, so that the
number of samples never changes along a scikit-learn ``Pipeline``. They are
frozen dataclasses of numpy arrays: pixels stay ``uint8`` (4x less memory than
float32) until the network's first layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["RegionClip", "WindowedClip", "FACE_SIZE", "ROI_SIZE", "N_LANDMARKS"]

#: The paper's face crop side, in pixels.
FACE_SIZE = 128
#: The paper's region-of-interest size (height, width), in pixels.
ROI_SIZE = (40, 120)
#: Number of IntraFace-style landmarks kept (the paper's 49 points).
N_LANDMARKS = 49


def _check_uint8_stack(name, array, ndim, source):
    array = np.asarray(array)
    if array.ndim != ndim or array.shape[-1] != 3:
        raise ValueError(
            f"{source}: '{name}' must have shape {'(T, H, W, 3)' if ndim == 4 else '(W, L, H, W, 3)'}; "
            f"got {array.shape}."
        )
    if array.dtype != np.uint8:
        raise ValueError(
            f"{source}: '{name}' must be uint8 pixels in 0..255; got dtype {array.dtype}. "
            "Convert with np.clip(x, 0, 255).astype(np.uint8)."
        )
    return array


@dataclass(frozen=True, eq=False)
class RegionClip:
    """The face and the two regions of interest of one clip, frame by frame.

    Parameters
    ----------
    face : ndarray of uint8, shape (T, 128, 128, 3)
        Face crops, RGB.
    brow : ndarray of uint8, shape (T, 40, 120, 3)
        Eye-brow region (both brows and both eyes), RGB.
    mouth : ndarray of uint8, shape (T, 40, 120, 3)
        Mouth region, RGB.
    landmarks : ndarray of float, shape (T, 49, 2)
        The 49 landmarks (x, y) in source-frame pixel coordinates.
    face_landmarks : ndarray of float, shape (T, 49, 2), optional
        The same landmarks in face-crop pixel coordinates.
    found : ndarray of bool, shape (T,), optional
        True where the face was detected in that frame; False where the frame's
        geometry was interpolated or the frame is blank. ``None`` means all found.
    measures : ndarray of float32, shape (T, K), optional
        Per-frame measures of movement (:class:`~fnpgrade.measures.FrameMeasures`),
        for a network's measures branch; ``None`` when not computed.
    source : str, default=""
        Where the clip came from (a path, or ``"X[i]"`` for in-memory clips);
        used in error messages and reports.
    occluded : ndarray of bool, shape (T,), optional
        True where something covers part of the face (a hand at the mouth:
        :mod:`fnpgrade.preprocessing.occlusion`); the measures leave such
        frames out. ``None`` means none known.

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade import RegionClip
    >>> clip = RegionClip(
    ...     face=np.zeros((4, 128, 128, 3), np.uint8),
    ...     brow=np.zeros((4, 40, 120, 3), np.uint8),
    ...     mouth=np.zeros((4, 40, 120, 3), np.uint8),
    ...     landmarks=np.zeros((4, 49, 2)),
    ... )
    >>> clip.n_frames
    4
    """

    face: np.ndarray
    brow: np.ndarray
    mouth: np.ndarray
    landmarks: np.ndarray
    face_landmarks: np.ndarray | None = None
    found: np.ndarray | None = None
    source: str = ""
    measures: np.ndarray | None = None
    occluded: np.ndarray | None = None

    def __post_init__(self):
        where = self.source or "RegionClip"
        for name in ("face", "brow", "mouth"):
            object.__setattr__(self, name, _check_uint8_stack(name, getattr(self, name), 4, where))
        n = len(self.face)
        landmarks = np.asarray(self.landmarks, dtype=float)
        if landmarks.shape != (n, N_LANDMARKS, 2):
            raise ValueError(f"{where}: 'landmarks' must have shape ({n}, {N_LANDMARKS}, 2); got {landmarks.shape}.")
        object.__setattr__(self, "landmarks", landmarks)
        if len(self.brow) != n or len(self.mouth) != n:
            raise ValueError(
                f"{where}: face, brow and mouth must have the same number of frames; "
                f"got {n}, {len(self.brow)}, {len(self.mouth)}."
            )
        if self.face_landmarks is not None:
            object.__setattr__(self, "face_landmarks", np.asarray(self.face_landmarks, dtype=float))
        found = np.ones(n, dtype=bool) if self.found is None else np.asarray(self.found, dtype=bool)
        if found.shape != (n,):
            raise ValueError(f"{where}: 'found' must have shape ({n},); got {found.shape}.")
        object.__setattr__(self, "found", found)
        if self.occluded is not None:
            occluded = np.asarray(self.occluded, dtype=bool)
            if occluded.shape != (n,):
                raise ValueError(f"{where}: 'occluded' must have shape ({n},); got {occluded.shape}.")
            object.__setattr__(self, "occluded", occluded)
        if self.measures is not None:
            measures = np.asarray(self.measures, dtype=np.float32)
            if measures.ndim != 2 or len(measures) != n:
                raise ValueError(f"{where}: 'measures' must have shape ({n}, K); got {measures.shape}.")
            object.__setattr__(self, "measures", measures)

    @property
    def n_frames(self):
        """Number of frames ``T``."""
        return len(self.face)

    def select(self, frames):
        """Return a new clip with only the given frame indices (or boolean mask)."""
        def take(a):
            return None if a is None else a[frames]

        return RegionClip(
            face=self.face[frames], brow=self.brow[frames], mouth=self.mouth[frames],
            landmarks=self.landmarks[frames], face_landmarks=take(self.face_landmarks),
            found=self.found[frames], source=self.source, measures=take(self.measures), occluded=take(self.occluded),
        )


@dataclass(frozen=True, eq=False)
class WindowedClip:
    """One clip cut into fixed-length windows of frames (the network's input).

    Parameters
    ----------
    face : ndarray of uint8, shape (W, L, 128, 128, 3)
    brow : ndarray of uint8, shape (W, L, 40, 120, 3)
    mouth : ndarray of uint8, shape (W, L, 40, 120, 3)
        ``W`` windows of ``L`` frames each.
    starts : ndarray of int, shape (W,)
        Index of each window's first frame in the clip.
    n_padded : int, default=0
        Frames repeated at the end because the clip was shorter than ``L``.
    source : str, default=""
        Where the clip came from.
    measures : ndarray of float32, shape (W, L, K), optional
        The clip's per-frame measures, windowed like the frames; ``None`` when
        the clip has none.
    """

    face: np.ndarray
    brow: np.ndarray
    mouth: np.ndarray
    starts: np.ndarray = field(default=None)
    n_padded: int = 0
    source: str = ""
    measures: np.ndarray | None = None

    def __post_init__(self):
        where = self.source or "WindowedClip"
        for name in ("face", "brow", "mouth"):
            object.__setattr__(self, name, _check_uint8_stack(name, getattr(self, name), 5, where))
        shapes = {a.shape[:2] for a in (self.face, self.brow, self.mouth)}
        if len(shapes) != 1:
            raise ValueError(f"{where}: face, brow and mouth windows disagree in (W, L): {sorted(shapes)}.")
        if self.starts is None:
            object.__setattr__(self, "starts", np.arange(len(self.face)) * self.face.shape[1])
        if self.measures is not None:
            measures = np.asarray(self.measures, dtype=np.float32)
            if measures.ndim != 3 or measures.shape[:2] != self.face.shape[:2]:
                raise ValueError(f"{where}: 'measures' must have shape {self.face.shape[:2] + ('K',)}; "
                                 f"got {measures.shape}.")
            object.__setattr__(self, "measures", measures)

    @property
    def n_windows(self):
        """Number of windows ``W``."""
        return self.face.shape[0]

    @property
    def length(self):
        """Frames per window ``L``."""
        return self.face.shape[1]
