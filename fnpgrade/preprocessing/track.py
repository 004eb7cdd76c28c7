"""FaceTrack: one clip's face, frame by frame, as the detector hands it to the landmark step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..clips import LazyFrames, take_frames

__all__ = ["FaceTrack"]


@dataclass(frozen=True, eq=False)
class FaceTrack:
    """One clip's face, frame by frame: face-centred crops plus their geometry.

    The output of :class:`FaceDetector` (one per clip) and the input of
    :class:`~fnpgrade.LandmarkROICropper`.

    Parameters
    ----------
    crops : ndarray of uint8, shape (T, S, S, 3), or LazyFrames
        Square RGB crops centred on the face with a margin (``S`` is the
        detector's ``crop_size``). Parts of a crop outside the source frame are
        black (padded, never shifted). For a video whose crops would not fit
        :func:`~fnpgrade.config.crop_memory_budget`, a
        :class:`~fnpgrade.preprocessing.reread.ReReadCrops` that cuts them again
        when read (index it like the array; read many frames at once).
    boxes : ndarray of float, shape (T, 4)
        Face box ``(x0, y0, x1, y1)`` per frame in source-frame pixels: detected
        where ``found`` is True, interpolated from neighbouring frames where it
        is False, NaN for the frames of a blank clip.
    crop_boxes : ndarray of float, shape (T, 4)
        The square of the source frame each crop shows, ``(x0, y0, x1, y1)``.
        Crop pixel ``(u, v)`` shows source point
        ``x = x0 + (u + 0.5) * (x1 - x0) / S - 0.5`` (same for ``y``); see
        :meth:`to_source` and :meth:`to_crop`.
    found : ndarray of bool, shape (T,)
        True where the detector found the face in that frame.
    frame_index : ndarray of int, shape (T,)
        Index of each kept frame among the frames read (after ``fps``
        resampling); gaps are frames dropped by ``missing="drop"``.
    n_frames_read : int
        Frames read from the source (after resampling).
    frame_size : tuple of int
        Source frame ``(height, width)``.
    source : str, default=""
        Where the clip came from (a path or ``"X[i]"``).
    backend : str, default="haar"
        Detector backend that produced the boxes (box conventions differ).
    blank : bool, default=False
        True for a clip with no face at all that was kept as blank frames
        (``FaceDetector(no_face="blank")``).

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade import FaceTrack
    >>> track = FaceTrack(crops=np.zeros((2, 256, 256, 3), np.uint8), boxes=np.array([[10, 10, 110, 110.]] * 2),
    ...                   crop_boxes=np.array([[-40, -40, 160, 160.]] * 2), found=np.ones(2, bool),
    ...                   frame_index=np.arange(2), n_frames_read=2, frame_size=(240, 320))
    >>> track.to_source(np.array([[127.5, 127.5]]), 0).round(1).tolist()
    [[59.5, 59.5]]
    """

    crops: np.ndarray
    boxes: np.ndarray
    crop_boxes: np.ndarray
    found: np.ndarray
    frame_index: np.ndarray
    n_frames_read: int
    frame_size: tuple
    source: str = ""
    backend: str = "haar"
    blank: bool = False

    def __post_init__(self):
        where = self.source or "FaceTrack"
        crops = self.crops if isinstance(self.crops, LazyFrames) else np.asarray(self.crops)
        if crops.ndim != 4 or crops.shape[-1] != 3 or crops.shape[1] != crops.shape[2] or crops.dtype != np.uint8:
            raise ValueError(f"{where}: 'crops' must be uint8 of shape (T, S, S, 3); got {crops.dtype} {crops.shape}.")
        n = len(crops)
        for name in ("boxes", "crop_boxes"):
            value = np.asarray(getattr(self, name), dtype=float)
            if value.shape != (n, 4):
                raise ValueError(f"{where}: '{name}' must have shape ({n}, 4); got {value.shape}.")
            object.__setattr__(self, name, value)
        found = np.asarray(self.found, dtype=bool)
        frame_index = np.asarray(self.frame_index, dtype=int)
        if found.shape != (n,) or frame_index.shape != (n,):
            raise ValueError(f"{where}: 'found' and 'frame_index' must have shape ({n},); "
                             f"got {found.shape} and {frame_index.shape}.")
        object.__setattr__(self, "crops", crops)
        object.__setattr__(self, "found", found)
        object.__setattr__(self, "frame_index", frame_index)
        object.__setattr__(self, "frame_size", tuple(int(v) for v in self.frame_size))

    @property
    def n_frames(self):
        """Number of frames ``T`` kept."""
        return len(self.crops)

    @property
    def crop_size(self):
        """Side ``S`` of the crops, in pixels."""
        return self.crops.shape[1]

    def _scale(self, frames):
        cb = self.crop_boxes[frames]
        return cb[..., :2], (cb[..., 2] - cb[..., 0]) / self.crop_size

    def to_source(self, points, frames=None):
        """Map crop pixel coordinates ``(..., 2)`` to source-frame coordinates.

        ``frames`` selects the frame(s) whose crop the points belong to: an int
        for points ``(N, 2)``, or ``None`` (all frames) for points ``(T, N, 2)``.
        """
        frames = slice(None) if frames is None else frames
        origin, scale = self._scale(frames)
        points = np.asarray(points, dtype=float)
        origin = np.asarray(origin)[..., None, :]
        scale = np.asarray(scale)[..., None, None]
        return origin + (points + 0.5) * scale - 0.5

    def to_crop(self, points, frames=None):
        """Map source-frame coordinates ``(..., 2)`` to crop pixel coordinates (inverse of :meth:`to_source`)."""
        frames = slice(None) if frames is None else frames
        origin, scale = self._scale(frames)
        points = np.asarray(points, dtype=float)
        origin = np.asarray(origin)[..., None, :]
        scale = np.asarray(scale)[..., None, None]
        return (points + 0.5 - origin) / scale - 0.5

    def select(self, frames):
        """A new track with only the given frame indices (or boolean mask)."""
        return FaceTrack(crops=take_frames(self.crops, frames), boxes=self.boxes[frames], crop_boxes=self.crop_boxes[frames],
                         found=self.found[frames], frame_index=self.frame_index[frames],
                         n_frames_read=self.n_frames_read, frame_size=self.frame_size, source=self.source,
                         backend=self.backend, blank=self.blank)
