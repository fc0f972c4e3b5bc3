"""Installs operators and methods onto Tensor, in one place, so ``_tensor`` and ``ops`` need
not import each other. ``ember/__init__.py`` imports this module once."""

from __future__ import annotations

import numpy as np

from . import ops
from ._tensor import Tensor, _make
from ._to import _dtype_method, _type, to  # noqa: F401 - installed below
from .backend import dtypes as _dt
from .backend.device import CPU, array_module
from .ops import elementwise as E
from .ops import shape as S
from .ops import unary as U
from .ops.inplace import apply_inplace, check_inplace, scalar_inplace


def _rbin(fn):
    def m(self, other):
        return fn(other, self)

    return m


_SCALAR_UFUNCS = {"add_": "add", "sub_": "subtract", "mul_": "multiply"}  # scalar_inplace's
_SCALAR_UFUNCS.update({"__iadd__": "add", "__isub__": "subtract", "__imul__": "multiply"})


def _inplace(fn, name):
    ufunc = _SCALAR_UFUNCS.get(name)

    def m(self, other=None, *args, **kwargs):
        if ufunc is not None and not args and not kwargs:
            done = scalar_inplace(self, ufunc, other)
            if done is not None:
                return done
        return apply_inplace(self, fn, other, *args, op=name, **kwargs)

    m.__name__ = name
    m.__doc__ = f"In-place ``{name[:-1]}``; returns self."
    return m


def _inplace_unary(fn, name):
    def m(self, *args, **kwargs):
        return apply_inplace(self, lambda t: fn(t, *args, **kwargs), None, op=name)

    m.__name__ = name
    m.__doc__ = f"In-place ``{name[:-1]}``; returns self."
    return m


def _fill_(self, value):
    """Fill with ``value`` in place."""
    v = value.item() if isinstance(value, Tensor) else value
    return apply_inplace(
        self,
        lambda t: (
            E.where(_make(np.ones((), bool)), _make(np.asarray(v, t._data.dtype)), t)
            if t._rg
            else _make(np.full_like(t._data, v))
        ),
        None,
        op="fill_",
    )


def _zero_(self):
    """Fill with zeros in place."""
    return _fill_(self, 0)


def _copy_(self, src, non_blocking=False):
    """Copy ``src``'s values (broadcast, cast) into self in place."""
    if not isinstance(src, Tensor):
        src = _make(np.asarray(src))
    src = src.to(self.dtype).to(self.device)
    return apply_inplace(
        self,
        lambda t, s: (
            s.expand(*t.shape) + t * 0
            if (s._rg or t._rg)
            else _make(np.broadcast_to(s._data, t._data.shape))
        ),
        src,
        op="copy_",
    )


def _random_fill_(self, draw, op, generator):
    """Overwrite ``self`` with ``draw(rng, shape)`` (float64 NumPy samples), as PyTorch's
    in-place samplers do: refused on a leaf that requires grad (outside ``no_grad``), and on
    a tensor in a recorded graph the old values get no gradient."""
    from .backend.random import rng

    record = check_inplace(self, None, op)  # raises for a leaf that requires grad
    values = draw(rng(generator), self._data.shape)
    if not record:
        self._data[...] = values
        self._bump()
        return self
    new = _make(array_module(self._data).asarray(values).astype(self._data.dtype))
    return apply_inplace(self, lambda t: E.where(_make(np.ones((), bool)), new, t), None, op=op)


def _uniform_(self, a=0.0, b=1.0, generator=None):
    """Fill in place with samples from U(a, b); returns self."""
    if a > b:
        raise RuntimeError(
            f"uniform_: expects to return a [from, to) range, but found from={a} > to={b}"
        )
    return _random_fill_(self, lambda r, shape: r.uniform(a, b, shape), "uniform_", generator)


def _normal_(self, mean=0.0, std=1.0, generator=None):
    """Fill in place with samples from N(mean, std**2); returns self."""
    if std < 0:
        raise RuntimeError(f"normal_: expects std >= 0.0, but found std {std}")
    return _random_fill_(self, lambda r, shape: r.normal(mean, std, shape), "normal_", generator)


def _type_as(self, other):
    """This tensor cast to ``other``'s dtype (``self`` when it already has it)."""
    return E.cast(self, other.dtype)


def _cpu(self):
    """This tensor on the CPU (``self`` when it is there already)."""
    return to(self, CPU)


def _cuda(self, device=None):
    """This tensor on a CUDA device (``device``, default the current one)."""
    return to(self, device or "cuda")


def _where(self, condition, other):
    """``ember.where(condition, self, other)``."""
    return E.where(condition, self, other)


def _t(self):
    """The transpose of a matrix (a view); 0-d and 1-d tensors come back as they are."""
    if self._data.ndim > 2:
        raise RuntimeError(
            f"t(): expects a tensor with <= 2 dimensions, but self is {self._data.ndim}D"
        )
    return ops.transpose(self, 0, 1) if self._data.ndim == 2 else self


def _T(self):
    return ops.permute(self, *range(self._data.ndim - 1, -1, -1))


def _mT(self):
    return ops.transpose(self, -2, -1)


def _view_as(self, other):
    """``self.view(other.shape)``."""
    return ops.view(self, other.shape)


def _reshape_as(self, other):
    """``self.reshape(other.shape)``."""
    return ops.reshape(self, other.shape)


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    """``ember.tensor(data)`` with this tensor's dtype and device unless given."""
    from .creation import tensor

    return tensor(
        data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad
    )


def _new_filled(name):
    def m(self, *size, dtype=None, device=None, requires_grad=False):
        from . import creation

        fn = getattr(creation, name)
        return fn(
            *size,
            dtype=dtype or self.dtype,
            device=device or self.device,
            requires_grad=requires_grad,
        )

    m.__doc__ = f"``ember.{name}`` with this tensor's dtype and device."
    return m


def _new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
    """``ember.full(size, fill_value)`` with this tensor's dtype and device unless given."""
    from .creation import full

    return full(
        size,
        fill_value,
        dtype=dtype or self.dtype,
        device=device or self.device,
        requires_grad=requires_grad,
    )


def _sum_to_size(self, *size):
    """Sum over the broadcast dimensions so the result has shape ``size``."""
    from .ops._util import sum_to

    size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], tuple | list) else size
    return sum_to(self, tuple(size))


METHODS = {
    # arithmetic and comparison operators
    "__add__": E.add,
    "__radd__": _rbin(E.add),
    "__sub__": E.sub,
    "__rsub__": _rbin(E.sub),
    "__mul__": E.mul,
    "__rmul__": _rbin(E.mul),
    "__truediv__": E.div,
    "__rtruediv__": _rbin(E.div),
    "__pow__": E.pow,
    "__rpow__": _rbin(E.pow),
    "__matmul__": ops.matmul,
    "__rmatmul__": _rbin(ops.matmul),
    "__neg__": U.neg,
    "__pos__": lambda self: self,
    "__abs__": U.abs,
    "__floordiv__": lambda a, b: E.div(a, b, rounding_mode="floor"),
    "__rfloordiv__": lambda a, b: E.div(b, a, rounding_mode="floor"),
    "__mod__": lambda a, b: E.sub(a, E.mul(E.div(a, b, rounding_mode="floor"), b)),
    "__eq__": E.eq,
    "__ne__": E.ne,
    "__lt__": E.lt,
    "__le__": E.le,
    "__gt__": E.gt,
    "__ge__": E.ge,
    "__and__": E.bitwise_and,
    "__or__": E.bitwise_or,
    "__xor__": E.bitwise_xor,
    "__rand__": E.bitwise_and,
    "__ror__": E.bitwise_or,
    "__rxor__": E.bitwise_xor,
    "bitwise_and": E.bitwise_and,
    "bitwise_or": E.bitwise_or,
    "bitwise_xor": E.bitwise_xor,
    "__invert__": lambda self: (
        E.logical_not(self) if self._data.dtype == bool else _make(~self._data)
    ),
    "__getitem__": ops.getitem,
    "__setitem__": ops.setitem,
    # conversion
    "to": to,
    "type": _type,
    "type_as": _type_as,
    "cpu": _cpu,
    "cuda": _cuda,
    "float": _dtype_method(_dt.float32),
    "double": _dtype_method(_dt.float64),
    "half": _dtype_method(_dt.float16),
    "bfloat16": _dtype_method(_dt.bfloat16),
    "long": _dtype_method(_dt.int64),
    "int": _dtype_method(_dt.int32),
    "short": _dtype_method(_dt.int16),
    "char": _dtype_method(_dt.int8),
    "byte": _dtype_method(_dt.uint8),
    "bool": _dtype_method(_dt.bool_),
    "clone": ops.clone,
    "contiguous": ops.contiguous,
    # shape
    "view": ops.view,
    "view_as": _view_as,
    "reshape": ops.reshape,
    "reshape_as": _reshape_as,
    "flatten": ops.flatten,
    "unflatten": ops.unflatten,
    "squeeze": ops.squeeze,
    "unsqueeze": ops.unsqueeze,
    "permute": ops.permute,
    "transpose": ops.transpose,
    "swapaxes": ops.transpose,
    "movedim": ops.movedim,
    "expand": ops.expand,
    "expand_as": ops.expand_as,
    "broadcast_to": ops.broadcast_to,
    "repeat": ops.repeat,
    "tile": ops.tile,
    "chunk": ops.chunk,
    "split": ops.split,
    "narrow": ops.narrow,
    "unbind": ops.unbind,
    "flip": S.flip_method,
    "roll": ops.roll,
    "tril": ops.tril,
    "triu": ops.triu,
    "diag": ops.diag,
    "t": _t,
    "sum_to_size": _sum_to_size,
    # reductions
    "sum": ops.sum,
    "mean": ops.mean,
    "var": ops.var,
    "std": ops.std,
    "prod": ops.prod,
    "max": ops.max,
    "min": ops.min,
    "amax": ops.amax,
    "amin": ops.amin,
    "argmax": ops.argmax,
    "argmin": ops.argmin,
    "logsumexp": ops.logsumexp,
    "norm": ops.norm,
    "all": ops.all,
    "any": ops.any,
    "cumsum": ops.cumsum,
    "cumprod": ops.cumprod,
    "count_nonzero": ops.count_nonzero,
    # elementwise
    "abs": U.abs,
    "neg": U.neg,
    "negative": U.neg,
    "exp": U.exp,
    "log": U.log,
    "log1p": U.log1p,
    "expm1": U.expm1,
    "sqrt": U.sqrt,
    "rsqrt": U.rsqrt,
    "sin": U.sin,
    "cos": U.cos,
    "tanh": U.tanh,
    "sigmoid": U.sigmoid,
    "relu": U.relu,
    "erf": U.erf,
    "pow": E.pow,
    "clamp": E.clamp,
    "clip": E.clamp,
    "sign": U.sign,
    "floor": U.floor,
    "ceil": U.ceil,
    "round": U.round,
    "trunc": U.trunc,
    "square": U.square,
    "reciprocal": U.reciprocal,
    "add": E.add,
    "sub": E.sub,
    "subtract": E.sub,
    "mul": E.mul,
    "multiply": E.mul,
    "div": E.div,
    "divide": E.div,
    "true_divide": E.div,
    "maximum": E.maximum,
    "minimum": E.minimum,
    "where": _where,
    "masked_fill": ops.masked_fill,
    "eq": E.eq,
    "ne": E.ne,
    "lt": E.lt,
    "le": E.le,
    "gt": E.gt,
    "ge": E.ge,
    "isnan": E.isnan,
    "isinf": E.isinf,
    "isfinite": E.isfinite,
    "isclose": E.isclose,
    "allclose": E.allclose,
    "equal": E.equal,
    "logical_and": E.logical_and,
    "logical_or": E.logical_or,
    "logical_not": E.logical_not,
    "logical_xor": E.logical_xor,
    "softmax": ops.softmax,
    "log_softmax": ops.log_softmax,
    # linear algebra
    "matmul": ops.matmul,
    "mm": ops.mm,
    "bmm": ops.bmm,
    "mv": ops.mv,
    "dot": ops.dot,
    "outer": ops.outer,
    # indexing
    "gather": ops.gather,
    "scatter": ops.scatter,
    "scatter_add": ops.scatter_add,
    "index_select": ops.index_select,
    "masked_select": ops.masked_select,
    "take_along_dim": ops.take_along_dim,
    "topk": ops.topk,
    "sort": ops.sort,
    "argsort": ops.argsort,
    "unique": ops.unique,
    "nonzero": ops.nonzero,
    # creation
    "new_tensor": _new_tensor,
    "new_zeros": _new_filled("zeros"),
    "new_ones": _new_filled("ones"),
    "new_empty": _new_filled("empty"),
    "new_full": _new_full,
    # in place
    "fill_": _fill_,
    "zero_": _zero_,
    "copy_": _copy_,
    "uniform_": _uniform_,
    "normal_": _normal_,
}

_INPLACE_BINARY = {
    "add_": E.add,
    "sub_": E.sub,
    "mul_": E.mul,
    "div_": E.div,
    "pow_": E.pow,
    "clamp_min_": lambda t, v: E.clamp(t, min=v),
    "clamp_max_": lambda t, v: E.clamp(t, max=v),
    "masked_fill_": ops.masked_fill,
    "maximum_": E.maximum,
    "minimum_": E.minimum,
    "scatter_": ops.scatter,
    "scatter_add_": ops.scatter_add,
    "__iadd__": E.add,
    "__isub__": E.sub,
    "__imul__": E.mul,
    "__itruediv__": E.div,
}
_INPLACE_UNARY = {
    "neg_": U.neg,
    "exp_": U.exp,
    "log_": U.log,
    "sqrt_": U.sqrt,
    "abs_": U.abs,
    "sigmoid_": U.sigmoid,
    "tanh_": U.tanh,
    "relu_": U.relu,
    "clamp_": E.clamp,
    "clip_": E.clamp,
    "floor_": U.floor,
    "ceil_": U.ceil,
    "round_": U.round,
    "sin_": U.sin,
    "cos_": U.cos,
    "rsqrt_": U.rsqrt,
    "sign_": U.sign,
    "reciprocal_": U.reciprocal,
    "tril_": ops.tril,
    "triu_": ops.triu,
    "log1p_": U.log1p,
    "expm1_": U.expm1,
}


def _scatter_inplace(name, fn):
    def m(self, dim, index, src=None, **kw):
        return apply_inplace(self, lambda t: fn(t, dim, index, src, **kw), None, op=name)

    m.__doc__ = f"In-place ``{name[:-1]}``; returns self."

    return m


def _masked_fill_(self, mask, value):
    """In-place ``masked_fill``; returns self."""
    return apply_inplace(self, lambda t: ops.masked_fill(t, mask, value), None, op="masked_fill_")


def install() -> None:
    """Attach every method above to Tensor."""
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)
    for name, fn in _INPLACE_BINARY.items():
        setattr(Tensor, name, _inplace(fn, name))
    for name, fn in _INPLACE_UNARY.items():
        setattr(Tensor, name, _inplace_unary(fn, name))
    Tensor.scatter_ = _scatter_inplace("scatter_", ops.scatter)
    Tensor.scatter_add_ = _scatter_inplace("scatter_add_", ops.scatter_add)
    Tensor.masked_fill_ = _masked_fill_
    Tensor.T = property(_T, doc="All dimensions reversed (a view).")
    Tensor.mT = property(_mT, doc="The last two dimensions swapped (a view).")
    Tensor.H = Tensor.T
    Tensor.mH = Tensor.mT


install()
