"""Flatten parameters into one vector and back (for second-order methods, evolution, ...)."""

from __future__ import annotations

from ... import ops
from ..._tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _check_devices(params) -> None:
    devices = {str(p.device) for p in params}
    if len(devices) > 1:
        raise TypeError(
            f"Found two parameters on different devices, these are {' and '.join(sorted(devices))}"
        )


def parameters_to_vector(parameters) -> Tensor:
    """One 1-D tensor holding every parameter, flattened and concatenated in order."""
    params = list(parameters)
    _check_devices(params)
    return ops.cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec, parameters) -> None:
    """Point each parameter's data at its slice of ``vec`` (the inverse of
    ``parameters_to_vector``)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected ember.Tensor, but got: {type(vec).__name__}")
    params = list(parameters)
    _check_devices(params)
    need = sum(p.numel() for p in params)
    if vec.numel() != need:
        raise RuntimeError(
            f"vector_to_parameters: vec has {vec.numel()} elements but the parameters need {need}"
        )
    ptr = 0
    for p in params:
        n = p.numel()
        p.data = vec[ptr : ptr + n].reshape(tuple(p.shape)).data
        ptr += n
