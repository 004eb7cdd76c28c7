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


def test_a_damaged_chunk_met_in_training_names_the_clip_and_what_to_do(tmp_path):
    from fnpgrade import PHCNNClassifier
    from fnpgrade.nn.runtime import Runtime
    from fnpgrade.clips import WindowedClip

    rng = np.random.default_rng(0)
    store = ClipStore(tmp_path / "s.zarr")
    for i in range(4):
        store.write(f"c{i}", WindowedClip(rng.integers(0, 256, (2, 2, 128, 128, 3), dtype=np.uint8),
                                          rng.integers(0, 256, (2, 2, 40, 120, 3), dtype=np.uint8),
                                          rng.integers(0, 256, (2, 2, 40, 120, 3), dtype=np.uint8),
                                          source=f"videos/p{i}.mp4"), label="I" if i % 2 else "II")
    chunk = next((tmp_path / "s.zarr" / "clips" / "c2" / "mouth" / "c").rglob("*"))
    while chunk.is_dir():
        chunk = next(chunk.iterdir())
    chunk.write_bytes(b"\x00garbage" * 50)  # a disk error / a copy cut short
    clf = PHCNNClassifier(width=0.125, max_epochs=1, batch_size=8, train_split=None, random_state=0, verbose=0,
                          device="cpu", runtime=Runtime(n_threads=1))
    with pytest.raises(ValueError, match=r"videos/p2\.mp4 \(store entry 'c2'\): 'mouth' window.*ClipStore\.verify"):
        clf.fit(store.clips(), store.labels())
    assert not store.verify("c2") and store.verify("c1")


def test_relative_paths_reach_a_worker_started_in_another_folder(tmp_path, monkeypatch,
                                                                 videos_of_different_lengths):
    # on a cluster a worker's working folder is not the client's: relative paths must not be read there
    distributed = pytest.importorskip("distributed")
    import logging
    import shutil

    from fnpgrade.scale.preprocess import preprocess_to_store

    paths, _ = videos_of_different_lengths
    here, elsewhere = tmp_path / "client", tmp_path / "worker"
    for folder in (here / "videos", elsewhere):
        folder.mkdir(parents=True)
    for path in paths[:2]:
        shutil.copy(path, here / "videos")
    monkeypatch.chdir(elsewhere)  # the worker process starts here ...
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        monkeypatch.chdir(here)  # ... and the client runs here, with paths relative to here
        sources = [f"videos/{p.split('/')[-1]}" for p in paths[:2]]
        summary = preprocess_to_store(sources, "s.zarr", make_phcnn_pipeline(width=0.125), labels=["I", "II"],
                                      client=client, progress=False)
    assert not summary.failed and len(summary.written) == 2
    assert ClipStore(here / "s.zarr", mode="r").keys() == sorted(clip_key(s) for s in sources)
    assert not (elsewhere / "s.zarr").exists()


def test_cli_preprocess_names_an_undecodable_video_and_writes_the_others(tmp_path, videos_of_different_lengths,
                                                                         capsys):
    # a study of thousands of videos is not refused for one bad file: the others are preprocessed
    import csv
    import shutil

    from fnpgrade.cli import main

    paths, _ = videos_of_different_lengths
    root = tmp_path / "study"
    root.mkdir()
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject", "grade", "path"])
        for i, path in enumerate(paths[:2]):
            shutil.copy(path, root / f"v{i}.mp4")
            writer.writerow([f"s{i}", 1 + 2 * i, f"v{i}.mp4"])
        (root / "broken.mp4").write_bytes(b"not a video")
        writer.writerow(["s2", 5, "broken.mp4"])
    status = main(["preprocess", "--data", str(root), "--store", str(tmp_path / "s.zarr"), "--quiet",
                   "--width", "0.125"])
    out = capsys.readouterr().out
    assert status == 1 and "2 written" in out and "FAILED" in out and "broken.mp4" in out
    assert len(ClipStore(tmp_path / "s.zarr", mode="r")) == 2


def test_stored_clips_pickled_to_another_working_folder_read_their_own_data(tmp_path, monkeypatch):
    # a Dask worker (GridSearchCV with scatter) or a DataLoader process unpickles the clips elsewhere: zarr fills a
    # chunk it cannot find with zeros, so a store path relative to the client's folder would read zeros silently
    import pickle
    import shutil

    from fnpgrade.clips import WindowedClip

    face = np.full((1, 2, 128, 128, 3), 7, np.uint8)
    roi = np.full((1, 2, 40, 120, 3), 9, np.uint8)
    (tmp_path / "client").mkdir()
    monkeypatch.chdir(tmp_path / "client")
    ClipStore("s.zarr").write("a", WindowedClip(face, roi, roi, source="v.mp4"))
    sent = pickle.dumps(ClipStore("s.zarr", mode="r").clips())
    monkeypatch.chdir(tmp_path)
    clip = pickle.loads(sent)[0]
    np.testing.assert_array_equal(clip.face[0], face[0])
    np.testing.assert_array_equal(clip.mouth[...], roi)
    shutil.move(tmp_path / "client" / "s.zarr", tmp_path / "elsewhere.zarr")  # a worker that does not see it
    with pytest.raises(FileNotFoundError, match=r"v\.mp4 \(store entry 'a'\): the clip store is not at .*s\.zarr"):
        pickle.loads(sent)
