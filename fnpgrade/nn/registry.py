"""``build_network(arch, ...)``: the registry of the paper's architectures by name."""

from __future__ import annotations

import inspect

from .networks import PHCNN, PHCNNLSTM, SENet, FaceN1LSTM, PixelLSTM, VGG16LSTM

__all__ = ["ARCHITECTURES", "build_network"]

#: ``arch`` name -> network class (Table IV of the paper).
ARCHITECTURES = {
    "phcnn-lstm": PHCNNLSTM,
    "phcnn": PHCNN,
    "face-n1-lstm": FaceN1LSTM,
    "vgg16-lstm": VGG16LSTM,
    "senet": SENet,
    "lstm": PixelLSTM,
}


def build_network(arch, n_classes=3, width=1.0, **options):
    """Build the network called ``arch``.

    Options a network does not take (e.g. ``lstm_hidden`` for ``"senet"``) are
    ignored when their value is ``None`` or the paper's default, so one set of
    classifier parameters works for every ``arch``; any other unused option is
    an error. ``face_size`` and ``roi_size`` describe the data rather than the
    network: a network that does not read the ROIs (``"senet"``...) ignores
    ``roi_size`` whatever its value, since the classifier passes the size of
    the clips it is given.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHITECTURES`: ``"phcnn-lstm"``, ``"phcnn"``,
        ``"face-n1-lstm"``, ``"vgg16-lstm"``, ``"senet"``, ``"lstm"``.
    n_classes : int, default=3
    width : float, default=1.0
        Channel / FC-size multiplier (1.0 = paper).
    **options
        ``fc_features``, ``lstm_hidden``, ``face_size``, ``roi_size``,
        ``dropout``, ``pixels`` where the network takes them; ``n_measures``
        (per-frame measures read by a measures branch) and ``image_dropout``
        for ``"phcnn-lstm"`` and ``"phcnn"`` only.

    Returns
    -------
    network : WindowNetwork

    Examples
    --------
    >>> from fnpgrade.nn import build_network
    >>> net = build_network("phcnn-lstm", n_classes=3, width=0.125)
    >>> net.inputs
    ('face', 'brow', 'mouth')
    """
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"Unknown arch {arch!r}; choose one of {sorted(ARCHITECTURES)}.") from None
    if not (isinstance(width, (int, float)) and width > 0):
        raise ValueError(f"width must be a positive number; got {width!r}.")
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "n_classes", "width"}
    harmless = {"dropout": 0.5, "face_size": (128, 128), "roi_size": (40, 120), "n_measures": 0}
    data_sizes = {"face_size", "roi_size"}
    kwargs = {}
    for name, value in options.items():
        if name in accepted:
            if value is not None:
                kwargs[name] = value
        elif name in data_sizes:
            continue  # the size of an input this network does not read
        elif value is not None and harmless.get(name, object()) != _as_tuple(value):
            raise ValueError(f"arch {arch!r} does not take the option {name}={value!r}.")
    return cls(n_classes=n_classes, width=width, **kwargs)


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value
