"""Training on several processes or GPUs: :class:`AcceleratedPHCNNClassifier` (skorch's ``AccelerateMixin``).

Run the training script once per device with HF Accelerate, which starts the
processes and sets up DDP (``torch.distributed``)::

    accelerate launch --multi_gpu --num_processes 4 train.py     # 4 GPUs of one machine
    accelerate launch --cpu --num_processes 2 train.py           # 2 CPU processes (gloo), as in the tests

Every process builds the same data and the same classifier; each one trains on
its share of every batch, DDP averages the gradients, and the result is the
model one process would have trained (see :class:`AcceleratedPHCNNClassifier`
for what "the same" means and where it stops).

Why the classifier shards its batches itself: ``Accelerator.prepare`` shards
only a ``torch.utils.data.DataLoader`` (through its sampler) and passes any
other iterable through unchanged, so with the classifier's own
:class:`~fnpgrade.nn.data.WindowLoader` every process would train on every
window (N times the work for one process's result). Wrapping the windows in a
``DataLoader`` instead would lose what the loader is for: one ``np.stack`` per
input and batch instead of per-window items plus collate, and a shuffling
order that depends only on ``(seed, epoch)``, which makes resumed runs exact.
:class:`ShardedWindowLoader` keeps both: every process draws the same global
order, cuts the same global batches, and takes its own part of each.
"""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import LRScheduler
from skorch.dataset import unpack_data
from skorch.hf import AccelerateMixin
from torch.nn.modules.batchnorm import _BatchNorm

from ..classifier import PHCNNClassifier
from ..nn.callbacks import ReplacingCheckpoint, checkpoint_callbacks
from ..nn.data import WindowLoader
from ..nn.seeding import derived_seed

__all__ = ["AcceleratedPHCNNClassifier", "ShardedWindowLoader", "ProcessGroupBatchNorm",
           "convert_batchnorm", "revert_batchnorm"]


# ---------------------------------------------------------------------------------------------- data
class ShardedWindowLoader(WindowLoader):
    """A :class:`~fnpgrade.nn.data.WindowLoader` yielding this process's part of every global batch.

    All processes draw the same order (same ``seed`` and epoch) and cut the
    same batches of ``batch_size`` windows; process ``rank`` takes part
    ``rank`` of ``np.array_split(batch, num_processes)``. So ``batch_size`` is
    the global batch, as in a one-process run with the same parameters, and
    every process takes the same number of steps (DDP needs that: a process
    with one batch more waits forever for the others).

    Parameters
    ----------
    dataset : WindowDataset
    batch_size : int, default=64
        Windows per global batch (all processes together).
    rank : int, default=0
        This process's index.
    num_processes : int, default=1
    **kwargs
        The other :class:`~fnpgrade.nn.data.WindowLoader` arguments
        (``shuffle``, ``drop_last``, ``inputs``, ``seed``, ``start_epoch``,
        ``pin_memory``).

    Notes
    -----
    A last global batch of fewer than ``2 * num_processes`` windows is
    dropped (the order changes every epoch, so no window is always left out):
    each process needs at least two windows, as batch norm cannot train on one
    (the one-process loader drops only a last batch of one window).
    """

    def __init__(self, dataset, batch_size=64, rank=0, num_processes=1, **kwargs):
        super().__init__(dataset, batch_size=batch_size, **kwargs)
        self.rank = int(rank)
        self.num_processes = int(num_processes)
        if not 0 <= self.rank < self.num_processes:
            raise ValueError(f"rank={rank} is not one of the {num_processes} processes.")
        if self.num_processes > 1 and self.batch_size < 2 * self.num_processes:
            raise ValueError(f"batch_size={batch_size} gives some of the {num_processes} processes fewer than 2 "
                             f"windows per batch; use batch_size >= {2 * self.num_processes} (it is the global "
                             "batch, split between the processes).")

    def _n_used(self, n):
        stop = super()._n_used(n)
        if self.num_processes > 1 and 0 < stop % self.batch_size < 2 * self.num_processes:
            stop -= stop % self.batch_size
        return stop

    def __iter__(self):
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)
        self.epoch += 1
        for start in range(0, self._n_used(n), self.batch_size):
            part = np.array_split(order[start:start + self.batch_size], self.num_processes)[self.rank]
            X, y = self.dataset.gather(part, self.inputs)
            if self.pin_memory:
                X = {k: v.pin_memory() for k, v in X.items()}
            yield X, y


# ---------------------------------------------------------------------------------------------- batch norm
def _distributed():
    return torch.distributed.is_available() and torch.distributed.is_initialized() \
        and torch.distributed.get_world_size() > 1


class _SumOverProcesses(torch.autograd.Function):
    """``all_reduce(SUM)`` with its gradient (the sum's gradient is the sum of the processes' gradients).

    (``torch.distributed.nn.functional.all_reduce`` does the same but is
    deprecated, and the functional collectives that replace it have no
    gradient for all-reduce.)
    """

    @staticmethod
    def forward(ctx, tensor):
        total = tensor.clone()
        torch.distributed.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad):
        total = grad.clone()
        torch.distributed.all_reduce(total)
        return total


class ProcessGroupBatchNorm(_BatchNorm):
    """Batch norm whose training statistics are those of the global batch, over all processes.

    Like ``torch.nn.SyncBatchNorm``, but on any device: torch's refuses CPU
    tensors (``"SyncBatchNorm expected input tensor to be on GPU"``), so it
    cannot run on the gloo backend. Sums are exchanged with a differentiable
    all-reduce (two per layer and step:
    sums and counts, then squared deviations from the global mean, the
    two-pass variance float32 batch norm computes too), so gradients flow
    through the shared statistics as in one process. Outside training, or
    without an initialised process group of several processes, it is an
    ordinary batch norm. Made by :func:`convert_batchnorm`, undone by
    :func:`revert_batchnorm`.
    """

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {input.dim()}-D)")

    def forward(self, input):
        if not (self.training and _distributed()):
            return super().forward(input)
        all_reduce = _SumOverProcesses.apply
        self._check_input_dim(input)
        x = input.float()
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        local_count = x.new_full((1,), x.numel() // x.shape[1])
        sums = all_reduce(torch.cat([x.sum(dims), local_count]))
        count = sums[-1]
        mean = sums[:-1] / count
        centered = x - mean.view(shape)
        var = all_reduce((centered * centered).sum(dims)) / count
        out = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (count / (count - 1).clamp(min=1))
                self.running_mean.mul_(1 - m).add_(mean.to(self.running_mean.dtype), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.to(self.running_var.dtype), alpha=m)
        return out.to(input.dtype)


def _move_state(source, target):
    """Give ``target`` the parameters and buffers of ``source`` (the same tensors: optimizers keep working)."""
    for name in ("weight", "bias"):
        setattr(target, name, getattr(source, name))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        target._buffers[name] = source._buffers.get(name)
    target.train(source.training)
    return target


def convert_batchnorm(module):
    """Replace every batch norm in ``module`` by a :class:`ProcessGroupBatchNorm` sharing its tensors.

    Returns the module (replaced itself if it is a batch norm). The original
    class is remembered so :func:`revert_batchnorm` can restore it.
    """
    if isinstance(module, _BatchNorm) and not isinstance(module, ProcessGroupBatchNorm):
        synced = ProcessGroupBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                       module.track_running_stats)
        synced.original_class = type(module)
        return _move_state(module, synced)
    for name, child in module.named_children():
        module._modules[name] = convert_batchnorm(child)
    return module


def revert_batchnorm(module):
    """Undo :func:`convert_batchnorm`: the original batch norm classes, with the same tensors."""
    if isinstance(module, ProcessGroupBatchNorm):
        original = module.original_class(module.num_features, module.eps, module.momentum, module.affine,
                                          module.track_running_stats)
        return _move_state(module, original)
    for name, child in module.named_children():
        module._modules[name] = revert_batchnorm(child)
    return module


# ---------------------------------------------------------------------------------------------- classifier
class MainProcessCheckpoint(ReplacingCheckpoint):
    """skorch's ``Checkpoint`` written by the main process only, the others waiting until it is written.

    All processes hold the same weights; two writing one file at once could
    leave it half written, and a process loading the best epoch must not read
    it before it is complete. Every process reads it on resume, so under
    several machines ``checkpoint_dir`` must be on storage they share.
    """

    def _save_params(self, f, net, f_name, log_name):
        # skorch's NeuralNet.save_params, not the mixin's: the mixin's unwraps and wraps the network again, a
        # collective every process would have to enter; the callbacks already see the plain network
        if net.accelerator.is_main_process:
            NeuralNet.save_params(net, **{f_name: f"{f}.tmp"})
            os.replace(f"{f}.tmp", f)

    def save_model(self, net):
        super().save_model(net)
        net.accelerator.wait_for_everyone()  # nobody reads a file before it is whole


class _MainProcessPrint:
    """The epoch table's sink: printed by the main process only, and only with the net's ``verbose``."""

    def __init__(self, net):
        self.net = net

    def __call__(self, text):
        if self.net.verbose:
            self.net.accelerator.print(text)


class AcceleratedPHCNNClassifier(AccelerateMixin, PHCNNClassifier):
    """:class:`~fnpgrade.PHCNNClassifier` trained by HF Accelerate on several processes (DDP).

    Start the script with ``accelerate launch`` (see the module docstring);
    run as a plain script it trains on one process. Every process builds the
    same data and calls ``fit``; each trains on its part of every global batch
    (:class:`ShardedWindowLoader`) and DDP averages the gradients.

    Parameters
    ----------
    accelerator : accelerate.Accelerator
        Placement, processes and (optionally) its mixed precision. The
        classifier's own ``precision`` stays ``"fp32"`` by default; prefer one
        of the two, not both.
    sync_batchnorm : bool, default=True
        With several processes, batch norms normalise with the statistics of
        the global batch (:class:`ProcessGroupBatchNorm`, two small
        all-reduces per layer and step) and the network is then the one a
        single process would train. ``False`` normalises each process's part
        by its own statistics: less communication, but a different model
        (and, per process, batch statistics of ``batch_size / N`` windows).
        The fitted network has ordinary batch norms either way.
    unwrap_after_train : bool, default=True
        skorch's: after ``fit`` the network is the plain module with ordinary
        batch norms (predicting, :meth:`to_classifier`). A later ``fit`` or
        ``partial_fit`` wraps it again either way; ``False`` keeps the DDP
        wrapper and the synced batch norms, which prediction does not fold
        into the layers before them (``fuse_batchnorm``).
    **kwargs
        Every :class:`~fnpgrade.PHCNNClassifier` parameter. ``batch_size`` is
        the global batch (all processes together). ``device`` stays None: the
        accelerator places the network (``cuda:<local rank>`` or CPU).

    Notes
    -----
    What equals a one-process run with the same data and ``random_state``:
    the weights drawn, the validation split, the shuffling order, the global
    batches, and the loss and its gradients: each process's weighted cross
    entropy is scaled by its share of the global batch's class weight, so the
    DDP average of the gradients is the gradient of the global batch's
    weighted mean (plain DDP averages per-process means, which differs as
    soon as class weights or part sizes differ). The recorded ``train_loss``
    is the global batch's loss, the same on every process. Losses then agree
    to float rounding (measured in ``tests/test_accelerate.py``). What
    differs: dropout masks (each process draws its own from a stream derived
    from ``(seed_, rank)``; process 0 keeps the one-process stream), and
    ``mirror_augment`` draws likewise; without ``sync_batchnorm`` the batch
    statistics.

    Validation and the final batch-norm recalibration run on every process
    over all their windows (identical results, so every process keeps the
    same best epoch and statistics; validation costs N times its work, a
    fraction of training's). Prediction is not sharded either: any process,
    or process 0 alone, may predict. Only the main process prints the epoch
    table and writes checkpoints and ``save_params`` files.

    The estimator holds the ``Accelerator`` and so does not pickle; after
    ``fit`` use :meth:`to_classifier` for a :class:`~fnpgrade.PHCNNClassifier`
    with the fitted network (for a pipeline, :mod:`fnpgrade.persistence`).
    """

    def __init__(self, *args, accelerator, sync_batchnorm=True, **kwargs):
        super().__init__(*args, accelerator=accelerator, **kwargs)
        self.sync_batchnorm = sync_batchnorm

    _parameter_constraints = {**PHCNNClassifier._parameter_constraints, "sync_batchnorm": ["boolean"],
                              "unwrap_after_train": ["boolean"]}

    # ------------------------------------------------------------------ processes and device
    @property
    def _n_processes(self):
        return int(self.accelerator.num_processes)

    def _device(self):
        """The accelerator's device (``device`` stays None: the accelerator places the network)."""
        return torch.device(self.accelerator.device) if self.device is None else super()._device()

    def _plain(self):
        """The network without its DDP wrapper."""
        return self.accelerator.unwrap_model(self.module_, keep_fp32_wrapper=False)

    @contextmanager
    def _plain_module(self):
        """Run with ``module_`` the plain network: callbacks and checkpoints see the keys of a one-process run.

        (The DDP wrapper's ``state_dict`` prefixes every key with ``module.``,
        and it hides the network's attributes, such as ``inputs``.) The
        wrapper is put back unless the block unwrapped the network for good.
        """
        wrapped = self.module_
        plain = self._plain()
        if plain is wrapped:
            yield
            return
        self.module_ = plain
        try:
            yield
        finally:
            if self._wrapped_with_accelerator and self.module_ is plain:
                self.module_ = wrapped

    # ------------------------------------------------------------------ set-up
    def initialize(self):
        """:meth:`PHCNNClassifier.initialize` (seeds, network, loss, optimizer), then the accelerator's wrapping.

        skorch's mixin replaces ``initialize`` wholesale; the classifier's
        seeding must run, so it is called and the accelerator step added after.
        """
        self._wrapped_with_accelerator = False  # a new network: wrap it even if the last one stayed wrapped
        PHCNNClassifier.initialize(self)
        self._initialize_accelerator()
        return self

    def _epoch_seed(self, epoch):
        """Dropout and ``mirror_augment`` of process ``rank > 0`` draw from their own stream (process 0 keeps its)."""
        rank = int(self.accelerator.process_index)
        if rank == 0:
            return super()._epoch_seed(epoch)
        return derived_seed(self.seed_, epoch, rank)

    def _initialize_accelerator(self):
        if self._wrapped_with_accelerator:
            return self
        optimizer = getattr(self, "optimizer_", None)
        inner = getattr(optimizer, "optimizer", None)
        if isinstance(inner, torch.optim.Optimizer):  # unwrapped after the last fit: wrap the optimizer once only
            self.optimizer_ = inner
        if self.sync_batchnorm and self._n_processes > 1:
            self.module_ = convert_batchnorm(self.module_)
        # As the mixin's, except for the criteria: it passes them to accelerator.prepare too, which under
        # several processes wraps every module in DDP, and DDP refuses one without trainable parameters
        # (CrossEntropyLoss: "DistributedDataParallel is not needed when a module doesn't have any parameter
        # that requires a gradient"). A criterion without any is only moved to the device.
        with self._current_init_context("criterion"):
            for name in self._criteria:
                criterion = getattr(self, name + "_")
                if isinstance(criterion, torch.nn.Module):
                    if any(p.requires_grad for p in criterion.parameters()):
                        criterion = self.accelerator.prepare(criterion)
                    elif self.accelerator.device_placement:
                        criterion = criterion.to(self.accelerator.device)
                    setattr(self, name + "_", criterion)
        with self._current_init_context("module"):
            for name in self._modules:
                module = getattr(self, name + "_")
                if isinstance(module, torch.nn.Module):
                    setattr(self, name + "_", self.accelerator.prepare(module))
        with self._current_init_context("optimizer"):
            for name in self._optimizers:
                optimizer = getattr(self, name + "_")
                if isinstance(optimizer, torch.optim.Optimizer):
                    setattr(self, name + "_", self.accelerator.prepare(optimizer))
        for _, callback in self.callbacks_:
            if isinstance(callback, LRScheduler):
                callback.policy_ = self.accelerator.prepare(callback.policy_)
        self._wrapped_with_accelerator = True
        return self

    def _unwrap_accelerator(self):
        super()._unwrap_accelerator()
        if isinstance(getattr(self, "module_", None), torch.nn.Module):
            self.module_ = revert_batchnorm(self.module_)

    def _checkpoint_callbacks(self, dirname):
        return checkpoint_callbacks(dirname, checkpoint_class=MainProcessCheckpoint)

    def _initialize_callbacks(self):
        # the mixin's "auto" sink is accelerator.print, which PrintLog calls whatever `verbose` says
        # (it skips only the built-in print when verbose=0)
        if self.callbacks__print_log__sink == "auto":
            self.callbacks__print_log__sink = _MainProcessPrint(self)
        return super()._initialize_callbacks()

    def _get_param_names(self):
        # skorch lists every attribute not ending in "_"; the mixin's _wrapped_with_accelerator and this
        # class's private state are not parameters (sklearn's clone would pass them to __init__)
        return [name for name in super()._get_param_names() if not name.startswith("_")]

    def notify(self, method_name, **cb_kwargs):
        """Run the net's hooks and the callbacks on the plain network (see :meth:`_plain_module`)."""
        with self._plain_module():
            return super().notify(method_name, **cb_kwargs)

    def partial_fit(self, X, y=None, classes=None, groups=None, **fit_params):
        """Train ``max_epochs`` more epochs on all processes (see :meth:`PHCNNClassifier.partial_fit`).

        A network unwrapped by the last ``fit`` is wrapped again first; without
        that, each process would train its own copy on its part of the data.
        """
        if self.initialized_:
            self._initialize_accelerator()
        return super().partial_fit(X, y, classes=classes, groups=groups, **fit_params)

    # ------------------------------------------------------------------ data
    def get_iterator(self, dataset, training=False):
        """Training: this process's part of every global batch (:class:`ShardedWindowLoader`); else all windows.

        Not passed to ``accelerator.prepare``, which shards only DataLoaders
        (see the module docstring).
        """
        with self._plain_module():
            iterator = PHCNNClassifier.get_iterator(self, dataset, training=training)
        if training and type(iterator) is WindowLoader:
            iterator = ShardedWindowLoader(
                iterator.dataset, batch_size=iterator.batch_size, rank=self.accelerator.process_index,
                num_processes=self._n_processes, shuffle=iterator.shuffle, drop_last=iterator.drop_last,
                inputs=iterator.inputs, seed=iterator.seed, start_epoch=iterator.epoch,
                pin_memory=iterator.pin_memory)
        return iterator

    # ------------------------------------------------------------------ steps
    def _loss_weight(self, y):
        """What the criterion's mean divides by for targets ``y``: their class weights' sum, else their count."""
        criterion = self.criterion_
        if getattr(criterion, "reduction", "mean") != "mean":
            raise ValueError(f"AcceleratedPHCNNClassifier needs a criterion with reduction='mean' (the global batch's "
                             f"mean is rebuilt from each process's); got {criterion.reduction!r}.")
        weight = getattr(criterion, "weight", None)
        if weight is None:
            return torch.tensor(float(len(y)), device=y.device)
        return weight.to(y.device)[y].sum().float()

    def train_step_single(self, batch, **fit_params):
        """Forward and backward on this process's part, scaled so DDP's mean is the global batch's gradient.

        With ``w_r`` the criterion's normaliser on process ``r`` (its windows'
        class weights) and ``W`` their sum, the loss of the global batch is
        ``sum_r w_r L_r / W``; DDP divides the sum of the processes' gradients
        by N, so each process backpropagates ``N w_r / W * L_r``.
        """
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        with self.accelerator.autocast():
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        yi = yi.to(loss.device)
        w = self._loss_weight(yi)
        totals = torch.stack([w, w * loss.detach().float(), torch.tensor(float(len(yi)), device=loss.device)])
        if self._n_processes > 1:
            totals = self.accelerator.reduce(totals, reduction="sum")
        self._global_batch_size = int(totals[2].item())
        self.accelerator.backward(loss * (self._n_processes * w / totals[0]))
        return {"loss": totals[1] / totals[0], "y_pred": y_pred}

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        # skorch recorded this process's part size; the epoch's train_loss weighs the global losses by it
        if training and self._n_processes > 1:
            self.history.record_batch("train_batch_size", self._global_batch_size)
        super().on_batch_end(net, batch=batch, training=training, **kwargs)

    def evaluation_step(self, batch, training=False):
        # prediction is not sharded: every process predicts every window, so the mixin's gather_for_metrics
        # would return each row once per process
        return PHCNNClassifier.evaluation_step(self, batch, training=training)

    def _window_proba(self, X):
        # the plain network, never the DDP wrapper: its forward is a collective, and process 0 may predict alone
        with self._plain_module():
            return super()._window_proba(X)

    # ------------------------------------------------------------------ hand-over
    def to_classifier(self):
        """A fitted :class:`~fnpgrade.PHCNNClassifier` with this network, without the accelerator (picklable).

        Same parameters (on the CPU: ``device="cpu"``), classes, class weights, measures
        scaling, history and network weights; predictions are identical.
        """
        self.check_is_fitted()
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k not in ("accelerator", "sync_batchnorm", "unwrap_after_train", "device",
                               "callbacks__print_log__sink")}
        clf = PHCNNClassifier(device="cpu", **params)
        for name in ("classes_inferred_", "class_weight_", "input_shapes_", "n_measures_", "measures_scaling_"):
            if hasattr(self, name):
                setattr(clf, name, getattr(self, name))
        clf.initialize()
        clf.module_.load_state_dict(self._plain().state_dict())
        clf.module_.eval()
        clf.seed_ = self.seed_
        clf.history_ = copy.deepcopy(self.history_)  # its own: more training of this one leaves it unchanged
        return clf
