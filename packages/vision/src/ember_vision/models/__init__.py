"""``ember_vision.models``: ResNet/ResNeXt/Wide-ResNet and VGG builders, their weights enums,
and the registry (``list_models``, ``get_model``, ``get_weight``, ``get_model_weights``)."""

from ..weights import *  # noqa: F403  (the *_Weights enums, as torchvision.models has them)
from ..weights import __all__ as _weights_names
from ._api import get_model, get_model_builder, get_model_weights, get_weight, list_models
from .resnet import *  # noqa: F403
from .resnet import __all__ as _resnet_names
from .vgg import *  # noqa: F403
from .vgg import __all__ as _vgg_names

__all__ = ["get_model", "get_model_builder", "get_model_weights", "get_weight", "list_models"]
__all__ += list(_weights_names) + list(_resnet_names) + list(_vgg_names)
