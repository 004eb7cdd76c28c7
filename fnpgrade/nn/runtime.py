"""How the classifier runs, not what it learns: precision, memory layout, batch-norm folding, threads.

:class:`Runtime` gathers the speed and memory switches of
:class:`~fnpgrade.PHCNNClassifier` in one small object (its ``runtime``
parameter). The defaults compute in float32 with torch's thread count, so the
same ``random_state`` gives the same model on every CPU; every faster path
that changes the numerics is opt-in. Measurements: ``docs/performance.md``.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch

__all__ = ["Runtime", "resolve_device"]

_PRECISIONS = ("fp32", "bf16", "auto")
_ENGINES = ("torch", "onnxruntime")


def resolve_device(device):
    """``"auto"`` -> ``"cuda"`` when a GPU is available, else ``"cpu"``; anything else unchanged.

    For command lines and scripts that offer ``"auto"``: the classifier's
    ``device`` (skorch's parameter) takes a torch device.
    """
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


class Runtime:
    """Speed and memory settings of :class:`~fnpgrade.PHCNNClassifier` (its ``runtime`` parameter).

    None of them changes what the network learns beyond float rounding,
    except ``precision="bf16"`` (opt-in). Values are checked when the object
    is made.

    Parameters
    ----------
    precision : {"fp32", "bf16", "auto"}, default="fp32"
        ``"fp32"`` computes in float32 everywhere: the same ``random_state``
        gives the same model on every CPU. ``"bf16"`` runs the forward pass
        under bfloat16 autocast (CPU or GPU): fast where the hardware computes
        bf16 natively (a CUDA GPU with bf16, a CPU with AMX-BF16 or
        AVX512-BF16), emulated
        and several times slower elsewhere, and results then depend on the
        hardware. ``"auto"`` picks bf16 where it is native and measured
        faster: a CUDA GPU with bf16 and a CPU with AMX-BF16 (``amx_bf16`` in
        ``/proc/cpuinfo``) for training and prediction, a CPU with AVX512-BF16
        but no AMX for training only (its bf16 prediction was no faster than
        float32); fp32 elsewhere.
    channels_last : {"auto", True, False}, default="auto"
        NHWC memory order of the convolutions. ``"auto"``: NHWC for prediction
        (CPU and CUDA) and for training on CUDA; NCHW for training on CPU,
        where NHWC batch norm in float32 drifted from a float64 reference by
        up to 3% in some gradients (NCHW: 4e-5).
    fuse_batchnorm : bool, default=True
        Predict with a copy of the network whose batch norms are folded into
        the layer before them (same outputs up to float rounding, less work
        per window). Training is unaffected.
    activation_checkpointing : bool, default=False
        Lower training memory by recomputing each conv block's activations in
        the backward pass instead of storing them (same loss, gradients and
        batch-norm statistics; each training step takes longer). Prediction is
        unaffected.
    n_threads : int or None, default=None
        Torch intra-op threads while fitting and predicting (torch's setting
        is restored afterwards); ``None`` leaves torch's setting. On a machine
        other processes keep busy, fewer threads can be much faster. Float
        sums, so results, can differ with the thread count.
    engine : {"torch", "onnxruntime"}, default="torch"
        What computes predictions on the CPU. ``"onnxruntime"`` exports the
        fitted network to ONNX once per process and predicts with ONNX Runtime
        (:mod:`fnpgrade.nn.ort`; the ``onnx`` extra): float32 like the
        default, its probabilities equal torch's to float rounding (not bit for
        bit), several times faster on a CPU; the first prediction pays the
        export. CPU only; with ``precision="fp32"``. Training is unaffected.

    Examples
    --------
    >>> from fnpgrade.nn.runtime import Runtime
    >>> Runtime(n_threads=1)
    Runtime(precision='fp32', channels_last='auto', fuse_batchnorm=True, activation_checkpointing=False, n_threads=1, engine='torch')
    """

    engine = "torch"  # runtimes pickled before the field existed predict with torch

    def __init__(self, precision="fp32", channels_last="auto", fuse_batchnorm=True, activation_checkpointing=False,
                 n_threads=None, engine="torch"):
        if precision not in _PRECISIONS:
            raise ValueError(f"Runtime: precision must be one of {_PRECISIONS}; got {precision!r}.")
        if channels_last not in ("auto", True, False):
            raise ValueError(f"Runtime: channels_last must be 'auto', True or False; got {channels_last!r}.")
        for name, value in (("fuse_batchnorm", fuse_batchnorm), ("activation_checkpointing", activation_checkpointing)):
            if not isinstance(value, bool):
                raise ValueError(f"Runtime: {name} must be True or False; got {value!r}.")
        if n_threads is not None and (isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1):
            raise ValueError(f"Runtime: n_threads must be None or an int >= 1; got {n_threads!r}.")
        if engine not in _ENGINES:
            raise ValueError(f"Runtime: engine must be one of {_ENGINES}; got {engine!r}.")
        if engine == "onnxruntime" and precision != "fp32":
            raise ValueError(f"Runtime: engine='onnxruntime' predicts in float32; precision={precision!r} needs "
                             "engine='torch'.")
        self.precision = precision
        self.channels_last = channels_last
        self.fuse_batchnorm = fuse_batchnorm
        self.activation_checkpointing = activation_checkpointing
        self.n_threads = n_threads
        self.engine = engine

    def _fields(self):
        return {k: getattr(self, k) for k in ("precision", "channels_last", "fuse_batchnorm",
                                              "activation_checkpointing", "n_threads", "engine")}

    def __repr__(self):
        return "Runtime(" + ", ".join(f"{k}={v!r}" for k, v in self._fields().items()) + ")"

    def __eq__(self, other):
        return type(other) is type(self) and other._fields() == self._fields()

    def __hash__(self):
        return hash(repr(self))

    def resolved_precision(self, device, training=False):
        """``"fp32"`` or ``"bf16"`` on ``device``, for a training step or a prediction (``"auto"`` resolved as
        described above)."""
        if self.precision != "auto":
            return self.precision
        device = torch.device(device)
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        if device.type != "cpu":
            return "fp32"
        # AMX-BF16: bf16 matrix tiles, training 4.3x and prediction 5.2x fp32; AVX512-BF16 alone: bf16 dot products,
        # training 1.5x but prediction 0.95x (docs/performance.md); without either oneDNN emulates bf16, far slower
        flags = set(_cpu_flags())
        if "amx_bf16" in flags:
            return "bf16"
        return "bf16" if training and "avx512_bf16" in flags else "fp32"

    def uses_channels_last(self, device, training=False):
        """Whether the network runs NHWC on ``device`` (``"auto"`` resolved as described above)."""
        if self.channels_last != "auto":
            return bool(self.channels_last)
        kind = torch.device(device).type
        return kind == "cuda" or (kind == "cpu" and not training)

    def autocast(self, device, training=False):
        """bfloat16 autocast on ``device`` when the precision resolves to bf16 (for training or not), else nothing."""
        if self.resolved_precision(device, training) == "fp32":
            return nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)

    def prediction_module(self, module, device):
        """What predicts with the fitted ``module`` on ``device``, or None for ``module`` itself.

        ``engine="onnxruntime"``: an :class:`~fnpgrade.nn.ort.OnnxRuntimeModule`;
        else with ``fuse_batchnorm``, an eval-mode copy with batch norm folded
        in (NHWC as :meth:`uses_channels_last` says). Under skorch's
        ``compile=True`` either is made from the eager network inside the
        wrapper (a copy of the wrapper would call the unfolded original).
        """
        module = getattr(module, "_orig_mod", module)
        if self.engine == "onnxruntime":
            from .ort import OnnxRuntimeModule, require_onnxruntime

            if torch.device(device).type != "cpu":
                raise ValueError(f"Runtime(engine='onnxruntime') predicts on the CPU; the classifier's device is "
                                 f"{device}. Use engine='torch' there.")
            require_onnxruntime()
            return OnnxRuntimeModule(module, self.n_threads or torch.get_num_threads())
        if self.fuse_batchnorm:
            from .layers import folded_copy

            return folded_copy(module, channels_last=self.uses_channels_last(device))
        return None

    @contextmanager
    def threads(self):
        """Run with ``n_threads`` torch threads, restoring torch's setting afterwards."""
        previous = torch.get_num_threads()
        if self.n_threads is None or self.n_threads == previous:
            yield
            return
        torch.set_num_threads(self.n_threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)
