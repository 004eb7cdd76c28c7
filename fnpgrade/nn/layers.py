"""Small building blocks shared by every network: pixel conversion, conv and FC blocks.

Pixels arrive as ``uint8`` in the layout the preprocessing produces,
``(B, L, H, W, 3)``; they are converted and normalised here, on the device the
module lives on, so the data path moves 4x fewer bytes than float32 would.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

__all__ = ["scaled", "frames_to_images", "ConvBlock", "FCBlock", "conv_stack", "fuse_batchnorm"]


def scaled(n, width):
    """``n`` channels or units scaled by ``width``, at least 1."""
    return max(1, int(round(n * width)))


def frames_to_images(x, channels_last=False, dtype=torch.float32):
    """Turn ``uint8`` frames ``(B, L, H, W, 3)`` into normalised images ``(B*L, 3, H, W)``.

    Values map from 0..255 to -1..1. The permuted uint8 view already has
    channels-last strides, so keeping them (``channels_last=True``) costs no copy
    and lets oneDNN / cuDNN pick their NHWC kernels.
    """
    if x.dim() != 5 or x.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (B, L, H, W, 3); got {tuple(x.shape)}.")
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
