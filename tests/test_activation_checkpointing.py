"""Activation checkpointing: same loss, gradients and batch-norm statistics as without it, less memory kept."""

import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from fnpgrade.classifier import PHCNNClassifier
from fnpgrade.clips import WindowedClip
from fnpgrade.nn import build_network
from fnpgrade.nn.layers import conv_segments, conv_stack
from fnpgrade.nn.runtime import Runtime

# tiny models run faster on one torch thread (fixture in conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")

LEVELS = np.array(["I", "II", "III"])
FACE, ROI = (32, 32), (16, 48)  # small images: every network here still pools them to >= 1 pixel


def tiny_network(arch, momentum=0.1):
    torch.manual_seed(0)
    sizes = {} if arch == "senet" else {"face_size": FACE} if arch in ("face-n1-lstm", "vgg16-lstm") \
        else {"face_size": FACE, "roi_size": ROI}
    # no dropout: its masks are random, and the comparison is of one deterministic step
    net = build_network(arch, n_classes=3, width=0.125, dropout=0.0, **sizes).train()
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum
    return net


def tiny_batch(n=3, length=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = {"face": FACE, "brow": ROI, "mouth": ROI}
    x = {k: torch.randint(0, 256, (n, length, h, w, 3), dtype=torch.uint8, generator=g) for k, (h, w) in shapes.items()}
    return x, torch.arange(n) % 3


def one_step(net, x, y):
    """Loss, gradients, and the state after one forward/backward and one SGD step."""
    inputs = {k: x[k] for k in net.inputs}
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss = torch.nn.functional.cross_entropy(net(**inputs), y)
    loss.backward()
    grads = [p.grad.clone() for p in net.parameters()]
    optimizer.step()
    return loss.item(), grads, {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("arch", ["phcnn-lstm", "phcnn", "face-n1-lstm", "vgg16-lstm", "senet"])
@pytest.mark.parametrize("momentum", [0.1, None])  # None: batch norm's cumulative average over batches
def test_checkpointing_gives_the_same_loss_gradients_and_batchnorm_statistics(arch, momentum):
    plain = tiny_network(arch, momentum)
    checkpointed = copy.deepcopy(plain).set_activation_checkpointing(True)
    initial = {k: v.clone() for k, v in plain.state_dict().items()}
    x, y = tiny_batch()
    loss_a, grads_a, state_a = one_step(plain, x, y)
    loss_b, grads_b, state_b = one_step(checkpointed, x, y)
    assert loss_b == pytest.approx(loss_a, rel=1e-5, abs=1e-6)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    stats = [k for k in state_a if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert stats
    for k in stats:
        torch.testing.assert_close(state_b[k], state_a[k], rtol=1e-5, atol=1e-6, msg=k)
        if k.endswith("num_batches_tracked"):
            # updated once per step, not once more by the recomputation in the backward pass
            assert int(state_b[k]) == int(initial[k]) + 1, k
    for k in state_a:  # weights after the SGD step too
        torch.testing.assert_close(state_b[k], state_a[k], rtol=1e-5, atol=1e-6, msg=k)


def _bytes_kept_for_backward(net, x, y):
    """Bytes of the distinct storages autograd keeps from the forward pass for the backward pass."""
    storages = {}

    def pack(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = torch.nn.functional.cross_entropy(net(**{k: x[k] for k in net.inputs}), y)
    loss.backward()
    return sum(storages.values())


def test_checkpointing_keeps_fewer_activations_for_the_backward_pass():
    plain = tiny_network("phcnn-lstm")
    checkpointed = copy.deepcopy(plain).set_activation_checkpointing(True)
    x, y = tiny_batch(n=4)
    parameters = sum(p.numel() * p.element_size() for p in plain.parameters())
    kept_plain = _bytes_kept_for_backward(plain, x, y) - parameters
    kept_checkpointed = _bytes_kept_for_backward(checkpointed, x, y) - parameters
    # per conv block only its input is kept (not the conv and batch-norm outputs, nor pooling indices)
    assert kept_checkpointed < 0.5 * kept_plain, (kept_checkpointed, kept_plain)


def test_checkpointing_does_nothing_in_evaluation():
    net = tiny_network("phcnn-lstm").eval()
    checkpointed = copy.deepcopy(net).set_activation_checkpointing(True)
    x, _ = tiny_batch()
    with torch.no_grad():
        torch.testing.assert_close(checkpointed(**x), net(**x), rtol=0, atol=0)
    with torch.inference_mode():
        torch.testing.assert_close(checkpointed(**x), net(**x), rtol=0, atol=0)


def test_conv_segments_put_each_pooling_with_the_block_before_it():
    stack, _, _ = conv_stack(3, [4, 4, "M", 8, "M"])
    segments = conv_segments(stack)
    assert [[type(m).__name__ for m in segment] for segment in segments] == \
        [["ConvBlock"], ["ConvBlock", "MaxPool2d"], ["ConvBlock", "MaxPool2d"]]


def make_clips(n_per_class=2, seed=0):
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n_per_class * len(LEVELS)):
        level = i % len(LEVELS)
        face = (rng.integers(0, 50, (1, 4, 128, 128, 3)) + 60 * level).astype(np.uint8)
        roi = (rng.integers(0, 50, (1, 4, 40, 120, 3)) + 60 * level).astype(np.uint8)
        X.append(WindowedClip(face, roi, roi.copy(), source=f"clip{i}"))
        y.append(LEVELS[level])
    return X, np.array(y, dtype=object)


def test_classifier_fit_with_checkpointing_matches_fit_without():
    # two epochs through skorch (no dropout, no validation split): same weights and running statistics
    X, y = make_clips()
    states = []
    for enabled in (False, True):
        clf = PHCNNClassifier(width=0.125, batch_size=4, lr=0.05, max_epochs=2, train_split=None, random_state=0,
                              module__dropout=0.0, verbose=0,
                              runtime=Runtime(activation_checkpointing=enabled)).fit(X, y)
        assert all(getattr(m, "activation_checkpointing", enabled) == enabled for m in clf.module_.modules())
        states.append(clf.module_.state_dict())
    for k in states[0]:
        torch.testing.assert_close(states[1][k], states[0][k], rtol=1e-5, atol=1e-6, msg=k)


def test_option_survives_get_params_clone_pickle_and_set_params():
    X, y = make_clips(n_per_class=1)
    clf = PHCNNClassifier(width=0.125, batch_size=4, max_epochs=1, train_split=None, verbose=0,
                          runtime=Runtime(activation_checkpointing=True))
    assert PHCNNClassifier().runtime_.activation_checkpointing is False
    assert clf.get_params()["runtime"].activation_checkpointing is True
    assert clone(clf).get_params()["runtime"].activation_checkpointing is True
    clf.fit(X, y)
    assert clf.module_.features.face.activation_checkpointing
    restored = pickle.loads(pickle.dumps(clf))
    assert restored.runtime.activation_checkpointing is True and restored.module_.features.face.activation_checkpointing
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    # changed between fits: applied at the next fit / partial_fit without re-initialising
    restored.set_params(runtime=None).partial_fit(X, y)
    assert not restored.module_.features.face.activation_checkpointing


@pytest.mark.parametrize("bad", ["auto", 1, None])
def test_invalid_option_is_refused(bad):
    with pytest.raises(ValueError, match="activation_checkpointing"):
        Runtime(activation_checkpointing=bad)


def test_best_epoch_copy_is_updated_in_place_and_restored():
    # a new copy made while the old one is alive held the weights twice: the peak of small-batch fits
    from skorch.callbacks import Callback

    class Spy(Callback):
        def initialize(self):
            self.pointers, self.weights = [], {}
            return self

        def on_epoch_end(self, net, **kwargs):
            keep_best = dict(net.callbacks_)["best"]
            self.pointers.append({k: v.data_ptr() for k, v in keep_best.best_state_.items()})
            self.weights[len(net.history)] = {k: v.clone() for k, v in net.module_.state_dict().items()}

    X, y = make_clips(n_per_class=2)
    spy = Spy()
    # without the batch-norm recalibration, which recomputes the running statistics after the restore:
    # the restored state is then exactly the best epoch's
    clf = PHCNNClassifier(width=0.125, batch_size=4, lr=0.05, max_epochs=4, train_split=None, random_state=0,
                          verbose=0, callbacks=[spy], callbacks__bn_recalibration=None).fit(X, y)
    assert all(p == spy.pointers[0] for p in spy.pointers[1:])
    kept = [row["epoch"] for row in clf.history if row["event_best"]]
    best = kept[-1]
    assert len(kept) > 1  # the copy was updated at least once
    for k, v in clf.module_.state_dict().items():
        torch.testing.assert_close(v, spy.weights[best][k], rtol=0, atol=0, msg=k)
    assert dict(clf.callbacks_)["best"].best_state_ is None
