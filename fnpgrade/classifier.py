"""PHCNNClassifier: the paper's networks trained and applied as a skorch classifier.

One sample is one clip (a :class:`~fnpgrade.WindowedClip`); training flattens
the clips into windows and prediction folds window probabilities back into one
row per clip. Training is skorch's loop and callbacks (:mod:`fnpgrade.nn.callbacks`);
how it runs is :class:`~fnpgrade.nn.runtime.Runtime`.
"""

from __future__ import annotations

import inspect
import os
from numbers import Integral, Real
from types import MappingProxyType

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring, EpochTimer, PrintLog
from skorch.dataset import unpack_data
from skorch.utils import is_dataset
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions, validate_parameter_constraints
from sklearn.utils.validation import check_is_fitted

from .nn.callbacks import (BatchNormRecalibration, BestInMemory, PolynomialDecay, RunLoss, RunLRScheduler,
                           checkpoint_callbacks, window_accuracy)
from .nn.data import WindowDataset, WindowLoader
from .nn.registry import ARCHITECTURES, build_network
from .nn.runtime import Runtime
from .nn.seeding import derived_seed, forked_torch_rng, seed_torch
from .nn.split import ClipValidSplit
from .nn.targets import class_weights, encode_labels
from .utils import check_labels

__all__ = ["PHCNNClassifier"]

_DEFAULT_RUNTIME = Runtime()


class PHCNNClassifier(NeuralNetClassifier):
    """Grade windowed clips with PHCNN-LSTM or one of the paper's baselines (a skorch classifier).

    ``X`` is a list of :class:`~fnpgrade.WindowedClip` (from
    :class:`~fnpgrade.SequenceWindower`), one per clip; ``y`` one label per clip.
    Training uses every window with its clip's label; ``predict_proba``
    averages the window probabilities of each clip. Defaults are the paper's:
    SGD, lr 1e-4, momentum 0.9, weight decay 2e-5, polynomial decay, batch 64,
    50 epochs, weighted cross entropy, the epoch with the lowest validation
    loss restored at the end. Then the batch norms' running statistics are
    recomputed on the training windows
    (:class:`~fnpgrade.nn.callbacks.BatchNormRecalibration`; off with
    ``callbacks__bn_recalibration=None``): after a short training they lag
    the weights, and eval-mode predictions can collapse to one class.

    Parameters
    ----------
    arch : str, default="phcnn-lstm"
        ``"phcnn-lstm"`` (paper), ``"phcnn"`` (no LSTM), ``"face-n1-lstm"``,
        ``"vgg16-lstm"``, ``"senet"`` or ``"lstm"`` (see ``docs/architectures.md``).
    width : float, default=1.0
        Scales every channel count and FC size (1.0 = paper); less runs quicker.
    fc_features : int or None, default=None
        Branch feature size; ``None`` = ``1024 * width`` (the paper's 1024).
    lstm_hidden : int or None, default=None
        LSTM state size (not given in the paper); ``None`` = ``512 * width``.
    class_weight : None, "balanced" or dict, default="balanced"
        Weights of the cross entropy. ``"balanced"`` is inversely proportional
        to the class counts of the training clips (the paper's K_i, eq. 4); a
        dict maps labels to weights (missing labels get 1).
    max_epochs : int, default=50
    batch_size : int, default=64
        Windows per batch.
    lr : float, default=1e-4
        Base learning rate.
    optimizer__momentum : float, default=0.9
        SGD momentum (skorch passes ``optimizer__*`` to the optimizer; dropped
        for an ``optimizer`` that takes no momentum).
    optimizer__weight_decay : float, default=2e-5
    lr_power : float, default=1.0
        Power of the polynomial decay ``lr * (1 - epoch / max_epochs) ** lr_power``.
    train_split : callable or None, default=ClipValidSplit(0.2)
        Internal validation split, which picks the best epoch. The default
        holds out about 20% of the subjects (when ``groups`` are passed to
        ``fit``) or clips, never splitting one; ``None`` trains on everything
        and picks the best epoch by training loss.
    measures : bool, default=False
        Also read the clips' per-frame movement measures (``WindowedClip.measures``
        from :class:`~fnpgrade.measures.FrameMeasures`: ``make_phcnn_pipeline(measures=True)``)
        through a measures branch (:class:`~fnpgrade.nn.branches.MeasuresBranch`)
        whose features are added to the fused face, brow and mouth features of
        every frame before the LSTM, scaled robustly with the training windows'
        median and 5-95% range. ``"phcnn-lstm"`` and ``"phcnn"`` only; every
        clip given to ``fit`` and ``predict`` must then carry as many measures
        per frame as in training. Use it to grade people the network was not
        trained on (``docs/results.md``); ``False`` (the paper) ignores them.
    mirror_augment : bool, default=False
        While training, mirror each window left-right with probability 1/2
        (the grade of a one-sided weakness does not depend on the side).
    checkpoint_dir : str, path-like or None, default=None
        Save the last epoch (weights, optimizer, history) and the best
        epoch's weights there after every epoch (skorch's ``Checkpoint``); a
        ``fit`` that was killed and is started again with the same directory,
        data and parameters continues after the last saved epoch (skorch's
        ``LoadInitState``; see :func:`~fnpgrade.nn.callbacks.checkpoint_callbacks`).
        Needs an int ``random_state``: the resumed run draws the same
        validation split and shuffling.
    runtime : Runtime or None, default=None
        Speed and memory settings (:class:`~fnpgrade.nn.runtime.Runtime`);
        ``None`` = ``Runtime()``: float32, the same results on every CPU.
    random_state : int, RandomState or None, default=None
        Seeds the weights, dropout, ``mirror_augment``, shuffling and the
        validation split; with an int, CPU runs are reproducible (GPU kernels
        may not be). The estimator draws from its own streams
        (:mod:`fnpgrade.nn.seeding`): torch's global random state is the same
        after ``fit`` as before.
    **kwargs
        skorch's parameters: ``device`` (default ``"cpu"``; ``"cuda"`` for a
        GPU), ``callbacks`` (more skorch callbacks, run after the built-in
        ones, e.g. ``EarlyStopping(patience=5)``), ``classes``, ``warm_start``,
        ``verbose``, ``module``, ``criterion``, ``optimizer``, ``compile``, and
        the prefixed ``module__*``, ``optimizer__*``, ``iterator_train__*``,
        ``callbacks__<name>__*``. ``module=None`` (default) builds the network
        from ``arch``.

    Attributes
    ----------
    classes_ : ndarray
        The labels, in the column order of ``predict_proba``.
    n_measures_ : int or None
        Measures per frame the network reads (``measures=True``), else None.
    measures_scaling_ : tuple of ndarray or None
        ``(center, scale)`` of the training windows' measures (``measures=True``).
    class_weight_ : ndarray or None
        Loss weight per class used in the last ``fit``.
    module_ : torch.nn.Module
    history_ : skorch.History
        Per epoch: ``train_loss``, ``valid_loss``, ``valid_acc`` (windows),
        ``event_lr``, ``event_best`` (the epoch was the best so far and kept).
    seed_ : int
        Seed drawn from ``random_state`` by the last ``initialize``.

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade import PHCNNClassifier, WindowedClip
    >>> rng = np.random.default_rng(0)
    >>> def clip(level):  # toy data: the level sets the brightness of the face and both regions
    ...     face = rng.integers(0, 60, (1, 4, 128, 128, 3), dtype=np.uint8) + np.uint8(120 * level)
    ...     roi = rng.integers(0, 60, (1, 4, 40, 120, 3), dtype=np.uint8) + np.uint8(120 * level)
    ...     return WindowedClip(face, roi, roi.copy())
    >>> X = [clip(i % 2) for i in range(24)]
    >>> y = ["I" if i % 2 == 0 else "II" for i in range(24)]
    >>> clf = PHCNNClassifier(width=0.125, max_epochs=5, batch_size=8, lr=0.02, train_split=None,
    ...                       random_state=0, verbose=0)
    >>> clf.fit(X, y).predict(X[:4]).tolist()
    ['I', 'II', 'I', 'II']
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    # skorch's state before initialize(), as class defaults: sklearn wants __init__ to set parameters only
    history_, initialized_, virtual_params_ = None, False, MappingProxyType({})

    def __init__(self, arch="phcnn-lstm", width=1.0, fc_features=None, lstm_hidden=None, class_weight="balanced",
                 max_epochs=50, batch_size=64, lr=1e-4, optimizer__momentum=0.9, optimizer__weight_decay=2e-5,
                 lr_power=1.0, train_split=ClipValidSplit(0.2), measures=False, mirror_augment=False,
                 checkpoint_dir=None, runtime=None, random_state=None, **kwargs):
        kwargs = {"module": None, "criterion": torch.nn.CrossEntropyLoss, "iterator_train": WindowLoader,
                  "iterator_valid": WindowLoader, "dataset": WindowDataset, **kwargs}
        super().__init__(max_epochs=max_epochs, batch_size=batch_size, lr=lr, train_split=train_split,
                         optimizer__momentum=optimizer__momentum, optimizer__weight_decay=optimizer__weight_decay,
                         **kwargs)
        for name in ("history_", "initialized_", "virtual_params_"):
            del self.__dict__[name]
        self.arch = arch
        self.width = width
        self.fc_features = fc_features
        self.lstm_hidden = lstm_hidden
        self.class_weight = class_weight
        self.lr_power = lr_power
        self.measures = measures
        self.mirror_augment = mirror_augment
        self.checkpoint_dir = checkpoint_dir
        self.runtime = runtime
        self.random_state = random_state

    # ------------------------------------------------------------------ callbacks
    @property
    def _default_callbacks(self):
        # resume first: scores and LR schedule start from the loaded history; the last-epoch checkpoint after the
        # LR step, so it saves whole epochs. Values are only stored here (set_params builds these; fit checks them).
        if isinstance(self.checkpoint_dir, (str, os.PathLike)):
            resume, best, last = self._checkpoint_callbacks(self.checkpoint_dir)
            resume, last = [resume], [last]
        else:
            resume, best, last = [], ("best", BestInMemory()), []
        return [
            *resume,
            ("epoch_timer", EpochTimer()),
            ("train_loss", RunLoss(name="train_loss", on_train=True)),
            ("valid_loss", RunLoss(name="valid_loss")),
            ("valid_acc", EpochScoring(window_accuracy, name="valid_acc", lower_is_better=False, use_caching=True)),
            best,
            # after the best epoch is loaded: its statistics are recomputed
            ("bn_recalibration", BatchNormRecalibration()),
            ("lr_scheduler", RunLRScheduler(policy=torch.optim.lr_scheduler.LambdaLR,
                                            lr_lambda=PolynomialDecay(self.max_epochs, self.lr_power))),
            *last,
            ("print_log", PrintLog()),
        ]

    def _checkpoint_callbacks(self, dirname):  # the accelerated subclass writes on its main process only
        return checkpoint_callbacks(dirname)

    # ------------------------------------------------------------------ parameters
    #: What each parameter accepts, checked at the start of ``fit`` / ``initialize`` (never in ``__init__`` or
    #: ``set_params``, which only store values, as scikit-learn requires). skorch checks its own.
    _parameter_constraints = {
        "arch": [StrOptions(set(ARCHITECTURES))],
        "width": [Interval(Real, 0, None, closed="neither")],
        "fc_features": [Interval(Integral, 1, None, closed="left"), None],
        "lstm_hidden": [Interval(Integral, 1, None, closed="left"), None],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1})],
        "lr": [Interval(Real, 0, None, closed="left")],
        "optimizer__momentum": [Interval(Real, 0, None, closed="left")],
        "optimizer__weight_decay": [Interval(Real, 0, None, closed="left")],
        "lr_power": [Interval(Real, 0, None, closed="left")],
        "train_split": [callable, None],
        "measures": ["boolean"],
        "mirror_augment": ["boolean"],
        "checkpoint_dir": [str, os.PathLike, None],
        "runtime": [Runtime, None],
        "random_state": ["random_state"],
    }

    def _check_params(self):
        """Validate the parameters against ``_parameter_constraints`` (scikit-learn's messages)."""
        params = self.get_params(deep=False)
        validate_parameter_constraints(self._parameter_constraints,
                                       {k: params[k] for k in self._parameter_constraints},
                                       caller_name=type(self).__name__)
        if self.checkpoint_dir is not None and not isinstance(self.random_state, Integral):
            raise ValueError(f"checkpoint_dir needs an int random_state (got {self.random_state!r}): a resumed run "
                             "must draw the validation split and shuffling the interrupted one drew.")

    runtime_ = property(lambda self: self.runtime if self.runtime is not None else _DEFAULT_RUNTIME,
                        doc="The :class:`~fnpgrade.nn.runtime.Runtime` in use (``runtime``, or the defaults).")

    def _device(self):
        """The torch device the network runs on (skorch's ``device=None``, no move: CPU)."""
        return torch.device(self.device if self.device is not None else "cpu")

    def _epoch_seed(self, epoch):
        """Seed of the dropout and mirroring of ``epoch`` (:mod:`fnpgrade.nn.seeding`)."""
        return derived_seed(self.seed_, epoch)

    def on_epoch_begin(self, net, **kwargs):
        super().on_epoch_begin(net, **kwargs)
        seed_torch(self._epoch_seed(len(self.history)), self._device())

    # ------------------------------------------------------------------ initialisation
    def initialize(self):
        """Build the network, loss, optimizer and callbacks; ``seed_`` is drawn from ``random_state``."""
        self._check_params()
        self.seed_ = int(check_random_state(self.random_state).randint(2 ** 31 - 1))
        return super().initialize()

    def initialize_module(self):
        """Build the network for ``arch`` (or ``module`` when one is given), its weights drawn from ``seed_``."""
        with forked_torch_rng(self._device()):
            seed_torch(self.seed_, self._device())
            if self.module is not None:
                super().initialize_module()
            else:
                self.module_ = self._build_network()
        module = self.module_
        if self.measures and "measures" not in getattr(module, "inputs", ()):
            raise ValueError(f"measures=True needs a network that reads 'measures' (in its `inputs`); "
                             f"{type(module).__name__} does not.")
        # a user's own network gets mirror_augment only if it is a WindowNetwork; never ignore it silently
        if hasattr(module, "set_mirror_augment"):
            module.set_mirror_augment(self.mirror_augment)
        elif self.mirror_augment:
            raise ValueError(f"mirror_augment=True needs a fnpgrade WindowNetwork; "
                             f"{type(module).__name__} takes its frames as they are.")
        return self

    def _build_network(self):
        if self.measures and self.arch not in ("phcnn-lstm", "phcnn"):
            raise ValueError(f"measures=True needs arch 'phcnn-lstm' or 'phcnn' (the networks with a measures "
                             f"branch); got arch={self.arch!r}.")
        n_measures = getattr(self, "n_measures_", None) if self.measures else None
        shapes = getattr(self, "input_shapes_", {})
        classes = self.classes if self.classes is not None else getattr(self, "classes_inferred_", "123")
        network = build_network(self.arch, n_classes=len(classes), width=self.width,  # 3: the paper's levels
                                fc_features=self.fc_features, lstm_hidden=self.lstm_hidden,
                                face_size=shapes.get("face"), roi_size=shapes.get("brow"), n_measures=n_measures,
                                **self.get_params_for("module"))
        if n_measures and getattr(self, "measures_scaling_", None) is not None:
            network.features.measures.set_scaling(*self.measures_scaling_)
        if self.runtime_.uses_channels_last(self._device(), training=True):
            network.set_channels_last(True)
        return network

    def initialize_criterion(self):
        """Cross entropy weighted by ``class_weight_`` (the paper's weighted cross entropy)."""
        kwargs = self.get_params_for("criterion")
        if getattr(self, "class_weight_", None) is not None:
            kwargs.setdefault("weight", torch.as_tensor(self.class_weight_, dtype=torch.float32))
        self.criterion_ = self.criterion(**kwargs)
        return self

    def initialize_optimizer(self, triggered_directly=None):
        """skorch's optimizer set-up; the paper's SGD momentum is dropped for an optimizer that takes none."""
        args, kwargs = self.get_params_for_optimizer("optimizer", self.get_all_learnable_params())
        if "momentum" not in inspect.signature(self.optimizer).parameters:
            kwargs.pop("momentum", None)
        self.optimizer_ = self.optimizer(*args, **kwargs)
        return self

    def _prepare_fit(self, X, y, groups):
        """Validate, encode labels, weigh classes, scale the measures; return the training dataset."""
        self._check_params()
        dataset = WindowDataset(X)
        _, groups = check_labels(y, len(dataset.clips), groups, where=type(self).__name__)
        classes, y_encoded = encode_labels(y, len(dataset.clips), self.classes, where=type(self).__name__)
        self.classes_inferred_ = classes
        self.class_weight_ = class_weights(self.class_weight, classes, y_encoded)
        self.input_shapes_ = dataset.frame_shapes()
        self.n_measures_, self.measures_scaling_ = None, None
        if self.measures:
            self.n_measures_, self.measures_scaling_ = dataset.n_measures, dataset.measures_scaling()
        return WindowDataset(dataset.clips, y_encoded, groups)

    def check_data(self, X, y=None):
        """Checks happen in ``fit`` (labels are encoded there); skorch's class inference is not used."""

    def get_split_datasets(self, X, y=None, **fit_params):
        """Split by clip / subject with :class:`~fnpgrade.nn.split.ClipValidSplit` (or the given ``train_split``)."""
        dataset = self.get_dataset(X, y)
        if not self.train_split:
            return dataset, None
        if isinstance(self.train_split, ClipValidSplit):
            return self.train_split(dataset, random_state=self.seed_)
        return self.train_split(dataset, y, **fit_params)

    def get_iterator(self, dataset, training=False):
        """A :class:`~fnpgrade.nn.data.WindowLoader` gathering whole batches of the inputs the network reads."""
        prefix = "iterator_train" if training else "iterator_valid"
        iterator, kwargs = getattr(self, prefix), {"batch_size": self.batch_size, **self.get_params_for(prefix)}
        kwargs["batch_size"] = len(dataset) if kwargs["batch_size"] == -1 else kwargs["batch_size"]
        if isinstance(iterator, type) and issubclass(iterator, WindowLoader):
            # the shuffling order depends on (seed, epoch) only: resumed runs repeat it
            kwargs = {"shuffle": training, "inputs": getattr(self.module_, "inputs", ("face", "brow", "mouth")),
                      "seed": self.seed_, "start_epoch": len(self.history),
                      "pin_memory": self._device().type == "cuda", **kwargs}
        return iterator(dataset, **kwargs)

    def infer(self, x, **fit_params):
        """Move the uint8 batch to the network's device and run it (under autocast with bf16 precision)."""
        device = self._device()
        x = {k: v.to(device, non_blocking=True) for k, v in x.items()}
        module = self._inference_module if self._inference_module is not None else self.module_
        training = module is self.module_ and self.module_.training  # a training step, not a prediction
        with self.runtime_.autocast(device, training=training):
            out = module(**x, **fit_params)
        if isinstance(out, tuple):  # training a network with a measures branch: (logits, measures-branch logits)
            return tuple(o.float() for o in out)
        return out.float()

    _inference_module = None  # set only while predict_proba runs: the batch-norm-folded copy of module_

    def evaluation_step(self, batch, training=False):
        """Forward pass for prediction and validation, under ``torch.inference_mode`` (no autograd bookkeeping)."""
        self.check_is_fitted()
        Xi, _ = unpack_data(batch)
        with torch.inference_mode(not training), torch.set_grad_enabled(training):
            self._set_training(training)
            return self.infer(Xi)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Weighted cross entropy of the window logits; in training with a measures branch, plus its head's."""
        if isinstance(y_pred, tuple):
            y_pred, aux = y_pred
            y_true = y_true.to(y_pred.device)
            return self.criterion_(y_pred, y_true) + self.criterion_(aux, y_true)
        y_true = y_true.to(y_pred.device)
        return self.criterion_(y_pred, y_true)

    # ------------------------------------------------------------------ training
    def fit(self, X, y, groups=None, **fit_params):
        """Train on windowed clips.

        Parameters
        ----------
        X : list of WindowedClip
            One per clip (the output of :class:`~fnpgrade.SequenceWindower`).
        y : array-like, shape (n_clips,)
            One label per clip.
        groups : array-like, shape (n_clips,), optional
            Subject of each clip: the validation split then never splits a
            subject. In a pipeline pass ``classifier__groups=groups``.
        **fit_params
            Passed to the network's forward (skorch convention).

        Returns
        -------
        self : PHCNNClassifier
        """
        dataset = self._prepare_fit(X, y, groups)
        if not self.warm_start or not self.initialized_:
            self.initialize()
        else:  # new data, new class weights
            self.criterion_ = self.initialize_criterion().criterion_.to(self._device())
        return self.partial_fit(dataset, None, _routing_method="fit", **fit_params)

    def partial_fit(self, X, y=None, classes=None, groups=None, **fit_params):
        """Train ``max_epochs`` more epochs on the current weights (see :meth:`fit` for the arguments)."""
        if not isinstance(X, WindowDataset):
            X = self._prepare_fit(X, y, groups)
        if not self.initialized_:
            self.initialize()
        # a new run: the schedule, the epoch count and the best epoch start here (a resumed one loads its history)
        self.run_start_epoch_ = len(self.history)
        with self.runtime_.threads(), forked_torch_rng(self._device()):
            return super().partial_fit(X, None, classes, **fit_params)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Apply the runtime's ``activation_checkpointing`` (read at every ``fit``, so ``set_params`` takes effect)."""
        if hasattr(self.module_, "set_activation_checkpointing"):
            self.module_.set_activation_checkpointing(self.runtime_.activation_checkpointing)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop, for the epochs of the run still to do (all of them unless it resumed from a checkpoint)."""
        if epochs is None:
            epochs = max(0, self.max_epochs - (len(self.history) - self.run_start_epoch_))
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    # ------------------------------------------------------------------ prediction
    def _window_proba(self, X):
        check_is_fitted(self)
        dataset = X if is_dataset(X) else WindowDataset(X)
        if isinstance(dataset, WindowDataset) and self.measures:
            dataset.check_measures(getattr(self, "n_measures_", None))
        with self.runtime_.threads():
            # skorch only lets initialize_* set torch modules; this copy (or ORT module) lives for one call
            self.__dict__["_inference_module"] = self.runtime_.prediction_module(self.module_, self._device())
            try:
                proba = super().predict_proba(dataset)
            finally:
                self.__dict__.pop("_inference_module", None)
        return dataset, proba

    def predict_windows(self, X):
        """Class probabilities of every window of each clip of ``X`` (a list of WindowedClip).

        Returns
        -------
        probabilities : list of ndarray, shape (n_windows_i, n_classes)
        """
        dataset, proba = self._window_proba(X)
        counts = np.bincount(dataset.clip_of_window, minlength=len(dataset.clips))
        return np.split(proba, np.cumsum(counts)[:-1])

    def predict_proba(self, X):
        """Class probabilities per clip of ``X`` (a list of WindowedClip): the mean of its windows'.

        Returns
        -------
        probabilities : ndarray, shape (n_clips, n_classes)
            Columns in the order of ``classes_``.
        """
        return np.stack([p.mean(axis=0) for p in self.predict_windows(X)])

    def predict(self, X):
        """The label of each clip of ``X`` (a list of WindowedClip): the highest mean window probability.

        Returns
        -------
        labels : ndarray, shape (n_clips,)
        """
        proba = self.predict_proba(X)  # first: it raises NotFittedError before classes_ is looked up
        return self.classes_[proba.argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.non_deterministic = self.random_state is None
        return tags
