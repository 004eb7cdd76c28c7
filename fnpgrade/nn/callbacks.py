"""skorch callbacks of the classifier: the paper's learning-rate policy, window accuracy, the best epoch,
batch-norm recalibration, resumable checkpoints.

Each is skorch's own callback where skorch has one (``EpochScoring``,
``Checkpoint(load_best=True)``, ``LoadInitState``), configured or subclassed
at the extension point skorch documents.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback, Checkpoint, LoadInitState, LRScheduler, PassthroughScoring
from skorch.dataset import unpack_data

from .data import INPUTS, WindowDataset
from .layers import recalibrate_batchnorm

__all__ = ["PolynomialDecay", "RunLRScheduler", "RunLoss", "window_accuracy", "loss_improved", "BestInMemory",
           "BatchNormRecalibration", "ReplacingCheckpoint", "checkpoint_callbacks", "ResumeFromCheckpoint",
           "read_history"]


class PolynomialDecay:
    """The paper's polynomial learning-rate policy as a factor: ``(1 - epoch / total) ** power``.

    Used with ``torch.optim.lr_scheduler.LambdaLR``, which computes the rate in
    closed form from the base rate. (``PolynomialLR`` is chainable: it scales
    the current rate, so a resumed or warm-started run would decay twice.)

    Parameters
    ----------
    total : int
        Epochs of the run (``max_epochs``); less than 1 counts as 1.
    power : float, default=1.0

    Notes
    -----
    The values are stored as given and used when the factor is computed: the
    classifier builds its callbacks in ``set_params``, which must not raise
    (``fit`` validates ``max_epochs`` and ``lr_power``).
    """

    def __init__(self, total, power=1.0):
        self.total = total
        self.power = power

    def __call__(self, epoch):
        total = max(1, int(self.total))
        return max(0.0, 1.0 - min(epoch, total) / total) ** float(self.power)

    def __repr__(self):
        return f"PolynomialDecay(total={self.total}, power={self.power})"


class RunLRScheduler(LRScheduler):
    """skorch's ``LRScheduler``, counting epochs from the start of the current run.

    skorch positions the schedule at ``len(history)``; a warm-started ``fit``
    is a new run of ``max_epochs`` and starts the schedule again, while a run
    resumed from a checkpoint continues it. The net's ``run_start_epoch_``
    (history length when the run began) tells them apart.
    """

    def _get_scheduler(self, net, policy, **scheduler_kwargs):
        if "last_epoch" not in scheduler_kwargs:
            scheduler_kwargs["last_epoch"] = len(net.history) - getattr(net, "run_start_epoch_", 0) - 1
        return policy(net.optimizer_, **scheduler_kwargs)


def window_accuracy(net, X, y):
    """Accuracy over the windows of ``X`` (an ``EpochScoring`` scoring function).

    Under skorch's ``EpochScoring(use_caching=True)`` ``net.forward`` returns
    the logits the validation losses already computed: no second pass.
    """
    predicted = net.forward(X).argmax(dim=1).numpy()
    return float(np.mean(predicted == np.asarray(y)))


class RunLoss(PassthroughScoring):
    """skorch's ``PassthroughScoring`` whose ``*_best`` compares the epochs of the current run only.

    A run resumed from a checkpoint continues from the best loss of its saved
    epochs; a warm-started ``fit`` is a new run that picks its own best epoch
    (the net's ``run_start_epoch_`` tells them apart).
    """

    def on_train_begin(self, net, **kwargs):
        scores = [row[self.name] for row in net.history[getattr(net, "run_start_epoch_", 0):] if self.name in row]
        self.best_score_ = min(scores, default=np.inf)


def loss_improved(net):
    """``Checkpoint`` monitor: the validation loss is the run's best so far (the training loss without validation)."""
    row = net.history[-1]
    return bool(row.get("valid_loss_best", row.get("train_loss_best", False)))


class BestInMemory(Checkpoint):
    """skorch's ``Checkpoint(monitor=loss_improved, load_best=True)``, kept in memory instead of files.

    The best epoch's weights are copied into CPU tensors (in place once they
    exist: a fresh copy while the previous one is still referenced would hold
    two at once, 0.165 GiB for the paper's PHCNN-LSTM) and loaded into the
    network when training ends; the copy is then dropped, so a pickled net is
    not twice its size. History column ``event_best`` marks the epochs kept.
    """

    def __init__(self, monitor=loss_improved, event_name="event_best"):
        super().__init__(monitor=monitor, f_params=None, f_optimizer=None, f_criterion=None, f_history=None,
                         event_name=event_name, load_best=True)

    def initialize(self):
        self.best_state_ = None
        return super().initialize()

    def save_model(self, net):
        state = net.module_.state_dict()
        kept = self.best_state_
        if kept is not None and kept.keys() == state.keys() and all(
                kept[k].shape == v.shape and kept[k].dtype == v.dtype for k, v in state.items()):
            for k, v in state.items():
                kept[k].copy_(v.detach())
            return
        self.best_state_ = None  # drop the old copy before making the new one
        self.best_state_ = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}

    def on_train_end(self, net, **kwargs):
        if self.best_state_ is not None:
            net.module_.load_state_dict(self.best_state_)
        self.best_state_ = None

class BatchNormRecalibration(Callback):
    """When training ends, recompute the batch norms' running statistics on the training windows.

    After a short training the running statistics (an exponential average
    with momentum 0.1 over the last steps) lag the weights, and eval-mode
    predictions can collapse to one class while training-mode ones are right
    (a short SENet training: ``docs/architectures.md``). With the final
    weights (after :class:`BestInMemory` or the ``best`` checkpoint restored
    the best epoch: put this callback after it), every training window is run
    once through the network without gradient, in order, ``batch_size`` at a
    time, with only the batch norms in training mode (see
    :func:`~fnpgrade.nn.layers.recalibrate_batchnorm`): dropout is off and
    draws no random numbers. With ``mirror_augment`` each batch
    is run together with its mirror image, the exact half-and-half mixture
    training drew at random. The training windows are those of the last
    ``fit`` / ``partial_fit`` (the validation split's training part).

    Disable it with ``callbacks__bn_recalibration=None`` on the classifier.

    Parameters
    ----------
    batch_size : int or None, default=None
        Windows per forward pass; ``None`` = the net's training batch size.

    Attributes
    ----------
    n_batches_ : int
        Forward passes of the last recalibration (0: none was made).
    """

    def __init__(self, batch_size=None):
        self.batch_size = batch_size

    def initialize(self):
        self.n_batches_ = 0
        self.dataset_train_ = None
        return self

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        self.dataset_train_ = dataset_train

    def on_train_end(self, net, X=None, y=None, **kwargs):
        dataset, self.dataset_train_ = self.dataset_train_, None  # a pickled net must not hold the data
        if dataset is None and X is not None:  # no epoch ran (a resumed run that had finished)
            dataset, _ = net.get_split_datasets(X, y)
        self.n_batches_ = 0
        if dataset is None or not len(dataset):
            return
        # the eager network: a torch.compile wrapper would recompile for the new train/eval modes
        module = getattr(net.module_, "_orig_mod", net.module_)
        inputs = getattr(module, "inputs", INPUTS)
        mirror = bool(getattr(module, "mirror_augment", False)) and hasattr(module, "mirrored")
        weight = next(module.parameters(), None)
        device = "cpu" if weight is None else weight.device
        autocast = getattr(net, "_autocast", nullcontext)

        def forward(batch):
            if mirror:
                flipped = module.mirrored(batch)
                batch = {k: torch.cat([v, flipped[k]]) for k, v in batch.items()}
            with autocast():
                module(**{k: v.to(device, non_blocking=True) for k, v in batch.items()})

        batch_size = self.batch_size or net.get_params_for("iterator_train").get("batch_size", net.batch_size)
        if isinstance(dataset, WindowDataset):
            batches = _batches(dataset, batch_size, inputs)
        else:  # a custom train_split's dataset: the net's own (unshuffled) iterator
            batches = (unpack_data(batch)[0] for batch in net.get_iterator(dataset, training=False))
        self.n_batches_ = recalibrate_batchnorm(module, batches, forward)


def _batches(dataset, batch_size, inputs):
    """The windows of ``dataset`` in order, ``batch_size`` at a time; a last batch of one joins the one before.

    (Batch norm in training mode cannot take a single value per channel.)
    """
    n = len(dataset)
    batch_size = n if batch_size in (None, -1) else max(1, int(batch_size))
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    for i, start in enumerate(starts):
        stop = starts[i + 1] if i + 1 < len(starts) else n
        X, _ = dataset.gather(np.arange(start, stop), inputs)
        yield X


class ReplacingCheckpoint(Checkpoint):
    """skorch's ``Checkpoint``, each file written beside its target and then renamed over it.

    A run killed while saving leaves the previous epoch's file whole.
    """

    def _save_params(self, f, net, f_name, log_name):
        tmp = f"{f}.tmp"
        super()._save_params(tmp, net, f_name, log_name)
        if os.path.exists(tmp):
            os.replace(tmp, f)


def checkpoint_callbacks(dirname, monitor=loss_improved, checkpoint_class=ReplacingCheckpoint):
    """The callbacks of a resumable run in ``dirname``: ``[("resume", ...), ("best", ...), ("last", ...)]``.

    ``last`` (skorch's ``Checkpoint(monitor=None)``) saves the weights,
    optimizer and history after every epoch as ``last_params.pt``,
    ``last_optimizer.pt``, ``last_history.json``; ``best``
    (``Checkpoint(load_best=True)``) saves the best epoch's weights as
    ``best_params.pt`` and loads them when training ends; ``resume``
    (:class:`ResumeFromCheckpoint`, skorch's ``LoadInitState``) loads ``last``
    when training begins. ``resume`` goes first among the net's callbacks,
    so the scores see the loaded history.
    """
    best = checkpoint_class(monitor=monitor, dirname=str(dirname), fn_prefix="best_", f_optimizer=None,
                                f_criterion=None, f_history=None, event_name="event_best", load_best=True)
    last = checkpoint_class(monitor=None, dirname=str(dirname), fn_prefix="last_", f_criterion=None,
                                event_name=None)
    return [("resume", ResumeFromCheckpoint(last)), ("best", best), ("last", last)]


class ResumeFromCheckpoint(LoadInitState):
    """skorch's ``LoadInitState``; a checkpoint of another network is refused with a ValueError.

    (skorch would raise torch's ``load_state_dict`` error.)
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        try:
            super().on_train_begin(net, X=X, y=y, **kwargs)
        except (RuntimeError, ValueError, KeyError) as error:  # torch: keys, shapes or optimizer groups differ
            raise ValueError(
                f"{self.checkpoint.dirname}: the checkpoint there was written by another run (its network differs: "
                f"{str(error).splitlines()[0]}). Use an empty checkpoint_dir for a new run, or the same data and "
                "parameters to resume.") from error
        if net.verbose and len(net.history):
            print(f"Resuming from {Path(self.checkpoint.dirname)} after epoch {len(net.history)}.")


def read_history(dirname):
    """The history saved in ``dirname`` by :func:`checkpoint_callbacks` (a list of dicts), or None."""
    from skorch.history import History

    path = Path(dirname) / "last_history.json"
    return list(History.from_file(str(path))) if path.exists() else None
