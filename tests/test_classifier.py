"""PHCNNClassifier: learning, labels, class weights, clip-wise validation, best epoch, persistence, resume."""

import copy
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Callback

from fnpgrade.classifier import PHCNNClassifier
from fnpgrade.clips import WindowedClip
from fnpgrade.nn import ARCHITECTURES
from fnpgrade.nn.callbacks import read_history
from fnpgrade.nn.data import WindowDataset
from fnpgrade.nn.runtime import Runtime

LEVELS = np.array(["I", "II", "III"])
# small, fast settings that still learn the synthetic task
FAST = dict(width=0.125, batch_size=8, lr=0.05, verbose=0)


# tiny models run faster on one torch thread (fixture in conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_clips(n_per_class=8, seed=0, max_windows=2, length=4):
    """Clips whose level sets the brightness of the face's upper half and of both regions, under noise."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n_per_class * len(LEVELS)):
        level = i % len(LEVELS)
        w = 1 + i % max_windows
        base = 50 + 70 * level
        face = rng.integers(0, 50, (w, length, 128, 128, 3), dtype=np.uint8)
        face[:, :, :64] += np.uint8(base)
        brow = (rng.integers(0, 50, (w, length, 40, 120, 3)) + base).astype(np.uint8)
        mouth = (rng.integers(0, 50, (w, length, 40, 120, 3)) + base).astype(np.uint8)
        X.append(WindowedClip(face, brow, mouth, source=f"clip{i}"))
        y.append(LEVELS[level])
    return X, np.array(y, dtype=object)


@pytest.fixture(scope="module")
def data():
    X, y = make_clips(n_per_class=8, seed=0)
    X_test, y_test = make_clips(n_per_class=4, seed=1)
    groups = np.arange(len(X)) // 2  # subjects of two clips
    return X, y, groups, X_test, y_test


@pytest.fixture(scope="module")
def fitted(data):
    X, y, groups, _, _ = data
    return PHCNNClassifier(max_epochs=8, random_state=0, **FAST).fit(X, y, groups=groups)


def test_reduced_phcnn_lstm_learns_the_task_far_above_chance(fitted, data):
    *_, X_test, y_test = data
    accuracy = np.mean(fitted.predict(X_test) == y_test)
    assert accuracy >= 0.8, accuracy  # chance is 1/3


def test_predictions_are_original_labels_and_probabilities_average_windows(fitted, data):
    *_, X_test, _ = data
    assert fitted.classes_.tolist() == ["I", "II", "III"]
    proba = fitted.predict_proba(X_test)
    windows = fitted.predict_windows(X_test)
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert [w.shape for w in windows] == [(clip.n_windows, 3) for clip in X_test]
    np.testing.assert_allclose(proba, np.stack([w.mean(axis=0) for w in windows]), rtol=1e-6)
    assert fitted.predict(X_test).tolist() == fitted.classes_[proba.argmax(axis=1)].tolist()
    assert 0 <= fitted.score(X_test, data[4]) <= 1


def test_integer_labels_and_explicit_classes_order():
    X, y = make_clips(n_per_class=3)
    y_int = np.array([{"I": 1, "II": 3, "III": 5}[v] for v in y])
    clf = PHCNNClassifier(max_epochs=1, **FAST).fit(X, y_int)
    assert clf.classes_.tolist() == [1, 3, 5] and set(clf.predict(X[:3])) <= {1, 3, 5}
    ordered = PHCNNClassifier(max_epochs=1, classes=["III", "II", "I"], **FAST).fit(X, y)
    assert ordered.classes_.tolist() == ["III", "II", "I"]


def test_balanced_class_weights_are_inverse_class_frequencies_of_clips():
    X, y = make_clips(n_per_class=4)
    keep = [i for i, label in enumerate(y) if label != "III" or i < 6]  # III: 2 clips; I, II: 4 each
    X, y = [X[i] for i in keep], y[keep]
    clf = PHCNNClassifier(max_epochs=1, **FAST).fit(X, y)
    counts = np.array([np.sum(y == c) for c in clf.classes_])
    expected = len(y) / (len(counts) * counts)  # paper eq. 4: K_i proportional to 1 / n_i
    np.testing.assert_allclose(clf.class_weight_, expected)
    np.testing.assert_allclose(clf.criterion_.weight.numpy(), expected)
    assert clf.class_weight_[2] == pytest.approx(2 * clf.class_weight_[0])

    custom = PHCNNClassifier(max_epochs=1, class_weight={"III": 5.0}, **FAST).fit(X, y)
    np.testing.assert_allclose(custom.class_weight_, [1, 1, 5])
    plain = PHCNNClassifier(max_epochs=1, class_weight=None, **FAST).fit(X, y)
    assert plain.class_weight_ is None and plain.criterion_.weight is None


def test_validation_split_keeps_clips_and_subjects_whole(data):
    X, y, groups, _, _ = data
    clf = PHCNNClassifier(max_epochs=1, random_state=3, **FAST)
    dataset = clf._prepare_fit(X, y, groups)
    clf.initialize()
    train, valid = clf.get_split_datasets(dataset)
    train_clips, valid_clips = set(train.clip_of_window), set(valid.clip_of_window)
    assert train_clips and valid_clips and not train_clips & valid_clips
    assert train_clips | valid_clips == set(range(len(X)))  # every window of a clip on one side
    assert len(train) + len(valid) == len(dataset)
    assert not set(groups[list(train_clips)]) & set(groups[list(valid_clips)])


def test_best_epoch_by_validation_loss_is_restored(fitted, data):
    X, y, groups, _, _ = data
    # without the batch-norm recalibration, the final network is exactly the best epoch's
    plain = clone(fitted).set_params(callbacks__bn_recalibration=None).fit(X, y, groups=groups)
    history = plain.history
    valid_loss = np.array(history[:, "valid_loss"])
    kept = [row["epoch"] for row in history if row["event_best"]]
    assert kept[-1] == int(np.argmin(valid_loss)) + 1
    # the final weights reproduce the best epoch's validation loss on the same validation windows
    y_encoded = np.searchsorted(plain.classes_, y.astype(str))
    _, valid = plain.get_split_datasets(WindowDataset(X, y_encoded, groups))
    losses, sizes = [], []
    for batch in plain.get_iterator(valid):
        losses.append(plain.validation_step(batch)["loss"].item())
        sizes.append(len(batch[1]))
    assert np.average(losses, weights=sizes) == pytest.approx(valid_loss.min(), rel=1e-5)
    # with it (the default), the same weights, and only the batch norms' statistics recomputed
    for name, value in fitted.module_.state_dict().items():
        if "running_" not in name and "num_batches" not in name:
            torch.testing.assert_close(value, plain.module_.state_dict()[name], rtol=0, atol=0)


def test_paper_training_defaults():
    clf = PHCNNClassifier()
    assert (clf.arch, clf.width, clf.measures, clf.max_epochs, clf.batch_size, clf.lr) == \
        ("phcnn-lstm", 1.0, False, 50, 64, 1e-4)
    assert (clf.optimizer__momentum, clf.optimizer__weight_decay, clf.class_weight) == (0.9, 2e-5, "balanced")
    X, y = make_clips(n_per_class=2)
    clf = PHCNNClassifier(max_epochs=4, **{**FAST, "lr": 0.1}).fit(X, y)
    assert isinstance(clf.optimizer_, torch.optim.SGD)
    group = clf.optimizer_.param_groups[0]
    assert group["momentum"] == 0.9 and group["weight_decay"] == 2e-5
    # polynomial decay (power 1): lr * (1 - epoch / max_epochs)
    np.testing.assert_allclose(clf.history[:, "event_lr"], [0.1, 0.075, 0.05, 0.025])
    assert isinstance(clf.criterion_, torch.nn.CrossEntropyLoss)


def test_device_is_skorchs_parameter_and_auto_is_resolved_by_the_caller(fitted):
    from fnpgrade.nn.runtime import resolve_device

    assert fitted.device == "cpu" and next(fitted.module_.parameters()).device.type == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cuda:1") == "cuda:1"


def test_same_random_state_gives_identical_predictions():
    X, y = make_clips(n_per_class=3)
    a = PHCNNClassifier(max_epochs=2, random_state=7, **FAST).fit(X, y)
    b = PHCNNClassifier(max_epochs=2, random_state=7, **FAST).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.history[:, "train_loss"] == b.history[:, "train_loss"]


def test_fit_draws_from_its_own_generator_and_leaves_torch_global_rng_alone():
    X, y = make_clips(n_per_class=3)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    # dropout and mirror_augment draw random numbers in every training step
    a = PHCNNClassifier(max_epochs=2, random_state=7, mirror_augment=True, **FAST).fit(X, y)
    assert torch.equal(torch.get_rng_state(), before)
    a.predict_proba(X)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(999)  # another global state: the same model all the same
    b = PHCNNClassifier(max_epochs=2, random_state=7, mirror_augment=True, **FAST).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.seed_ == b.seed_
    # a warm start draws from the estimator's (seed, epoch) streams (not the global one), so it repeats too
    a.set_params(warm_start=True).fit(X, y)
    b.set_params(warm_start=True).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize("params, message", [
    ({"width": 0}, "The 'width' parameter of PHCNNClassifier must be a float in the range (0.0, inf). Got 0 instead."),
    ({"runtime": "fp16"}, "The 'runtime' parameter of PHCNNClassifier must be an instance of"),
    ({"max_epochs": -1}, "The 'max_epochs' parameter of PHCNNClassifier must be an int in the range [0, inf)."),
    ({"optimizer__momentum": -1}, "The 'optimizer__momentum' parameter of PHCNNClassifier must be"),
    ({"mirror_augment": "yes"}, "The 'mirror_augment' parameter of PHCNNClassifier must be an instance of 'bool'"),
])
def test_invalid_parameters_are_stored_by_set_params_and_refused_by_fit(params, message):
    X, y = make_clips(n_per_class=1)
    clf = PHCNNClassifier(max_epochs=1, **FAST).set_params(**params)  # stored, not checked
    assert {k: clf.get_params()[k] for k in params} == params
    with pytest.raises(ValueError) as error:
        clf.fit(X, y)
    assert str(error.value).startswith(message), str(error.value)


def test_skorch_state_is_not_set_in_init_and_pickles_load(fitted, data):
    fresh = PHCNNClassifier()
    assert not {"history_", "initialized_", "virtual_params_"} & set(vars(fresh))
    assert fresh.history is None and not fresh.initialized_  # skorch's state before initialize()
    fresh.set_params(lr=0.5)  # skorch's set_params reads the state before initialize()
    restored = pickle.loads(pickle.dumps(fitted))
    assert restored.initialized_ and len(restored.history) == len(fitted.history)
    np.testing.assert_array_equal(restored.predict_proba(data[3]), fitted.predict_proba(data[3]))


def test_pickle_and_joblib_round_trip_predict_identically(fitted, data, tmp_path):
    *_, X_test, _ = data
    expected = fitted.predict_proba(X_test)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X_test), expected)
    assert restored.device == "cpu"
    joblib.dump(fitted, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "clf.joblib").predict_proba(X_test), expected)


def test_save_params_load_params_with_weights_only(fitted, data, tmp_path):
    *_, X_test, _ = data
    fitted.save_params(f_params=tmp_path / "weights.pt")
    # the file holds plain tensors: loadable with weights_only=True
    state = torch.load(tmp_path / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    fresh = PHCNNClassifier(classes=["I", "II", "III"], **FAST)
    fresh.initialize()
    fresh.load_params(f_params=tmp_path / "weights.pt")
    np.testing.assert_allclose(fresh.predict_proba(X_test), fitted.predict_proba(X_test), rtol=1e-6)


def test_clone_gives_an_unfitted_copy_with_the_same_params(fitted):
    copy = clone(fitted)
    assert copy.get_params()["max_epochs"] == 8 and copy.get_params()["width"] == 0.125
    with pytest.raises(NotFittedError):
        copy.predict([])
    copy.set_params(arch="phcnn", measures=True)
    assert copy.get_params()["arch"] == "phcnn"


class InterruptAfter(Callback):
    """Stop training as Ctrl-C would, after a given number of epochs."""

    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epochs:
            raise KeyboardInterrupt


def test_interrupted_fit_resumes_from_checkpoint_and_matches_an_uninterrupted_run(tmp_path):
    X, y = make_clips(n_per_class=3)
    params = dict(max_epochs=4, random_state=0, **FAST)
    reference = PHCNNClassifier(**params).fit(X, y)

    interrupted = PHCNNClassifier(checkpoint_dir=tmp_path, callbacks=[("stop", InterruptAfter(2))], **params)
    interrupted.fit(X, y)
    assert len(interrupted.history) == 2
    assert len(read_history(tmp_path)) == 2

    resumed = PHCNNClassifier(checkpoint_dir=tmp_path, **params).fit(X, y)
    assert resumed.history[:, "epoch"] == [1, 2, 3, 4]
    np.testing.assert_allclose(resumed.history[:, "event_lr"], reference.history[:, "event_lr"])
    np.testing.assert_allclose(resumed.history[:, "train_loss"], reference.history[:, "train_loss"], rtol=1e-5)
    np.testing.assert_allclose(resumed.predict_proba(X), reference.predict_proba(X), rtol=1e-4, atol=1e-6)
    assert len(read_history(tmp_path)) == 4


def test_checkpoint_of_another_run_is_refused(tmp_path):
    X, y = make_clips(n_per_class=2)
    PHCNNClassifier(max_epochs=1, checkpoint_dir=tmp_path, random_state=0, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="written by another run"):
        PHCNNClassifier(max_epochs=1, checkpoint_dir=tmp_path, arch="phcnn", random_state=0, **FAST).fit(X, y)


def test_warm_start_continues_training():
    X, y = make_clips(n_per_class=2)
    clf = PHCNNClassifier(max_epochs=2, warm_start=True, **FAST).fit(X, y)
    weights = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    clf.fit(X, y)
    assert len(clf.history) == 4
    assert clf.history[:, "event_lr"][2] == clf.history[:, "event_lr"][0]  # a new run restarts the schedule
    assert any(not torch.equal(v, clf.module_.state_dict()[k]) for k, v in weights.items())


def test_early_stopping_and_no_validation_split():
    X, y = make_clips(n_per_class=2)
    # lr 0: the weights stay; only batch norm's running statistics drift, and the validation loss with them,
    # so the stop comes from its improvements falling under the threshold. Seeded: without a seed the
    # initial weights (and so that drift) followed whatever the tests before had drawn
    from skorch.callbacks import EarlyStopping

    clf = PHCNNClassifier(max_epochs=30, lr=0.0, random_state=0, callbacks=[EarlyStopping(patience=1)],
                          **{k: v for k, v in FAST.items() if k != "lr"})
    clf.fit(X, y)
    assert len(clf.history) < 30, len(clf.history)
    no_valid = PHCNNClassifier(max_epochs=2, train_split=None, callbacks=[EarlyStopping("train_loss", patience=5)],
                               **FAST).fit(X, y)
    assert "valid_loss" not in no_valid.history[-1] and no_valid.history[0, "event_best"]


def test_bf16_and_channels_last_train_and_predict():
    X, y = make_clips(n_per_class=2)
    clf = PHCNNClassifier(max_epochs=1, runtime=Runtime(precision="bf16", channels_last=True), **FAST).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float32 and np.allclose(proba.sum(axis=1), 1, atol=1e-3)


def test_default_precision_is_fp32_on_every_cpu():
    # results must not depend on the CPU's flags: bf16 is opt-in
    assert PHCNNClassifier().runtime is None and PHCNNClassifier().runtime_.precision == "fp32"
    assert Runtime().resolved_precision("cpu") == "fp32"


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(),
                    reason="this CPU computes bf16 only by emulation (far slower); bf16 is checked where native")
def test_bf16_predictions_follow_fp32_within_bf16_rounding(fitted, data):
    *_, X_test, _ = data
    fp32 = fitted.predict_proba(X_test)
    fitted.set_params(runtime=Runtime(precision="bf16"))
    try:
        bf16 = fitted.predict_proba(X_test)
    finally:
        fitted.set_params(runtime=None)
    # bf16 keeps 8 mantissa bits (relative rounding 2**-8 per operation): probabilities agree to a few 1e-2
    np.testing.assert_allclose(bf16, fp32, atol=0.05)
    assert np.mean(bf16.argmax(1) == fp32.argmax(1)) >= 0.9


@pytest.mark.parametrize("arch", sorted(set(ARCHITECTURES) - {"phcnn-lstm"}))
def test_every_arch_trains_through_the_classifier(arch):
    X, y = make_clips(n_per_class=2, max_windows=1)
    clf = PHCNNClassifier(arch=arch, max_epochs=1, **FAST).fit(X, y)
    assert clf.predict_proba(X).shape == (len(X), 3)


def test_errors_before_fit_and_on_bad_input():
    X, y = make_clips(n_per_class=2)
    clf = PHCNNClassifier(max_epochs=1, **FAST)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    with pytest.raises(ValueError, match="one label per clip"):
        clf.fit(X, y[:-1])
    with pytest.raises(ValueError, match="single class"):
        clf.fit(X, np.full(len(X), "I"))
    with pytest.raises(ValueError, match="one subject per clip"):
        clf.fit(X, y, groups=[0, 1])
    with pytest.raises(ValueError, match="'arch' parameter"):
        PHCNNClassifier(arch="resnet").fit(X, y)
    with pytest.raises(TypeError, match=r"X\[0\]"):
        clf.fit([np.zeros((4, 128, 128, 3), np.uint8)] * len(y), y)
    with pytest.raises(ValueError, match="not in classes"):
        PHCNNClassifier(classes=["I", "II"], max_epochs=1, **FAST).fit(X, y)


@pytest.mark.slow
def test_fit_in_a_killed_process_resumes(tmp_path):
    """A real kill (SIGKILL mid-training) loses at most the epoch in progress."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    script = tmp_path / "train.py"
    # The process kills itself (SIGKILL, nothing flushed) as epoch 3 begins, after epoch 2's checkpoint:
    # where the kill lands does not depend on how fast this machine trains.
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from skorch.callbacks import Callback
        from test_classifier import make_clips, FAST
        from fnpgrade.classifier import PHCNNClassifier

        class KillAtEpoch3(Callback):
            def on_epoch_begin(self, net, **kwargs):
                if len(net.history) >= 3:  # the net has already opened this epoch's history row
                    os.kill(os.getpid(), signal.SIGKILL)

        X, y = make_clips(n_per_class=3)
        PHCNNClassifier(max_epochs=40, checkpoint_dir={str(tmp_path / 'ckpt')!r}, random_state=0,
                        callbacks=[KillAtEpoch3()], **FAST).fit(X, y)
    """))
    import os

    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(script)], env=env)
    assert proc.returncode == -9, f"the training process was not killed (exit status {proc.returncode})"
    done = len(read_history(tmp_path / "ckpt"))
    assert done == 2
    X, y = make_clips(n_per_class=3)
    resumed = PHCNNClassifier(max_epochs=40, checkpoint_dir=tmp_path / "ckpt", random_state=0, **FAST).fit(X, y)
    assert resumed.history[:, "epoch"] == list(range(1, 41))


@pytest.mark.slow
def test_same_random_state_gives_identical_predictions_across_processes():
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, numpy as np, torch; torch.set_num_threads(1); "
        f"sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "from test_classifier import make_clips, FAST; from fnpgrade.classifier import PHCNNClassifier; "
        "X, y = make_clips(n_per_class=3); "
        "p = PHCNNClassifier(max_epochs=2, random_state=11, **FAST).fit(X, y).predict_proba(X); "
        "sys.stdout.write(p.astype(np.float32).tobytes().hex())"
    )
    outputs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
               for _ in range(2)]
    assert outputs[0] == outputs[1] and len(outputs[0]) > 0


@pytest.mark.parametrize("flags, training, prediction", [
    ({"avx2", "fma"}, "fp32", "fp32"),
    ({"avx2", "avx512f", "avx512_bf16"}, "bf16", "fp32"),  # native bf16 dot products: faster to train, not to predict
    ({"avx512_bf16", "amx_bf16", "amx_tile"}, "bf16", "bf16")])
def test_auto_precision_is_bf16_only_where_the_cpu_computes_it_natively_and_faster(monkeypatch, flags, training,
                                                                                   prediction):
    from fnpgrade.nn import runtime

    monkeypatch.setattr(runtime, "_cpu_flags", lambda: set(flags))
    assert Runtime("auto").resolved_precision("cpu", training=True) == training
    assert Runtime("auto").resolved_precision("cpu") == prediction
    assert Runtime().resolved_precision("cpu", training=True) == "fp32"  # the default never reads the flags
    assert Runtime("bf16").resolved_precision("cpu") == "bf16"


def test_training_steps_and_predictions_run_under_their_own_precision(monkeypatch, data):
    """On an AVX512-BF16 CPU without AMX, "auto" trains under bf16 autocast and predicts in float32."""
    from fnpgrade.nn import runtime

    monkeypatch.setattr(runtime, "_cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    seen = []
    original = Runtime.autocast

    def spy(self, device, training=False):
        seen.append((training, self.resolved_precision(device, training)))
        return original(self, device, training)

    monkeypatch.setattr(Runtime, "autocast", spy)
    X, y = data[0], data[1]
    clf = PHCNNClassifier(max_epochs=1, train_split=None, runtime=Runtime("auto"), **FAST).fit(X, y)
    assert set(seen) == {(True, "bf16")}
    seen.clear()
    clf.predict_proba(X)
    assert set(seen) == {(False, "fp32")}


def test_runtime_settings_resolve_per_device_and_are_checked():
    runtime = PHCNNClassifier().runtime_
    assert runtime == Runtime() and (runtime.precision, runtime.channels_last, runtime.fuse_batchnorm,
                                     runtime.activation_checkpointing, runtime.n_threads) == \
        ("fp32", "auto", True, False, None)
    assert Runtime("bf16").resolved_precision("cpu") == "bf16"
    assert Runtime("auto").resolved_precision("cpu") in ("fp32", "bf16")
    assert Runtime().uses_channels_last("cpu") and not Runtime(channels_last=False).uses_channels_last("cpu")
    for bad in (dict(precision="fp16"), dict(channels_last="yes"), dict(n_threads=0), dict(n_threads="auto"),
                dict(fuse_batchnorm=1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Runtime(**bad)
    clf = PHCNNClassifier(runtime=Runtime(n_threads=1))
    assert clone(clf).runtime == Runtime(n_threads=1) and repr(clf.runtime).startswith("Runtime(precision=")


def test_fused_prediction_matches_the_unfused_network_and_leaves_it_untouched(fitted, data):
    *_, X_test, _ = data
    fused = fitted.predict_windows(X_test)
    fitted.set_params(runtime=Runtime(fuse_batchnorm=False))
    try:
        plain = fitted.predict_windows(X_test)
    finally:
        fitted.set_params(runtime=None)
    np.testing.assert_allclose(np.concatenate(fused), np.concatenate(plain), atol=1e-4)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in fitted.module_.modules())
    assert "_inference_module" not in vars(fitted)


def test_n_threads_applies_during_fit_and_is_restored():
    seen = []

    class Spy(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append(torch.get_num_threads())

    before = torch.get_num_threads()
    X, y = make_clips(n_per_class=1)
    PHCNNClassifier(max_epochs=1, runtime=Runtime(n_threads=2), callbacks=[Spy()], **FAST).fit(X, y)
    assert seen == [2] and torch.get_num_threads() == before


def test_fast_defaults_compute_the_same_first_step_as_plain_fp32():
    # the baseline settings (fp32, NCHW) and the defaults: same loss and gradients up to float rounding
    # (no dropout: its masks are random; training then diverges only as float rounding makes it)
    X, y = make_clips(n_per_class=2, max_windows=1)
    nets = []
    for options in (dict(runtime=Runtime(channels_last=False)), {}):
        clf = PHCNNClassifier(max_epochs=0, random_state=0, train_split=None, module__dropout=0.0,
                              **{**FAST, "width": 0.25}, **options).fit(X, y)
        clf.module_.train()
        batch, labels = WindowDataset(X, clf.classes_.searchsorted(y)).gather(np.arange(len(X)))
        loss = clf.get_loss(clf.infer(batch), labels, training=True)
        loss.backward()
        nets.append((loss.item(), [p.grad.clone() for p in clf.module_.parameters()]))
    (loss_plain, grads_plain), (loss_fast, grads_fast) = nets
    assert loss_fast == pytest.approx(loss_plain, rel=1e-4)
    # NHWC batch norm in float32 drifts by up to ~3% of a parameter's scale (NCHW: 4e-5 from float64),
    # which is why "auto" trains NCHW on CPU; here the defaults must train exactly like plain fp32
    for a, b in zip(grads_fast, grads_plain):
        assert (a - b).abs().max() <= 1e-4 * b.abs().max() + 1e-7


@pytest.mark.slow
def test_fast_defaults_learn_as_well_as_plain_fp32():
    # accuracy of the baseline settings and the defaults over seeds, on held-out clips
    accuracy = {"plain": [], "fast": []}
    for seed in range(3):
        X, y = make_clips(n_per_class=8, seed=seed)
        X_test, y_test = make_clips(n_per_class=4, seed=10 + seed)
        for name, options in (("plain", dict(runtime=Runtime(channels_last=False, fuse_batchnorm=False))),
                              ("fast", {})):
            clf = PHCNNClassifier(max_epochs=10, random_state=seed, **{**FAST, "width": 0.25}, **options).fit(X, y)
            accuracy[name].append(np.mean(clf.predict(X_test) == y_test))
    assert abs(np.mean(accuracy["fast"]) - np.mean(accuracy["plain"])) <= 0.2, accuracy



def test_fused_prediction_folds_the_network_inside_a_torch_compile_wrapper(fitted):
    # skorch's compile=True leaves module_ a torch.compile wrapper; a copy of the wrapper would
    # still call the unfolded original. (Wrapping compiles nothing until the first call.)
    clf = copy.deepcopy(fitted)
    clf.module_ = torch.compile(clf.module_)
    fused = clf.runtime_.prediction_module(clf.module_, "cpu")
    assert not hasattr(fused, "_orig_mod")
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in clf.module_._orig_mod.modules())


def test_channels_last_auto_trains_nchw_and_predicts_nhwc_on_cpu(data):
    assert not Runtime().uses_channels_last("cpu", training=True) and Runtime().uses_channels_last("cpu")
    assert Runtime(channels_last=True).uses_channels_last("cpu", training=True)
    X, y = make_clips(n_per_class=1, max_windows=1)
    clf = PHCNNClassifier(max_epochs=0, device="cpu", **FAST).fit(X, y)
    assert not clf.module_.channels_last and clf.runtime_.prediction_module(clf.module_, "cpu").channels_last
    forced = PHCNNClassifier(max_epochs=0, runtime=Runtime(channels_last=True), device="cpu", **FAST).fit(X, y)
    assert forced.module_.channels_last


def test_a_network_of_ones_own_is_used_as_it_is():
    own = dict(module=torch.nn.Linear, module__in_features=4, module__out_features=3, verbose=0)
    assert isinstance(PHCNNClassifier(**own).initialize().module_, torch.nn.Linear)


def test_mirror_augment_flips_whole_windows_in_training_only():
    from fnpgrade.nn import build_network

    net = build_network("phcnn-lstm", n_classes=3, width=0.125).set_mirror_augment(True)
    rng = np.random.default_rng(0)
    arrays = {"face": torch.from_numpy(rng.integers(0, 255, (200, 2, 16, 16, 3), dtype=np.uint8)),
              "brow": torch.from_numpy(rng.integers(0, 255, (200, 2, 8, 24, 3), dtype=np.uint8)),
              "mouth": torch.from_numpy(rng.integers(0, 255, (200, 2, 8, 24, 3), dtype=np.uint8))}
    torch.manual_seed(0)
    out = net._mirrored_half(arrays)
    flipped = {k: np.array([torch.equal(out[k][i], v[i].flip(-2)) for i in range(200)]) for k, v in arrays.items()}
    kept = {k: np.array([torch.equal(out[k][i], v[i]) for i in range(200)]) for k, v in arrays.items()}
    # every window is either left as it is or mirrored, in all three regions alike, about half of them mirrored
    assert np.all(flipped["face"] ^ kept["face"])
    assert np.array_equal(flipped["face"], flipped["brow"]) and np.array_equal(flipped["face"], flipped["mouth"])
    assert 70 < flipped["face"].sum() < 130
    torch.manual_seed(0)
    again = net._mirrored_half(arrays)
    assert all(torch.equal(again[k], out[k]) for k in arrays)  # seeded: repeatable
    # evaluation mode never flips: same logits with and without the option
    X, _ = make_clips(n_per_class=1, max_windows=1)
    batch = {k: torch.from_numpy(getattr(X[0], k)) for k in ("face", "brow", "mouth")}
    net.eval()
    with torch.no_grad():
        on = net(**batch)
        net.set_mirror_augment(False)
        assert torch.equal(net(**batch), on)


def test_mirror_augment_trains_predicts_unflipped_and_is_checked():
    X, y = make_clips(n_per_class=2, max_windows=1)
    clf = PHCNNClassifier(max_epochs=2, mirror_augment=True, random_state=0, **FAST).fit(X, y)
    assert clf.module_.mirror_augment
    plain = PHCNNClassifier(max_epochs=2, random_state=0, **FAST).fit(X, y)
    assert not plain.module_.mirror_augment
    # the flips changed what the network trained on ...
    assert not np.allclose(clf.predict_proba(X), plain.predict_proba(X))
    # ... but never what it predicts on: turning the option off after training changes no prediction
    proba = clf.predict_proba(X)
    clf.module_.set_mirror_augment(False)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    assert clone(clf).get_params()["mirror_augment"] is True
    assert pickle.loads(pickle.dumps(clf)).module_.mirror_augment is False
    with pytest.raises(ValueError, match="mirror_augment"):
        PHCNNClassifier(max_epochs=1, mirror_augment="yes", **FAST).fit(X, y)
    own = dict(module=torch.nn.Linear, module__in_features=4, module__out_features=3, verbose=0)
    with pytest.raises(ValueError, match="mirror_augment=True needs a fnpgrade WindowNetwork"):
        PHCNNClassifier(mirror_augment=True, **own).initialize()


# --------------------------------------------------------------------------- batch-norm recalibration
def make_cue_clips(n_per_class, seed, face=32, roi=(8, 24), length=4):
    """Tiny one-window clips with a visible cue: a bright band in the level's third of the face, and ROIs
    whose brightness follows the level, under noise. 32x32 faces and 8x24 ROIs are the smallest sizes
    every network's poolings take (VGG16 pools 5 times)."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n_per_class * len(LEVELS)):
        level = i % len(LEVELS)
        face_frames = rng.integers(0, 60, (1, length, face, face, 3), dtype=np.uint8)
        third = face // 3
        face_frames[:, :, level * third:(level + 1) * third] += np.uint8(150)
        brow = rng.integers(0, 60, (1, length, *roi, 3), dtype=np.uint8) + np.uint8(60 * level)
        mouth = rng.integers(0, 60, (1, length, *roi, 3), dtype=np.uint8) + np.uint8(60 * level)
        X.append(WindowedClip(face_frames, brow, mouth, source=f"cue{i}"))
        y.append(LEVELS[level])
    return X, np.array(y, dtype=object)


@pytest.fixture(scope="module")
def cue_data():
    return make_cue_clips(8, seed=0), make_cue_clips(6, seed=1)


# 24 clips of one window, batches of 8, no validation split: 8 epochs of 3 SGD steps. lr 0.02 is where,
# measured without the recalibration, phcnn, senet and vgg16-lstm predicted one class (accuracy 1/3) or two
SHORT_TRAINING = dict(width=0.25, max_epochs=8, batch_size=8, lr=0.02, train_split=None, random_state=0,
                      verbose=0)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_short_training_predicts_the_visible_cue_on_new_clips_in_eval_mode(arch, cue_data):
    (X, y), (X_new, y_new) = cue_data
    clf = PHCNNClassifier(arch=arch, **SHORT_TRAINING).fit(X, y)
    predicted = clf.predict(X_new)
    assert sorted(set(predicted)) == ["I", "II", "III"], predicted  # not one class
    assert np.mean(predicted == y_new) >= 0.9, np.mean(predicted == y_new)  # 1.0 measured; chance 1/3


def _running_stats(module):
    return {k: v.clone() for k, v in module.state_dict().items() if "running_" in k}


def test_batchnorm_statistics_are_recomputed_after_the_best_epoch_is_restored(cue_data):
    from fnpgrade.nn.layers import recalibrate_batchnorm

    (X, y), _ = cue_data
    clf = PHCNNClassifier(arch="phcnn", **{**SHORT_TRAINING, "max_epochs": 4}).fit(X, y)
    recal = dict(clf.callbacks_)["bn_recalibration"]
    assert recal.n_batches_ == 3 and recal.dataset_train_ is None  # the data is not kept in the net
    after_fit = _running_stats(clf.module_)
    # recomputing on the training windows with the restored weights gives the same statistics again
    dataset = WindowDataset(X)
    batches = (dataset.gather(np.arange(s, min(s + 8, len(dataset))))[0] for s in range(0, len(dataset), 8))
    assert recalibrate_batchnorm(clf.module_, batches) == 3
    for name, value in _running_stats(clf.module_).items():
        torch.testing.assert_close(value, after_fit[name], rtol=1e-5, atol=1e-6)
    # and differ from what training left (the restored best epoch's lagging statistics)
    lagging = PHCNNClassifier(arch="phcnn", callbacks__bn_recalibration=None,
                              **{**SHORT_TRAINING, "max_epochs": 4}).fit(X, y)
    stale = _running_stats(lagging.module_)
    assert max(float((stale[k] - after_fit[k]).abs().max()) for k in stale) > 1e-2
    for name, value in lagging.module_.state_dict().items():  # same weights: only the statistics differ
        if "running_" not in name and "num_batches" not in name:
            torch.testing.assert_close(value, clf.module_.state_dict()[name])


def test_batchnorm_recalibration_leaves_the_global_rng_and_respects_mirroring(cue_data):
    (X, y), _ = cue_data
    clf = PHCNNClassifier(arch="senet", mirror_augment=True, **{**SHORT_TRAINING, "max_epochs": 1}).fit(X, y)
    recal = dict(clf.callbacks_)["bn_recalibration"]
    state = torch.get_rng_state()
    recal.dataset_train_ = WindowDataset(X)
    recal.on_train_end(clf)
    assert torch.equal(torch.get_rng_state(), state)  # dropout off, mirror images not drawn at random
    stem_norm = clf.module_.branch.body[1]
    # the stem's batch norm saw every window and its mirror image: mean of the first conv's outputs over both
    net = clf.module_.eval()
    with torch.no_grad():
        images = net.images(torch.from_numpy(np.concatenate([c.face for c in X])))
        conv = clf.module_.branch.body[0]
        both = torch.cat([conv(images), conv(images.flip(-1))])
    torch.testing.assert_close(stem_norm.running_mean, both.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- the measures branch
def make_measures_clips(n_per_class, seed, k=29, face=32, roi=(8, 24), length=4):
    """One-window clips of random pixels whose per-frame measures alone carry the level.

    Shaped like :class:`~fnpgrade.measures.FrameMeasures`' columns: per region the weaker and the
    stronger side's displacement since frame 0, their ratio and difference. Both sides move the same
    at level I; the weaker side moves 0.55 as far at level II and 0.15 as far at level III. How far the
    face moves at all differs from clip to clip, so no single displacement tells the level; the ratio
    (and the difference relative to the stronger side) does.
    """
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n_per_class * len(LEVELS)):
        level = i % len(LEVELS)
        ratio = np.clip([1.0, 0.55, 0.15][level] + rng.normal(0, 0.08), 0, 1)
        peak = rng.uniform(0.03, 0.3)
        measures = np.abs(rng.normal(0, 0.005, (1, length, k))).astype(np.float32)  # other columns: noise
        for region in range(k // 4):
            strong = peak * rng.uniform(0.5, 1.0) * np.arange(length) / (length - 1)
            weak = strong * np.clip(ratio + rng.normal(0, 0.05), 0, 1)
            measures[0, :, 4 * region:4 * region + 4] = np.column_stack(
                [weak, strong, (weak + 0.01) / (strong + 0.01), strong - weak])
        X.append(WindowedClip(rng.integers(0, 256, (1, length, face, face, 3), dtype=np.uint8),
                              rng.integers(0, 256, (1, length, *roi, 3), dtype=np.uint8),
                              rng.integers(0, 256, (1, length, *roi, 3), dtype=np.uint8),
                              source=f"measured{i}", measures=measures))
        y.append(LEVELS[level])
    return X, np.array(y, dtype=object)


@pytest.fixture(scope="module")
def measures_data():
    return make_measures_clips(12, seed=0), make_measures_clips(10, seed=1)


MEASURES_TRAINING = dict(width=0.25, max_epochs=16, batch_size=12, lr=0.02, train_split=None, random_state=0,
                         verbose=0)


@pytest.fixture(scope="module")
def measures_fitted(measures_data):
    (X, y), _ = measures_data
    return PHCNNClassifier(measures=True, mirror_augment=True, **MEASURES_TRAINING).fit(X, y)


def test_the_measures_network_learns_a_level_only_the_measures_carry_on_new_clips(measures_fitted, measures_data):
    (X, y), (X_new, y_new) = measures_data
    assert measures_fitted.n_measures_ == 29 and measures_fitted.module_.inputs[-1] == "measures"
    accuracy = np.mean(measures_fitted.predict(X_new) == y_new)
    assert accuracy >= 0.9, accuracy  # 0.97 measured; chance is 1/3
    # the same network on the pixels alone (random here) cannot: the level is in the measures only
    pixels = PHCNNClassifier(mirror_augment=True, **MEASURES_TRAINING).fit(X, y)
    assert pixels.n_measures_ is None and "measures" not in pixels.module_.inputs
    assert np.mean(pixels.predict(X_new) == y_new) <= 0.6


def test_training_loss_adds_the_measures_heads_loss(measures_fitted):
    torch.manual_seed(0)
    logits, measures_logits = torch.randn(5, 3), torch.randn(5, 3)
    y = torch.tensor([0, 1, 2, 1, 0])
    criterion = measures_fitted.criterion_
    loss = measures_fitted.get_loss((logits, measures_logits), y, training=True)
    torch.testing.assert_close(loss, criterion(logits, y) + criterion(measures_logits, y))
    torch.testing.assert_close(measures_fitted.get_loss(logits, y), criterion(logits, y))


def test_measures_are_scaled_with_the_training_windows_robust_statistics(measures_fitted, measures_data):
    from fnpgrade.nn.branches import robust_scaling

    (X, _), _ = measures_data
    center, scale = robust_scaling(np.concatenate([c.measures for c in X]))
    branch = measures_fitted.module_.features.measures
    np.testing.assert_allclose(branch.center.numpy(), center)
    np.testing.assert_allclose(branch.scale.numpy(), scale)
    np.testing.assert_allclose(measures_fitted.measures_scaling_[1], scale)


def test_measures_classifier_pickles_clones_and_predicts_fused_as_unfused(measures_fitted, measures_data):
    _, (X_new, _) = measures_data
    proba = measures_fitted.predict_proba(X_new)
    again = pickle.loads(pickle.dumps(measures_fitted))
    np.testing.assert_allclose(again.predict_proba(X_new), proba, rtol=1e-6, atol=1e-7)
    assert clone(measures_fitted).get_params()["measures"] is True
    unfused = copy.deepcopy(measures_fitted).set_params(runtime=Runtime(fuse_batchnorm=False))
    np.testing.assert_allclose(unfused.predict_proba(X_new), proba, atol=1e-4)
    # mirroring the images leaves the measures as they are (they are side-symmetric)
    batch = {k: torch.from_numpy(np.concatenate([getattr(c, k) for c in X_new[:4]]))
             for k in ("face", "brow", "mouth", "measures")}
    mirrored = measures_fitted.module_.mirrored(batch)
    assert torch.equal(mirrored["measures"], batch["measures"]) and torch.equal(mirrored["face"],
                                                                                  batch["face"].flip(-2))
    torch.manual_seed(0)
    half = measures_fitted.module_._mirrored_half(batch)
    assert torch.equal(half["measures"], batch["measures"])


def test_mirror_augment_and_recalibration_see_the_measures_of_every_window(measures_data):
    (X, y), _ = measures_data
    clf = PHCNNClassifier(measures=True, mirror_augment=True, **{**MEASURES_TRAINING, "max_epochs": 1}).fit(X, y)
    recal = dict(clf.callbacks_)["bn_recalibration"]
    assert recal.n_batches_ == 3
    # the branch's first batch norm saw every training window (twice: with its mirror image, same measures)
    branch = clf.module_.features.measures.eval()
    with torch.no_grad():
        m = torch.from_numpy(np.concatenate([c.measures for c in X]).reshape(-1, 29))
        first = branch.body[0](((m - branch.center) / branch.scale).clamp(-branch.clip, branch.clip))
    torch.testing.assert_close(branch.body[1].running_mean, first.mean(0), rtol=1e-4, atol=1e-5)


def test_measures_errors_name_the_clip(measures_data, measures_fitted):
    import dataclasses

    (X, y), (X_new, _) = measures_data
    bare = [dataclasses.replace(c, measures=None) for c in X]
    with pytest.raises(ValueError, match=r"measures=True, but X\[0\] \(measured0\) carries no per-frame"):
        PHCNNClassifier(measures=True, **MEASURES_TRAINING).fit(bare, y)
    with pytest.raises(ValueError, match=r"X\[3\] \(measured3\) carries no per-frame measures but X\[0\]"):
        PHCNNClassifier(measures=True, **MEASURES_TRAINING).fit(X[:3] + bare[3:], y)
    with pytest.raises(ValueError, match=r"X\[0\] \(measured0\) carries no per-frame measures, but the "
                                         r"classifier was trained with measures=True on 29"):
        measures_fitted.predict([dataclasses.replace(c, measures=None) for c in X_new])
    fewer = [dataclasses.replace(c, measures=c.measures[..., :20]) for c in X_new]
    with pytest.raises(ValueError, match=r"X\[0\] \(measured0\) has 20 measures per frame, but the classifier "
                                         r"was trained on 29"):
        measures_fitted.predict(fewer)
    with pytest.raises(ValueError, match="measures=True needs arch 'phcnn-lstm' or 'phcnn'.*'senet'"):
        PHCNNClassifier(arch="senet", measures=True, **MEASURES_TRAINING).fit(X, y)
    with pytest.raises(ValueError, match="'measures' parameter"):
        PHCNNClassifier(measures="yes", **MEASURES_TRAINING).fit(X, y)
    own = dict(module=torch.nn.Linear, module__in_features=4, module__out_features=3, verbose=0)
    with pytest.raises(ValueError, match="measures=True needs a network that reads 'measures'"):
        PHCNNClassifier(measures=True, **own).initialize()


def test_the_architectures_names_are_known_without_torch():
    """The command line offers the networks by name without loading torch or scikit-learn (``fnpgrade --help``
    answers at once); the names are the registry's."""
    import subprocess
    import sys

    from fnpgrade.nn.names import ARCHITECTURE_NAMES

    assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES
    code = ("import sys, fnpgrade.cli; fnpgrade.cli.build_parser(); "
            "print('torch' in sys.modules, 'sklearn' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False False", done.stderr[-2000:]
