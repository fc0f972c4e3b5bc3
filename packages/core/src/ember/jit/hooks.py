"""What a trace wraps besides ``Primitive.apply``, so that work done outside the primitives
still follows the inputs: shapes read back with their dynamic dims as SymInts, tensors
created from such sizes, comparisons of traced values, and the attention mask turned into
an additive bias. Each ``patch_*`` returns ``(owner, attr, original)`` triples to restore."""

from __future__ import annotations

import math

from .._tensor import Tensor, _wrap_dim
from . import traceops
from .symbolic import SymInt

_COMPARE = {
    "__eq__": "eq",
    "__ne__": "ne",
    "__lt__": "lt",
    "__le__": "le",
    "__gt__": "gt",
    "__ge__": "ge",
}


def _swap(owner, attr, value, saved) -> None:
    saved.append((owner, attr, owner.__dict__[attr]))
    setattr(owner, attr, value)


def patch_shape(rec) -> list:
    """``Tensor.shape`` and ``Tensor.size`` give SymInts for dynamic dims."""
    saved: list = []

    def size(self, dim=None):
        if dim is None:
            return rec.shape_of(self)
        return rec.shape_of(self)[_wrap_dim(dim, self._data.ndim, "size")]

    _swap(Tensor, "shape", property(rec.shape_of, doc=Tensor.shape.__doc__), saved)
    _swap(Tensor, "size", size, saved)
    return saved


def _has_sym(values) -> bool:
    return any(isinstance(v, SymInt) for v in values)


def _sizes(size) -> tuple:
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], list | tuple) else size


def patch_creation(rec) -> list:
    """``ember.arange/zeros/ones/full`` with a SymInt size become graph nodes."""
    import ember

    saved: list = []
    orig = {k: ember.__dict__[k] for k in ("arange", "zeros", "ones", "full")}

    def full(size, fill_value, dtype=None, **kw):
        size = (size,) if isinstance(size, int) else tuple(size)
        out = orig["full"](size, fill_value, dtype=dtype, **kw)
        if not _has_sym(size) or kw.get("requires_grad"):
            return out
        params = {"shape": size, "value": fill_value, "dtype": out.dtype.name}
        rec.record(traceops.Full, (), params, out)
        return out

    def filled(value, name):
        def fn(*size, dtype=None, **kw):
            size = _sizes(size)
            if not _has_sym(size):
                return orig[name](*size, dtype=dtype, **kw)
            return full(size, value, dtype=dtype or ember.get_default_dtype(), **kw)

        return fn

    def arange(start, end=None, step=1, dtype=None, **kw):
        out = orig["arange"](start, end, step, dtype=dtype, **kw)
        if end is None:
            start, end = 0, start
        if _has_sym((start, end, step)):
            params = {"start": start, "end": end, "step": step, "dtype": out.dtype.name}
            rec.record(traceops.Arange, (), params, out)
        return out

    for name, fn in (("arange", arange), ("full", full)):
        _swap(ember, name, fn, saved)
    _swap(ember, "zeros", filled(0, "zeros"), saved)
    _swap(ember, "ones", filled(1, "ones"), saved)
    return saved


def patch_compare(rec) -> list:
    """Comparisons and logical ops of traced values become ``Compare`` nodes."""
    saved: list = []

    def wrap(attr, op, unary=False):
        orig = Tensor.__dict__[attr]

        def fn(self, *other):
            out = orig(self, *other)
            if not isinstance(out, Tensor):
                return out
            if rec.traced(self) is None and not (other and rec.traced(other[0]) is not None):
                return out
            if op in ("and", "or", "not") and self._data.dtype != bool:
                return out
            rec.record(traceops.Compare, (self, *other), {"op": op}, out)
            return out

        _swap(Tensor, attr, fn, saved)

    for attr, op in _COMPARE.items():
        wrap(attr, op)
    wrap("__and__", "and")
    wrap("__or__", "or")
    wrap("__invert__", "not")
    return saved


def patch_attention(rec) -> list:
    """Attention masks become an additive bias through ``Where``, so they stay graph values."""
    from ..nn import _attention

    orig = _attention._mask_bias
    import ember

    from ..backend.dtypes import from_numpy_dtype

    def mask_bias(xp, dtype, lq, lk, attn_mask, is_causal):
        if is_causal and attn_mask is None:
            attn_mask = ember.tril(ember.ones(lq, lk, dtype=ember.bool))
        elif is_causal or attn_mask is None:
            return orig(xp, dtype, lq, lk, attn_mask, is_causal)
        to = from_numpy_dtype(dtype)
        if attn_mask.dtype == ember.bool:
            bias = ember.where(attn_mask, 0.0, -math.inf).to(to)
        else:
            bias = attn_mask.to(to)
        dead = (bias._data == -math.inf).all(axis=-1)
        if dead.any():  # rows with no key at all: the eager path zeroes them (not traced)
            return orig(xp, dtype, lq, lk, attn_mask, False)
        return bias._data, None

    saved: list = []
    _swap(_attention, "_mask_bias", mask_bias, saved)
    return saved
