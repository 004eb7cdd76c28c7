"""The six networks of the paper's Table IV, as torch modules over windows of frames.

Every network takes the ``uint8`` windows ``face (B, L, 128, 128, 3)``,
``brow`` and ``mouth (B, L, 40, 120, 3)`` as keyword arguments and returns class
logits ``(B, n_classes)``; PHCNN and PHCNN-LSTM built with ``n_measures`` also
read ``measures (B, L, K)``, per-frame movement measures, and have a second
head on them (in training their forward returns ``(logits, measures_logits)``,
see :func:`_with_measures_logits`). ``inputs`` names the
arrays a network reads, so the data path gathers only those. Networks without an LSTM classify each frame and
return ``log(mean_frames softmax)``: its softmax is the mean of the frame
probabilities, and cross entropy on it is the loss of that mean.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..clips import FACE_SIZE as _FACE_SIDE
from ..clips import ROI_SIZE
from .branches import FaceBranch, MeasuresBranch, RegionBranch, SEResNetBranch, VGG16Branch
from .layers import frames_to_images, scaled

__all__ = ["WindowNetwork", "PHCNNLSTM", "PHCNN", "FaceN1LSTM", "VGG16LSTM", "SENet", "PixelLSTM",
           "PHCNNFeatures"]

# the paper's crop sizes, defined once with the clip types
FACE_SIZE = (_FACE_SIDE, _FACE_SIDE)


class WindowNetwork(nn.Module):
    """Base class: uint8 windows in, logits out.

    Subclasses set ``inputs`` and implement ``_forward`` on float images.
    ``channels_last`` keeps the images in NHWC memory order (see
    :func:`~fnpgrade.nn.layers.frames_to_images`); set it with
    :meth:`set_channels_last`, which also converts the weights.
    """

    inputs = ("face", "brow", "mouth")

    def __init__(self):
        super().__init__()
        self.channels_last = False

    def set_channels_last(self, enabled=True):
        """Use NHWC memory order for weights and activations (faster convolutions on CPU and GPU)."""
        self.channels_last = bool(enabled)
        self.to(memory_format=torch.channels_last if enabled else torch.contiguous_format)
        return self

    def set_activation_checkpointing(self, enabled=True):
        """Recompute the branches' convolutions in the backward pass instead of storing their activations.

        Lowers training memory (the conv blocks' outputs dominate it) for one
        more forward pass of the conv stacks; outputs, gradients and batch-norm
        running statistics are unchanged (see
        :func:`~fnpgrade.nn.layers.run_segments`). Networks without conv
        branches (``PixelLSTM``) are unaffected.

        Parameters
        ----------
        enabled : bool, default=True

        Returns
        -------
        self : WindowNetwork
        """
        for module in self.modules():
            if hasattr(type(module), "activation_checkpointing"):
                module.activation_checkpointing = bool(enabled)
        return self

    #: Flip a random half of every training batch left-right (see :meth:`set_mirror_augment`).
    mirror_augment = False

    def set_mirror_augment(self, enabled=True):
        """Show each training window mirrored left-right with probability 1/2.

        A one-sided weakness has the same grade on either side, so a mirrored
        window is a valid new example: it doubles the faces the network sees
        and stops it from tying the grade to the side that is affected.
        Applied in ``forward`` while the module is in training mode only (one
        draw per window, the same for all its regions and frames, from torch's
        random generator, so seeded runs repeat); evaluation and prediction
        never flip. Per-frame ``measures`` are not flipped: they are
        symmetric in the two sides, so a mirrored face has the same ones.

        Parameters
        ----------
        enabled : bool, default=True

        Returns
        -------
        self : WindowNetwork
        """
        self.mirror_augment = bool(enabled)
        return self

    #: Axis of the image width in the windows ``(B, L, H, W, C)``: a left-right mirror flips it.
    WIDTH_AXIS = -2

    #: The inputs that are images (a mirror flips them); anything else (``measures``) is side-symmetric.
    IMAGES = ("face", "brow", "mouth")

    @classmethod
    def mirrored(cls, arrays):
        """Every window of a batch mirrored left-right.

        ``arrays`` maps input names to batches; the images ``(B, L, H, W, C)``
        are flipped along their width, ``measures`` (side-symmetric) and None
        are returned as they are.
        """
        return {name: None if frames is None else
                torch.as_tensor(frames).flip(cls.WIDTH_AXIS) if name in cls.IMAGES else frames
                for name, frames in arrays.items()}

    def _mirrored_half(self, arrays):
        """The windows of a random half of the batch flipped along their width (images only)."""
        present = [a for name, a in arrays.items() if a is not None and name in self.IMAGES]
        flip = torch.rand(present[0].shape[0], device=present[0].device) < 0.5
        flipped = self.mirrored(arrays)
        out = {}
        for name, frames in arrays.items():
            if frames is None or name not in self.IMAGES:
                out[name] = frames
                continue
            frames = torch.as_tensor(frames)
            mask = flip.to(frames.device).view(-1, *([1] * (frames.dim() - 1)))
            out[name] = torch.where(mask, flipped[name], frames)
        return out

    def images(self, frames):
        """``uint8 (B, L, H, W, 3)`` -> normalised float ``(B*L, 3, H, W)`` on this module's device."""
        return frames_to_images(frames, channels_last=self.channels_last)

    def forward(self, face=None, brow=None, mouth=None, measures=None, **kwargs):
        arrays = {"face": face, "brow": brow, "mouth": mouth, "measures": measures}
        missing = [name for name in self.inputs if arrays[name] is None]
        if missing:
            raise ValueError(f"{type(self).__name__} needs the input(s) {missing}.")
        if self.training and self.mirror_augment:
            arrays = self._mirrored_half({name: arrays[name] for name in self.inputs})
        return self._forward(**{name: arrays[name] for name in self.inputs})

    def _forward(self, **frames):
        """Logits ``(B, n_classes)`` from the uint8 windows named in ``inputs`` (each subclass defines it)."""
        raise TypeError(f"{type(self).__name__} does not define _forward; subclasses of WindowNetwork must.")


class SequenceHead(nn.Module):
    """LSTM over the frames' features, last step -> dropout -> linear logits."""

    def __init__(self, in_features, hidden_size, n_classes, dropout=0.5):
        super().__init__()
        self.lstm = nn.LSTM(in_features, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_size, n_classes)

    def forward(self, features):
        # features: (B, L, F); the last output has seen the whole window
        out, _ = self.lstm(features)
        return self.fc(self.dropout(out[:, -1]))


def mean_frame_logits(frame_logits):
    """``(B, L, C)`` frame logits -> ``log`` of the mean frame probabilities, ``(B, C)``."""
    n_frames = frame_logits.shape[1]
    return torch.logsumexp(F.log_softmax(frame_logits.float(), dim=-1), dim=1) - math.log(n_frames)


class PHCNNFeatures(nn.Module):
    """The three parallel branches and their fusion ``f = f_face + f_brow + f_mouth`` (eq. 1), per frame.

    With ``n_measures`` a fourth, :class:`~fnpgrade.nn.branches.MeasuresBranch`,
    turns the frame's movement measures into features of the same size and
    adds them: ``f = f_face + f_brow + f_mouth + f_measures``. Then, in
    training, the image features of a window (all its frames) are dropped
    with probability ``image_dropout`` and the kept ones scaled by
    ``1 / (1 - image_dropout)`` (dropout over a whole input, as in ModDrop,
    Neverova et al. 2015): the pixel branches of a network trained on few
    people learn those people, and the LSTM would lean on them; dropping
    them makes it grade from the measures alone as well, and use the pixels
    for what they add (measured on people held out of training:
    ``benchmarks/results/network_measures.md``).

    Parameters
    ----------
    width : float
        Channel multiplier for all branches.
    fc_features : int
        Feature size of every branch (the paper's 1024 at width 1).
    face_size, roi_size : (int, int)
    dropout : float
    n_measures : int or None, default=None
        Measures per frame ``K``; ``None`` or 0: no measures branch (the paper).
    image_dropout : float or None, default=None
        Probability of dropping a training window's image features (measures
        branch only); ``None`` = 0.75 with a measures branch.
    """

    def __init__(self, width, fc_features, face_size=FACE_SIZE, roi_size=ROI_SIZE, dropout=0.5, n_measures=None,
                 image_dropout=None):
        super().__init__()
        if image_dropout is None:
            image_dropout = IMAGE_DROPOUT if n_measures else 0.0
        if not 0 <= image_dropout < 1:
            raise ValueError(f"image_dropout must be in [0, 1); got {image_dropout!r}.")
        if image_dropout and not n_measures:
            raise ValueError("image_dropout needs a measures branch (n_measures): without it the network would "
                             "see nothing in the dropped windows.")
        self.image_dropout = float(image_dropout)
        self.face = FaceBranch(width, fc_features, face_size, dropout)
        self.brow = RegionBranch(width, fc_features, roi_size, dropout)
        self.mouth = RegionBranch(width, fc_features, roi_size, dropout)
        self.measures = MeasuresBranch(n_measures, fc_features) if n_measures else None
        self.out_features = fc_features

    #: Probability with which, in training, a window's image features are dropped (a class attribute, so
    #: networks pickled before it existed read 0).
    image_dropout = 0.0

    def forward(self, face, brow, mouth, measures=None, return_measures=False):
        """Fused features ``(B*L, F)``; with ``return_measures`` also the measures branch's own (or None)."""
        f = self.face(face) + self.brow(brow) + self.mouth(mouth)
        branch = getattr(self, "measures", None)  # absent from networks pickled before the branch existed
        m = None
        if branch is not None:
            b, l, k = measures.shape
            if self.training and self.image_dropout > 0:
                keep = (torch.rand(b, 1, 1, device=f.device) >= self.image_dropout).to(f.dtype)
                f = (f.reshape(b, l, -1) * keep / (1.0 - self.image_dropout)).reshape(b * l, -1)
            m = branch(measures.reshape(-1, k))
            f = f + m
        return (f, m) if return_measures else f


def _with_measures_logits(network, logits, measures_features, b, l):
    """The network's output when it has a measures branch: its own head's logits and the measures head's.

    The measures branch has a head of its own (a linear layer on the branch's
    features averaged over the window): in training the forward returns
    ``(logits, measures_logits)`` and the classifier adds both heads' losses
    (deep supervision), so the branch learns to grade by itself and is not
    left to the pixel branches, which learn the training people; in
    evaluation it returns the log of the two heads' mean probabilities.
    Measured on people held out of training (synthetic, one fold of
    ``benchmarks/results/network_measures.md``): the fused head alone 0.69
    per clip, the measures head alone 0.85, their mean 0.81.
    """
    head = getattr(network, "measures_head", None)  # absent from networks pickled before it existed
    if head is None or measures_features is None:
        return logits
    measures_logits = head(measures_features.reshape(b, l, -1).mean(dim=1))
    if network.training:
        return logits, measures_logits
    both = torch.stack([F.log_softmax(logits.float(), dim=-1), F.log_softmax(measures_logits.float(), dim=-1)])
    return torch.logsumexp(both, dim=0) - math.log(2.0)


#: Default ``image_dropout`` of a network with a measures branch.
IMAGE_DROPOUT = 0.75


def _phcnn_inputs(n_measures):
    return ("face", "brow", "mouth", "measures") if n_measures else ("face", "brow", "mouth")


def _check_n_measures(n_measures):
    if n_measures is not None and not (isinstance(n_measures, int) and n_measures >= 0):
        raise ValueError(f"n_measures must be None or an int >= 0; got {n_measures!r}.")


def _defaults(width, fc_features, lstm_hidden):
    fc = scaled(1024, width) if fc_features is None else int(fc_features)
    hidden = scaled(512, width) if lstm_hidden is None else int(lstm_hidden)
    return fc, hidden


class PHCNNLSTM(WindowNetwork):
    """PHCNN-LSTM (the paper's model): N1 face + N2 brow + N3 mouth, fused per frame, LSTM, FC.

    Parameters
    ----------
    n_classes : int
    width : float, default=1.0
        Scales every channel count and FC size (1.0 = paper).
    fc_features : int or None, default=None
        Branch feature size; ``None`` = ``1024 * width``.
    lstm_hidden : int or None, default=None
        LSTM state size (not given in the paper); ``None`` = ``512 * width``.
    face_size, roi_size : (int, int), default=(128, 128), (40, 120)
    dropout : float, default=0.5
    n_measures : int or None, default=None
        Read ``measures (B, L, n_measures)`` too, through a measures branch
        whose features are added to the fused image features of each frame
        before the LSTM (see :class:`PHCNNFeatures`); ``None``: the paper's
        network.
    image_dropout : float or None, default=None
        With a measures branch, the probability of dropping a training
        window's image features (see :class:`PHCNNFeatures`); ``None`` = 0.75.
    """

    inputs = ("face", "brow", "mouth")

    def __init__(self, n_classes, width=1.0, fc_features=None, lstm_hidden=None,
                 face_size=FACE_SIZE, roi_size=ROI_SIZE, dropout=0.5, n_measures=None, image_dropout=None):
        super().__init__()
        _check_n_measures(n_measures)
        fc, hidden = _defaults(width, fc_features, lstm_hidden)
        self.inputs = _phcnn_inputs(n_measures)
        self.features = PHCNNFeatures(width, fc, face_size, roi_size, dropout, n_measures, image_dropout)
        self.head = SequenceHead(self.features.out_features, hidden, n_classes, dropout)
        self.measures_head = nn.Linear(fc, n_classes) if n_measures else None

    def _forward(self, face, brow, mouth, measures=None):
        b, l = face.shape[:2]
        f, m = self.features(self.images(face), self.images(brow), self.images(mouth), measures,
                             return_measures=True)
        return _with_measures_logits(self, self.head(f.reshape(b, l, -1)), m, b, l)


class PHCNN(WindowNetwork):
    """PHCNN without the LSTM: the fused frame features classified frame by frame, window = mean.

    Parameters are those of :class:`PHCNNLSTM` without ``lstm_hidden``.
    """

    inputs = ("face", "brow", "mouth")

    def __init__(self, n_classes, width=1.0, fc_features=None, face_size=FACE_SIZE,
                 roi_size=ROI_SIZE, dropout=0.5, n_measures=None, image_dropout=None):
        super().__init__()
        _check_n_measures(n_measures)
        fc, _ = _defaults(width, fc_features, None)
        self.inputs = _phcnn_inputs(n_measures)
        self.features = PHCNNFeatures(width, fc, face_size, roi_size, dropout, n_measures, image_dropout)
        self.fc = nn.Linear(self.features.out_features, n_classes)
        self.measures_head = nn.Linear(fc, n_classes) if n_measures else None

    def _forward(self, face, brow, mouth, measures=None):
        b, l = face.shape[:2]
        f, m = self.features(self.images(face), self.images(brow), self.images(mouth), measures,
                             return_measures=True)
        return _with_measures_logits(self, mean_frame_logits(self.fc(f).reshape(b, l, -1)), m, b, l)


class _FaceBranchLSTM(WindowNetwork):
    """A per-frame face branch (``self.branch``) followed by ``self.head``, an LSTM over the window."""

    inputs = ("face",)

    def _forward(self, face):
        b, l = face.shape[:2]
        return self.head(self.branch(self.images(face)).reshape(b, l, -1))


class FaceN1LSTM(_FaceBranchLSTM):
    """FACE-N1-LSTM: branch N1 on the whole face, LSTM, FC (no region branches).

    Parameters
    ----------
    n_classes : int
    width : float, default=1.0
    fc_features : int or None, default=None
    lstm_hidden : int or None, default=None
    face_size : (int, int), default=(128, 128)
    dropout : float, default=0.5
    """

    def __init__(self, n_classes, width=1.0, fc_features=None, lstm_hidden=None, face_size=FACE_SIZE,
                 dropout=0.5):
        super().__init__()
        fc, hidden = _defaults(width, fc_features, lstm_hidden)
        self.branch = FaceBranch(width, fc, face_size, dropout)
        self.head = SequenceHead(fc, hidden, n_classes, dropout)


class VGG16LSTM(_FaceBranchLSTM):
    """LSTM-VGG16: VGG16 (configuration D, with batch norm) on each face frame, LSTM, FC.

    Parameters
    ----------
    n_classes : int
    width : float, default=1.0
        Scales the conv channels and the 4096-unit FC layers.
    fc_features : int or None, default=None
        VGG FC size; ``None`` = ``4096 * width``.
    lstm_hidden : int or None, default=None
    face_size : (int, int), default=(128, 128)
    dropout : float, default=0.5
    """

    def __init__(self, n_classes, width=1.0, fc_features=None, lstm_hidden=None, face_size=FACE_SIZE,
                 dropout=0.5):
        super().__init__()
        _, hidden = _defaults(width, None, lstm_hidden)
        self.branch = VGG16Branch(width, fc_features, face_size, dropout)
        self.head = SequenceHead(self.branch.out_features, hidden, n_classes, dropout)


class SENet(WindowNetwork):
    """SENet baseline: an SE-ResNet classifies single face frames; window = mean of frame probabilities.

    Parameters
    ----------
    n_classes : int
    width : float, default=1.0
    dropout : float, default=0.5
        Dropout before the final FC.
    """

    inputs = ("face",)

    def __init__(self, n_classes, width=1.0, dropout=0.5):
        super().__init__()
        self.branch = SEResNetBranch(width)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.branch.out_features, n_classes)

    def _forward(self, face):
        b, l = face.shape[:2]
        return mean_frame_logits(self.fc(self.dropout(self.branch(self.images(face)))).reshape(b, l, -1))


class PixelLSTM(WindowNetwork):
    """LSTM baseline: an LSTM directly on the pixel vectors of downscaled face frames.

    The face is average-pooled to ``pixels x pixels`` (RGB) and flattened; no
    convolution learns appearance features, which is what this baseline tests.

    Parameters
    ----------
    n_classes : int
    width : float, default=1.0
        Scales the LSTM state (``512 * width``).
    pixels : int, default=32
        Side of the downscaled face.
    lstm_hidden : int or None, default=None
    dropout : float, default=0.5
    """

    inputs = ("face",)

    def __init__(self, n_classes, width=1.0, pixels=32, lstm_hidden=None, dropout=0.5):
        super().__init__()
        _, hidden = _defaults(width, None, lstm_hidden)
        self.pixels = int(pixels)
        self.head = SequenceHead(3 * self.pixels ** 2, hidden, n_classes, dropout)

    def _forward(self, face):
        b, l = face.shape[:2]
        small = F.adaptive_avg_pool2d(self.images(face), self.pixels)
        return self.head(small.reshape(b, l, -1))
