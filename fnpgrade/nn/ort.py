"""Prediction by ONNX Runtime: the network exported once to ONNX and run by ORT's CPU kernels.

``Runtime(engine="onnxruntime")`` (opt-in) makes
:class:`~fnpgrade.PHCNNClassifier` predict through an
:class:`OnnxRuntimeModule` instead of its folded torch copy: the same float32
network (ORT folds the batch norms and fuses the convolutions with their
activations itself), computed by another library's kernels, so probabilities
agree with torch's to float rounding, not bit for bit. Needs the ``onnx``
extra (``onnxruntime``, and ``onnx`` for torch's exporter). Measurements:
``docs/performance.md``.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections import OrderedDict

import numpy as np
import torch

__all__ = ["OnnxRuntimeModule", "require_onnxruntime"]

#: Sessions kept per process (a model's weights and input shapes each make one): a CLI run grades with one.
_MAX_SESSIONS = 4
_SESSIONS = OrderedDict()


def require_onnxruntime():
    """Import ``onnxruntime`` and ``onnx``, or raise an ImportError saying how to install them."""
    try:
        import onnx  # noqa: F401  (torch's exporter writes the graph with it)
        import onnxruntime
    except ImportError as error:
        raise ImportError(f"Runtime(engine='onnxruntime') needs onnxruntime and onnx ({error}): pip install "
                          "'fnpgrade[onnx]' (or use the default engine='torch').") from error
    return onnxruntime


def _weights_signature(module):
    """Changes whenever a parameter or buffer of ``module`` is replaced or written in place (training, loading)."""
    return tuple((name, t.data_ptr(), t._version) for name, t in module.state_dict(keep_vars=True).items())


class OnnxRuntimeModule:
    """Callable like the network (uint8 batches in, logits out), computed by an ONNX Runtime session.

    The network is exported on the first call for each set of input shapes
    (the batch size stays free) and the session is kept for the process
    (up to four), so later predictions with the same weights start at once;
    training, loading or replacing the weights makes a new one.

    Parameters
    ----------
    module : torch.nn.Module
        The fitted network (a :class:`~fnpgrade.nn.networks.WindowNetwork`);
        exported from an eval-mode copy, never changed.
    n_threads : int
        ORT's intra-op threads.
    """

    def __init__(self, module, n_threads):
        self.module = module
        self.n_threads = int(n_threads)

    def __call__(self, **inputs):
        names = tuple(getattr(self.module, "inputs", ("face", "brow", "mouth")))
        key = (id(self.module), type(self.module).__name__, _weights_signature(self.module), self.n_threads,
               tuple((name, tuple(inputs[name].shape[1:]), str(inputs[name].dtype)) for name in names))
        session = _SESSIONS.get(key)
        if session is None:
            session = _SESSIONS[key] = self._session(names, inputs)
            while len(_SESSIONS) > _MAX_SESSIONS:
                _SESSIONS.popitem(last=False)
        _SESSIONS.move_to_end(key)
        feeds = {name: np.ascontiguousarray(inputs[name].detach().cpu().numpy()) for name in names}
        return torch.from_numpy(session.run(None, feeds)[0])

    def _session(self, names, inputs):
        onnxruntime = require_onnxruntime()
        network = copy.deepcopy(self.module).eval().float()
        graph = io.BytesIO()
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            try:
                torch.onnx.export(network, tuple(inputs[name].cpu().clone() for name in names), graph,
                                  input_names=list(names), output_names=["logits"], opset_version=17, dynamo=False,
                                  dynamic_axes={name: {0: "batch"} for name in (*names, "logits")})
            except Exception as error:  # torch.onnx's errors have no common base below Exception
                raise ValueError(f"Runtime(engine='onnxruntime'): the {type(self.module).__name__} network does not "
                                 f"export to ONNX ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
                                 "predict it with engine='torch'.") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.n_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        return onnxruntime.InferenceSession(graph.getvalue(), options, providers=["CPUExecutionProvider"])
