"""``ember_vision.datasets``: ImageFolder, CIFAR-10/100, MNIST, Fashion-MNIST and FakeData,
each an ``ember.data.Dataset`` yielding ``(PIL image or transformed sample, int label)``."""

from ._cifar import CIFAR10, CIFAR100
from ._fake import FakeData
from ._folder import IMG_EXTENSIONS, DatasetFolder, ImageFolder, default_loader
from ._mnist import MNIST, FashionMNIST

__all__ = ["CIFAR10", "CIFAR100", "DatasetFolder", "FakeData", "FashionMNIST", "IMG_EXTENSIONS"]
__all__ += ["ImageFolder", "MNIST", "default_loader"]
