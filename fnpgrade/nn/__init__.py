"""Torch networks of the paper: the PHCNN branches, PHCNN-LSTM and the Table IV baselines.

Use :func:`build_network` with an ``arch`` name; :class:`fnpgrade.PHCNNClassifier`
does this for you. The data path (stacked uint8 windows, clip-wise validation
split) and the training callbacks live here too, next to the networks they feed.
"""

from .branches import FaceBranch, MeasuresBranch, RegionBranch, SEResNetBranch, VGG16Branch
from .networks import PHCNN, PHCNNLSTM, SENet, FaceN1LSTM, PixelLSTM, VGG16LSTM, WindowNetwork
from .registry import ARCHITECTURES, build_network

__all__ = ["ARCHITECTURES", "build_network", "WindowNetwork", "PHCNNLSTM", "PHCNN", "FaceN1LSTM", "VGG16LSTM",
           "SENet", "PixelLSTM", "FaceBranch", "RegionBranch", "VGG16Branch", "SEResNetBranch", "MeasuresBranch"]
