"""Unary math primitives: exp, log, sqrt, trig, tanh, sigmoid, relu, abs, erf, and the
piecewise-constant rounding ops (zero gradient, as in PyTorch). Forward on arrays and backward
in tensor ops sit side by side."""

from __future__ import annotations

import math

import numpy as np

from .._tensor import _make
from ..autograd.function import Primitive
from ..autograd.grad_mode import STATE
from ..backend.device import array_module
from ..kernels.cuda import compile as cc
from ..kernels.cuda import elementwise as cuda_ew
from .elementwise import _float_in, div, mul


class Neg(Primitive):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class Exp(Primitive):
    @staticmethod
    def forward(ctx, a):
        out = array_module(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out


class Log(Primitive):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return array_module(a).log(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g / a


class Log1p(Primitive):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return array_module(a).log1p(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g / (a + 1)


class Expm1(Primitive):
    @staticmethod
    def forward(ctx, a):
        out = array_module(a).expm1(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (out + 1)


class Sqrt(Primitive):
    @staticmethod
    def forward(ctx, a):
        with np.errstate(invalid="ignore"):
            out = array_module(a).sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g / (out * 2)


class Rsqrt(Primitive):
    @staticmethod
    def forward(ctx, a):
        with np.errstate(divide="ignore", invalid="ignore"):
            out = 1 / array_module(a).sqrt(a)
        ctx.save_for_backward(out)
        return out.astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out * out * out * -0.5


class Sin(Primitive):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).sin(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * cos(a)


class Cos(Primitive):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).cos(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return -g * sin(a)


class Tanh(Primitive):
    @staticmethod
    def forward(ctx, a):
        out = array_module(a).tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (1 - out * out)


class Sigmoid(Primitive):
    @staticmethod
    def forward(ctx, a):
        xp = array_module(a)
        # split by sign so neither branch overflows
        e = xp.exp(-xp.abs(a))
        out = xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out * (1 - out)


def _cuda_kernel_ok(*arrays) -> bool:
    """Whether ember's CUDA elementwise kernels take these arrays (CuPy floats of one shape,
    stored densely in one layout: C-contiguous or channels last)."""
    if isinstance(arrays[0], np.ndarray):
        return False

    return cc.usable_dense(*arrays)


class Relu(Primitive):
    @staticmethod
    def forward(ctx, a):
        if not isinstance(a, np.ndarray) and _cuda_kernel_ok(a):  # one launch each way
            out = cuda_ew.relu(a)
        else:
            out = array_module(a).maximum(a, 0).astype(a.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        if not STATE.grad_enabled:  # first order: skip the bool -> float cast node
            ga, oa = g._data, out._data
            if not isinstance(oa, np.ndarray) and ga.dtype == oa.dtype and _cuda_kernel_ok(oa):
                return _make(cuda_ew.relu_grad(cc.as_layout(ga, oa), oa))
            return _make(g._data * (out._data > 0))
        return g * (out > 0)


class ReluInplace(Primitive):
    """``relu_`` written into the input's own memory (ember's kernel on a dense CUDA array,
    ``np.maximum(a, 0, out=a)`` on a NumPy one): the node keeps that memory as its output.
    ``relu_inplace_`` (ops/inplace.py) commits it and records the version the backward
    expects, so a later in-place write is caught."""

    @staticmethod
    def forward(ctx, a):
        if isinstance(a, np.ndarray):
            ctx.out = np.maximum(a, 0, out=a)  # NaN stays NaN, as out of place
        else:
            ctx.out = cuda_ew.relu(a, out=a)
        return a

    @staticmethod
    def backward(ctx, g):
        if ctx.vbox[0] != ctx.version:
            raise RuntimeError(
                "relu_: one of the variables needed for gradient computation has been "
                f"modified by an inplace operation: version {ctx.vbox[0]}, expected "
                f"{ctx.version}"
            )
        out = _make(ctx.out)
        if not STATE.grad_enabled and g._data.dtype == ctx.out.dtype:
            if isinstance(ctx.out, np.ndarray):
                return _make(g._data * (ctx.out > 0))
            if _cuda_kernel_ok(ctx.out):
                return _make(cuda_ew.relu_grad(cc.as_layout(g._data, ctx.out), ctx.out))
        return g * (out > 0)


class Abs(Primitive):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return array_module(a).abs(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * sign(a)


class Erf(Primitive):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        xp = array_module(a)
        if xp is np:
            from scipy.special import erf as _erf
        else:  # pragma: no cover - GPU machines only
            from cupyx.scipy.special import erf as _erf
        return _erf(a.astype(np.float32) if a.dtype.kind == "V" else a).astype(a.dtype)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * exp(-(a * a)) * (2.0 / math.sqrt(math.pi))


class _ZeroGrad(Primitive):
    """Piecewise-constant ops: defined gradient zero, as in PyTorch."""

    @staticmethod
    def backward(ctx, g):
        return g * 0


def _zero_grad_op(name, fn):
    cls = type(name, (_ZeroGrad,), {"forward": staticmethod(lambda ctx, a: fn(a))})
    return cls


Sign = _zero_grad_op("Sign", lambda a: array_module(a).sign(a))
Floor = _zero_grad_op("Floor", lambda a: array_module(a).floor(a))
Ceil = _zero_grad_op("Ceil", lambda a: array_module(a).ceil(a))
Trunc = _zero_grad_op("Trunc", lambda a: array_module(a).trunc(a))
Round = _zero_grad_op("Round", lambda a: array_module(a).round(a))


def _unary(prim, op):
    def fn(input):
        return prim.apply(_float_in(input, op))

    fn.__name__ = op
    fn.__doc__ = f"Elementwise ``{op}``."
    return fn


exp = _unary(Exp, "exp")
log = _unary(Log, "log")
log1p = _unary(Log1p, "log1p")
expm1 = _unary(Expm1, "expm1")
sqrt = _unary(Sqrt, "sqrt")
rsqrt = _unary(Rsqrt, "rsqrt")
sin = _unary(Sin, "sin")
cos = _unary(Cos, "cos")
tanh = _unary(Tanh, "tanh")
sigmoid = _unary(Sigmoid, "sigmoid")
erf = _unary(Erf, "erf")


def neg(input):
    """``-input``."""
    if input._data.dtype == bool:
        raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported.")
    return Neg.apply(input)


def relu(input):
    """``max(input, 0)``."""
    return Relu.apply(input)


def abs(input):
    """Absolute value."""
    return Abs.apply(input)


def sign(input):
    """-1, 0 or 1 by sign (zero gradient)."""
    return Sign.apply(input)


def _rounder(prim, op):
    def fn(input):
        if input._data.dtype.kind in "biu":
            return input.clone()
        return prim.apply(input)

    fn.__name__ = op
    fn.__doc__ = f"Elementwise ``{op}`` (zero gradient)."
    return fn


floor = _rounder(Floor, "floor")
ceil = _rounder(Ceil, "ceil")
trunc = _rounder(Trunc, "trunc")


def round(input, *, decimals: int = 0):
    """Round half to even, like PyTorch (zero gradient)."""
    if decimals:
        s = 10.0**decimals
        return _make(array_module(input._data).round(input._data * s) / s).to(input.dtype)
    return _rounder(Round, "round")(input)


def square(input):
    """``input * input``."""
    return mul(input, input)


def reciprocal(input):
    """``1 / input``."""
    return div(1.0, _float_in(input, "reciprocal"))
