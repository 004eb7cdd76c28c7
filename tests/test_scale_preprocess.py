"""Preprocessing into a clip store from several threads: each video's report is stored with its own windows."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("zarr", reason="the clip store needs the scale extra (make install installs it)")

from fnpgrade import make_palsy_clips, make_phcnn_pipeline  # noqa: E402
from fnpgrade.io import write_video  # noqa: E402
from fnpgrade.scale.preprocess import _preprocess_one, fit_without_clips  # noqa: E402
from fnpgrade.scale.store import ClipStore, clip_key  # noqa: E402


@pytest.fixture(scope="module")
def videos_of_different_lengths(tmp_path_factory):
    """Real photos warped into expressions, written as MP4: 4, 3, 2 and 4 frames (each its own frame count)."""
    folder = tmp_path_factory.mktemp("videos")
    X, _, _ = make_palsy_clips(n_subjects=2, clips_per_subject=2, random_state=1)
    paths = []
    for i, (clip, n_frames) in enumerate(zip(X, (4, 3, 2, 4))):
        paths.append(str(write_video(folder / f"v{i}.mp4", clip[:n_frames], fps=6.0)))
    return paths, (4, 3, 2, 4)


def test_threads_sharing_one_copy_of_the_steps_store_each_video_with_its_own_report(tmp_path,
                                                                                     videos_of_different_lengths):
    # what a Dask worker with 2 threads does: tasks run concurrently on the one scattered pipeline
    paths, n_frames = videos_of_different_lengths
    steps = make_phcnn_pipeline(width=0.125)[:-1]
    fit_without_clips(steps)
    store_path = str(tmp_path / "s.zarr")
    ClipStore(store_path)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda p: _preprocess_one(steps, store_path, p, clip_key(p), "I", 0), paths * 2))
    assert all(error is None for _, error in results), results
    # the shared steps were not used (each thread ran its own copy), so nothing of one video sits in them
    assert all(getattr(step, "transform_report_", None) is None for _, step in steps.steps)
    store = ClipStore(store_path, mode="r")
    for path, frames in zip(paths, n_frames):
        report = store.attrs(clip_key(path))["report"]
        assert report["detector"]["n_frames_read"] == frames, (path, report["detector"])
        assert store.clip(clip_key(path)).n_padded == 4 - frames
        assert store.verify(clip_key(path))
    np.testing.assert_array_equal(sorted(store.keys()), sorted(clip_key(p) for p in paths))
