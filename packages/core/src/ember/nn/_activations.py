"""Activation functions for ``nn.functional``. GELU and SiLU are fused primitives (they sit in
every transformer and modern CNN); the rest are composites of ember's primitives."""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from .._tensor import Tensor, _make
from ..autograd.function import Primitive
from ..autograd.grad_mode import STATE
from ..backend.device import array_module
from ..kernels.cuda import compile as cc
from ..kernels.cuda import elementwise as cuda_ew
from ..ops import elementwise as E
from ..ops import unary as U
from ..ops.inplace import apply_inplace, relu_inplace_

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _erf(a):
    if array_module(a) is np:
        from scipy.special import erf
    else:  # pragma: no cover - GPU machines only
        from cupyx.scipy.special import erf
    if a.dtype.kind == "V":  # bfloat16: compute in float32
        return erf(a.astype(np.float32)).astype(a.dtype)
    return erf(a)


def _maybe_inplace(input, fn, inplace: bool, name: str):
    """``fn(input)``, or written back into ``input`` when ``inplace`` (PyTorch's ``inplace=``)."""
    if inplace:
        return apply_inplace(input, fn, None, op=name)
    return fn(input)


# ---- fused primitives --------------------------------------------------------------------


class Gelu(Primitive):
    """``x * Phi(x)`` (exact, erf) or its tanh approximation, in one node."""

    @staticmethod
    def forward(ctx, x, approximate):
        xp = array_module(x)
        ctx.approximate = approximate
        ctx.cuda = False
        if xp is not np and _cuda_usable(x):  # one launch; backward recomputes Phi from x
            ctx.cuda = True
            ctx.save_for_backward(x, None)  # the backward recomputes Phi(x)
            return cuda_ew.gelu(x, approximate)
        if approximate == "tanh":
            inner = xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
            ctx.save_for_backward(x, inner)
            return (0.5 * x * (1.0 + inner)).astype(x.dtype, copy=False)
        if xp is np and x.dtype == np.float32:  # a fast Phi, tighter than torch's float32
            from ..kernels.cpu.special import gelu_forward

            # recording: the forward also writes the derivative (3 more passes on blocks in
            # cache), so the first-order backward is one multiply instead of seven passes
            y, deriv = gelu_forward(x, with_grad=ctx._rec)
            ctx.save_for_backward(x, deriv)
            return y
        cdf = 0.5 * (1.0 + _erf(x * _INV_SQRT_2))
        ctx.save_for_backward(x, cdf)
        return (x * cdf).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, saved = ctx.saved_tensors
        if not STATE.grad_enabled and ctx.cuda:
            ga = cc.as_layout(g._data, x._data, x._data.dtype)
            return _make(cuda_ew.gelu_grad(ga, x._data, ctx.approximate))
        if not STATE.grad_enabled:  # first order only: reuse the forward's erf / tanh
            return _make(_gelu_grad_array(g._data, x._data, saved._data, ctx.approximate))
        if ctx.approximate == "tanh":
            x2 = x * x
            t = U.tanh(_SQRT_2_OVER_PI * x * (1.0 + 0.044715 * x2))
            dt = (1.0 - t * t) * (_SQRT_2_OVER_PI * (1.0 + 0.134145 * x2))
            return g * (0.5 * (1.0 + t) + 0.5 * x * dt)
        cdf = 0.5 * (1.0 + U.erf(x * _INV_SQRT_2))
        pdf = U.exp(-0.5 * (x * x)) * _INV_SQRT_2PI
        return g * (cdf + x * pdf)


def _cuda_usable(x) -> bool:

    return cc.usable_dense(x)


def _gelu_grad_array(g, x, saved, approximate):
    xp = array_module(x)
    if approximate == "tanh":
        t = saved
        dt = (1.0 - t * t) * (_SQRT_2_OVER_PI * (1.0 + 0.134145 * x * x))
        d = 0.5 * (1.0 + t) + 0.5 * x * dt
    elif xp is np and x.dtype == np.float32:  # the forward saved the derivative itself
        from ..kernels.cpu.special import gelu_backward

        return gelu_backward(g, saved)
    else:  # Phi(x) + x * phi(x), in place on one temporary
        d = x * x
        d *= -0.5
        xp.exp(d, out=d)
        d *= x
        d *= _INV_SQRT_2PI
        d += saved
        d *= g
        return d.astype(g.dtype, copy=False)
    return (g * d).astype(g.dtype, copy=False)


class Silu(Primitive):
    """``x * sigmoid(x)`` in one node."""

    @staticmethod
    def forward(ctx, x):
        xp = array_module(x)
        e = xp.exp(-xp.abs(x))
        s = xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        if not STATE.grad_enabled:
            xa, sa = x._data, s._data
            return _make((g._data * (sa * (1.0 + xa * (1.0 - sa)))).astype(xa.dtype, copy=False))
        s = U.sigmoid(x)  # recording: s must be a function of x for double backward
        return g * (s * (1.0 + x * (1.0 - s)))


# ---- the functions -----------------------------------------------------------------------


def _float_tensor(input, name):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{name}: expected a floating-point input, got {input.dtype}")
    return input


def relu(input, inplace: bool = False):
    """``max(x, 0)`` elementwise."""
    if inplace and isinstance(input, Tensor):
        done = relu_inplace_(input)
        if done is not None:
            return done
    return _maybe_inplace(input, U.relu, inplace, "relu_")


def relu_(input):
    """In-place ``relu``."""
    return relu(input, inplace=True)


def gelu(input, approximate: str = "none"):
    """Gaussian error linear unit ``x * Phi(x)``; ``approximate='tanh'`` uses the tanh form."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return Gelu.apply(_float_tensor(input, "gelu"), approximate=approximate)


def silu(input, inplace: bool = False):
    """``x * sigmoid(x)`` (also called swish)."""
    _float_tensor(input, "silu")
    return _maybe_inplace(input, Silu.apply, inplace, "silu_")


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    """``x`` where positive, ``negative_slope * x`` elsewhere."""
    return _maybe_inplace(
        input, lambda x: E.where(x > 0, x, x * negative_slope), inplace, "leaky_relu_"
    )


def elu(input, alpha: float = 1.0, inplace: bool = False):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere."""

    def f(x):
        # expm1 of min(x, 0): the unused branch never overflows, so no inf * 0 in backward
        return E.where(x > 0, x, alpha * U.expm1(E.clamp(x, max=0.0)))

    return _maybe_inplace(input, f, inplace, "elu_")


def selu(input, inplace: bool = False):
    """Scaled ELU with the self-normalising constants of Klambauer et al."""
    scale, alpha = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
    return _maybe_inplace(input, lambda x: scale * elu(x, alpha), inplace, "selu_")


def celu(input, alpha: float = 1.0, inplace: bool = False):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    return _maybe_inplace(
        input,
        lambda x: E.where(x > 0, x, alpha * U.expm1(E.clamp(x, max=0.0) / alpha)),
        inplace,
        "celu_",
    )


def _softplus_stable(z):
    # max(z, 0) + log1p(exp(-|z|)): never overflows; at z == 0 maximum splits the gradient
    # (0.5), which is exactly sigmoid(0).
    return E.maximum(z, 0.0) + U.log1p(U.exp(-U.abs(z)))


def softplus(input, beta: float = 1.0, threshold: float = 20.0):
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``."""
    z = input * beta if beta != 1 else input
    soft = _softplus_stable(z)
    if beta != 1:
        soft = soft / beta
    return E.where(z > threshold, input, soft)


def logsigmoid(input):
    """``log(sigmoid(x))``, computed stably."""
    return E.minimum(input, 0.0) - U.log1p(U.exp(-U.abs(input)))


def mish(input, inplace: bool = False):
    """``x * tanh(softplus(x))``."""
    return _maybe_inplace(input, lambda x: x * U.tanh(softplus(x)), inplace, "mish_")


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
    """Clamp to ``[min_val, max_val]``; the gradient is zero at and beyond the edges."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")

    def f(x):
        inside = E.logical_and(x > min_val, x < max_val)
        return E.where(inside, x, E.clamp(x.detach(), min_val, max_val))

    return _maybe_inplace(input, f, inplace, "hardtanh_")


def relu6(input, inplace: bool = False):
    """``min(max(x, 0), 6)``."""
    return hardtanh(input, 0.0, 6.0, inplace)


def hardsigmoid(input, inplace: bool = False):
    """``relu6(x + 3) / 6``."""
    return _maybe_inplace(input, lambda x: relu6(x + 3.0) / 6.0, inplace, "hardsigmoid_")


def hardswish(input, inplace: bool = False):
    """``x * relu6(x + 3) / 6``."""
    return _maybe_inplace(input, lambda x: x * hardsigmoid(x), inplace, "hardswish_")


def softsign(input):
    """``x / (1 + |x|)``."""
    return input / (U.abs(input) + 1.0)


def tanhshrink(input):
    """``x - tanh(x)``."""
    return input - U.tanh(input)


def threshold(input, threshold: float, value: float, inplace: bool = False):
    """``x`` where ``x > threshold``, else ``value``."""
    return _maybe_inplace(
        input, lambda x: E.where(x > threshold, x, float(value)), inplace, "threshold_"
    )


def prelu(input, weight):
    """``x`` where positive, ``weight * x`` elsewhere; ``weight`` per channel (dim 1)."""
    w = weight
    if weight.numel() > 1 and input.ndim > 1:
        w = weight.reshape((1, -1) + (1,) * (input.ndim - 2))
    return E.where(input > 0, input, w * input)


def glu(input, dim: int = -1):
    """Gated linear unit: split ``dim`` in halves ``a, b`` and return ``a * sigmoid(b)``."""
    n = input.shape[dim]
    if n % 2:
        raise RuntimeError(f"glu: Halving dimension must be even, but dimension {dim} is size {n}")
    a, b = ops.chunk(input, 2, dim)
    return a * U.sigmoid(b)


def tanh(input):
    """Elementwise hyperbolic tangent."""
    return U.tanh(input)


def sigmoid(input):
    """Elementwise logistic function ``1 / (1 + exp(-x))``."""
    return U.sigmoid(input)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``exp(x) / sum(exp(x))`` along ``dim``, computed stably."""
    return ops.softmax(input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``log(softmax(x))`` along ``dim``, computed stably."""
    return ops.log_softmax(input, dim, dtype)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """``softmax(-x)`` along ``dim``."""
    return ops.softmax(-input, dim, dtype)
