"""``load_clip_folder``: a folder of videos or frame folders with a labels CSV (YFP-style data)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np

from ..grading import LEVELS, check_hb_grades, hb_to_level
from ..io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ClipRef

__all__ = ["load_clip_folder", "check_clip_path"]

_REQUIRED = ("subject", "grade", "path")


def _list_frames(folder):
    return [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")]


def check_clip_path(path, where, validate="quick"):
    """Check that ``path`` is a readable video file or a non-empty folder of frames.

    Parameters
    ----------
    path : path-like
    where : str
        Prefix for error messages (e.g. ``"labels.csv row 3"``).
    validate : {"none", "quick", "full"}
        ``"quick"``: the path exists, a folder holds frame images and its first
        frame decodes, a video opens and its first frame decodes. ``"full"``:
        every frame image of a folder decodes.

    Raises
    ------
    FileNotFoundError, ValueError
        Naming ``where`` and the path, and what to do.
    """
    path = Path(path)
    if validate == "none":
        return
    if not path.exists():
        raise FileNotFoundError(f"{where}: {path} does not exist; fix the path (relative paths are read from the "
                                "dataset root) or remove the row.")
    if path.is_dir():
        names = sorted(_list_frames(path))
        if not names:
            raise ValueError(f"{where}: the folder {path} holds no frame images ({', '.join(IMAGE_EXTENSIONS)}); "
                             "put the video's frames there or remove the row.")
        for name in names if validate == "full" else names[:1]:
            if cv2.imread(str(path / name), cv2.IMREAD_UNCHANGED) is None:
                raise ValueError(f"{where}: the image {path / name} cannot be read (corrupt or unsupported "
                                 "format); replace or delete it.")
        return
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        if cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is None:
            raise ValueError(f"{where}: the image {path} cannot be read (corrupt or unsupported format); replace it.")
        return
    if suffix not in VIDEO_EXTENSIONS:
        raise ValueError(f"{where}: {path} is neither a frame folder nor a video ({', '.join(VIDEO_EXTENSIONS)}).")
    if path.stat().st_size == 0:
        raise ValueError(f"{where}: the video {path} is empty (0 bytes); replace it or remove the row.")
    capture = cv2.VideoCapture(str(path))
    try:
        ok = capture.isOpened() and capture.read()[0]
    finally:
        capture.release()
    if not ok:
        raise ValueError(f"{where}: OpenCV cannot decode the video {path}; re-encode it (e.g. H.264 mp4) or "
                         "extract its frames to a folder.")


def _parse_index(value, name, where):
    value = (value or "").strip()
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or number != int(number) or number < 0:
        raise ValueError(f"{where}: {name}={value!r} must be a non-negative integer frame index (or empty).")
    return int(number)


def _parse_label(value, target, where):
    text = str(value).strip()
    if target == "level" and text in LEVELS:
        return text
    try:
        return int(check_hb_grades([text])[0])
    except ValueError:
        extra = " or a level I/II/III" if target == "level" else ""
        raise ValueError(f"{where}: grade={text!r} is not a House-Brackmann grade (1-6){extra}; fix the label "
                         "or remove the row.") from None


def load_clip_folder(root, labels="labels.csv", target="level", fps=None, validate="quick"):
    """Load a dataset of videos or frame folders labelled in a CSV file.

    The CSV has a header with the columns ``subject``, ``grade`` and ``path``
    (any order, any case, extra columns ignored) and optionally ``start`` and
    ``stop`` (frame indices of a slice ``[start, stop)``; empty means the
    whole video). ``path`` is a video file or a folder of frame images,
    relative to ``root`` or absolute. ``grade`` is a House-Brackmann grade
    1-6 (with ``target="level"`` a level ``I``/``II``/``III`` is accepted too).

    Parameters
    ----------
    root : str or path-like
        The dataset folder.
    labels : str or path-like, default="labels.csv"
        The CSV file, relative to ``root`` or absolute.
    target : {"level", "hb"}, default="level"
        Return ``y`` as levels ``"I"``/``"II"``/``"III"`` or as HB grades.
    fps : float, optional
        Resample videos to this rate when read (the paper's data is 6 FPS);
        ``start``/``stop`` then count resampled frames.
    validate : {"quick", "full", "none"}, default="quick"
        How much to check each path now rather than when it is read (see
        :func:`check_clip_path`).

    Returns
    -------
    X : list of str or ClipRef
        One lazy clip per row: the path, or a :class:`fnpgrade.io.ClipRef` when
        the row has ``start``/``stop`` or ``fps`` is given. Frames are read when
        the face detector needs them.
    y : ndarray, shape (n_rows,)
        Levels (object) or HB grades (int).
    groups : ndarray of object, shape (n_rows,)
        The ``subject`` column, for subject-wise cross-validation.

    Raises
    ------
    FileNotFoundError
        For a missing CSV or clip path, naming the row.
    ValueError
        For a missing column, an unknown grade, a duplicate row, an empty
        folder, an unreadable image or video, or bad ``start``/``stop``,
        naming the CSV row (1 is the header).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from fnpgrade.io import write_video
    >>> from fnpgrade.datasets import load_clip_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_video(root / "a.avi", np.zeros((8, 32, 32, 3), np.uint8))
    >>> _ = (root / "labels.csv").write_text("subject,grade,path,start,stop\\np1,5,a.avi,0,4\\np1,5,a.avi,4,8\\n")
    >>> X, y, groups = load_clip_folder(root)
    >>> [str(x.start) for x in X], list(y), list(groups)
    (['0', '4'], ['III', 'III'], ['p1', 'p1'])
    """
    if target not in ("level", "hb"):
        raise ValueError(f"target must be 'level' or 'hb'; got {target!r}.")
    if validate not in ("quick", "full", "none"):
        raise ValueError(f"validate must be 'quick', 'full' or 'none'; got {validate!r}.")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: the dataset folder does not exist.")
    csv_path = Path(labels) if Path(labels).is_absolute() else root / labels
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: the labels file does not exist; write a CSV with the columns "
                                "subject, grade, path (optional start, stop).")
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        rows = [row for row in reader]
    if not rows:
        raise ValueError(f"{csv_path}: the labels file is empty; it needs a header subject,grade,path and rows.")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {missing} in the header {rows[0]}; the CSV needs "
                         "subject, grade, path (optional start, stop).")
    col = {name: header.index(name) for name in header}
    X, labels_out, groups, seen = [], [], [], {}
    for line, row in enumerate(rows[1:], start=2):
        parsed = _parse_row(row, line, header, col, csv_path, root, target, fps, validate, seen)
        if parsed is not None:
            clip, label, subject = parsed
            X.append(clip)
            labels_out.append(label)
            groups.append(subject)
    if not X:
        raise ValueError(f"{csv_path}: the labels file has a header but no rows.")
    return X, _targets(labels_out, target, csv_path), np.asarray(groups, dtype=object)


def _parse_row(row, line, header, col, csv_path, root, target, fps, validate, seen):
    """``(clip, label, subject)`` of one CSV row (``None`` for a blank row); ``seen`` catches duplicates."""
    if not any(cell.strip() for cell in row):
        return None
    where = f"{csv_path.name} row {line}"
    if len(row) < len(header):
        row = row + [""] * (len(header) - len(row))
    subject = row[col["subject"]].strip()
    if not subject:
        raise ValueError(f"{where}: the subject is empty; every clip needs a subject id.")
    label = _parse_label(row[col["grade"]], target, where)
    rel = row[col["path"]].strip()
    if not rel:
        raise ValueError(f"{where}: the path is empty.")
    path = Path(rel) if Path(rel).is_absolute() else root / rel
    start = _parse_index(row[col["start"]], "start", where) if "start" in col else None
    stop = _parse_index(row[col["stop"]], "stop", where) if "stop" in col else None
    if start is not None and stop is not None and stop <= start:
        raise ValueError(f"{where}: stop={stop} must be greater than start={start}.")
    key = (str(path.resolve()), start, stop)
    if key in seen:
        raise ValueError(f"{where}: duplicates row {seen[key]} ({rel}, start={start}, stop={stop}); "
                         "remove one of them.")
    seen[key] = line
    check_clip_path(path, where, validate)
    clip = str(path) if start is None and stop is None and fps is None else ClipRef(str(path), start, stop, fps)
    return clip, label, subject


def _targets(labels, target, csv_path):
    """The labels as ``target`` asks: HB grades (int) or levels ("I"/"II"/"III")."""
    if target == "hb":
        if any(isinstance(v, str) for v in labels):
            raise ValueError(f"{csv_path}: target='hb' needs House-Brackmann grades, but some rows give levels.")
        return np.asarray(labels, dtype=int)
    return np.array([v if isinstance(v, str) else hb_to_level(v) for v in labels], dtype=object)
