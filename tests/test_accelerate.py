"""AcceleratedPHCNNClassifier: 2 CPU processes (DDP on gloo, started by ``accelerate launch``) train the model 1 process trains.

The 2-process runs start real processes through Accelerate's launcher (torchrun
underneath) with ``ACCELERATE_USE_CPU=true``: the launch a user makes on
several GPUs, on CPUs. ``tests/accelerate_worker.py`` is the training script;
each process writes what it fitted to JSON.
"""

import copy
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("accelerate")

from fnpgrade.classifier import PHCNNClassifier  # noqa: E402
from fnpgrade.nn.callbacks import read_history  # noqa: E402
from fnpgrade.nn.data import WindowDataset, WindowLoader  # noqa: E402
from fnpgrade.scale.training import (AcceleratedPHCNNClassifier, ProcessGroupBatchNorm,  # noqa: E402
                                     ShardedWindowLoader, convert_batchnorm, revert_batchnorm)

WORKER = Path(__file__).resolve().parent / "accelerate_worker.py"
sys.path.insert(0, str(WORKER.parent))
from accelerate_worker import toy_clips  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(out, n_processes, *args, tmp):
    """Run the worker on ``n_processes`` CPU processes; return each process's JSON, by rank."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HOME=str(tmp / "hf"))  # HF_HOME: no user accelerate config
    env["PYTHONPATH"] = os.pathsep.join([str(WORKER.parents[1]), env.get("PYTHONPATH", "")])
    if n_processes == 1:
        command = [sys.executable, str(WORKER), str(out), *args]
    else:
        env["ACCELERATE_USE_CPU"] = "true"
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                   str(n_processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   "--main_process_port", str(_free_port()), str(WORKER), str(out), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads(Path(f"{out}.{rank}.json").read_text()) for rank in range(n_processes)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Training runs under ``accelerate launch`` (one and two processes): the tests using them are marked
    ``processes`` (``make test-all`` runs them)."""
    tmp = tmp_path_factory.mktemp("accelerate")
    return {"one": _run(tmp / "one", 1, tmp=tmp),
            "two": _run(tmp / "two", 2, "--checkpoint-dir", str(tmp / "ckpt"), tmp=tmp),
            "two_unsynced": _run(tmp / "nosync", 2, "--no-sync", tmp=tmp),
            "checkpoint": tmp / "ckpt"}


def _losses(run):
    return np.array([[row["train_loss"], row["valid_loss"]] for row in run["history"]])


@pytest.mark.processes
def test_two_processes_train_the_model_one_process_trains(runs):
    (one,), (rank0, rank1) = runs["one"], runs["two"]
    assert rank0["n_processes"] == 2 and one["n_processes"] == 1
    # the global batches (5 windows: parts of 3 and 2) and their count are those of one process
    assert rank0["train_batch_sizes"] == one["train_batch_sizes"] == [[5, 5, 5, 5, 4]] * 3
    # weighted losses of the global batch, training and validation, every epoch: equal to float rounding
    np.testing.assert_allclose(_losses(rank0), _losses(one), rtol=2e-5)
    assert _losses(one)[-1, 0] < _losses(one)[0, 0] - 0.02  # it trained
    np.testing.assert_allclose(rank0["batch_losses"], one["batch_losses"], rtol=2e-5)
    for name, value in one["params"].items():
        assert rank0["params"][name] == pytest.approx(value, rel=1e-4, abs=1e-4), name
    np.testing.assert_allclose(rank0["proba"], one["proba"], atol=1e-5)


@pytest.mark.processes
def test_both_processes_end_with_the_same_network_and_history(runs):
    rank0, rank1 = runs["two"]
    assert rank0["params"] == rank1["params"]
    assert rank0["history"] == rank1["history"]
    assert rank0["proba"] == rank1["proba"]


@pytest.mark.processes
def test_fitted_network_has_plain_batch_norms_and_hands_over_to_a_picklable_classifier(runs):
    rank0, _ = runs["two"]
    assert rank0["batchnorm_types"] == ["BatchNorm1d", "BatchNorm2d"]
    np.testing.assert_allclose(rank0["plain_proba"], rank0["proba"], atol=1e-6)


@pytest.mark.processes
def test_without_synced_batch_norm_each_process_normalises_its_own_part(runs):
    """The reason the synced batch norm is the default: per-process statistics change the losses."""
    (one,), (rank0, rank1) = runs["one"], runs["two_unsynced"]
    assert rank0["history"] == rank1["history"]  # still one model on both processes
    assert np.abs(_losses(rank0) - _losses(one)).max() > 1e-3


@pytest.mark.processes
def test_a_two_process_run_resumes_from_its_checkpoint_as_if_never_interrupted(runs):
    """The 2-process run of the comparison above was stopped after epoch 1 and resumed from its checkpoint."""
    (one,), (rank0, rank1) = runs["one"], runs["two"]
    assert rank0["resumed_after"] == rank1["resumed_after"] == 1
    assert rank0["epochs_run"] == rank1["epochs_run"] == 2 and one["epochs_run"] == 3  # epochs 2 and 3 only
    np.testing.assert_allclose(_losses(rank0), _losses(one), rtol=2e-5)


@pytest.mark.processes
def test_only_the_main_process_writes_the_checkpoint(runs):
    assert len(read_history(runs["checkpoint"])) == 3
    params = torch.load(runs["checkpoint"] / "last_params.pt", weights_only=True)
    assert not any(key.startswith("module.") for key in params)  # the plain network's keys
    assert sorted(p.name for p in runs["checkpoint"].iterdir()) == [
        "best_params.pt", "last_history.json", "last_optimizer.pt", "last_params.pt"]


# ---------------------------------------------------------------------------------------------- one process
def _accelerator():
    from accelerate import Accelerator

    return Accelerator(cpu=True)


def _toy():
    X, y, groups = toy_clips()
    y[-1], groups[-1] = "I", 99
    return X, y, groups


PARAMS = dict(width=0.25, max_epochs=2, batch_size=5, lr=5e-4, random_state=0, verbose=0)


def test_one_process_trains_exactly_like_phcnn_classifier():
    X, y, groups = _toy()
    plain = PHCNNClassifier(device="cpu", **PARAMS).fit(X, y, groups=groups)
    accelerated = AcceleratedPHCNNClassifier(accelerator=_accelerator(), **PARAMS).fit(X, y, groups=groups)
    for key in ("train_loss", "valid_loss"):
        np.testing.assert_allclose(accelerated.history[:, key], plain.history[:, key], rtol=1e-6)
    np.testing.assert_allclose(accelerated.predict_proba(X), plain.predict_proba(X), atol=1e-6)
    handed = accelerated.to_classifier()
    assert type(handed) is PHCNNClassifier and handed.device == "cpu"
    import pickle

    again = pickle.loads(pickle.dumps(handed))
    np.testing.assert_allclose(again.predict_proba(X), accelerated.predict_proba(X), atol=1e-6)
    assert "accelerator" in accelerated.get_params() and "_wrapped_with_accelerator" not in accelerated.get_params()


def test_warm_start_wraps_the_network_again_and_continues():
    X, y, groups = _toy()
    clf = AcceleratedPHCNNClassifier(accelerator=_accelerator(), warm_start=True, train_split=None, **PARAMS)
    clf.fit(X, y)
    assert not clf._wrapped_with_accelerator  # unwrapped after training (unwrap_after_train=True)
    clf.fit(X, y)
    assert len(clf.history) == 4 and not clf._wrapped_with_accelerator
    assert type(clf.optimizer_).__name__ == "AcceleratedOptimizer"
    assert type(clf.optimizer_.optimizer) is torch.optim.SGD  # wrapped once, not once per fit


def test_verbose_zero_prints_nothing(capsys):
    X, y, _ = _toy()
    AcceleratedPHCNNClassifier(accelerator=_accelerator(), train_split=None, **PARAMS).fit(X, y)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------------------------- the loader
def _dataset(n_windows):
    X, y, _ = toy_clips(n_clips=n_windows, n_windows=1)
    return WindowDataset(X, np.arange(n_windows) % 2)


@pytest.mark.parametrize("n_windows", [24, 23, 22])
def test_sharded_loader_splits_each_global_batch_between_the_processes(n_windows):
    dataset = _dataset(n_windows)
    kwargs = dict(batch_size=5, shuffle=True, seed=3, inputs=("face",))
    loaders = [ShardedWindowLoader(dataset, rank=r, num_processes=2, **kwargs) for r in range(2)]
    single = WindowLoader(dataset, **kwargs)
    parts = [[X["face"] for X, _ in loader] for loader in loaders]
    whole = [X["face"] for X, _ in single]
    assert len(parts[0]) == len(parts[1]) == len(loaders[0]) == len(loaders[1])
    for i, (a, b) in enumerate(zip(*parts)):  # the parts of one batch, in order, are the batch
        assert len(a) >= 2 and len(b) >= 2
        assert torch.equal(torch.cat([a, b]), whole[i])
    # a last global batch too small to give each process two windows is dropped: 24 -> 4, 23 -> 3 of 4 windows
    assert len(parts[0]) == (len(whole) if n_windows % 5 not in (1, 2, 3) else len(whole) - 1)


def test_sharded_loader_refuses_a_batch_smaller_than_two_windows_per_process():
    with pytest.raises(ValueError, match="batch_size >= 8"):
        ShardedWindowLoader(_dataset(10), batch_size=6, rank=0, num_processes=4)
    with pytest.raises(ValueError, match="rank=2"):
        ShardedWindowLoader(_dataset(10), batch_size=6, rank=2, num_processes=2)


def test_batchnorm_conversion_keeps_the_tensors_and_reverts_to_the_original_classes():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                              torch.nn.LazyLinear(5), torch.nn.BatchNorm1d(5))
    net(torch.randn(4, 3, 6, 6))
    reference = copy.deepcopy(net)
    weight, running = net[1].weight, net[4].running_mean
    convert_batchnorm(net)
    assert isinstance(net[1], ProcessGroupBatchNorm) and isinstance(net[4], ProcessGroupBatchNorm)
    assert net[1].weight is weight and net[4].running_mean is running
    x = torch.randn(6, 3, 6, 6)
    torch.testing.assert_close(net(x), reference(x))  # no process group: an ordinary batch norm
    torch.testing.assert_close(net[4].running_var, reference[4].running_var)
    revert_batchnorm(net)
    assert type(net[1]) is torch.nn.BatchNorm2d and type(net[4]) is torch.nn.BatchNorm1d
    assert net[1].weight is weight and net[4].running_mean is running
    assert int(net[1].num_batches_tracked) == 2
