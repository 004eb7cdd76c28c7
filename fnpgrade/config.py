"""Where fnpgrade keeps downloaded media and caches.

Like scikit-learn's ``get_data_home``: the folder is ``$FNPGRADE_DATA`` when set,
else ``~/.cache/fnpgrade``. Nothing machine-specific is written into the code.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["get_data_home"]


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
