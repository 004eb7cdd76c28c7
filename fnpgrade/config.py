"""Where fnpgrade keeps downloaded media and caches.

Like scikit-learn's ``get_data_home``: the folder is ``$FNPGRADE_DATA`` when set,
else ``~/.cache/fnpgrade``. Nothing machine-specific is written into the code.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["get_data_home", "crop_memory_budget"]

#: Default of :func:`crop_memory_budget`, MiB.
CROP_MEMORY_MB = 256


def get_data_home(data_home=None):
    """Return (and create) the folder for fnpgrade's data and caches.

    Parameters
    ----------
    data_home : str or path-like, optional
        Explicit folder; overrides ``$FNPGRADE_DATA``.

    Returns
    -------
    path : pathlib.Path
    """
    path = data_home or os.environ.get("FNPGRADE_DATA") or Path.home() / ".cache" / "fnpgrade"
    path = Path(path).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def crop_memory_budget():
    """Bytes of face crops one clip may hold in memory: ``$FNPGRADE_CROP_MEMORY_MB`` MiB, default 256.

    :class:`~fnpgrade.FaceDetector` keeps the crops of a video whose frames
    would take more than this as recipes and cuts them again from the file when
    they are read (:mod:`fnpgrade.preprocessing.reread`): memory stays bounded
    for any length, at the cost of reading the video again. The grades are the
    same either way. Read when each clip is read, so it also reaches joblib's
    worker processes (they inherit the environment).
    """
    value = os.environ.get("FNPGRADE_CROP_MEMORY_MB", "")
    try:
        megabytes = float(value) if value.strip() else CROP_MEMORY_MB
    except ValueError:
        raise ValueError(f"$FNPGRADE_CROP_MEMORY_MB must be a number of MiB; got {value!r}.") from None
    return int(max(megabytes, 0.0) * 2 ** 20)
