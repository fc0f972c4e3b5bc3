"""ember's dtypes, their NumPy storage types, and PyTorch's type-promotion rules."""

from __future__ import annotations

import ml_dtypes
import numpy as np


class dtype:
    """A tensor element type, named and ordered as in PyTorch (``ember.float32`` ...)."""

    __slots__ = ("name", "np", "is_floating_point", "is_signed", "itemsize", "_cat")

    def __init__(self, name: str, np_dtype, cat: int):
        self.name = name
        self.np = np.dtype(np_dtype)
        self._cat = cat  # 0 bool, 1 integer, 2 floating
        self.is_floating_point = cat == 2
        self.is_signed = name not in ("bool", "uint8")
        self.itemsize = self.np.itemsize

    def __repr__(self) -> str:
        return f"ember.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


bool_ = dtype("bool", np.bool_, 0)
uint8 = dtype("uint8", np.uint8, 1)
int8 = dtype("int8", np.int8, 1)
int16 = dtype("int16", np.int16, 1)
int32 = dtype("int32", np.int32, 1)
int64 = dtype("int64", np.int64, 1)
float16 = dtype("float16", np.float16, 2)
bfloat16 = dtype("bfloat16", ml_dtypes.bfloat16, 2)
float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)

ALL = (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
_NAMES = {d.name: d for d in ALL}
_FROM_NP = {d.np: d for d in ALL}


def _by_name(name: str) -> dtype:
    return _NAMES[name]


def from_numpy_dtype(np_dtype) -> dtype:
    """Map a NumPy (or CuPy) dtype to the ember dtype that stores it."""
    try:
        return _FROM_NP[np_dtype]
    except KeyError:
        pass
    nd = np.dtype(np_dtype)
    if nd in _FROM_NP:
        return _FROM_NP[nd]
    if nd.kind == "u":  # uint16/32/64 have no ember dtype; widen like PyTorch's from_numpy refuses
        raise TypeError(f"can't convert array of dtype {nd}: ember supports uint8 only")
    raise TypeError(f"can't convert array of dtype {nd}; supported: {', '.join(_NAMES)}")


def to_dtype(d) -> dtype:
    """Accept an ember dtype, a NumPy dtype, a Python type or a name; return the ember dtype."""
    if isinstance(d, dtype):
        return d
    if d is float:  # Python's float is a double, as in PyTorch
        return float64
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str) and d in _NAMES:
        return _NAMES[d]
    return from_numpy_dtype(d)


# ---- promotion ---------------------------------------------------------------------------

_INT_ORDER = {uint8: 0, int8: 1, int16: 2, int32: 3, int64: 4}


def _promote_pair(a: dtype, b: dtype) -> dtype:
    if a is b:
        return a
    if a._cat != b._cat:
        return a if a._cat > b._cat else b
    if a._cat == 0:
        return a
    if a._cat == 1:
        if {a, b} == {uint8, int8}:
            return int16
        if uint8 in (a, b):
            other = b if a is uint8 else a
            return other
        return a if _INT_ORDER[a] > _INT_ORDER[b] else b
    # both floating: float16 with bfloat16 meet at float32
    if {a, b} == {float16, bfloat16}:
        return float32
    return a if a.itemsize > b.itemsize else b


_PROMOTE = {(a, b): _promote_pair(a, b) for a in ALL for b in ALL}


def promote_types(a: dtype, b: dtype) -> dtype:
    """The smallest dtype both ``a`` and ``b`` convert to safely (``torch.promote_types``)."""
    return _PROMOTE[(a, b)]


_default = [float32]


def get_default_dtype() -> dtype:
    """The dtype floating-point tensors get when none is given (float32 at start)."""
    return _default[0]


def set_default_dtype(d) -> None:
    """Set the default floating-point dtype (float16, bfloat16, float32 or float64)."""
    d = to_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating-point dtypes are allowed, got {d}")
    _default[0] = d


def scalar_dtype(value) -> dtype:
    """The dtype PyTorch gives a bare Python number."""
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int64
    if isinstance(value, float):
        return _default[0]
    raise TypeError(f"unsupported scalar type {type(value).__name__}")


def combine(dim_t: dtype | None, zero_t: dtype | None, scalar_t: dtype | None) -> dtype:
    """PyTorch's result_type: dimensioned tensors win over 0-dim ones, which win over Python
    numbers, unless the lower tier is of a higher category (bool < integer < floating)."""
    return _combine(dim_t, _combine(zero_t, scalar_t))


def _combine(higher: dtype | None, lower: dtype | None) -> dtype | None:
    if higher is None:
        return lower
    if lower is None or higher._cat == 2:
        return higher
    if higher is bool_ or lower._cat == 2:
        return _PROMOTE[(higher, lower)]
    return higher
