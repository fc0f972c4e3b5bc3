"""Elementwise primitives with two or three inputs: arithmetic, maximum/minimum, clamp, where,
and dtype casts (unary math is in unary.py, comparisons in compare.py). Each op's forward
(on arrays) and backward (in tensor ops) sit side by side."""

from __future__ import annotations

import numpy as np

from .._tensor import TENSOR_TYPES as _TT
from .._tensor import Tensor, _make
from ..autograd.function import Primitive
from ..backend import dtypes as _dt
from ..backend.device import array_module
from ..kernels.cuda import elementwise as cuda_ew
from ._util import as_tensor_arg, broadcast_shapes, result_dtype, scalar_value, sum_to

# ---- dtype cast --------------------------------------------------------------------------


class Cast(Primitive):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.src = a.dtype
        if not isinstance(a, np.ndarray):  # autocast's casts: one vectorized launch on CUDA
            out = cuda_ew.cast(a, dtype)
            if out is not None:
                return out
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return cast(g, ctx.src)


def cast(x: Tensor, dtype) -> Tensor:
    """``x`` converted to ``dtype`` (differentiable between floating types)."""
    npd = dtype.np if isinstance(dtype, _dt.dtype) else np.dtype(dtype)
    if x._data.dtype == npd:
        return x
    if npd.kind not in "fV" and x._rg:
        return _make(x._data.astype(npd))
    return Cast.apply(x, dtype=npd)


def _float_in(x: Tensor, op: str) -> Tensor:
    # integer inputs to float math become the default float type, as in PyTorch
    if x.__class__ not in _TT:
        raise TypeError(f"{op}(): argument 'input' must be Tensor, not {type(x).__name__}")
    return x if x._data.dtype.kind in "fV" else cast(x, _dt.get_default_dtype())


# ---- binary arithmetic -------------------------------------------------------------------


def _shape(a):
    return a.shape if hasattr(a, "shape") else None


class Add(Primitive):
    @staticmethod
    def forward(ctx, a, b):
        ctx.sa, ctx.sb = _shape(a), _shape(b)
        if not isinstance(a, np.ndarray) and ctx.sa is not None and ctx.sa == ctx.sb:
            out = cuda_ew.add(a, b)
            if out is not None:
                return out
        return a + b

    @staticmethod
    def backward(ctx, g):
        return _red(g, ctx.sa), _red(g, ctx.sb)


class Sub(Primitive):
    @staticmethod
    def forward(ctx, a, b):
        ctx.sa, ctx.sb = _shape(a), _shape(b)
        return a - b

    @staticmethod
    def backward(ctx, g):
        return _red(g, ctx.sa), None if ctx.sb is None else _red(-g, ctx.sb)


class Mul(Primitive):
    @staticmethod
    def forward(ctx, a, b):
        if ctx._rec:
            ctx.sa, ctx.sb = _shape(a), _shape(b)
            ctx.save_for_backward(a if ctx.needs(1) else None, b if ctx.needs(0) else None)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = _red(g * b, ctx.sa) if ctx._next[0] is not None else None
        gb = _red(g * a, ctx.sb) if ctx._next[1] is not None else None
        return ga, gb


class Div(Primitive):
    @staticmethod
    def forward(ctx, a, b):
        if ctx._rec:
            ctx.sa, ctx.sb = _shape(a), _shape(b)
            ctx.save_for_backward(a if ctx.needs(1) else None, b)
        with np.errstate(divide="ignore", invalid="ignore"):  # inf and nan, like PyTorch
            return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = _red(g / b, ctx.sa) if ctx._next[0] is not None else None
        gb = _red(-g * a / (b * b), ctx.sb) if ctx._next[1] is not None else None
        return ga, gb


class Pow(Primitive):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return a**b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = gb = None
        if ctx._next[0] is not None:
            bv = b.item() if b._data.ndim == 0 and not b._rg else b
            if isinstance(bv, float | int) and bv == 2:
                ga = _red(g * 2 * a, a._data.shape)
            elif isinstance(bv, float | int) and bv == 0:
                ga = _red(g * 0, a._data.shape)
            else:
                ga = _red(g * b * a ** (b - 1), a._data.shape)
        if ctx._next[1] is not None:
            out = a**b
            from .unary import log

            logs = where(a > 0, log(where(a > 0, a, 1.0)), 0.0)
            gb = _red(g * out * logs, b._data.shape)
        return ga, gb


def _red(g, shape):
    if shape is None:
        return None
    return g if g._data.shape == shape else sum_to(g, shape)


class _MaxMin(Primitive):
    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        win = ctx._cmp(a, b)
        tie = a == b
        half = g * 0.5
        ga = where(tie, half, where(win, g, 0.0))
        gb = where(tie, half, where(win, 0.0, g))
        return _red(ga, a._data.shape), _red(gb, b._data.shape)


class Maximum(_MaxMin):
    _cmp = staticmethod(lambda a, b: a > b)

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return array_module(a).maximum(a, b)


class Minimum(_MaxMin):
    _cmp = staticmethod(lambda a, b: a < b)

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return array_module(a).minimum(a, b)


def _binary(prim, a, b, op: str):
    ca, cb = a.__class__ in _TT, b.__class__ in _TT
    if ca and cb:
        if a._data.dtype != b._data.dtype:
            rt = result_dtype(a, b)
            a, b = cast(a, rt), cast(b, rt)
        if type(a._data) is not type(b._data):
            from ._util import check_same_device

            check_same_device(op, a, b)
    elif ca or cb:
        t, s = (a, b) if ca else (b, a)
        if not isinstance(s, int | float | bool):
            s = scalar_value(s)
            if isinstance(s, int | float | bool):
                a, b = (t, s) if ca else (s, t)
                return _binary(prim, a, b, op)
            s = as_tensor_arg(s, t, op)
            return _binary(prim, t, s, op) if ca else _binary(prim, s, t, op)
        if t._data.dtype.kind in "biu" and (isinstance(s, float) or t._data.dtype == bool):
            rt = result_dtype(t, s)
            if rt.np != t._data.dtype:
                t = cast(t, rt)
                s = rt.np.type(s)
        elif isinstance(s, int | float) and t._data.dtype.kind == "V":
            # bfloat16 takes its scalars as bfloat16: a NumPy scalar on the CPU; on CUDA a 0-d
            # device array, so a backward that reuses the scalar stays on the device
            s = t._data.dtype.type(s)
            if not isinstance(t._data, np.ndarray):
                s = _device_scalar(t._data, s)
        a, b = (t, s) if ca else (s, t)
    else:
        raise TypeError(f"{op}: expected at least one Tensor argument")
    try:
        return prim.apply(a, b)
    except OverflowError:  # a Python int beyond a small int dtype wraps, as a C cast does
        a, b = (_wrap_int(a, b), b) if b.__class__ in _TT else (a, _wrap_int(b, a))
        return prim.apply(a, b)
    except ValueError as exc:
        sa, sb = getattr(a, "shape", ()), getattr(b, "shape", ())
        broadcast_shapes(op, tuple(sa), tuple(sb))
        raise RuntimeError(f"{op}: {exc}") from exc


_SCALARS: dict = {}  # (bytes, dtype, GPU) -> a 0-d device array holding that scalar


def _device_scalar(like, s):
    """``s`` (a NumPy scalar of ``like``'s dtype) as a 0-d array on ``like``'s GPU, cached by
    its bytes: an upload is a synchronous host-to-device copy (a stall per op, and not
    allowed while a CUDA graph is being captured). Ops only read their operands, so one
    array serves every use."""
    key = (s.tobytes(), s.dtype, like.device.id)
    hit = _SCALARS.get(key)
    if hit is None:
        if len(_SCALARS) >= 256:
            _SCALARS.clear()
        hit = _SCALARS[key] = array_module(like).asarray(s)
    return hit


def _wrap_int(s, t):
    return np.asarray(s).astype(t._data.dtype) if isinstance(s, int) else s


def add(a, b, *, alpha=1):
    """``a + alpha * b`` with broadcasting and PyTorch's type promotion."""
    if alpha != 1:
        b = mul(b, alpha) if isinstance(b, Tensor) else b * alpha
    return _binary(Add, a, b, "add")


def sub(a, b, *, alpha=1):
    """``a - alpha * b``."""
    if alpha != 1:
        b = mul(b, alpha) if isinstance(b, Tensor) else b * alpha
    return _binary(Sub, a, b, "sub")


def mul(a, b):
    """Elementwise product."""
    return _binary(Mul, a, b, "mul")


def div(a, b, *, rounding_mode=None):
    """True division (integers give floats); ``rounding_mode`` 'trunc' or 'floor'."""
    if rounding_mode is not None:
        return _rounded_div(a, b, rounding_mode)
    ta = a if a.__class__ in _TT else None
    tb = b if b.__class__ in _TT else None
    rt = result_dtype(ta if ta is not None else a, tb if tb is not None else b)
    if not rt.is_floating_point:
        fd = _dt.get_default_dtype()
        a = cast(a, fd) if ta is not None else float(a)
        b = cast(b, fd) if tb is not None else float(b)
    return _binary(Div, a, b, "div")


def _rounded_div(a, b, mode):
    a = as_tensor_arg(a, b if isinstance(b, Tensor) else None, "div")
    b_arr = b._data if isinstance(b, Tensor) else b
    xp = array_module(a._data)
    rt = result_dtype(a, b)
    q = xp.true_divide(a._data, b_arr) if rt.is_floating_point else None
    if mode == "floor":
        out = xp.floor(q) if q is not None else xp.floor_divide(a._data, b_arr)
    elif mode == "trunc":
        out = xp.trunc(q) if q is not None else xp.trunc(xp.true_divide(a._data, b_arr))
    else:
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {mode!r}")
    return _make(out.astype(rt.np))


def pow(a, b):
    """``a ** b`` elementwise."""
    if a.__class__ not in _TT:
        a = as_tensor_arg(a, b, "pow")
        if a._data.ndim == 0 and isinstance(b, Tensor):
            a = _make(a._data.astype(b._data.dtype)) if b.dtype.is_floating_point else a
    if b.__class__ in _TT and b._data.dtype != a._data.dtype:
        rt = result_dtype(a, b)
        a, b = cast(a, rt), cast(b, rt)
    if b.__class__ not in _TT:
        b = scalar_value(b)
        if a._data.dtype.kind in "biu" and isinstance(b, float):
            a = cast(a, _dt.get_default_dtype())
        if a._data.dtype.kind in "iu" and isinstance(b, int) and b < 0:
            raise RuntimeError("pow: Integers to negative integer powers are not allowed.")
        b = _make(np.asarray(b, dtype=a._data.dtype))
        if not isinstance(a._data, np.ndarray):
            b = _make(array_module(a._data).asarray(b._data))
    try:
        return Pow.apply(a, b)
    except ValueError:
        broadcast_shapes("pow", a._data.shape, b._data.shape)
        raise


def maximum(a, b):
    """Elementwise maximum (ties share the gradient equally, as in PyTorch)."""
    return _binary(Maximum, as_tensor_arg(a), as_tensor_arg(b, a), "maximum")


def minimum(a, b):
    """Elementwise minimum."""
    return _binary(Minimum, as_tensor_arg(a), as_tensor_arg(b, a), "minimum")


# ---- clamp, where ------------------------------------------------------------------------


class Clamp(Primitive):
    @staticmethod
    def forward(ctx, a, lo, hi):
        ctx.save_for_backward(a)
        ctx.lo, ctx.hi = lo, hi
        return array_module(a).clip(a, lo, hi).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        mask = None
        if ctx.lo is not None:
            mask = a >= ctx.lo
        if ctx.hi is not None:
            m = a <= ctx.hi
            mask = m if mask is None else logical_and(mask, m)
        return g * mask, None, None


def clamp(input, min=None, max=None):
    """Limit values to ``[min, max]``; gradient flows where the input was inside."""
    if min is None and max is None:
        raise RuntimeError("clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    if input._data.dtype.kind in "biu" and isinstance(min, float) or isinstance(max, float):
        input = _float_in(input, "clamp") if input._data.dtype.kind in "biu" else input
    return Clamp.apply(input, scalar_value(min), scalar_value(max))


clip = clamp


class Where(Primitive):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.cond = _make(cond)
        ctx.sa, ctx.sb = _shape(a), _shape(b)
        return array_module(cond).where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        c = ctx.cond
        zero = _make(array_module(g._data).zeros((), g._data.dtype))
        ga = _red(where(c, g, zero), ctx.sa) if ctx._next[1] is not None else None
        gb = _red(where(c, zero, g), ctx.sb) if ctx._next[2] is not None else None
        return None, ga, gb


def where(condition, input=None, other=None):
    """``input`` where ``condition`` holds, else ``other`` (broadcast together)."""
    if input is None and other is None:
        from .index import nonzero

        return nonzero(condition, as_tuple=True)
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != bool:
        raise RuntimeError(f"where: expected condition to be a bool tensor, got {cond.dtype}")
    ta = isinstance(input, Tensor)
    tb = isinstance(other, Tensor)
    rt = result_dtype(input, other)
    a = cast(input, rt) if ta else _make(np.asarray(input, dtype=rt.np))
    b = cast(other, rt) if tb else _make(np.asarray(other, dtype=rt.np))
    gpu = [t._data for t in (condition, input, other) if isinstance(t, Tensor)]
    gpu = [d for d in gpu if not isinstance(d, np.ndarray)]
    if gpu:  # a 0-dim value or a mask made on the CPU joins the others on the GPU
        xp = array_module(gpu[0])
        a = _make(xp.asarray(a._data)) if isinstance(a._data, np.ndarray) else a
        b = _make(xp.asarray(b._data)) if isinstance(b._data, np.ndarray) else b
        cond = xp.asarray(cond)
    try:
        return Where.apply(_make(cond), a, b)
    except ValueError:
        broadcast_shapes("where", cond.shape, a.shape, b.shape)
        raise


# re-exported so that ``elementwise.eq`` and friends keep working
from . import compare as _cmp  # noqa: E402

_mk_bool = _cmp._mk_bool
allclose = _cmp.allclose
bitwise_and = _cmp.bitwise_and
bitwise_or = _cmp.bitwise_or
bitwise_xor = _cmp.bitwise_xor
eq = _cmp.eq
equal = _cmp.equal
ge = _cmp.ge
gt = _cmp.gt
isclose = _cmp.isclose
isfinite = _cmp.isfinite
isinf = _cmp.isinf
isnan = _cmp.isnan
le = _cmp.le
logical_and = _cmp.logical_and
logical_not = _cmp.logical_not
logical_or = _cmp.logical_or
logical_xor = _cmp.logical_xor
lt = _cmp.lt
ne = _cmp.ne
