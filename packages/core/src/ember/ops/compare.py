"""Non-differentiable elementwise ops: comparisons, logical and bitwise ops, and the
NaN/inf/closeness tests. Results are bool (or integer, for bitwise) tensors outside the graph."""

from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _make
from ..backend.device import array_module
from ._util import broadcast_shapes, result_dtype, scalar_value


def _mk_bool(arr):
    # ufuncs on 0-d arrays return NumPy scalars; tensors hold arrays
    return _make(np.asarray(arr) if isinstance(arr, np.generic) else arr)


def logical_and(a, b):
    """Elementwise logical and (bool result)."""
    return _mk_bool(array_module(a._data).logical_and(a._data, _arr(b)))


def logical_or(a, b):
    """Elementwise logical or (bool result)."""
    return _mk_bool(array_module(a._data).logical_or(a._data, _arr(b)))


def logical_xor(a, b):
    """Elementwise logical xor (bool result)."""
    return _mk_bool(array_module(a._data).logical_xor(a._data, _arr(b)))


def logical_not(a):
    """Elementwise logical not (bool result)."""
    return _mk_bool(array_module(a._data).logical_not(a._data))


def _arr(x):
    return x._data if isinstance(x, Tensor) else x


def _bitwise(ufunc_name, op):
    def fn(input, other):
        if input._data.dtype.kind in "fV" or (
            isinstance(other, Tensor) and other._data.dtype.kind in "fV"
        ):
            raise RuntimeError(f'"{op}_cpu" not implemented for floating-point tensors')
        rt = result_dtype(input, other)
        xp = array_module(input._data)
        b = other._data if isinstance(other, Tensor) else scalar_value(other)
        return _make(xp.asarray(getattr(xp, ufunc_name)(input._data, b)).astype(rt.np, copy=False))

    fn.__name__ = op
    fn.__doc__ = f"Elementwise ``{op}`` of integer or bool tensors (logical for bool)."
    return fn


bitwise_and = _bitwise("bitwise_and", "bitwise_and")
bitwise_or = _bitwise("bitwise_or", "bitwise_or")
bitwise_xor = _bitwise("bitwise_xor", "bitwise_xor")


def isnan(input):
    """True where the element is NaN."""
    return _mk_bool(input._data != input._data)


def isinf(input):
    """True where the element is +inf or -inf."""
    d = input._data
    if d.dtype.kind in "biu":
        return _make(array_module(d).zeros(d.shape, bool))
    return _mk_bool(array_module(d).isinf(d))


def isfinite(input):
    """True where the element is neither inf nor NaN."""
    d = input._data
    if d.dtype.kind in "biu":
        return _make(array_module(d).ones(d.shape, bool))
    return _mk_bool(array_module(d).isfinite(d))


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise ``|input - other| <= atol + rtol * |other|``."""
    xp = array_module(input._data)
    return _mk_bool(xp.isclose(input._data, _arr(other), rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    """True when every element is close (see ``isclose``)."""
    return bool(isclose(input, other, rtol, atol, equal_nan)._data.all())


def equal(input, other) -> bool:
    """True when both have the same shape and elements."""
    return input.shape == other.shape and bool((input._data == other._data).all())


def _compare(ufunc_name, op):
    def fn(a, b):
        xa = a._data if isinstance(a, Tensor) else a
        xb = b._data if isinstance(b, Tensor) else scalar_value(b)
        if isinstance(b, list | tuple):
            xb = np.asarray(b)
        xp = array_module(xa)
        try:
            return _mk_bool(getattr(xp, ufunc_name)(xa, xb))
        except ValueError:
            broadcast_shapes(op, tuple(np.shape(xa)), tuple(np.shape(xb)))
            raise

    fn.__name__ = op
    fn.__doc__ = f"Elementwise ``{op}`` comparison (bool result)."
    return fn


eq = _compare("equal", "eq")
ne = _compare("not_equal", "ne")
lt = _compare("less", "lt")
le = _compare("less_equal", "le")
gt = _compare("greater", "gt")
ge = _compare("greater_equal", "ge")
