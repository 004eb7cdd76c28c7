"""The on-disk clip store: round trip, lazy training, resume, damage, Dask preprocessing."""

import pickle

import numpy as np
import pytest

pytest.importorskip("zarr", reason="the clip store needs the scale extra (make install installs it)")

from fnpgrade import PHCNNClassifier, make_palsy_clips, make_phcnn_pipeline  # noqa: E402
from fnpgrade.clips import WindowedClip  # noqa: E402
from fnpgrade.io import write_video  # noqa: E402
from fnpgrade.scale.preprocess import preprocess_to_store  # noqa: E402
from fnpgrade.scale.store import ClipStore, StoredWindowedClip, clip_key  # noqa: E402


def _windowed(seed, n_windows=2, length=4, measures=True):
    rng = np.random.default_rng(seed)
    return WindowedClip(
        face=rng.integers(0, 256, (n_windows, length, 128, 128, 3), dtype=np.uint8),
        brow=rng.integers(0, 256, (n_windows, length, 40, 120, 3), dtype=np.uint8),
        mouth=rng.integers(0, 256, (n_windows, length, 40, 120, 3), dtype=np.uint8),
        starts=np.arange(n_windows) * 2, n_padded=1, source=f"video_{seed}.mp4",
        measures=rng.normal(size=(n_windows, length, 5)).astype(np.float32) if measures else None)


def test_a_clip_comes_back_bit_exact_with_its_label_subject_and_report(tmp_path):
    store = ClipStore(tmp_path / "s.zarr")
    clip = _windowed(0)
    store.write("a", clip, label="II", subject="p1", report={"detector": {"found": np.int64(7)}})
    again = ClipStore(tmp_path / "s.zarr", mode="r").clip("a")
    assert isinstance(again, StoredWindowedClip) and not isinstance(again.face, np.ndarray)  # lazy
    for name in ("face", "brow", "mouth"):
        np.testing.assert_array_equal(getattr(again, name)[...], getattr(clip, name))
        np.testing.assert_array_equal(getattr(again, name)[1], getattr(clip, name)[1])
    np.testing.assert_array_equal(again.starts, clip.starts)
    np.testing.assert_array_equal(again.measures, clip.measures)
    assert (again.n_padded, again.source, again.n_windows, again.length) == (1, "video_0.mp4", 2, 4)
    assert store.labels().tolist() == ["II"] and store.subjects().tolist() == ["p1"]
    assert store.attrs("a")["report"] == {"detector": {"found": 7}} and store.verify("a")
    # it travels to a worker as a reference to the files
    assert pickle.loads(pickle.dumps(again)).face[0].sum() == clip.face[0].sum()
    assert len(pickle.loads(pickle.dumps(store))) == 1


def test_training_from_the_store_matches_training_in_memory(tmp_path):
    store = ClipStore(tmp_path / "s.zarr")
    clips = [_windowed(i, measures=False) for i in range(6)]
    labels = ["I", "II", "III"] * 2
    for i, clip in enumerate(clips):
        store.write(f"c{i}", clip, label=labels[i], subject=i)
    params = dict(width=0.125, max_epochs=2, batch_size=4, random_state=0, train_split=None, verbose=0)
    on_disk = PHCNNClassifier(**params).fit(store.clips(), store.labels(), groups=store.subjects())
    in_memory = PHCNNClassifier(**params).fit(clips, labels, groups=list(range(6)))
    np.testing.assert_allclose(on_disk.history[:, "train_loss"], in_memory.history[:, "train_loss"], rtol=1e-6)
    np.testing.assert_allclose(on_disk.predict_proba(store.clips()), in_memory.predict_proba(clips), atol=1e-6)


def test_an_interrupted_or_damaged_entry_is_found_and_redone(tmp_path):
    store = ClipStore(tmp_path / "s.zarr")
    store.write("done", _windowed(0))
    store.write("killed", _windowed(1))
    store._clips["killed"].attrs.pop("complete")        # the run stopped before marking it
    assert store.keys() == ["done"] and store.incomplete() == ["killed"] and "killed" not in store
    with pytest.raises(KeyError, match="'killed' is incomplete"):
        store.clip("killed")
    # a chunk overwritten on disk: the metadata still look right, the checksum does not
    store._clips["done"]["face"][0] = np.zeros((4, 128, 128, 3), np.uint8)
    assert store.intact("done") and not store.verify("done")
    # a missing array is found without reading the data
    del store._clips["done"]["mouth"]
    assert not store.intact("done")
    store.write("done", _windowed(0))
    assert store.intact("done") and store.verify("done")
    with pytest.raises(PermissionError, match="read-only"):
        ClipStore(tmp_path / "s.zarr", mode="r").write("x", _windowed(2))
    with pytest.raises(FileNotFoundError, match="no clip store here"):
        ClipStore(tmp_path / "nothing", mode="r")
    with pytest.raises(ValueError, match="have no label"):
        store.labels()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Four short face videos (real photos warped into expressions, written as MP4) and a broken file."""
    folder = tmp_path_factory.mktemp("videos")
    X, y, groups = make_palsy_clips(n_subjects=2, clips_per_subject=2, random_state=0)
    paths = []
    for i, clip in enumerate(X):
        path = folder / f"clip{i}.mp4"
        write_video(path, clip, fps=6.0)
        paths.append(str(path))
    broken = folder / "broken.mp4"
    broken.write_bytes(b"not a video")
    return paths, list(y), list(groups), str(broken)


def _pipeline():
    return make_phcnn_pipeline(width=0.125, max_epochs=1, random_state=0)


def test_preprocessing_names_a_failure_goes_on_and_resumes(tmp_path, videos):
    paths, y, groups, broken = videos
    summary = preprocess_to_store(paths[:2] + [broken], tmp_path / "s.zarr", _pipeline(),
                                  labels=y[:2] + ["I"], subjects=groups[:2] + [9], progress=False)
    assert len(summary.written) == 2 and list(summary.failed) == [broken] and "broken.mp4" in str(summary)
    store = ClipStore(tmp_path / "s.zarr")
    store._clips[clip_key(paths[1])].attrs.pop("complete")   # as if killed while writing it
    again = preprocess_to_store(paths, store, _pipeline(), labels=y, subjects=groups, progress=False)
    assert again.skipped == [clip_key(paths[0])]
    assert sorted(again.written) == sorted(clip_key(p) for p in paths[1:])
    assert len(store) == 4 and store.attrs(clip_key(paths[2]))["report"]["detector"]["n_frames_read"] > 0
    # the windows are those of the pipeline run in memory
    expected = _pipeline()[:-1].fit_transform([paths[3]])[0]
    stored = store.clip(clip_key(paths[3]))
    np.testing.assert_array_equal(stored.face[...], expected.face)
    np.testing.assert_array_equal(stored.mouth[...], expected.mouth)


def test_dask_workers_preprocess_into_the_store_as_the_serial_run(tmp_path, videos):
    distributed = pytest.importorskip("distributed")
    paths, y, groups, broken = videos
    serial = preprocess_to_store(paths, tmp_path / "serial.zarr", _pipeline(), labels=y, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        summary = preprocess_to_store(paths + [broken], tmp_path / "dask.zarr", _pipeline(), labels=y + ["I"],
                                      client=client, progress=False)
        workers = len(client.scheduler_info()["workers"])
    assert workers == 2 and sorted(summary.written) == sorted(serial.written) and list(summary.failed) == [broken]
    one, two = ClipStore(tmp_path / "serial.zarr"), ClipStore(tmp_path / "dask.zarr")
    assert one.keys() == two.keys()
    for key in one.keys():
        for name in ("face", "brow", "mouth"):
            np.testing.assert_array_equal(getattr(one.clip(key), name)[...], getattr(two.clip(key), name)[...])
    assert one.labels().tolist() == two.labels().tolist()


def test_spans_of_a_video_are_stored_as_spans(tmp_path, videos):
    # fnpgrade preprocess --clip-length gives ClipRefs; each must be stored as its own span of the video
    from fnpgrade.io import ClipRef

    paths, *_ = videos
    spans = [ClipRef(paths[0], 0, 2), ClipRef(paths[0], 2, 4)]
    summary = preprocess_to_store(spans, tmp_path / "s.zarr", _pipeline(), progress=False)
    assert not summary.failed and sorted(summary.written) == sorted(clip_key(str(s)) for s in spans)
    store = ClipStore(tmp_path / "s.zarr")
    for span in spans:
        expected = _pipeline()[:-1].fit_transform([span])[0]
        np.testing.assert_array_equal(store.clip(clip_key(str(span))).face[...], expected.face)
