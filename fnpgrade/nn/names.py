"""The architectures' names (:data:`fnpgrade.nn.ARCHITECTURES`' keys) without importing torch."""

__all__ = ["ARCHITECTURE_NAMES"]

#: ``arch`` names, in Table IV's order; :mod:`fnpgrade.nn.registry` maps each to its network class.
ARCHITECTURE_NAMES = ("phcnn-lstm", "phcnn", "face-n1-lstm", "vgg16-lstm", "senet", "lstm")
