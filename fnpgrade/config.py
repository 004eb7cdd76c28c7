"""Where fnpgrade keeps downloaded media and caches.

Like scikit-learn's ``get_data_home``: the folder is ``$FNPGRADE_DATA`` when set,
else ``~/.cache/fnpgrade``. Nothing machine-specific is written into the code.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["get_data_home", "crop_memory_budget", "frame_threads"]

#: Default of :func:`crop_memory_budget`, MiB.
CROP_MEMORY_MB = 256
#: Most threads :func:`frame_threads` gives by default (each holds a copy of the model it runs).
MAX_FRAME_THREADS = 4


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


def frame_threads():
    """Threads that run a per-frame model on one clip's frames side by side: ``$FNPGRADE_FRAME_THREADS``.

    Default: the CPUs this process may use (``joblib.cpu_count()``, which
    heeds CPU affinity and container limits), at most
    :data:`MAX_FRAME_THREADS`. Only models whose copies gain from running at
    once use them (MediaPipe's Face Mesh: ``runs_on_threads``); each frame's
    result is the same on any thread, so the count never changes a result.
    Clips run in joblib workers (``n_jobs``) use one thread each, since the
    workers already share the CPUs. ``1`` runs every frame on the calling thread.
    """
    value = os.environ.get("FNPGRADE_FRAME_THREADS", "")
    if value.strip():
        try:
            count = int(value)
        except ValueError:
            raise ValueError(f"$FNPGRADE_FRAME_THREADS must be a whole number of threads; got {value!r}.") from None
        return max(1, count)
    from joblib import cpu_count

    return max(1, min(MAX_FRAME_THREADS, cpu_count()))
