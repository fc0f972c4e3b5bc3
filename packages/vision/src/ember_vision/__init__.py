"""Computer vision for ember, the PyTorch-like library (torchvision's counterpart).

What will live here: ``models`` (ResNet-18/34/50/101/152, ResNeXt, Wide-ResNet, VGG-11/13/16/19
with and without batch norm, state_dict keys identical to torchvision's), ``weights`` (typed
Weights enums with url, sha256, transforms and meta), ``transforms`` (Pillow and array
transforms), ``datasets`` (ImageFolder, CIFAR-10/100, MNIST, Fashion-MNIST, FakeData), ``io``,
and the ``python -m ember_vision.train`` / ``python -m ember_vision.predict`` entry points.
It uses only ember's public API.
"""

__version__ = "0.1.0"
