"""A long video's face frames kept as recipes and made again from the file when a step reads them.

:class:`~fnpgrade.FaceDetector` holds a clip's face crops in memory while they
fit :func:`~fnpgrade.config.crop_memory_budget` (256 MiB unless
``$FNPGRADE_CROP_MEMORY_MB`` says otherwise: about 1,300 crops of 256 px, 45 s
of a 30 fps video). Past it the track's ``crops`` is a :class:`ReReadCrops`:
the video, each kept frame's position among the frames read and its face box.
The landmark step's face and region crops of such a track are
:class:`WarpedFrames` (its affine maps over the re-read crops). A step that
reads frames gets exactly the pixels an in-memory track would have given it:
the same decoder reads the same frames, and the same functions cut and warp
them. The clinical measurement reads the landmarks of every frame but the
pixels of only 33 (the rest face and its key frames), so a video of any length
is graded in bounded memory, at the cost of reading the file again (twice for
the clinical grader: the landmarks, then the measured frames).
"""

from __future__ import annotations

import os
from contextlib import closing

import cv2
import numpy as np

from ..clips import LazyFrames, frames_at
from ..io import ClipRef, frames_of
from .geometry import crop_square, face_square

__all__ = ["ReReadCrops", "WarpedFrames", "rereadable"]


def rereadable(source):
    """Whether ``source`` can be read a second time (a video file, a frame folder or a span of one)."""
    return isinstance(source, (str, os.PathLike, ClipRef))


class ReReadCrops(LazyFrames):
    """A track's face crops, cut again from the video when read.

    Parameters
    ----------
    source : str, path-like, ClipRef or ndarray
        The video (or frame folder, or span) the detector read; the detector
        also cuts a held clip's bridged gaps through one (an array too).
    fps : float or None
        The rate it was read at (the detector's ``fps``).
    positions : ndarray of int, shape (T,)
        Each kept frame's index among the frames read (``FaceTrack.frame_index``).
    boxes : ndarray of float, shape (T, 4)
        The face box each crop is centred on, source pixels.
    crop_margin : float
        Crop side over the box's longer side.
    crop_size : int
        Side of the crops, pixels.
    name : str, default=""
        The clip's name, for error messages.
    """

    #: Crops of the last few small reads kept (shared with every subset): a report's pictures read the same few
    #: frames for the face and each region, and would read the file again for each.
    cache_size = 64

    def __init__(self, source, fps, positions, boxes, crop_margin, crop_size, name="", _cache=None):
        self.source = source
        self.fps = fps
        self.positions = np.asarray(positions, dtype=int)
        self.boxes = np.asarray(boxes, dtype=float)
        self.crop_margin = float(crop_margin)
        self.crop_size = int(crop_size)
        self.name = name
        self._cache = {} if _cache is None else _cache  # frame position -> crop

    def __getstate__(self):
        return {**self.__dict__, "_cache": {}}

    @property
    def shape(self):
        return (len(self.positions), self.crop_size, self.crop_size, 3)

    def take(self, indices):
        keep = np.arange(len(self.positions))[indices]
        return ReReadCrops(self.source, self.fps, self.positions[keep], self.boxes[keep], self.crop_margin,
                           self.crop_size, self.name, self._cache)

    def _iter_sorted(self, indices):
        indices = np.asarray(indices, dtype=int)
        if not len(indices):
            return
        wanted = {int(self.positions[i]): int(i) for i in indices}
        keep = len(wanted) <= self.cache_size
        if all(t in self._cache for t in wanted):
            for t, i in wanted.items():
                yield i, self._cache[t]
            return
        with closing(frames_of(self.source, list(wanted), fps=self.fps)) as frames:
            for t, frame in frames:
                i = wanted.pop(t)
                crop = crop_square(frame, *face_square(self.boxes[i], self.crop_margin), self.crop_size)[0]
                if keep:
                    self._remember(t, crop)
                yield i, crop
        if wanted:
            raise ValueError(f"{self.name or self.source}: frames {sorted(wanted)[:5]} could not be read again to "
                             "cut their face crops (the video ends sooner, or decodes differently, on a second "
                             "read). Keep the file unchanged while it is processed, re-encode it (e.g. to H.264 "
                             "mp4) or extract its frames to a folder; FaceDetector(missing='drop') reads no gap "
                             "again, and a larger $FNPGRADE_CROP_MEMORY_MB keeps a long video's crops in memory.")

    def _remember(self, position, crop):
        self._cache.pop(position, None)
        self._cache[position] = crop
        while len(self._cache) > self.cache_size:
            del self._cache[next(iter(self._cache))]


class WarpedFrames(LazyFrames):
    """Frames of another stack, each warped by its own affine map when read.

    Parameters
    ----------
    base : LazyFrames or ndarray, shape (T, S, S, 3)
        The frames warped (a track's crops).
    matrices : ndarray of float, shape (T, 2, 3)
        Base pixel -> output pixel, per frame (``cv2.warpAffine``'s).
    size : (int, int)
        Output ``(height, width)``.
    """

    def __init__(self, base, matrices, size):
        self.base = base
        self.matrices = np.asarray(matrices, dtype=float)
        self.size = (int(size[0]), int(size[1]))

    @property
    def shape(self):
        return (len(self.matrices),) + self.size + (3,)

    def take(self, indices):
        keep = np.arange(len(self.matrices))[indices]
        base = self.base.take(keep) if isinstance(self.base, LazyFrames) else self.base[keep]
        return WarpedFrames(base, self.matrices[keep], self.size)

    def warp(self, frame, i):
        """Frame ``i`` of the output, made from ``frame`` (base frame ``i``)."""
        return cv2.warpAffine(frame, self.matrices[i], (self.size[1], self.size[0]), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))

    def _iter_sorted(self, indices):
        for i, frame in frames_at(self.base, indices):
            yield i, self.warp(frame, i)
