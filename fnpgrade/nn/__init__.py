"""Torch networks of the paper: the PHCNN branches, PHCNN-LSTM and the Table IV baselines.

Use :func:`build_network` with an ``arch`` name; :class:`fnpgrade.PHCNNClassifier`
does this for you. The data path (stacked uint8 windows, clip-wise validation
split) and the training callbacks live here too, next to the networks they feed.

Names are imported on first use: ``fnpgrade.nn.names`` (the architectures' names,
for a command line's choices) does not load torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    **{name: "fnpgrade.nn.branches" for name in ("FaceBranch", "MeasuresBranch", "RegionBranch", "SEResNetBranch",
                                                 "VGG16Branch")},
    **{name: "fnpgrade.nn.networks" for name in ("PHCNN", "PHCNNLSTM", "SENet", "FaceN1LSTM", "PixelLSTM",
                                                 "VGG16LSTM", "WindowNetwork")},
    "ARCHITECTURES": "fnpgrade.nn.registry", "build_network": "fnpgrade.nn.registry",
    "ARCHITECTURE_NAMES": "fnpgrade.nn.names",
}

__all__ = ["ARCHITECTURES", "ARCHITECTURE_NAMES", "build_network", "WindowNetwork", "PHCNNLSTM", "PHCNN",
           "FaceN1LSTM", "VGG16LSTM", "SENet", "PixelLSTM", "FaceBranch", "RegionBranch", "VGG16Branch",
           "SEResNetBranch", "MeasuresBranch"]

__getattr__, __dir__ = lazy_exports("fnpgrade.nn", _EXPORTS, globals())
