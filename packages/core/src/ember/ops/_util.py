"""Helpers shared by the op families: argument coercion, promotion, broadcasting sums."""

from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _make, _wrap_dim
from ..backend import dtypes as _dt
from ..backend.device import array_module

_SCALARS = (int, float, bool)


def as_tensor_arg(x, like: Tensor | None = None, op: str = "op") -> Tensor:
    """Coerce an op argument to a Tensor (on ``like``'s device)."""
    if x.__class__ is Tensor or isinstance(x, Tensor):
        return x
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, _SCALARS):
        d = _dt.scalar_dtype(x)
        xp = array_module(like._data) if like is not None else np
        return _make(xp.asarray(x, dtype=d.np))
    if isinstance(x, np.ndarray):
        return _make(x)
    from ..creation import tensor

    try:
        return tensor(x, device=like.device if like is not None else None)
    except Exception as exc:  # noqa: BLE001
        raise TypeError(f"{op}: expected a Tensor or number, got {type(x).__name__}") from exc


def result_dtype(*args) -> _dt.dtype:
    """PyTorch's ``result_type`` over tensors and Python numbers."""
    dim_t = zero_t = scal_t = None
    promote = _dt._PROMOTE
    for a in args:
        if isinstance(a, Tensor):
            d = _dt._FROM_NP[a._data.dtype]
            if a._data.ndim:
                dim_t = d if dim_t is None else promote[(dim_t, d)]
            else:
                zero_t = d if zero_t is None else promote[(zero_t, d)]
        elif a is not None:
            if isinstance(a, np.generic):
                a = a.item()
            d = _dt.scalar_dtype(a)
            scal_t = d if scal_t is None else promote[(scal_t, d)]
    return _dt.combine(dim_t, zero_t, scal_t)


def scalar_value(x):
    """A NumPy generic becomes a Python number; Python numbers pass through."""
    return x.item() if isinstance(x, np.generic) else x


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    """Sum a broadcast gradient back to ``shape`` (the inverse of broadcasting)."""
    gs = g._data.shape
    if gs == shape:
        return g
    lead = len(gs) - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and gs[i + lead] != 1
    )
    from .reduce import sum as _sum

    out = _sum(g, axes, keepdim=True) if axes else g
    if lead or out._data.shape != shape:
        from .shape import reshape

        out = reshape(out, shape)
    return out


def broadcast_shapes(op: str, *shapes) -> tuple:
    """The broadcast of ``shapes``, or PyTorch's RuntimeError naming the op and both shapes."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        a, b = shapes[0], shapes[1] if len(shapes) > 1 else ()
        raise RuntimeError(
            f"{op}: The size of tensor a ({list(a)}) must match the size of tensor b "
            f"({list(b)}): shapes {list(a)} and {list(b)} do not broadcast"
        ) from None


def dims(dim, ndim: int, op: str):
    """Normalize a dim argument (None, int, or sequence) to a tuple of non-negative axes."""
    if dim is None:
        return None
    if isinstance(dim, int):
        axes = (_wrap_dim(dim, ndim, op),)
    elif len(dim) == 0:  # an empty dim list means every dim, as in PyTorch
        return None
    else:
        axes = tuple(_wrap_dim(d, ndim, op) for d in dim)
    return axes if ndim else ()  # a 0-dim tensor takes dim 0 or -1 and reduces nothing


def check_same_device(op: str, a: Tensor, b: Tensor) -> None:
    """Raise PyTorch's RuntimeError when two tensors live on different devices."""
    cpu = np.ndarray | np.generic
    if isinstance(a._data, cpu) != isinstance(b._data, cpu) or (
        not isinstance(a._data, cpu) and a.device != b.device
    ):
        raise RuntimeError(
            f"{op}: Expected all tensors to be on the same device, but found at least two "
            f"devices, {a.device} and {b.device}!"
        )
