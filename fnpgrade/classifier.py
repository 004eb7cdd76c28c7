"""PHCNNClassifier: the paper's networks trained and applied as a skorch classifier.

One sample is one clip (a :class:`~fnpgrade.WindowedClip`). Training flattens
the clips into windows, each inheriting its clip's label and subject; the
internal validation split keeps clips, and subjects when ``groups`` are given,
whole. Prediction folds window probabilities back into one row per clip.
"""

from __future__ import annotations

import copy
import inspect
import os
from contextlib import contextmanager, nullcontext
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, EarlyStopping, EpochTimer, PassthroughScoring, PrintLog
from skorch.history import History
from skorch.dataset import unpack_data
from skorch.utils import is_dataset
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions, validate_parameter_constraints
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_is_fitted

from .nn.branches import robust_scaling
from .nn.callbacks import (BatchNormRecalibration, EpochCheckpoint, KeepBest, PolynomialDecay, RunLRScheduler,
                           WindowAccuracy, read_checkpoint)
from .nn.data import WindowDataset, WindowLoader
from .nn.layers import fuse_batchnorm
from .nn.registry import ARCHITECTURES, build_network
from .nn.split import ClipValidSplit
from .utils import check_labels

__all__ = ["PHCNNClassifier", "resolve_device", "resolve_precision", "resolve_channels_last", "resolve_n_threads"]

_PRECISIONS = ("fp32", "bf16", "auto")


def resolve_device(device):
    """``"auto"`` -> ``"cuda"`` when a GPU is available, else ``"cpu"``; anything else unchanged."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_precision(precision, device):
    """``"auto"`` -> ``"bf16"`` where the hardware computes bfloat16 natively, else ``"fp32"``.

    Native means a CUDA GPU that supports bf16, or a CPU with AMX-BF16 tiles
    (``amx_bf16`` in ``/proc/cpuinfo``). Elsewhere bf16 is emulated and slower:
    on an AVX2-only CPU bf16 autocast measured 7-11x slower than fp32
    (``docs/performance.md``).
    """
    if precision != "auto":
        return precision
    device = torch.device(resolve_device(device))
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu" and "amx_bf16" in _cpu_flags():
        return "bf16"
    return "fp32"


def resolve_channels_last(channels_last, device, training=False):
    """``"auto"`` -> NHWC for prediction on CPU and CUDA and for training on CUDA; NCHW for training on CPU.

    On CPU, NHWC training in float32 drifted from a float64 reference by up to
    3% in some gradients (NCHW: 4e-5), so training stays NCHW there;
    prediction runs the batch-norm-folded copy, which has no batch norm left,
    in NHWC (1.5x faster, outputs equal to 1e-5).
    """
    if channels_last != "auto":
        return bool(channels_last)
    kind = torch.device(resolve_device(device)).type
    return kind == "cuda" or (kind == "cpu" and not training)


def resolve_n_threads(n_threads):
    """``"auto"`` -> torch's thread count, less the cores other processes keep busy (at least 1).

    The busy cores are the 1-minute load average less this process's own
    average use (Linux; elsewhere torch's count is kept). OpenMP threads
    that wait for each other on cores other processes also want stall at
    every barrier: on a 2-core machine at load 3-7, one thread trained
    PHCNN-LSTM 2-3.6x faster than two (``docs/performance.md``). ``None`` ->
    torch's current setting; an int is used as is.
    """
    if n_threads is None:
        return torch.get_num_threads()
    if n_threads != "auto":
        return int(n_threads)
    threads = torch.get_num_threads()
    try:
        cores = len(os.sched_getaffinity(0))
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return threads
    others = load - min(load, _own_cores_used())  # the load average counts this process too
    free = int(cores - others + 0.5)
    return max(1, min(threads, free))


def _own_cores_used():
    """Cores this process kept busy on average since it started (0 where /proc is missing)."""
    try:
        with open("/proc/self/stat") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as handle:
            age = float(handle.read().split()[0]) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0
    times = os.times()
    return (times.user + times.system) / age if age > 1 else 0.0


class _CallbackList(Options):
    """A parameter constraint: a list of skorch callbacks (instances or classes) or ``(name, callback)`` pairs.

    (An ``Options`` subclass only because scikit-learn's validation accepts no
    other custom constraint type.)
    """

    def __init__(self):
        super().__init__(list, set())

    @staticmethod
    def _is_callback(cb):
        return isinstance(cb, Callback) or (isinstance(cb, type) and issubclass(cb, Callback))

    def is_satisfied_by(self, val):
        return isinstance(val, list) and all(
            self._is_callback(item) or (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
                                        and (item[1] is None or self._is_callback(item[1])))
            for item in val)

    def __str__(self):
        return "a list of skorch callbacks or (name, callback) pairs"


#: skorch state that NeuralNet.__init__ sets as public attributes (see PHCNNClassifier.history_).
_SKORCH_STATE = ("history_", "initialized_", "virtual_params_")


def _skorch_state(name, default):
    """A property storing skorch's attribute ``name`` in the instance under ``"_" + name``."""
    private = "_" + name  # ends with "_": skorch's get_params does not take it for a parameter

    def get(self):
        if private not in vars(self):
            vars(self)[private] = default()
        return vars(self)[private]

    def set(self, value):
        vars(self)[private] = value

    return property(get, set, doc=f"skorch's ``{name}`` (stored as ``{private}``).")


@contextmanager
def _torch_threads(n_threads):
    """Run with ``resolve_n_threads(n_threads)`` intra-op threads, restoring torch's setting afterwards."""
    previous = torch.get_num_threads()
    wanted = resolve_n_threads(n_threads)
    if wanted == previous:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class PHCNNClassifier(NeuralNetClassifier):
    """Grade windowed clips with PHCNN-LSTM or one of the paper's baselines (a skorch classifier).

    ``X`` is a list of :class:`~fnpgrade.WindowedClip` (the output of
    :class:`~fnpgrade.SequenceWindower`), one per clip; ``y`` holds one label
    per clip (any labels, typically ``"I"``/``"II"``/``"III"``). Training uses
    every window with its clip's label; ``predict_proba`` averages the window
    probabilities of each clip. Defaults are the paper's: SGD, lr 1e-4,
    momentum 0.9, weight decay 2e-5, polynomial decay, batch 64, 50 epochs,
    weighted cross entropy, and the epoch with the lowest validation loss is
    restored at the end. Then the batch norms' running statistics are
    recomputed on the training windows with the final weights
    (:class:`~fnpgrade.nn.callbacks.BatchNormRecalibration`): after a short
    training they lag the weights, and eval-mode predictions can collapse to
    one class (``callbacks__bn_recalibration=None`` turns it off).

    Parameters
    ----------
    arch : str, default="phcnn-lstm"
        ``"phcnn-lstm"`` (paper), ``"phcnn"`` (no LSTM), ``"face-n1-lstm"``,
        ``"vgg16-lstm"``, ``"senet"`` or ``"lstm"`` (see ``docs/architectures.md``).
    width : float, default=1.0
        Scales every channel count and FC size (1.0 = paper); small values make
        quick runs.
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
    momentum : float, default=0.9
        SGD momentum (passed to any optimizer that takes it).
    weight_decay : float, default=2e-5
    lr_power : float, default=1.0
        Power of the polynomial decay ``lr * (1 - epoch / max_epochs) ** lr_power``.
    early_stopping : int or None, default=None
        Patience in epochs on the validation loss (training loss without a
        validation split); ``None`` trains all epochs.
    train_split : callable or None, default=ClipValidSplit(0.2)
        Internal validation split. The default holds out about 20% of the
        subjects (when ``groups`` are passed to ``fit``) or clips, never
        splitting one; ``None`` trains on everything and picks the best epoch
        by training loss.
    precision : {"fp32", "bf16", "auto"}, default="fp32"
        ``"fp32"`` (default) computes in float32 everywhere, so the same
        ``random_state`` gives the same model on every CPU. ``"bf16"`` runs
        the forward pass under bfloat16 autocast (CPU or GPU): opt-in, because
        results then depend on the hardware (on an AMX-BF16 Xeon it trained
        the paper-size PHCNN-LSTM 4.3x and predicted 5.2x faster than an eager
        fp32 loop; on CPUs without native bf16 it is emulated and several
        times slower). ``"auto"`` picks bf16 where the hardware computes it
        natively (a CUDA GPU with bf16, a CPU with AMX-BF16) and fp32
        elsewhere. See ``docs/performance.md``.
    channels_last : {"auto", True, False}, default="auto"
        NHWC memory order for the convolutions' weights and activations.
        ``"auto"``: NHWC for prediction (CPU and CUDA; 1.5x faster on CPU,
        same outputs) and for training on CUDA; NCHW for training on CPU,
        where NHWC batch norm in float32 drifted by up to 3% in some
        gradients from a float64 reference (NCHW: 4e-5).
    fuse_batchnorm : bool, default=True
        Predict with a copy of the network whose batch norms are folded into
        the preceding convolution / linear layer (same outputs up to float
        rounding, less work per window). Training is unaffected.
    measures : bool, default=False
        Also read the clips' per-frame movement measures
        (``WindowedClip.measures``, from
        :class:`~fnpgrade.measures.FrameMeasures`; use
        ``make_phcnn_pipeline(measures=True)``) through a measures branch
        (:class:`~fnpgrade.nn.branches.MeasuresBranch`) whose features are
        added to the fused face, brow and mouth features of every frame before
        the LSTM: ``f = f_face + f_brow + f_mouth + f_measures``. The
        measures are scaled robustly with the median and 5-95% range of the
        training windows. ``"phcnn-lstm"`` and ``"phcnn"`` only. Every clip
        given to ``fit`` and ``predict`` must then carry measures, as many
        per frame as in training (a ValueError names the clip otherwise).
        ``False`` (the paper) ignores any measures the clips carry. Use it to
        grade people the network was not trained on (``docs/results.md``).
    mirror_augment : bool, default=False
        While training, show each window mirrored left-right with probability
        1/2 (:meth:`fnpgrade.nn.WindowNetwork.set_mirror_augment`): the grade
        of a one-sided weakness does not depend on the side. Prediction never
        flips.
    activation_checkpointing : bool, default=False
        Lower training memory by recomputing the conv blocks' activations in
        the backward pass instead of storing them (non-reentrant
        ``torch.utils.checkpoint``, one segment per conv block with the pooling
        after it). Same loss, gradients and batch-norm running statistics as
        without it (the recomputation does not update the running statistics
        a second time). Measured on CPU at the paper's scale (PHCNN-LSTM,
        5420 windows, batch 64): peak memory of ``fit`` 5.93 -> 4.29 GiB, for
        1.2-1.4x the time per training step; off by default for that reason.
        Prediction and validation are unaffected. See ``docs/performance.md``.
    n_threads : "auto", int or None, default=None
        Torch intra-op threads while fitting and predicting (torch's setting
        is restored afterwards). ``None`` leaves torch's setting (one per
        core); ``"auto"`` uses torch's count less the cores other processes
        keep busy (1-minute load average), at least 1: on a shared machine
        fewer threads that are not preempted beat more that are. ``"auto"`` is
        opt-in because the thread count then depends on the load, and float
        sums (so results) can differ with it: the default keeps runs with the
        same ``random_state`` identical.
    device : str, default="auto"
        ``"auto"`` picks CUDA when available, else CPU; or any torch device.
    random_state : int, RandomState or None, default=None
        Seeds the weights, dropout, ``mirror_augment``, shuffling and the
        validation split; with an int, CPU runs are reproducible. (GPU kernels
        may still be nondeterministic.) ``None`` draws the seed from numpy's
        global random state, as scikit-learn does. The estimator draws from its
        own generators: torch's global random state is the same after ``fit``
        as before (torch modules initialise their weights, and dropout draws,
        from the global generator, so ``fit`` forks it with
        ``torch.random.fork_rng`` and runs it on the estimator's stream).
    checkpoint_dir : str, path-like or None, default=None
        Save a checkpoint after every epoch there; a ``fit`` that was killed
        and is started again with the same directory (and data) continues from
        the last saved epoch.
    classes : list or None, default=None
        The labels in output order; ``None`` = sorted labels of ``y``. Give it
        to build a net for ``load_params`` without fitting.
    callbacks : list or None, default=None
        More skorch callbacks, run after the built-in ones.
    warm_start : bool, default=False
        ``fit`` continues from the current weights instead of re-initialising.
    verbose : int, default=1
        1 prints skorch's epoch table.
    **kwargs
        Other skorch parameters (``module``, ``criterion``, ``optimizer``,
        ``iterator_train__*``, ``optimizer__*``, ``compile``...). ``module=None``
        (default) builds the network from ``arch``.

    Attributes
    ----------
    classes_ : ndarray
        The labels, in the column order of ``predict_proba``.
    n_measures_ : int or None
        Measures per frame the network reads (``measures=True``), else None.
    measures_scaling_ : tuple of ndarray or None
        ``(center, scale)`` of the training windows' measures (see
        :func:`~fnpgrade.nn.branches.robust_scaling`), with ``measures=True``.
    class_weight_ : ndarray or None
        Loss weight per class used in the last ``fit``.
    module_ : torch.nn.Module
    history_ : skorch.History
        Per epoch: ``train_loss``, ``valid_loss``, ``valid_acc`` (windows),
        ``event_lr``, ``best_epoch``.
    seed_ : int
        Seed drawn from ``random_state`` by the last ``initialize`` (validation
        split, shuffling, ``torch_generator_``).
    torch_generator_ : torch.Generator
        The estimator's torch random stream (weights, dropout,
        ``mirror_augment``); a warm-started ``fit`` continues it.

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

    def __init__(self, arch="phcnn-lstm", width=1.0, fc_features=None, lstm_hidden=None,
                 class_weight="balanced", max_epochs=50, batch_size=64, lr=1e-4, momentum=0.9,
                 weight_decay=2e-5, lr_power=1.0, early_stopping=None, train_split=ClipValidSplit(0.2),
                 measures=False, mirror_augment=False, precision="fp32", channels_last="auto",
                 fuse_batchnorm=True, activation_checkpointing=False,
                 n_threads=None, device="auto", random_state=None, checkpoint_dir=None,
                 classes=None, callbacks=None, warm_start=False, verbose=1, **kwargs):
        kwargs.setdefault("module", None)
        kwargs.setdefault("criterion", torch.nn.CrossEntropyLoss)
        kwargs.setdefault("optimizer", torch.optim.SGD)
        kwargs.setdefault("iterator_train", WindowLoader)
        kwargs.setdefault("iterator_valid", WindowLoader)
        kwargs.setdefault("dataset", WindowDataset)
        super().__init__(train_split=train_split, classes=classes, max_epochs=max_epochs, batch_size=batch_size,
                         lr=lr, callbacks=callbacks, warm_start=warm_start, verbose=verbose, device=device,
                         **kwargs)
        self.arch = arch
        self.width = width
        self.fc_features = fc_features
        self.lstm_hidden = lstm_hidden
        self.class_weight = class_weight
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.lr_power = lr_power
        self.early_stopping = early_stopping
        self.measures = measures
        self.mirror_augment = mirror_augment
        self.precision = precision
        self.channels_last = channels_last
        self.fuse_batchnorm = fuse_batchnorm
        self.activation_checkpointing = activation_checkpointing
        self.n_threads = n_threads
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir

    # ------------------------------------------------------------------ callbacks
    @property
    def _default_callbacks(self):
        # order matters: scores, the best-epoch keeper and the LR step (which
        # records event_lr) first, so the checkpoint saves complete epochs; then
        # early stopping and the log
        callbacks = [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("valid_acc", WindowAccuracy()),
            ("keep_best", KeepBest()),
            # after keep_best: its on_train_end restores the best epoch, whose statistics are then recomputed
            ("bn_recalibration", BatchNormRecalibration()),
            # the values are only stored here (set_params builds the callbacks; fit validates them)
            ("lr_scheduler", RunLRScheduler(policy=torch.optim.lr_scheduler.LambdaLR,
                                            lr_lambda=PolynomialDecay(self.max_epochs, self.lr_power))),
        ]
        if self.checkpoint_dir is not None:
            callbacks.append(("checkpoint", EpochCheckpoint(self.checkpoint_dir)))
        if self.early_stopping is not None:
            monitor = "train_loss" if self.train_split is None or self.train_split is False else "valid_loss"
            callbacks.append(("early_stopping", EarlyStopping(monitor=monitor, patience=self.early_stopping)))
        callbacks.append(("print_log", PrintLog()))
        return callbacks

    def _initialize_callbacks(self):
        # skorch's set_params(callbacks=...) builds the callbacks at once; scikit-learn requires
        # set_params not to raise, so a value that is not a list is ignored here and rejected by
        # fit's parameter validation
        given = self.callbacks
        if given is None or _CallbackList().is_satisfied_by(given) or (isinstance(given, str) and given == "disable"):
            return super()._initialize_callbacks()
        vars(self)["callbacks"] = None
        try:
            return super()._initialize_callbacks()
        finally:
            vars(self)["callbacks"] = given

    def _get_param_names(self):
        # skorch's bookkeeping set of names to check is not a parameter (skorch lists every
        # attribute not ending in "_"); __init__ rebuilds it from the keyword arguments
        return [name for name in super()._get_param_names() if name != "_params_to_validate"]

    # ------------------------------------------------------------------ device
    @contextmanager
    def _device_resolved(self):
        """Let skorch see a real device while ``device="auto"`` stays the parameter's value."""
        requested = self.device
        if requested != "auto":
            yield
            return
        self.device = resolve_device(requested)
        try:
            yield
        finally:
            self.device = requested

    def _autocast(self):
        if resolve_precision(self.precision, self.device) == "fp32":
            return nullcontext()
        device_type = torch.device(resolve_device(self.device)).type
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16)

    # ------------------------------------------------------------------ initialisation
    #: What each parameter accepts, checked at the start of ``fit`` / ``initialize`` (never in
    #: ``__init__`` or ``set_params``, which only store values, as scikit-learn requires). skorch's
    #: own parameters (``module``, ``optimizer``, ``iterator_*``...) are left to skorch.
    _parameter_constraints = {
        "arch": [StrOptions(set(ARCHITECTURES))],
        "width": [Interval(Real, 0, None, closed="neither")],
        "fc_features": [Interval(Integral, 1, None, closed="left"), None],
        "lstm_hidden": [Interval(Integral, 1, None, closed="left"), None],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1})],
        "lr": [Interval(Real, 0, None, closed="left")],
        "momentum": [Interval(Real, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "lr_power": [Interval(Real, 0, None, closed="left")],
        "early_stopping": [Interval(Integral, 1, None, closed="left"), None],
        "train_split": [callable, None],
        "measures": ["boolean"],
        "mirror_augment": ["boolean"],
        "precision": [StrOptions(set(_PRECISIONS))],
        "channels_last": ["boolean", StrOptions({"auto"})],
        "fuse_batchnorm": ["boolean"],
        "activation_checkpointing": ["boolean"],
        "n_threads": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
        "device": [str, torch.device, None],
        "random_state": ["random_state"],
        "checkpoint_dir": [str, os.PathLike, None],
        "classes": ["array-like", None],
        "callbacks": [_CallbackList(), StrOptions({"disable"}), None],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def _check_params(self):
        """Validate the parameters against ``_parameter_constraints`` (scikit-learn's messages)."""
        validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                       caller_name=type(self).__name__)

    # skorch's NeuralNet.__init__ sets its state (history_, initialized_, virtual_params_) as public
    # attributes; scikit-learn wants __init__ to set parameters only (check_no_attributes_set_in_init).
    # They live under private names here; the names skorch reads and writes are properties over them.
    history_ = _skorch_state("history_", lambda: None)
    initialized_ = _skorch_state("initialized_", lambda: False)
    virtual_params_ = _skorch_state("virtual_params_", dict)

    # ------------------------------------------------------------------ random numbers
    def _torch_generator(self):
        """This estimator's torch generator (``torch_generator_``), seeded from ``seed_`` when first needed."""
        generator = getattr(self, "torch_generator_", None)
        if generator is None:
            if getattr(self, "seed_", None) is None:
                self.seed_ = int(check_random_state(self.random_state).randint(2 ** 31 - 1))
            generator = self.torch_generator_ = torch.Generator().manual_seed(self.seed_)
        return generator

    @contextmanager
    def _own_torch_rng(self):
        """Run with torch's global random generator on this estimator's stream; the caller's state is kept.

        Weight initialisation (torch modules' constructors), dropout and
        ``mirror_augment`` draw from torch's global generator and take no
        generator argument. So it is forked (``torch.random.fork_rng``): inside,
        it continues ``torch_generator_`` (and, on a GPU, ``cuda_rng_state_``),
        which get the advanced state back on exit; outside, the caller's global
        random state is exactly as before ``fit``.
        """
        generator = self._torch_generator()
        resolved = resolve_device(self.device)
        device = torch.device("cpu" if resolved is None else resolved)  # skorch's device=None: no move
        index = None
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
        with torch.random.fork_rng(devices=[] if index is None else [index]):
            torch.set_rng_state(generator.get_state())
            if index is not None:
                cuda_state = getattr(self, "cuda_rng_state_", None)
                if cuda_state is None:
                    torch.cuda.manual_seed(self.seed_)
                else:
                    torch.cuda.set_rng_state(cuda_state, index)
            try:
                yield
            finally:
                generator.set_state(torch.get_rng_state())
                if index is not None:
                    self.cuda_rng_state_ = torch.cuda.get_rng_state(index)

    def initialize(self):
        """Build the network, loss, optimizer and callbacks (seeded by ``random_state``).

        ``seed_`` is drawn from ``random_state`` and seeds this estimator's own
        torch generator (``torch_generator_``); torch's global generator is
        left as the caller had it.
        """
        self._check_params()
        self.seed_ = int(check_random_state(self.random_state).randint(2 ** 31 - 1))
        self.torch_generator_ = torch.Generator().manual_seed(self.seed_)
        self.cuda_rng_state_ = None
        with self._device_resolved():
            return super().initialize()

    def _n_classes(self):
        if self.classes is not None:
            return len(self.classes)
        inferred = getattr(self, "classes_inferred_", None)
        return 3 if inferred is None else len(inferred)  # 3 = the paper's levels I / II / III

    def initialize_module(self):
        """Build the network for ``arch`` (or ``module`` when one is given), weights from ``torch_generator_``."""
        with self._device_resolved(), self._own_torch_rng():
            return self._build_module()

    def _build_module(self):
        n_measures = getattr(self, "n_measures_", None) if self.measures else None
        if self.module is not None:
            super().initialize_module()
            if self.measures and "measures" not in getattr(self.module_, "inputs", ()):
                raise ValueError(f"measures=True needs a network that reads 'measures' (in its `inputs`); "
                                 f"{type(self.module_).__name__} does not.")
            # a user's own network gets mirror_augment only if it is a WindowNetwork; never ignore it silently
            if hasattr(self.module_, "set_mirror_augment"):
                self.module_.set_mirror_augment(self.mirror_augment)
            elif self.mirror_augment:
                raise ValueError(f"mirror_augment=True needs a fnpgrade WindowNetwork; "
                                 f"{type(self.module_).__name__} takes its frames as they are.")
            return self
        shapes = getattr(self, "input_shapes_", {})
        if self.measures and self.arch not in ("phcnn-lstm", "phcnn"):
            raise ValueError(f"measures=True needs arch 'phcnn-lstm' or 'phcnn' (the networks with a measures "
                             f"branch); got arch={self.arch!r}.")
        network = build_network(self.arch, n_classes=self._n_classes(), width=self.width,
                                fc_features=self.fc_features, lstm_hidden=self.lstm_hidden,
                                face_size=shapes.get("face"), roi_size=shapes.get("brow"), n_measures=n_measures,
                                **self.get_params_for("module"))
        scaling = getattr(self, "measures_scaling_", None)
        if n_measures and scaling is not None:
            network.features.measures.set_scaling(*scaling)
        network.set_mirror_augment(self.mirror_augment)
        if resolve_channels_last(self.channels_last, self.device, training=True):
            network.set_channels_last(True)
        self.module_ = network
        return self

    def initialize_criterion(self):
        """Cross entropy weighted by ``class_weight_`` (the paper's weighted cross entropy)."""
        kwargs = self.get_params_for("criterion")
        weight = getattr(self, "class_weight_", None)
        if weight is not None and "weight" not in kwargs:
            kwargs["weight"] = torch.as_tensor(weight, dtype=torch.float32)
        self.criterion_ = self.criterion(**kwargs)
        return self

    def initialize_optimizer(self, triggered_directly=None):
        """The optimizer with ``lr``, and ``momentum`` / ``weight_decay`` where it takes them."""
        args, kwargs = self.get_params_for_optimizer("optimizer", self.get_all_learnable_params())
        accepted = inspect.signature(self.optimizer).parameters
        for name in ("momentum", "weight_decay"):
            if name in accepted:
                kwargs.setdefault(name, getattr(self, name))
        self.optimizer_ = self.optimizer(*args, **kwargs)
        return self

    # ------------------------------------------------------------------ data
    def _encode(self, y, n_clips):
        y, _ = check_labels(y, n_clips, where=type(self).__name__)
        if self.classes is not None:
            classes = np.asarray(self.classes)
        else:
            classes = np.unique(y)
        lookup = {label: i for i, label in enumerate(classes.tolist())}
        unknown = [label for label in np.unique(y).tolist() if label not in lookup]
        if unknown:
            raise ValueError(f"y holds labels {unknown} that are not in classes={classes.tolist()}.")
        if len(np.unique(y)) < 2:
            raise ValueError(f"y holds a single class ({y[0]!r}); a classifier needs at least two.")
        return classes, np.array([lookup[label] for label in y.tolist()], dtype=np.int64)

    def _class_weights(self, classes, y_encoded):
        if self.class_weight is None:
            return None
        if self.class_weight == "balanced":
            present = np.unique(y_encoded)
            weights = np.ones(len(classes))
            weights[present] = compute_class_weight("balanced", classes=present, y=y_encoded)
            return weights
        return np.array([float(self.class_weight.get(label, 1.0)) for label in classes.tolist()])

    def _prepare_fit(self, X, y, groups):
        """Validate, encode labels, weigh classes, scale the measures; return the training dataset."""
        self._check_params()
        dataset = WindowDataset(X)
        _, groups = check_labels(y, len(dataset.clips), groups, where=type(self).__name__)
        classes, y_encoded = self._encode(y, len(dataset.clips))
        self.classes_inferred_ = classes
        self.class_weight_ = self._class_weights(classes, y_encoded)
        self.input_shapes_ = dataset.frame_shapes()
        self.n_measures_, self.measures_scaling_ = None, None
        if self.measures:
            if dataset.n_measures is None:
                first = dataset.clips[0]
                raise ValueError(f"measures=True, but X[0] ({first.source or 'no source'}) carries no per-frame "
                                 "measures (nor does any clip). Compute them with FrameMeasures after the cropper: "
                                 "make_phcnn_pipeline(measures=True).")
            self.n_measures_ = dataset.n_measures
            # the windows overlap when the stride is shorter than the window: every frame counts as often
            # as the network sees it, which is what the branch's batch norms see too
            self.measures_scaling_ = robust_scaling(np.concatenate([c.measures.reshape(-1, dataset.n_measures)
                                                                    for c in dataset.clips]))
        return WindowDataset(dataset.clips, y_encoded, groups)

    def _check_predict_measures(self, dataset):
        """Clips to predict must carry the measures the network was trained on (a ValueError naming the clip)."""
        expected = getattr(self, "n_measures_", None) if self.measures else None
        if expected is None:
            return
        first = dataset.clips[0]
        if dataset.n_measures is None:
            raise ValueError(f"X[0] ({first.source or 'no source'}) carries no per-frame measures, but the classifier "
                             f"was trained with measures=True on {expected} per frame; transform the clips as in "
                             "training (FrameMeasures after the cropper).")
        if dataset.n_measures != expected:
            raise ValueError(f"X[0] ({first.source or 'no source'}) has {dataset.n_measures} measures per frame, "
                             f"but the classifier was trained on {expected}; measure the clips with the same "
                             "FrameMeasures as in training.")

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
        iterator = getattr(self, prefix)
        kwargs = self.get_params_for(prefix)
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        if isinstance(iterator, type) and issubclass(iterator, WindowLoader):
            kwargs.setdefault("shuffle", training)
            kwargs.setdefault("inputs", getattr(self.module_, "inputs", ("face", "brow", "mouth")))
            # the shuffling order depends on (seed, epoch) only: resumed runs repeat it
            kwargs.setdefault("seed", self.seed_)
            kwargs.setdefault("start_epoch", len(self.history))
            kwargs.setdefault("pin_memory", torch.device(resolve_device(self.device)).type == "cuda")
        return iterator(dataset, **kwargs)

    def infer(self, x, **fit_params):
        """Move the uint8 batch to the device and run the network (under autocast with ``precision="bf16"``)."""
        device = resolve_device(self.device)
        x = {k: v.to(device, non_blocking=True) for k, v in x.items()}
        module = self._inference_module if self._inference_module is not None else self.module_
        with self._autocast():
            out = module(**x, **fit_params)
        if isinstance(out, tuple):  # training a network with a measures branch: (logits, measures-branch logits)
            return tuple(o.float() for o in out)
        return out.float()

    # set only while predict_proba runs: the batch-norm-folded copy of module_
    _inference_module = None

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
        with self._device_resolved():
            if not self.warm_start or not getattr(self, "initialized_", False):
                self.initialize()
            else:
                self.initialize_criterion()  # new data, new class weights
                self.criterion_ = self.criterion_.to(self.device)
                keep_best = dict(self.callbacks_).get("keep_best")
                if keep_best is not None:
                    keep_best.initialize()  # a new run picks its own best epoch
            self.run_start_epoch_ = len(self.history)
            self._resume_epochs_ = self._resume_from_checkpoint(len(dataset.clips))
            self.partial_fit(dataset, None, _routing_method="fit", **fit_params)
        return self

    def partial_fit(self, X, y=None, classes=None, groups=None, **fit_params):
        """Train ``max_epochs`` more epochs on the current weights (see :meth:`fit` for the arguments)."""
        if not isinstance(X, WindowDataset):
            X = self._prepare_fit(X, y, groups)
            self.run_start_epoch_ = len(self.history) if getattr(self, "history_", None) is not None else 0
        with self._device_resolved(), _torch_threads(self.n_threads):
            if not self.initialized_:
                self.initialize()
            # dropout and mirror_augment draw from this estimator's stream, not the caller's
            with self._own_torch_rng():
                return super().partial_fit(X, None, classes, **fit_params)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Apply ``activation_checkpointing`` to the network.

        Read at the start of every ``fit`` / ``partial_fit`` (not only when the
        network is built), so ``set_params`` between fits takes effect without
        re-initialising the weights.
        """
        if hasattr(self.module_, "set_activation_checkpointing"):
            self.module_.set_activation_checkpointing(bool(self.activation_checkpointing))

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        resume = getattr(self, "_resume_epochs_", None)
        if epochs is None and resume is not None:
            epochs, self._resume_epochs_ = resume, None
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def _checkpoint_metadata(self, n_clips):
        metadata = {"arch": str(self.arch), "width": float(self.width), "classes": [str(c) for c in self.classes_],
                    "n_clips": int(n_clips), "max_epochs": int(self.max_epochs), "seed": int(self.seed_)}
        n_measures = getattr(self, "n_measures_", None) if self.measures else None
        if n_measures:  # only then: checkpoints written before the measures branch existed still resume
            metadata["n_measures"] = int(n_measures)
        return metadata

    def _resume_from_checkpoint(self, n_clips):
        """Load ``checkpoint_dir``'s last epoch if there is one; return the epochs left to run (or None)."""
        if self.checkpoint_dir is None:
            return None
        state = read_checkpoint(self.checkpoint_dir)
        if state is None:
            self.checkpoint_metadata_ = self._checkpoint_metadata(n_clips)
            return None
        saved = state["metadata"]
        self.seed_ = saved.get("seed", self.seed_)  # same validation split as the interrupted run
        current = self._checkpoint_metadata(n_clips)
        differs = {k: (saved.get(k), v) for k, v in current.items() if saved.get(k) != v}
        if differs:
            raise ValueError(
                f"{self.checkpoint_dir}: the checkpoint there was written by another run ("
                + ", ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in differs.items())
                + "). Use an empty checkpoint_dir for a new run, or the same data and parameters to resume."
            )
        self.checkpoint_metadata_ = current
        self.module_.load_state_dict(state["module"])
        self.optimizer_.load_state_dict(state["optimizer"])
        self.history_ = History(state["history"])
        if "torch_rng" in state:  # dropout continues as if never interrupted
            self._torch_generator().set_state(state["torch_rng"])
        best = read_checkpoint(self.checkpoint_dir, "best.pt")
        callbacks = dict(self.callbacks_)
        if best is not None and "keep_best" in callbacks:
            callbacks["keep_best"].restore(best)
            if "checkpoint" in callbacks:
                callbacks["checkpoint"].saved_best_epoch_ = best["best_epoch"]
        self.run_start_epoch_ = 0
        if self.verbose:
            print(f"Resuming from {Path(self.checkpoint_dir)} after epoch {len(self.history)} of {self.max_epochs}.")
        return max(0, self.max_epochs - len(self.history))

    # ------------------------------------------------------------------ prediction
    def _window_proba(self, X):
        check_is_fitted(self)
        dataset = X if is_dataset(X) else WindowDataset(X)
        if isinstance(dataset, WindowDataset):
            self._check_predict_measures(dataset)
        with self._device_resolved(), _torch_threads(self.n_threads):
            # skorch only lets initialize_* set torch modules; this copy lives for one call
            if self.fuse_batchnorm:
                self.__dict__["_inference_module"] = self._fused_module()
            try:
                proba = super().predict_proba(dataset)
            finally:
                self.__dict__.pop("_inference_module", None)
        return dataset, proba

    def _fused_module(self):
        """A copy of ``module_`` in eval mode with its batch norms folded into the layers before them.

        With skorch's ``compile=True``, ``module_`` is a ``torch.compile``
        wrapper whose copy would still call the original, unfolded network; the
        eager network inside it is folded instead (compiling the folded copy
        measured no faster on CPU, see ``docs/performance.md``).
        """
        fused = copy.deepcopy(getattr(self.module_, "_orig_mod", self.module_)).eval()
        for p in fused.parameters():
            p.requires_grad_(False)
        fused = fuse_batchnorm(fused)
        if resolve_channels_last(self.channels_last, self.device) and hasattr(fused, "set_channels_last"):
            fused.set_channels_last(True)
        return fused

    def predict_windows(self, X):
        """Class probabilities of every window, per clip.

        Parameters
        ----------
        X : list of WindowedClip

        Returns
        -------
        probabilities : list of ndarray, shape (n_windows_i, n_classes)
            One array per clip, rows in window order.
        """
        dataset, proba = self._window_proba(X)
        counts = np.bincount(dataset.clip_of_window, minlength=len(dataset.clips))
        return np.split(proba, np.cumsum(counts)[:-1])

    def predict_proba(self, X):
        """Class probabilities per clip: the mean of its windows' probabilities.

        Parameters
        ----------
        X : list of WindowedClip

        Returns
        -------
        probabilities : ndarray, shape (n_clips, n_classes)
            Columns in the order of ``classes_``.
        """
        return np.stack([p.mean(axis=0) for p in self.predict_windows(X)])

    def predict(self, X):
        """The label of each clip (the class with the highest mean window probability).

        Parameters
        ----------
        X : list of WindowedClip

        Returns
        -------
        labels : ndarray, shape (n_clips,)
        """
        proba = self.predict_proba(X)  # first: it raises NotFittedError before classes_ is looked up
        return self.classes_[proba.argmax(axis=1)]

    # ------------------------------------------------------------------ persistence
    def save_params(self, *args, **kwargs):
        with self._device_resolved():
            return super().save_params(*args, **kwargs)

    def load_params(self, *args, **kwargs):
        with self._device_resolved():
            return super().load_params(*args, **kwargs)

    def __setstate__(self, state):
        # pickled before skorch's state moved to private names (see history_ above)
        legacy = {name: state.pop(name) for name in _SKORCH_STATE if name in state}
        # classifiers pickled before the option existed trained without it
        state.setdefault("activation_checkpointing", False)
        state.setdefault("mirror_augment", False)
        state.setdefault("measures", False)
        # options since removed (measured not to pay, benchmarks/results/network_measures.md): a classifier
        # pickled with their paper values loads as before, one that used them must be retrained
        for name, paper in (("fusion", "sum"), ("frame_inputs", "rgb")):
            value = state.pop(name, paper)
            if value != paper:
                raise ValueError(f"This classifier was pickled with {name}={value!r}, which fnpgrade no longer has; "
                                 f"retrain it (with measures=True for a network that grades new people).")
        # skorch maps the saved tensors to state["device"]; "auto" is resolved here
        requested = state.get("device")
        if requested == "auto":
            state["device"] = resolve_device(requested)
        super().__setstate__(state)
        for name, value in legacy.items():
            setattr(self, name, value)
        if requested == "auto":
            self.device = requested

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.non_deterministic = self.random_state is None
        return tags
