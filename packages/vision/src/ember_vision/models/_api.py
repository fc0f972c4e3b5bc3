"""The model registry (torchvision's ``list_models``/``get_model``/``get_weight``) and the one
place where a builder turns its ``weights=`` argument into loaded parameters."""

import fnmatch
import os
import sys

import ember

from .. import weights as _weights

__all__ = ["build", "get_model", "get_model_builder", "get_model_weights", "get_weight"]
__all__ += ["list_models", "register_model"]

BUILTIN_MODELS = {}


def register_model(name=None):
    """Decorator that records a builder in the registry under ``name`` (default: its own)."""

    def wrapper(fn):
        key = name or fn.__name__
        if key in BUILTIN_MODELS:
            raise ValueError(f"An entry is already registered under the name '{key}'.")
        BUILTIN_MODELS[key] = fn
        return fn

    return wrapper


def list_models(module=None, include=None, exclude=None):
    """Sorted names of the registered builders, optionally filtered by module and fnmatch patterns.

    >>> "resnet50" in list_models() and "vgg16_bn" in list_models(include="vgg*")
    True
    """
    names = {
        k
        for k, v in BUILTIN_MODELS.items()
        if module is None or v.__module__.startswith(getattr(module, "__name__", str(module)))
    }
    if include:
        patterns = [include] if isinstance(include, str) else include
        names = {n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)}
    if exclude:
        patterns = [exclude] if isinstance(exclude, str) else exclude
        names = {n for n in names if not any(fnmatch.fnmatch(n, p) for p in patterns)}
    return sorted(names)


def get_model_builder(name):
    """The builder function registered as ``name`` (lower-cased)."""
    name = name.lower()
    try:
        return BUILTIN_MODELS[name]
    except KeyError:
        raise ValueError(f"Unknown model {name}") from None


def get_model(name, **config):
    """Build the registered model ``name``; ``config`` goes to its builder.

    >>> get_model("resnet18", num_classes=3).fc.out_features
    3
    """
    return get_model_builder(name)(**config)


def get_weight(name):
    """The weights member named ``"EnumClass.MEMBER"``, e.g. ``"ResNet50_Weights.DEFAULT"``.

    >>> get_weight("ResNet50_Weights.DEFAULT")
    ResNet50_Weights.IMAGENET1K_V2
    """
    try:
        enum_name, value_name = name.split(".")
    except ValueError:
        raise ValueError(f"Invalid weight name provided: '{name}'.") from None
    enum_cls = getattr(_weights, enum_name, None)
    if not (isinstance(enum_cls, type) and issubclass(enum_cls, _weights.WeightsEnum)):
        raise ValueError(
            f"The weight enum '{enum_name}' for the specific method couldn't be found."
        )
    return enum_cls.verify(value_name)


def get_model_weights(name):
    """The weights enum class of a model, given its name or its builder."""
    fn = get_model_builder(name) if isinstance(name, str) else name
    module = sys.modules[fn.__module__]
    return module._SPECS[fn.__name__][-1]


def _resolve(enum_cls, weights):
    """``weights`` as ``(member or None, state_dict or None)``; a str that names no member but
    an existing file is read with ``ember.load``."""
    if isinstance(weights, (str, os.PathLike)):
        text = os.fspath(weights)
        if text.replace(enum_cls.__name__ + ".", "") not in enum_cls.__members__:
            if os.path.isfile(text):
                return None, ember.load(text, map_location="cpu")
            raise ValueError(
                f"weights={text!r} is neither a member of {enum_cls.__name__} "
                f"({', '.join(enum_cls.__members__)}) nor an existing file"
            )
    return enum_cls.verify(weights), None


def build(make, enum_cls, weights, progress, num_classes):
    """Call ``make(num_classes)`` and load ``weights`` into the result (the builders' shared tail).

    With an enum member, ``num_classes`` must match its categories (torchvision's rule).
    """
    member, state_dict = _resolve(enum_cls, weights)
    if member is not None:
        expected = len(member.meta["categories"])
        if num_classes != expected:
            raise ValueError(
                f"num_classes={num_classes} does not match the {expected} categories of {member}"
            )
    model = make(num_classes)
    if member is not None:
        state_dict = member.get_state_dict(progress=progress, check_hash=True)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model
