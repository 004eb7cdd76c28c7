"""``load_ckplus``: the Extended Cohn-Kanade (CK+) layout, every sequence a normal face (HB1)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..grading import hb_to_level
from .folders import check_clip_path

__all__ = ["load_ckplus", "PAPER_CKPLUS_SUBJECTS"]

#: The nine CK+ subjects Liu et al. add as normal faces (Sec. IV-A).
PAPER_CKPLUS_SUBJECTS = ("S022", "S037", "S045", "S050", "S077", "S102", "S105", "S124", "S130")

_SUBJECT = re.compile(r"^S\d{3}$")


def load_ckplus(root, subjects=None, target="level", validate="quick"):
    """Load CK+ image sequences as normal-face clips (House-Brackmann 1).

    Parameters
    ----------
    root : str or path-like
        The folder holding ``cohn-kanade-images`` (or that folder itself), laid
        out as ``cohn-kanade-images/S005/001/S005_001_00000001.png``.
    subjects : None, "paper" or sequence of str, default=None
        ``None``: every subject found. ``"paper"``: the nine subjects the paper
        uses (:data:`PAPER_CKPLUS_SUBJECTS`). A list: those subjects (each must
        exist).
    target : {"level", "hb"}, default="level"
        ``y`` as ``"I"`` or as HB grade 1.
    validate : {"quick", "full", "none"}, default="quick"
        See :func:`fnpgrade.datasets.folders.check_clip_path`.

    Returns
    -------
    X : list of str
        One frame folder per sequence (read lazily), sorted by subject and sequence.
    y : ndarray, shape (n_sequences,)
        All ``"I"`` (or 1).
    groups : ndarray of object
        Subject ids such as ``"S022"``.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, cv2
    >>> from fnpgrade.datasets import load_ckplus
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> seq = root / "cohn-kanade-images" / "S022" / "001"
    >>> seq.mkdir(parents=True)
    >>> _ = cv2.imwrite(str(seq / "S022_001_00000001.png"), np.zeros((8, 8), np.uint8))
    >>> X, y, groups = load_ckplus(root)
    >>> list(y), list(groups)
    (['I'], ['S022'])
    """
    if target not in ("level", "hb"):
        raise ValueError(f"target must be 'level' or 'hb'; got {target!r}.")
    root = Path(root)
    images = root / "cohn-kanade-images"
    if not images.is_dir():
        if root.is_dir() and any(_SUBJECT.match(n) for n in os.listdir(root)):
            images = root
        else:
            raise FileNotFoundError(f"{root}: no 'cohn-kanade-images' folder (CK+ layout "
                                    "cohn-kanade-images/S005/001/S005_001_00000001.png); point root at the CK+ folder.")
    found = sorted(n for n in os.listdir(images) if _SUBJECT.match(n) and (images / n).is_dir())
    if isinstance(subjects, str):
        if subjects != "paper":
            raise ValueError(f"subjects={subjects!r}: use None (all), 'paper' or a list such as ['S022', 'S037'].")
        wanted = list(PAPER_CKPLUS_SUBJECTS)
    elif subjects is None:
        wanted = found
    else:
        wanted = [str(s) for s in subjects]
    missing = [s for s in wanted if s not in found]
    if missing:
        raise FileNotFoundError(f"{images}: subject folder(s) {missing} not found; present: "
                                f"{found[:12]}{' ...' if len(found) > 12 else ''}.")
    if not wanted:
        raise ValueError(f"{images}: no subject folders (S###) found.")
    X, groups = [], []
    for subject in wanted:
        sequences = sorted(n for n in os.listdir(images / subject) if (images / subject / n).is_dir()
                           and not n.startswith("."))
        if not sequences:
            raise ValueError(f"{images / subject}: the subject folder holds no sequence folders (001, 002, ...).")
        for seq in sequences:
            path = images / subject / seq
            check_clip_path(path, f"CK+ {subject}/{seq}", validate)
            X.append(str(path))
            groups.append(subject)
    y = np.full(len(X), 1, dtype=int) if target == "hb" else np.array([hb_to_level(1)] * len(X), dtype=object)
    return X, y, np.asarray(groups, dtype=object)
