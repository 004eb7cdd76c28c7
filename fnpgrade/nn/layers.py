"""Small building blocks shared by every network: pixel conversion, conv and FC blocks.

Pixels arrive as ``uint8`` in the layout the preprocessing produces,
``(B, L, H, W, 3)``; they are converted and normalised here, on the device the
module lives on, so the data path moves 4x fewer bytes than float32 would.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager, nullcontext
from functools import partial

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval
from torch.utils.checkpoint import checkpoint

__all__ = ["scaled", "frames_to_images", "ConvBlock",
           "FCBlock", "conv_stack", "conv_segments", "run_segments", "fuse_batchnorm", "folded_copy",
           "recalibrate_batchnorm"]


def scaled(n, width):
    """``n`` channels or units scaled by ``width``, at least 1."""
    return max(1, int(round(n * width)))


def _check_frames(x):
    if x.dim() != 5 or x.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (B, L, H, W, 3); got {tuple(x.shape)}.")


def frames_to_images(x, channels_last=False, dtype=torch.float32):
    """Turn ``uint8`` frames ``(B, L, H, W, 3)`` into normalised images ``(B*L, 3, H, W)``.

    Values map from 0..255 to -1..1. The permuted uint8 view already has
    channels-last strides, so keeping them (``channels_last=True``) costs no copy
    and lets oneDNN / cuDNN pick their NHWC kernels.
    """
    _check_frames(x)
    b, l, h, w, c = x.shape
    images = x.reshape(b * l, h, w, c).permute(0, 3, 1, 2)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    images = images.to(dtype=dtype, memory_format=memory_format)
    return images.mul_(1.0 / 127.5).sub_(1.0)


class ConvBlock(nn.Sequential):
    """3x3 convolution -> batch norm -> ReLU (batch norm before each hidden layer, as in the paper)."""

    def __init__(self, in_channels, out_channels):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class FCBlock(nn.Sequential):
    """Linear -> batch norm -> ReLU -> dropout (the paper's FC layers, dropout 0.5)."""

    def __init__(self, in_features, out_features, dropout=0.5):
        super().__init__(
            nn.Linear(in_features, out_features, bias=False),
            nn.BatchNorm1d(out_features),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )


def conv_stack(in_channels, config):
    """A VGG-style stack from a config list: ints are 3x3 conv blocks, ``"M"`` a 2x2 max pool.

    Returns
    -------
    stack : nn.Sequential
    out_channels : int
    n_pools : int
    """
    layers, channels, pools = [], in_channels, 0
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
            pools += 1
        else:
            layers.append(ConvBlock(channels, item))
            channels = item
    return nn.Sequential(*layers), channels, pools


def conv_segments(stack):
    """Split a :func:`conv_stack` into checkpoint segments: each conv block with the pooling after it.

    One segment per conv block keeps only the block inputs between the forward
    and the backward pass; recomputing a segment during the backward pass then
    materialises one block's tensors at a time. (A whole stage as one segment
    would store less but rebuild all of the stage's tensors at once, which at
    128x128 is most of what checkpointing is meant to avoid.) Pooling has no
    weights and is cheap to redo, so it joins the block before it: its int64
    indices are then not kept either.

    Parameters
    ----------
    stack : nn.Sequential

    Returns
    -------
    segments : list of list of nn.Module
    """
    segments = []
    for layer in stack:
        if segments and not any(True for _ in layer.parameters()):
            segments[-1].append(layer)  # parameter-free (pooling): recompute it with the block before
        else:
            segments.append([layer])
    return segments


@contextmanager
def _batchnorm_stats_frozen(modules):
    """Batch norms in ``modules`` update throwaway copies of their running statistics, not their own.

    Used while a checkpointed segment is recomputed in the backward pass: the
    forward pass already updated ``running_mean``, ``running_var`` and
    ``num_batches_tracked`` once, and a second update would move them twice
    as far per step. The batch norm still runs exactly as in the forward pass
    (training mode, batch statistics, the same tensors saved for its backward,
    which checkpointing checks), it just writes its update into copies that
    are dropped afterwards. (Turning ``track_running_stats`` off instead
    changes the tensors batch norm saves, which checkpointing rejects;
    momentum 0 would still count ``num_batches_tracked`` and turns a non-finite
    batch statistic into NaN running statistics.)
    """
    names = ("running_mean", "running_var", "num_batches_tracked")
    norms = [m for module in modules for m in module.modules()
             if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
    kept = [{name: norm._buffers[name] for name in names if norm._buffers.get(name) is not None} for norm in norms]
    for norm, buffers in zip(norms, kept):
        for name, buffer in buffers.items():
            norm._buffers[name] = buffer.clone()
    try:
        yield
    finally:
        for norm, buffers in zip(norms, kept):
            norm._buffers.update(buffers)


def _recompute_contexts(modules):
    return nullcontext(), _batchnorm_stats_frozen(modules)


def _run_modules(modules, x):
    for module in modules:
        x = module(x)
    return x


def run_segments(segments, x, checkpointed=False):
    """Run ``segments`` (lists of modules) in order, each under activation checkpointing if asked.

    With ``checkpointed=True`` and autograd recording, every segment is a
    non-reentrant :func:`torch.utils.checkpoint.checkpoint`: only its input is
    kept for the backward pass, which recomputes the segment's forward first.
    Results, gradients and batch-norm running statistics are those of the plain
    forward (the recomputation freezes the running statistics, see
    :func:`_batchnorm_stats_frozen`); the cost is one more forward pass of the
    segments. Without autograd (evaluation, ``torch.inference_mode``) the
    segments run plainly.

    Parameters
    ----------
    segments : list of list of nn.Module
    x : torch.Tensor
    checkpointed : bool, default=False

    Returns
    -------
    torch.Tensor
    """
    if not (checkpointed and torch.is_grad_enabled()):
        for modules in segments:
            x = _run_modules(modules, x)
        return x
    for modules in segments:
        x = checkpoint(partial(_run_modules, modules), x, use_reentrant=False,
                       context_fn=partial(_recompute_contexts, modules))
    return x


def fuse_batchnorm(module):
    """Fold every batch norm that follows a conv / linear layer into it, in place (inference only).

    In eval mode batch norm is an affine map with fixed statistics, so
    ``BN(conv(x)) == conv'(x)`` with rescaled weights and a bias: one pass over
    the activations less per layer, same outputs up to float rounding. Pairs
    are looked for inside every ``nn.Sequential`` (the conv / FC blocks, the
    SE-ResNet stem, bodies and shortcuts); the batch norm is replaced by
    ``nn.Identity``. The module must be in eval mode; train it no more
    afterwards (fuse a copy).

    Parameters
    ----------
    module : nn.Module

    Returns
    -------
    module : nn.Module
        The same module, fused.
    """
    if module.training:
        raise ValueError("fuse_batchnorm needs a module in eval mode (batch norm uses running statistics).")
    for sequential in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        names = list(sequential._modules)
        for first, second in zip(names, names[1:]):
            layer, norm = sequential._modules[first], sequential._modules[second]
            if isinstance(layer, nn.Conv2d) and type(norm) is nn.BatchNorm2d and norm.track_running_stats:
                channels_last = layer.weight.is_contiguous(memory_format=torch.channels_last) and layer.weight.dim() == 4 \
                    and not layer.weight.is_contiguous()
                fused = fuse_conv_bn_eval(layer, norm)
                if channels_last:
                    fused = fused.to(memory_format=torch.channels_last)
            elif isinstance(layer, nn.Linear) and type(norm) is nn.BatchNorm1d and norm.track_running_stats \
                    and layer.out_features == norm.num_features:
                fused = fuse_linear_bn_eval(layer, norm)
            else:
                continue
            sequential._modules[first] = fused
            sequential._modules[second] = nn.Identity()
    return module


def folded_copy(module, channels_last=False):
    """A frozen eval-mode copy of ``module`` with its batch norms folded in (:func:`fuse_batchnorm`), for prediction.

    ``channels_last`` converts it to NHWC where it can (``set_channels_last``).
    """
    fused = copy.deepcopy(module).eval()
    for p in fused.parameters():
        p.requires_grad_(False)
    fused = fuse_batchnorm(fused)
    if channels_last and hasattr(fused, "set_channels_last"):
        fused.set_channels_last(True)
    return fused


def recalibrate_batchnorm(module, batches, forward=None):
    """Recompute every batch norm's running statistics from ``batches`` with the current weights.

    After a short training (a few dozen SGD steps) the running statistics,
    an exponential average with momentum 0.1, still describe the activations
    of earlier weights; evaluation then normalises with the wrong statistics
    and can predict one class for everything while training-mode outputs are
    right. This recomputes them as :func:`torch.optim.swa_utils.update_bn`
    does (the running statistics are reset and become the plain average of
    the batch statistics over ``batches``), with two differences: everything
    but the batch norms stays in eval mode, so dropout is off and the batch
    norms see the activations evaluation will give them (dropout changes the
    variance of the layers after it) and no random numbers are drawn; and the
    module's train / eval modes are restored afterwards. No gradient is
    computed; memory is that of one forward pass of one batch.

    Parameters
    ----------
    module : nn.Module
    batches : iterable
        Inputs, one batch at a time; a dict is passed as keyword arguments.
    forward : callable or None, default=None
        ``forward(batch)`` runs the module on one batch (to move it to a
        device, run under autocast...); ``None`` calls ``module`` on it.

    Returns
    -------
    n_batches : int
        Batches used. With none (or no batch norm with running statistics)
        the statistics are left as they were.
    """
    norms = [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    if forward is None:
        def forward(batch):
            return module(**batch) if isinstance(batch, dict) else module(batch)
    modes = [(m, m.training) for m in module.modules()]
    saved = [(norm.momentum, {k: v.clone() for k, v in norm._buffers.items() if v is not None}) for norm in norms]
    n_batches = 0
    try:
        module.eval()
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average over the batches
            norm.train()
        with torch.no_grad():
            for batch in batches:
                forward(batch)
                n_batches += 1
    finally:
        for m, training in modes:
            m.training = training
        for norm, (momentum, buffers) in zip(norms, saved):
            norm.momentum = momentum
            if not n_batches:  # nothing seen (or an error): keep the old statistics
                for name, value in buffers.items():
                    norm._buffers[name].copy_(value)
    return n_batches
