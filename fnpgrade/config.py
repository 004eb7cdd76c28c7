"""Where fnpgrade keeps downloaded media and caches.

Like scikit-learn's ``get_data_home``: the folder is ``$FNPGRADE_DATA`` when set,
else ``~/.cache/fnpgrade``. Nothing machine-specific is written into the code.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["get_data_home", "READ_FPS"]

#: Frames a second the graders read a video at, at most (a slower video is read whole): the paper's rate (its
#: YFP videos are 6 fps). A clinician's grade rests on the face at rest and at each expression's peak, held for
#: a second or more, which 6 frames a second show; reading every frame of a 30 fps video finds the face, its
#: landmarks and its measures five times over for the same grade. Here, not in the pipeline module, so the
#: command line knows it without loading scikit-learn.
READ_FPS = 6.0


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
