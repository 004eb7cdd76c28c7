"""The values that flow between pipeline steps, one per clip.

Every preprocessing step returns a list with one of these per clip, so that the
number of samples never changes along a scikit-learn ``Pipeline``. They are
frozen dataclasses of numpy arrays: pixels stay ``uint8`` (4x less memory than
float32) until the network's first layer.
"""

from __future__ import annotations

import abc
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np

__all__ = ["RegionClip", "WindowedClip", "LazyFrames", "frames_at", "take_frames", "FACE_SIZE", "ROI_SIZE",
           "N_LANDMARKS"]

#: The paper's face crop side, in pixels.
FACE_SIZE = 128
#: The paper's region-of-interest size (height, width), in pixels.
ROI_SIZE = (40, 120)
#: Number of IntraFace-style landmarks kept (the paper's 49 points).
N_LANDMARKS = 49


class LazyFrames(abc.ABC):
    """A ``(T, H, W, 3)`` uint8 stack of frames made when they are read, not held.

    The face crops of a long video do not fit in memory (196 KB a frame at
    256 px: 3.5 GB for ten minutes at 30 fps). Past a budget the detector keeps
    each frame's recipe instead (:class:`~fnpgrade.preprocessing.reread.ReReadCrops`:
    the video, the frame's position, its box) and the landmark step composes
    its warps on top (:class:`~fnpgrade.preprocessing.reread.WarpedFrames`);
    the pixels are made again, exactly as they were first made, when a step
    reads them. Reading goes forward through the video, so steps read many
    frames at once (:func:`frames_at`, ``stack[indices]``), never one by one
    in a loop.

    Indexing returns ndarrays (``stack[t]`` one frame, ``stack[indices]`` a
    stack); ``np.asarray(stack)`` makes every frame. Subclasses implement
    ``shape``, ``_iter_sorted(indices)`` (yield ``(i, frame)`` for each of
    the sorted, unique ``indices``, in one pass, in any order) and
    ``take(indices)`` (a lazy subset).
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    @property
    @abc.abstractmethod
    def shape(self):
        """``(T, H, W, 3)``."""

    def __len__(self):
        return self.shape[0]

    def _positions(self, key):
        return np.arange(len(self))[key]

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            with closing(self._iter_sorted(np.array([self._positions(key)]))) as made:
                return next(made)[1]
        positions = np.asarray(self._positions(key))
        wanted = positions.ravel()
        out = np.empty((len(wanted),) + tuple(self.shape[1:]), np.uint8)
        unique, first, slots = np.unique(wanted, return_index=True, return_inverse=True)
        slot = {int(i): u for u, i in enumerate(unique)}
        for i, frame in self._iter_sorted(unique):  # written in place: no second copy (a subset's frames may come
            out[first[slot[i]]] = frame             # in the video's order, not the subset's)
        for k, u in enumerate(slots):  # repeated indices copy their first
            if k != first[u]:
                out[k] = out[first[u]]
        return out.reshape(positions.shape + tuple(self.shape[1:]))  # (W, L) indices give (W, L, H, W, 3)

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __iter__(self):
        for _, frame in self._iter_sorted(np.arange(len(self))):
            yield frame

    @abc.abstractmethod
    def _iter_sorted(self, indices):
        """Yield ``(i, frame)`` for each of the sorted, unique ``indices``, in one pass, in any order."""

    @abc.abstractmethod
    def take(self, indices):
        """A lazy stack of the frames ``indices`` (ints or a boolean mask)."""


def frames_at(stack, indices):
    """Yield ``(i, stack[i])`` for the sorted ``indices``, reading a :class:`LazyFrames` in one pass (then in the
    order its frames come, which for a subset taken out of order is not that of ``indices``)."""
    indices = np.asarray(indices, dtype=int)
    if isinstance(stack, LazyFrames):
        yield from stack._iter_sorted(indices)
    else:
        for i in indices:
            yield int(i), stack[i]


def take_frames(stack, frames):
    """``stack[frames]``, lazy for a :class:`LazyFrames` (nothing is read)."""
    return stack.take(frames) if isinstance(stack, LazyFrames) else stack[frames]


def _check_uint8_stack(name, array, ndim, source):
    if isinstance(array, LazyFrames):
        return array
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
            face=take_frames(self.face, frames), brow=take_frames(self.brow, frames),
            mouth=take_frames(self.mouth, frames),
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
