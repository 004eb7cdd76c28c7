"""Model selection on Dask: cross_validate / GridSearchCV with joblib's Dask backend, each fit a task.

A ``LocalCluster`` of 2 worker processes (one thread each) stands in for a real
cluster; every search is run serially too, and the scores must be the same.
"""

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from joblib import parallel_backend  # noqa: E402
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedGroupKFold, cross_validate  # noqa: E402

from fnpgrade import PHCNNClassifier, make_measures_pipeline, make_phcnn_pipeline  # noqa: E402
from fnpgrade.measures import VIDEO_FEATURE_NAMES  # noqa: E402
from fnpgrade.nn.runtime import Runtime  # noqa: E402
from fnpgrade.metrics import SCORING  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accelerate_worker import toy_clips  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
    with cluster, distributed.Client(cluster) as client:
        yield client


def _tasks_on_workers(client, search):
    """Run ``search()`` under the Dask backend; return its result and the workers its tasks ran on."""
    with distributed.get_task_stream(client) as stream, parallel_backend("dask"):
        result = search()
    return result, {task["worker"] for task in stream.data}


def _measures_table(n_subjects=12, clips=4, n_features=len(VIDEO_FEATURE_NAMES), seed=0):
    """A stand-in for FaceMeasures' output: one row per clip (its columns), a few NaN rows (clips without a face)."""
    rng = np.random.default_rng(seed)
    level = np.repeat(rng.integers(0, 3, n_subjects), clips)
    X = rng.normal(size=(n_subjects * clips, n_features)) + 0.8 * level[:, None] * (np.arange(n_features) < 4)
    X[:, VIDEO_FEATURE_NAMES.index("expression_amount")] = 0.0  # no movement read: the healthy range stays neutral
    X[rng.choice(len(X), 3, replace=False)] = np.nan
    return X, np.array(["I", "II", "III"])[level], np.repeat(np.arange(n_subjects), clips)


@pytest.mark.slow  # 5 s; the fast suite keeps the grid search on Dask against the serial run
def test_cross_validate_of_the_clinical_grader_on_dask_scores_as_the_serial_run(client):
    X, y, groups = _measures_table()
    grader = make_measures_pipeline(random_state=0).named_steps["classifier"]  # the pipeline's classifier part

    def run(n_jobs):
        return cross_validate(grader, X, y, groups=groups, cv=GroupKFold(4), scoring=SCORING, n_jobs=n_jobs)

    serial = run(None)
    on_dask, workers = _tasks_on_workers(client, lambda: run(-1))
    assert workers and workers <= set(client.scheduler_info()["workers"])  # the fits ran on the cluster
    for name in SCORING:
        np.testing.assert_array_equal(on_dask[f"test_{name}"], serial[f"test_{name}"])
    assert serial["test_accuracy"].mean() > 0.5  # a real task: chance is about 1/3


def _windows():
    X, y, groups = toy_clips(n_clips=16, n_windows=2)
    return X, y, groups


def test_grid_search_of_phcnn_on_dask_scores_as_the_serial_run(client):
    X, y, groups = _windows()
    clf = PHCNNClassifier(width=0.125, max_epochs=2, batch_size=8, train_split=None, random_state=0, verbose=0,
                          device="cpu", runtime=Runtime(n_threads=1))
    grid = {"lr": [0.01, 0.05], "class_weight": ["balanced", None]}

    def run(n_jobs):
        cv = StratifiedGroupKFold(2, shuffle=True, random_state=0)  # by subject, both levels in each fold
        search = GridSearchCV(clf, grid, cv=cv, scoring=SCORING, refit="qwk", n_jobs=n_jobs,
                              error_score="raise")
        return search.fit(X, y, groups=groups)

    serial = run(None)
    # scatter: X is a list (not weak-referenceable), which joblib would otherwise send inside every task
    with distributed.get_task_stream(client) as stream, parallel_backend("dask", scatter=[X, y]):
        on_dask = run(-1)  # -1: as many jobs as the cluster has threads
    assert len({task["worker"] for task in stream.data}) == 2  # 8 fits over 2 idle workers
    for name in SCORING:
        np.testing.assert_array_equal(on_dask.cv_results_[f"mean_test_{name}"],
                                      serial.cv_results_[f"mean_test_{name}"])
    assert on_dask.best_params_ == serial.best_params_
    np.testing.assert_allclose(on_dask.predict_proba(X), serial.predict_proba(X), atol=1e-6)


def test_preprocessing_steps_pickle_to_a_worker_and_load_their_models_there(client):
    """Detector and cropper travel without their models and load them on the worker (lazily, once)."""
    from fnpgrade import make_palsy_clips

    X, _, _ = make_palsy_clips(n_subjects=1, clips_per_subject=1, frames_per_clip=2, random_state=0)
    preprocess = make_phcnn_pipeline()[:2]  # detector, cropper
    local = preprocess.fit_transform(X)
    remote = client.submit(preprocess.fit_transform, X, pure=False).result()
    np.testing.assert_array_equal(remote[0].face, local[0].face)
    np.testing.assert_array_equal(remote[0].landmarks, local[0].landmarks)
