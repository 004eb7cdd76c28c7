"""Per-frame feature extractors: the paper's N1 / N2 / N3 branches, VGG16 and an SE-ResNet.

Each takes normalised images ``(N, 3, H, W)`` and returns features ``(N, out_features)``.
Setting ``activation_checkpointing = True`` on a branch recomputes its
convolutions during the backward pass instead of keeping their outputs (see
:func:`~fnpgrade.nn.layers.run_segments`).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from .layers import FCBlock, conv_segments, conv_stack, run_segments, scaled

__all__ = ["FaceBranch", "RegionBranch", "VGG16Branch", "SEResNetBranch", "MeasuresBranch", "robust_scaling",
           "VGG16_CONFIG"]

#: VGG16 "configuration D" (Simonyan & Zisserman, Table 1): conv widths, "M" = 2x2 max pool.
VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class _ConvFCBranch(nn.Module):
    """A conv stack, flattened, then ``n_fc`` FC blocks (shared by N1, N2/N3 and VGG16)."""

    #: Recompute the conv blocks in the backward pass instead of storing their activations (a class
    #: attribute, so networks pickled before the option existed read False).
    activation_checkpointing = False

    def __init__(self, config, image_size, fc_sizes, dropout):
        super().__init__()
        self.features, channels, pools = conv_stack(3, config)
        height, width = image_size[0] >> pools, image_size[1] >> pools
        if height < 1 or width < 1:
            raise ValueError(f"images of size {tuple(image_size)} are too small for {pools} 2x2 poolings.")
        in_features = channels * height * width
        blocks = []
        for size in fc_sizes:
            blocks.append(FCBlock(in_features, size, dropout))
            in_features = size
        self.head = nn.Sequential(nn.Flatten(), *blocks)
        self.out_features = in_features

    def forward(self, images):
        if self.activation_checkpointing and self.training:
            return self.head(run_segments(conv_segments(self.features), images, checkpointed=True))
        return self.head(self.features(images))


class FaceBranch(_ConvFCBranch):
    """Branch N1 (whole face): conv 3x3 16,16, pool, 32,32, pool, 64,64, pool, one FC.

    Parameters
    ----------
    width : float, default=1.0
        Channel multiplier (1.0 = paper).
    out_features : int, default=1024
        Size of the FC layer (the feature fused with the region branches).
    image_size : (int, int), default=(128, 128)
    dropout : float, default=0.5
    """

    def __init__(self, width=1.0, out_features=1024, image_size=(128, 128), dropout=0.5):
        c = [scaled(n, width) for n in (16, 16, 32, 32, 64, 64)]
        config = [c[0], c[1], "M", c[2], c[3], "M", c[4], c[5], "M"]
        super().__init__(config, image_size, [out_features], dropout)


class RegionBranch(_ConvFCBranch):
    """Branches N2 / N3 (eye-brow, mouth): conv 3x3 8,8, pool, 32,32, pool, 128,128, pool, three FC.

    Parameters
    ----------
    width : float, default=1.0
        Channel multiplier (1.0 = paper).
    out_features : int, default=1024
        Size of each of the three FC layers (the paper's 1024 features).
    image_size : (int, int), default=(40, 120)
    dropout : float, default=0.5
    """

    def __init__(self, width=1.0, out_features=1024, image_size=(40, 120), dropout=0.5):
        c = [scaled(n, width) for n in (8, 8, 32, 32, 128, 128)]
        config = [c[0], c[1], "M", c[2], c[3], "M", c[4], c[5], "M"]
        super().__init__(config, image_size, [out_features] * 3, dropout)


class VGG16Branch(_ConvFCBranch):
    """VGG16 configuration D on the face, with its two 4096-unit FC layers.

    Batch norm follows every convolution (the ``vgg16_bn`` variant): the paper
    trains from scratch with SGD at lr 1e-4, where plain VGG16 barely moves.

    Parameters
    ----------
    width : float, default=1.0
        Multiplier for the conv channels and the FC sizes.
    out_features : int or None, default=None
        Size of the FC layers; ``None`` means ``4096 * width``.
    image_size : (int, int), default=(128, 128)
    dropout : float, default=0.5
    """

    def __init__(self, width=1.0, out_features=None, image_size=(128, 128), dropout=0.5):
        config = [item if item == "M" else scaled(item, width) for item in VGG16_CONFIG]
        fc = scaled(4096, width) if out_features is None else out_features
        super().__init__(config, image_size, [fc, fc], dropout)


class SqueezeExcitation(nn.Module):
    """Channel attention of Hu et al.: global pool -> FC (reduce) -> ReLU -> FC -> sigmoid -> scale."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x):
        return x * self.gate(x)


class SEBasicBlock(nn.Module):
    """Residual basic block (two 3x3 convs) with squeeze-and-excitation before the addition."""

    def __init__(self, in_channels, out_channels, stride=1, reduction=16):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            SqueezeExcitation(out_channels, reduction),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class SEResNetBranch(nn.Module):
    """SE-ResNet-18 layout (Hu et al.'s SE blocks in ResNet-18's basic blocks) on face frames.

    The paper does not give SENet's depth; ResNet-18's layout keeps the baseline
    trainable on the paper's data size. Stem 7x7/2 conv + 3x3/2 max pool, four
    stages of two blocks (64, 128, 256, 512 channels), global average pool.

    Parameters
    ----------
    width : float, default=1.0
        Channel multiplier.
    blocks : tuple of int, default=(2, 2, 2, 2)
    reduction : int, default=16
    """

    #: Recompute the stem and each residual block in the backward pass (see :class:`_ConvFCBranch`).
    activation_checkpointing = False

    def __init__(self, width=1.0, blocks=(2, 2, 2, 2), reduction=16):
        super().__init__()
        channels = [scaled(n, width) for n in (64, 128, 256, 512)]
        layers = [nn.Conv2d(3, channels[0], 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(channels[0]),
                  nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)]
        in_channels = channels[0]
        for stage, (out_channels, n_blocks) in enumerate(zip(channels, blocks)):
            for i in range(n_blocks):
                stride = 2 if (i == 0 and stage > 0) else 1
                layers.append(SEBasicBlock(in_channels, out_channels, stride, reduction))
                in_channels = out_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.out_features = in_channels

    def forward(self, images):
        if self.activation_checkpointing and self.training:
            # segments: the stem (conv, batch norm, ReLU, pool), then each residual block
            layers = list(self.body)
            segments = [layers[:4]] + [[layer] for layer in layers[4:-2]]
            x = run_segments(segments, images, checkpointed=True)
            return layers[-1](layers[-2](x))  # global average pool, flatten
        return self.body(images)


class MeasuresBranch(nn.Module):
    """Per-frame measures ``(N, K)`` -> features ``(N, out_features)``, to add to the fused image features.

    The measures (:class:`~fnpgrade.measures.FrameMeasures`: each region's
    movement since the clip's first frame on the weaker and the stronger
    side, their ratio and difference, the eyes' aperture gap) are already
    what a clinician compares, and the same for every face; the images carry
    the person too, which a network trained on few people learns instead of
    the palsy. The measures are first scaled robustly, ``(m - center) /
    scale`` clipped to +-``clip``, with ``center`` and ``scale`` buffers the
    classifier sets from the training windows (median and a quantile range,
    :func:`robust_scaling`): the units differ per column (inter-ocular
    distances of ~0.01-0.3, ratios in 0..1) and flow has outliers (a blink,
    a failed field) that must not dominate a batch. Then two
    ``Linear -> BatchNorm -> ReLU`` blocks, the form of the paper's FC blocks
    without dropout (29 inputs carry little redundancy to drop).

    Parameters
    ----------
    n_measures : int
        Measures per frame ``K``.
    out_features : int
        Size of the output (the fused image features' size, so the two add).
    hidden : int or None, default=None
        Size of the hidden layer; ``None`` = ``out_features``.
    clip : float, default=5.0
        Scaled measures are clipped to ``[-clip, clip]``.
    """

    def __init__(self, n_measures, out_features, hidden=None, clip=5.0):
        super().__init__()
        hidden = out_features if hidden is None else int(hidden)
        self.n_measures = int(n_measures)
        self.clip = float(clip)
        self.register_buffer("center", torch.zeros(self.n_measures))
        self.register_buffer("scale", torch.ones(self.n_measures))
        self.body = nn.Sequential(
            nn.Linear(self.n_measures, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, out_features, bias=False), nn.BatchNorm1d(out_features), nn.ReLU(inplace=True),
        )
        self.out_features = out_features

    @torch.no_grad()
    def set_scaling(self, center, scale):
        """Set the ``center`` and ``scale`` buffers (see :func:`robust_scaling`); returns self."""
        self.center.copy_(torch.as_tensor(np.asarray(center), dtype=self.center.dtype).reshape(self.n_measures))
        self.scale.copy_(torch.as_tensor(np.asarray(scale), dtype=self.scale.dtype).reshape(self.n_measures))
        return self

    def forward(self, measures):
        x = measures.to(self.center.dtype)
        # a measure that could not be taken (NaN) reads as the typical value, not as a poisoned batch
        x = torch.nan_to_num((x - self.center) / self.scale, nan=0.0)
        return self.body(x.clamp(-self.clip, self.clip))


def robust_scaling(measures):
    """Per-column ``(center, scale)`` of measures ``(..., K)``, robust to outliers (for :class:`MeasuresBranch`).

    ``center`` is the median of each column; ``scale`` the 5-95% range
    divided by 3.29 (the standard deviation for normal data), or the
    column's largest absolute deviation from the median where that range is
    0 (a measure that is mostly 0), or 1 for a constant column, so nothing is
    divided by zero. Non-finite values are left out.

    Parameters
    ----------
    measures : array-like of float, shape (..., K)

    Returns
    -------
    center, scale : ndarray of float32, shape (K,)

    Examples
    --------
    >>> import numpy as np
    >>> center, scale = robust_scaling(np.array([[0.0, 1.0], [0.1, 1.0], [0.2, 1.0], [9.0, 1.0]]))
    >>> center.round(3).tolist(), (scale > 0).all()
    ([0.15, 1.0], True)
    """
    m = np.asarray(measures, dtype=np.float64)
    m = m.reshape(-1, m.shape[-1])
    m = np.where(np.isfinite(m), m, np.nan)
    with warnings.catch_warnings():  # an all-NaN column is handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        low, center, high = np.nanquantile(m, [0.05, 0.5, 0.95], axis=0)
        widest = np.nanmax(np.abs(m - center), axis=0)
    center = np.nan_to_num(center, nan=0.0)
    spread = np.nan_to_num((high - low) / 3.29, nan=0.0)
    widest = np.nan_to_num(widest, nan=0.0)
    scale = np.where(spread > 0, spread, np.where(widest > 0, widest, 1.0))
    return center.astype(np.float32), scale.astype(np.float32)
