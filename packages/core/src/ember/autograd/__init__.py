"""Reverse-mode automatic differentiation: Function, backward/grad, grad modes, checks."""

from .anomaly import detect_anomaly, is_anomaly_enabled, set_detect_anomaly
from .engine import backward, grad
from .function import Function, FunctionCtx, Node, Primitive
from .grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck


def Variable(data, requires_grad=False, volatile=False):  # noqa: N802 - PyTorch's name
    """Kept as PyTorch keeps it: returns a Tensor (sharing ``data``'s memory)."""
    from .._tensor import Tensor
    from ..creation import tensor

    t = data.detach() if isinstance(data, Tensor) else tensor(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


__all__ = [
    "Function",
    "FunctionCtx",
    "GradcheckError",
    "Node",
    "Primitive",
    "Variable",
    "backward",
    "detect_anomaly",
    "enable_grad",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "inference_mode",
    "is_anomaly_enabled",
    "is_grad_enabled",
    "is_inference_mode_enabled",
    "no_grad",
    "set_detect_anomaly",
    "set_grad_enabled",
]
