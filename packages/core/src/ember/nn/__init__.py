"""``ember.nn``: Module, Parameter, containers, layers, losses, ``functional`` (as F),
``init`` and ``utils`` with PyTorch's names and semantics (torch.nn)."""

from . import functional, init, utils
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .module import Module
from .modules import *  # noqa: F403  (every layer, listed in modules/__init__.py)
from .modules import __all__ as _layer_names
from .parameter import Parameter

__all__ = [
    "Module",
    "ModuleDict",
    "ModuleList",
    "Parameter",
    "ParameterDict",
    "ParameterList",
    "Sequential",
    "functional",
    "init",
    "utils",
] + list(_layer_names)
