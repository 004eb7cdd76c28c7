"""skorch callbacks of the classifier: window accuracy, best-epoch restore, batch-norm recalibration,
resumable checkpoints."""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback, LRScheduler
from skorch.dataset import unpack_data

from .data import INPUTS, WindowDataset
from .layers import recalibrate_batchnorm

__all__ = ["WindowAccuracy", "KeepBest", "BatchNormRecalibration", "EpochCheckpoint", "read_checkpoint",
           "PolynomialDecay", "RunLRScheduler"]


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


class WindowAccuracy(Callback):
    """Record the validation accuracy over windows (``valid_acc``) from the batches already computed.

    skorch's ``EpochScoring`` would call ``predict`` again on the validation
    set; the validation losses' forward passes already hold every prediction.
    """

    def __init__(self, name="valid_acc"):
        self.name = name

    def on_epoch_begin(self, net, **kwargs):
        self.correct_, self.total_ = 0, 0

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if training or y_pred is None or batch[1] is None:
            return
        y_true = batch[1].to(y_pred.device)
        self.correct_ += int((y_pred.argmax(dim=1) == y_true).sum())
        self.total_ += len(y_true)

    def on_epoch_end(self, net, **kwargs):
        if self.total_:
            net.history.record(self.name, self.correct_ / self.total_)


class KeepBest(Callback):
    """Keep the weights of the best epoch in memory and restore them when training ends.

    The score is ``monitor`` (validation loss by default; training loss when
    there is no validation set). Records ``best_epoch`` in the history.

    Parameters
    ----------
    monitor : str, default="valid_loss"
    fallback : str, default="train_loss"
        Used when ``monitor`` is not in the history (no validation split).
    """

    def __init__(self, monitor="valid_loss", fallback="train_loss"):
        self.monitor = monitor
        self.fallback = fallback

    def initialize(self):
        self.best_score_, self.best_epoch_, self.best_state_ = np.inf, None, None
        return self

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        key = self.monitor if self.monitor in row else self.fallback
        score = row.get(key)
        if score is not None and score < self.best_score_:
            self.best_score_, self.best_epoch_ = float(score), int(row["epoch"])
            self._keep(net.module_.state_dict())
            net.history.record("event_best", True)
        net.history.record("best_epoch", self.best_epoch_)

    def _keep(self, state):
        """Copy ``state`` into the kept tensors in place when their shapes match, else into new CPU tensors.

        Building a new copy while the previous one is still referenced would
        hold both for a moment (a second copy of the weights, 0.165 GiB for
        the paper's PHCNN-LSTM), which at small batch sizes was the peak of a
        whole ``fit`` (``docs/performance.md``); copying in place also
        re-allocates nothing every time the validation loss improves.
        """
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
        # the copy is now the module itself: drop it so a pickled net is not twice its size
        self.best_state_ = None

    def state(self):
        """What a checkpoint must hold to continue choosing the best epoch."""
        return {"best_score": self.best_score_, "best_epoch": self.best_epoch_, "best_state": self.best_state_}

    def restore(self, state):
        self.best_score_, self.best_epoch_ = state["best_score"], state["best_epoch"]
        self.best_state_ = state["best_state"]


class BatchNormRecalibration(Callback):
    """When training ends, recompute the batch norms' running statistics on the training windows.

    After a short training the running statistics (an exponential average
    with momentum 0.1 over the last steps) lag the weights, and eval-mode
    predictions can collapse to one class while training-mode ones are right
    (measured: SENet, width 0.25, 8 epochs of 3 batches, training loss 0.07,
    eval-mode accuracy on its own training clips 0.33; 1.00 after
    recalibration). With the final weights (after :class:`KeepBest` restored
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


def _atomic_save(obj, path):
    # write then rename: a run killed while saving leaves the previous file intact
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class EpochCheckpoint(Callback):
    """Save everything needed to resume training at the end of every epoch.

    Writes ``dirname/last.pt`` (weights, optimizer, history, run metadata) and,
    when the best epoch changed, ``dirname/best.pt``. Files are replaced
    atomically. It runs after the scoring callbacks, :class:`KeepBest` and the
    LR scheduler, so a saved epoch is complete; the learning rate on resume
    comes from the closed-form schedule (:class:`PolynomialDecay`), not from
    the saved optimizer's current rate.

    The net's ``checkpoint_metadata_`` (facts checked on resume: classes,
    data size, arch...) and its ``keep_best`` callback are saved with it.

    Parameters
    ----------
    dirname : str or path-like
    """

    def __init__(self, dirname):
        self.dirname = dirname

    def initialize(self):
        self.saved_best_epoch_ = None
        return self

    def on_epoch_end(self, net, **kwargs):
        path = Path(self.dirname)
        path.mkdir(parents=True, exist_ok=True)
        best = dict(net.callbacks_).get("keep_best")
        if best is not None and best.best_state_ is not None and best.best_epoch_ != self.saved_best_epoch_:
            # best first: killed in between, the resumed run's best is at worst one epoch newer
            _atomic_save(best.state(), path / "best.pt")
            self.saved_best_epoch_ = best.best_epoch_
        _atomic_save({
            "module": net.module_.state_dict(),
            "optimizer": net.optimizer_.state_dict(),
            "history": json.dumps(list(net.history), default=_json_default),
            "metadata": json.dumps(getattr(net, "checkpoint_metadata_", {})),
            "torch_rng": torch.get_rng_state(),
        }, path / "last.pt")


def _json_default(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in the checkpoint history")


def read_checkpoint(dirname, name="last.pt"):
    """Load ``dirname/name`` with ``weights_only=True``; None if there is none."""
    path = Path(dirname) / name
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("history", "metadata"):
        if key in state:
            state[key] = json.loads(state[key])
    return state

