"""Reading clips: arrays, video files and folders of frame images.

``read_clip`` returns a whole clip as ``(T, H, W, 3)`` uint8 RGB; ``iter_frames``
streams the same frames one at a time, so a long high-resolution video never sits
in memory whole (the face detector consumes it frame by frame).
"""

from __future__ import annotations

import os
import re
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["read_clip", "iter_frames", "frames_of", "ClipRef", "describe_source", "as_clip_array", "VIDEO_EXTENSIONS",
           "IMAGE_EXTENSIONS"]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@dataclass(frozen=True)
class ClipRef:
    """A lazy reference to part of a video file or frame folder.

    Parameters
    ----------
    path : str or path-like
        A video file or a folder of frame images.
    start, stop : int or None
        Frame indices (after resampling to ``fps``) of the slice ``[start, stop)``.
    fps : float or None
        Resample a video to this rate before slicing (the paper uses 6).
    """

    path: str
    start: int | None = None
    stop: int | None = None
    fps: float | None = None

    def __str__(self):
        span = "" if self.start is None and self.stop is None else f"[{self.start or 0}:{'' if self.stop is None else self.stop}]"
        return f"{self.path}{span}"


def describe_source(source, index=None):
    """A short human-readable name for a clip, for error messages and reports."""
    if isinstance(source, (str, os.PathLike, ClipRef)):
        return str(source)
    return f"X[{index}]" if index is not None else "array clip"


def _natural_key(name):
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def to_rgb_uint8(frame, *, where="frame"):
    """Convert one frame to ``(H, W, 3)`` uint8 RGB.

    Grayscale ``(H, W)`` / ``(H, W, 1)`` is repeated to three channels and RGBA
    loses its alpha. Float frames are accepted in 0..1 (scaled by 255) or 0..255;
    NaN or infinite values raise.
    """
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    if frame.ndim != 3 or frame.shape[-1] not in (3, 4):
        raise ValueError(
            f"{where}: a frame must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got shape {frame.shape}."
        )
    if frame.shape[-1] == 4:
        frame = frame[..., :3]
    return _to_uint8(frame, where=where)


def _to_uint8(array, *, where):
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{where}: pixels must be numeric; got dtype {array.dtype}.")
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{where}: float pixels contain NaN or infinite values; clean the frames first.")
        scale = 255.0 if array.size and array.max() <= 1.0 else 1.0
        array = array * scale
    if array.size and (array.min() < 0 or array.max() > 255):
        raise ValueError(
            f"{where}: pixel values must lie in 0..255 (or 0..1 for floats); "
            f"got range [{array.min()}, {array.max()}]."
        )
    return np.ascontiguousarray(np.rint(array).astype(np.uint8))


def as_clip_array(array, where):
    """``array`` (frames, or a list of frames) as one ``(T, H, W, 3)`` uint8 RGB clip; errors name ``where``."""
    if isinstance(array, (list, tuple)):
        # a list of frames: check sizes here, where the message can name the frame
        if not array:
            raise ValueError(f"{where}: the clip has 0 frames; remove it or supply frames.")
        frames = [to_rgb_uint8(frame, where=f"{where} frame {i}") for i, frame in enumerate(array)]
        for i, frame in enumerate(frames):
            if frame.shape != frames[0].shape:
                raise ValueError(f"{where}: frame {i} has size {frame.shape[:2]} but frame 0 has "
                                 f"{frames[0].shape[:2]}; all frames of a clip must have one size (resize them).")
        return np.stack(frames)
    array = np.asarray(array)
    if array.dtype == object:
        raise ValueError(f"{where}: the clip is not a numeric array (dtype object); pass a (T, H, W, 3) array, "
                         "a list of equally sized frames, or a path.")
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4):
        array = array[..., None]  # (T, H, W) grayscale
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{where}: a clip array must be (T, H, W), (T, H, W, 1), (T, H, W, 3) or (T, H, W, 4); "
            f"got shape {array.shape}. For a single image, add a time axis: image[None]."
        )
    if array.shape[0] == 0:
        raise ValueError(f"{where}: the clip has 0 frames; remove it or supply frames.")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.shape[-1] == 4:
        array = array[..., :3]
    return _to_uint8(array, where=where)


def _list_images(folder):
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")]
    return sorted(names, key=_natural_key)


def _read_image(path):
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: could not be read as an image (corrupt or unsupported); remove or replace it.")
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _iter_folder(folder, keep=None):
    names = _list_images(folder)
    if not names:
        raise ValueError(
            f"{folder}: the folder holds no frame images ({', '.join(IMAGE_EXTENSIONS)}); "
            "point at a folder of frames or at a video file."
        )
    shape = None
    for i, name in enumerate(names):
        if keep is not None and i not in keep:
            yield None
            continue
        frame = _read_image(os.path.join(folder, name))
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise ValueError(
                f"{folder}: frame {name} has size {frame.shape[:2]} but earlier frames have {shape[:2]}; "
                "all frames of a clip must have one size."
            )
        yield frame


def _iter_video(path, fps, keep=None):
    """The video's frames (resampled to ``fps``); ``None`` in place of those not in ``keep`` (decoded, not
    converted: the next frame needs them decoded)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"{path}: OpenCV could not open the video (corrupt, empty or unsupported codec); "
                         "re-encode it (e.g. to H.264 mp4) or extract its frames to a folder.")
    try:
        native = capture.get(cv2.CAP_PROP_FPS)
        if fps is not None and (not native or not np.isfinite(native) or native <= 0):
            raise ValueError(f"{path}: the video reports no frame rate, so it cannot be resampled to {fps} fps; "
                             "pass fps=None to read every frame.")
        # Keep frame i when its timestamp reaches the next output tick: a
        # drift-free nearest-tick resampler that never duplicates frames.
        step = None if fps is None or fps >= native else native / float(fps)
        next_tick = 0.0
        index = 0
        n_yielded = 0
        while True:
            ok = capture.grab()
            if not ok:
                break
            if step is None or index + 1e-6 >= next_tick:
                if step is not None:
                    next_tick += step
                if keep is not None and n_yielded not in keep:
                    n_yielded += 1
                    yield None
                    index += 1
                    continue
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    break
                n_yielded += 1
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
        if n_yielded == 0:
            raise ValueError(f"{path}: the video has no decodable frames (zero-byte or corrupt); replace the file.")
    finally:
        capture.release()


def iter_frames(source, fps=None):
    """Yield the frames of a clip one by one as ``(H, W, 3)`` uint8 RGB.

    Parameters
    ----------
    source : ndarray, str, path-like or ClipRef
        A ``(T, H, W[, C])`` array, a video file, or a folder of frame images
        (read in natural order: ``2.png`` before ``10.png``).
    fps : float, optional
        Resample videos to this frame rate (frames are dropped, never
        duplicated; a video slower than ``fps`` is read whole). Ignored for
        arrays and frame folders, which have no time base.

    Yields
    ------
    frame : ndarray of uint8, shape (H, W, 3)
    """
    if isinstance(source, ClipRef):
        start = source.start or 0
        for i, frame in enumerate(iter_frames(source.path, fps=source.fps if source.fps is not None else fps)):
            if source.stop is not None and i >= source.stop:
                return
            if i >= start:
                yield frame
        return
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such video file or frame folder; check the path.")
        if path.is_dir():
            yield from _iter_folder(path)
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            yield _read_image(path)
        else:
            if path.stat().st_size == 0:
                raise ValueError(f"{path}: the video file is empty (0 bytes); replace it.")
            yield from _iter_video(path, fps)
        return
    clip = as_clip_array(source, describe_source(source))
    yield from clip


def frames_of(source, indices, fps=None):
    """Yield ``(i, frame)`` for the frames ``indices`` of a clip, in the clip's order, stopping after the last.

    The frames are those :func:`iter_frames` yields at the same ``fps`` (the
    same decoder, the same resampling); the others are decoded but not
    converted (a video) or not read at all (a frame folder). An index past the
    clip's end is simply not yielded.

    Parameters
    ----------
    source : ndarray, str, path-like or ClipRef
    indices : iterable of int
        Frame positions among the frames :func:`iter_frames` would yield.
    fps : float, optional
        As for :func:`iter_frames`.

    Yields
    ------
    i : int
    frame : ndarray of uint8, shape (H, W, 3)
    """
    wanted = {int(i) for i in indices}
    if not wanted:
        return
    last = max(wanted)
    if isinstance(source, ClipRef):
        start = source.start or 0
        stop = last + 1 if source.stop is None else min(source.stop - start, last + 1)
        rate = source.fps if source.fps is not None else fps
        for i, frame in frames_of(source.path, {i + start for i in wanted if i < stop}, fps=rate):
            yield i - start, frame
        return
    if isinstance(source, (str, os.PathLike)) and Path(source).exists() and not (
            Path(source).is_file() and Path(source).suffix.lower() in IMAGE_EXTENSIONS):
        frames = _iter_folder(Path(source), wanted) if Path(source).is_dir() else _iter_video(Path(source), fps, wanted)
    else:  # a single image, an array, or a path whose error iter_frames names
        frames = iter_frames(source, fps=fps)
    with closing(frames):
        for i, frame in enumerate(frames):
            if i in wanted:
                yield i, frame
            if i >= last:
                return


def read_clip(source, fps=None):
    """Read a whole clip as ``(T, H, W, 3)`` uint8 RGB.

    Parameters
    ----------
    source : ndarray, str, path-like or ClipRef
        A ``(T, H, W)`` / ``(T, H, W, 1|3|4)`` array (uint8, or float in 0..1 or
        0..255), a video file read with OpenCV, a folder of frame images in
        natural order, or a :class:`ClipRef` slice of one of those.
    fps : float, optional
        Resample videos to this frame rate (the paper uses 6).

    Returns
    -------
    clip : ndarray of uint8, shape (T, H, W, 3)

    Raises
    ------
    FileNotFoundError
        If a path does not exist.
    ValueError
        For empty clips, unreadable files, unsupported shapes or pixel values;
        the message names the source.

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade.io import read_clip
    >>> read_clip(np.zeros((2, 8, 8), np.uint8)).shape
    (2, 8, 8, 3)
    """
    if not isinstance(source, (str, os.PathLike, ClipRef)):
        return as_clip_array(source, describe_source(source))
    frames = list(iter_frames(source, fps=fps))
    if not frames:
        raise ValueError(f"{source}: the clip has 0 frames in the requested range; check start/stop.")
    return np.stack(frames)


def write_video(path, frames, fps=6.0):
    """Write ``(T, H, W, 3)`` uint8 RGB frames to a video file (mp4v codec for .mp4, MJPG for .avi)."""
    frames = as_clip_array(frames, str(path))
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if str(path).lower().endswith(".avi") else "mp4v"))
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), fourcc, float(fps), (width, height))
    if not writer.isOpened():
        raise ValueError(f"{path}: OpenCV could not open a video writer for this file type.")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return Path(path)
