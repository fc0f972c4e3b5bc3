"""Computer vision for ember, the PyTorch-like library (torchvision's counterpart).

``models`` (ResNet-18/34/50/101/152, ResNeXt, Wide-ResNet, VGG-11/13/16/19 with and without batch
norm, state_dict keys identical to torchvision's, and the registry), ``weights`` (typed Weights
enums with url, sha256 prefix, transforms and meta), ``transforms`` (Pillow transforms),
``datasets`` (ImageFolder, CIFAR-10/100, MNIST, Fashion-MNIST, FakeData) and the
``python -m ember_vision.predict`` entry point. It uses only ember's public API.
"""

from . import datasets, models, transforms, weights

__all__ = ["datasets", "models", "transforms", "weights"]

__version__ = "0.1.0"
