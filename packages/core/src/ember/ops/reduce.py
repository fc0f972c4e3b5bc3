"""Reductions: sum, mean, prod, max/min, cumulative sums and products, var/std, logsumexp,
norm, argmax/argmin, all/any."""

from __future__ import annotations

import builtins

import numpy as np

from .._tensor import Tensor, _make, _wrap_dim
from ..autograd.function import Primitive
from ..autograd.grad_mode import STATE
from ..backend import dtypes as _dt
from ..backend.device import array_module
from ._util import dims


def _expand_back(g: Tensor, in_shape: tuple, axes, keepdim: bool) -> Tensor:
    """Broadcast a reduced gradient back over the reduced axes."""
    from .shape import expand, reshape

    if axes is None:
        axes = tuple(range(len(in_shape)))
    if not keepdim:
        kshape = tuple(1 if i in axes else s for i, s in enumerate(in_shape))
        g = reshape(g, kshape)
    return expand(g, in_shape)


class Sum(Primitive):
    @staticmethod
    def forward(ctx, a, axes, keepdim, dtype):
        ctx.shape, ctx.axes, ctx.keepdim = a.shape, axes, keepdim
        return array_module(a).sum(a, axis=axes, keepdims=keepdim, dtype=dtype)

    @staticmethod
    def backward(ctx, g):
        if not STATE.grad_enabled:  # first order: a broadcast view of the array, no nodes
            axes = range(len(ctx.shape)) if ctx.axes is None else ctx.axes
            ga = g._data
            if not ctx.keepdim:
                ga = ga.reshape(tuple(1 if i in axes else s for i, s in enumerate(ctx.shape)))
            return _make(array_module(ga).broadcast_to(ga, ctx.shape))
        return _expand_back(g, ctx.shape, ctx.axes, ctx.keepdim)


def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum over ``dim`` (all elements when None); integers and bools sum to int64."""
    axes = dims(dim, input._data.ndim, "sum")
    npd = None
    if dtype is not None:
        npd = _dt.to_dtype(dtype).np
    elif input._data.dtype.kind in "biu":
        npd = np.int64
    return Sum.apply(input, axes=axes, keepdim=keepdim, dtype=npd)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Arithmetic mean over ``dim``; floating-point inputs only, as in PyTorch."""
    if dtype is not None:
        from .elementwise import cast

        input = cast(input, _dt.to_dtype(dtype))
    if not input.dtype.is_floating_point:
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {input.dtype.name.capitalize()}"
        )
    axes = dims(dim, input._data.ndim, "mean")
    shape = input._data.shape
    n = 1
    for ax in axes if axes is not None else range(len(shape)):
        n *= shape[ax]
    return (
        sum(input, dim, keepdim) / builtins.max(n, 0)
        if n
        else sum(input, dim, keepdim) * float("nan")
    )


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance with Bessel's correction by default (``correction=1``)."""
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    axes = dims(dim, input._data.ndim, "var")
    shape = input._data.shape
    n = 1
    for ax in axes if axes is not None else range(len(shape)):
        n *= shape[ax]
    mu = mean(input, dim, keepdim=True)
    d = input - mu
    return sum(d * d, dim, keepdim) / builtins.max(n - correction, 0)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation: the square root of ``var``."""
    return var(input, dim, unbiased, keepdim, correction=correction).sqrt()


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(var, mean)`` in one call."""
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """``(std, mean)`` in one call."""
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


class _Extreme(Primitive):
    """amax/amin: ties share the gradient equally, as in PyTorch."""

    @staticmethod
    def backward(ctx, g):
        (a, out) = ctx.saved_tensors
        from .shape import reshape

        axes = ctx.axes if ctx.axes is not None else tuple(range(a._data.ndim))
        if not ctx.keepdim:
            kshape = tuple(1 if i in axes else s for i, s in enumerate(a._data.shape))
            out, g = reshape(out, kshape), reshape(g, kshape)
        mask = (a == out).to(g.dtype)
        count = sum(mask, axes, keepdim=True)
        return g * mask / count


class Amax(_Extreme):
    @staticmethod
    def forward(ctx, a, axes, keepdim):
        ctx.axes, ctx.keepdim = axes, keepdim
        out = array_module(a).amax(a, axis=axes, keepdims=keepdim)
        ctx.save_for_backward(a, out)
        return out


class Amin(_Extreme):
    @staticmethod
    def forward(ctx, a, axes, keepdim):
        ctx.axes, ctx.keepdim = axes, keepdim
        out = array_module(a).amin(a, axis=axes, keepdims=keepdim)
        ctx.save_for_backward(a, out)
        return out


def _check_nonempty(input, axes, op):
    if input._data.size == 0:
        raise IndexError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0.")


def amax(input, dim=(), keepdim=False):
    """Maximum over ``dim`` (all when empty)."""
    axes = dims(dim, input._data.ndim, "amax") or None
    _check_nonempty(input, axes, "amax")
    return Amax.apply(input, axes=axes, keepdim=keepdim)


def amin(input, dim=(), keepdim=False):
    """Minimum over ``dim`` (all when empty)."""
    axes = dims(dim, input._data.ndim, "amin") or None
    _check_nonempty(input, axes, "amin")
    return Amin.apply(input, axes=axes, keepdim=keepdim)


class _ValuesIndices(tuple):
    """``(values, indices)`` with named fields, like torch.return_types."""

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def _max_min(input, dim, keepdim, other, is_max):
    from .elementwise import maximum, minimum

    if isinstance(dim, Tensor):
        return (maximum if is_max else minimum)(input, dim)
    if other is not None:
        return (maximum if is_max else minimum)(input, other)
    if dim is None:
        return amax(input) if is_max else amin(input)
    ax = _wrap_dim(dim, input._data.ndim, "max" if is_max else "min")
    if input._data.ndim == 0:
        return _ValuesIndices((input * 1, _make(array_module(input._data).zeros((), np.int64))))
    idx = (argmax if is_max else argmin)(input, ax, keepdim=True)
    from .index import gather

    vals = gather(input, ax, idx)
    if not keepdim and input._data.ndim:
        vals, idx = vals.squeeze(ax), idx.squeeze(ax)
    return _ValuesIndices((vals, idx))


def max(input, dim=None, keepdim=False, *, other=None):
    """Overall max; ``(values, indices)`` along ``dim``; or elementwise with a tensor."""
    return _max_min(input, dim, keepdim, other, True)


def min(input, dim=None, keepdim=False, *, other=None):
    """Overall min; ``(values, indices)`` along ``dim``; or elementwise with a tensor."""
    return _max_min(input, dim, keepdim, other, False)


def argmax(input, dim=None, keepdim=False):
    """Index of the maximum (of the flattened input when ``dim`` is None)."""
    xp = array_module(input._data)
    if dim is None:
        return _make(xp.asarray(xp.argmax(input._data), dtype=np.int64))
    ax = _wrap_dim(dim, input._data.ndim, "argmax")
    if input._data.ndim == 0:
        return _make(xp.zeros((), np.int64))
    return _make(xp.asarray(xp.argmax(input._data, axis=ax, keepdims=keepdim), dtype=np.int64))


def argmin(input, dim=None, keepdim=False):
    """Index of the minimum (of the flattened input when ``dim`` is None)."""
    xp = array_module(input._data)
    if dim is None:
        return _make(xp.asarray(xp.argmin(input._data), dtype=np.int64))
    ax = _wrap_dim(dim, input._data.ndim, "argmin")
    if input._data.ndim == 0:
        return _make(xp.zeros((), np.int64))
    return _make(xp.asarray(xp.argmin(input._data, axis=ax, keepdims=keepdim), dtype=np.int64))


def all(input, dim=None, keepdim=False):
    """True where every element is nonzero."""
    axes = dims(dim, input._data.ndim, "all")
    xp = array_module(input._data)
    return _make(xp.asarray(xp.all(input._data, axis=axes, keepdims=keepdim)))


def any(input, dim=None, keepdim=False):
    """True where some element is nonzero."""
    axes = dims(dim, input._data.ndim, "any")
    xp = array_module(input._data)
    return _make(xp.asarray(xp.any(input._data, axis=axes, keepdims=keepdim)))


def count_nonzero(input, dim=None):
    """Number of nonzero elements over ``dim``."""
    axes = dims(dim, input._data.ndim, "count_nonzero")
    xp = array_module(input._data)
    return _make(xp.asarray(xp.count_nonzero(input._data, axis=axes), dtype=np.int64))


class Cumsum(Primitive):
    @staticmethod
    def forward(ctx, a, axis, dtype):
        ctx.axis = axis
        return array_module(a).cumsum(a, axis=axis, dtype=dtype)

    @staticmethod
    def backward(ctx, g):
        from .shape import flip

        return flip(cumsum(flip(g, (ctx.axis,)), ctx.axis), (ctx.axis,))


def cumsum(input, dim, *, dtype=None):
    """Running sum along ``dim``."""
    ax = _wrap_dim(dim, input._data.ndim, "cumsum")
    if input._data.ndim == 0:
        return cumsum(input.reshape(1), 0, dtype=dtype).reshape(())
    npd = (
        _dt.to_dtype(dtype).np
        if dtype is not None
        else (np.int64 if input._data.dtype.kind in "biu" else None)
    )
    return Cumsum.apply(input, axis=ax, dtype=npd)


class Cumprod(Primitive):
    @staticmethod
    def forward(ctx, a, axis):
        ctx.axis = axis
        out = array_module(a).cumprod(a, axis=axis)
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, g):
        # d out_j / d a_i = prod_{k <= j, k != i} a_k for j >= i, which is out_j / a_i when
        # no input is zero; with zeros, build the products without dividing (O(n^2) memory).
        a, out = ctx.saved_tensors
        if not bool((a._data == 0).any()):
            return _rev_cumsum(g * out, ctx.axis) / a
        return _cumprod_grad_with_zeros(a, g, ctx.axis)


def _cumprod_grad_with_zeros(a, g, axis):
    from .elementwise import where
    from .join import cat
    from .shape import triu

    x, gm = a.movedim(axis, -1), g.movedim(axis, -1)  # (..., n)
    n = x._data.shape[-1]
    xp = array_module(x._data)
    one = _make(xp.ones(x._data.shape[:-1] + (1,), x._data.dtype))
    left = cumprod(cat([one, x[..., :-1]], -1), -1)  # prod_{k < i} a_k
    square = _make(xp.ones((n, n), bool))
    after = triu(square, 1)  # [i, j]: j > i
    right = cumprod(where(after, x.unsqueeze(-2), 1.0), -1)  # [i, j]: prod_{i < k <= j} a_k
    terms = where(triu(square), right, 0.0) * gm.unsqueeze(-2)  # j >= i
    return (left * terms.sum(-1)).movedim(-1, axis)


def _rev_cumsum(x, axis):
    """``out_i = sum_{j >= i} x_j`` along ``axis``."""
    from .shape import flip

    return flip(cumsum(flip(x, (axis,)), axis), (axis,))


def cumprod(input, dim, *, dtype=None):
    """Running product along ``dim`` (gradient assumes nonzero inputs)."""
    ax = _wrap_dim(dim, input._data.ndim, "cumprod")
    if input._data.ndim == 0:
        return cumprod(input.reshape(1), 0, dtype=dtype).reshape(())
    if dtype is not None:
        input = input.to(dtype)
    return Cumprod.apply(input, axis=ax)


def prod(input, dim=None, keepdim=False, *, dtype=None):
    """Product over ``dim`` (all elements when None); exact gradient even with zeros."""
    from .shape import reshape

    if dtype is not None:
        input = input.to(dtype)
    if not input.dtype.is_floating_point:
        xp = array_module(input._data)
        return _make(
            xp.asarray(
                xp.prod(
                    input._data,
                    axis=dims(dim, input._data.ndim, "prod"),
                    keepdims=keepdim,
                    dtype=np.int64 if input._data.dtype.kind in "biu" else None,
                )
            )
        )
    if dim is None:
        return prod(reshape(input, (-1,)), 0)
    ax = _wrap_dim(dim, input._data.ndim, "prod")
    xp = array_module(input._data)
    if not input._rg:
        return _make(xp.asarray(xp.prod(input._data, axis=ax, keepdims=keepdim)))
    # the last running product is the product; cumprod's backward is exact with zeros
    moved = input.movedim(ax, -1)
    if moved._data.shape[-1]:
        full = cumprod(moved, -1)[..., -1]
    else:
        full = _make(xp.ones(moved._data.shape[:-1], input._data.dtype))
    return full.unsqueeze(ax) if keepdim else full


def logsumexp(input, dim, keepdim=False):
    """``log(sum(exp(input)))`` over ``dim``, computed stably."""
    from .elementwise import isinf, where

    m = amax(input, dim, keepdim=True).detach()
    m = where(isinf(m), 0.0, m)
    out = (input - m).exp().sum(dim, keepdim=True).log() + m
    if not keepdim:
        axes = dims(dim, input._data.ndim, "logsumexp")
        out = out.squeeze(axes)
    return out


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector p-norm over ``dim`` (2-norm / Frobenius by default; ``inf``; any p > 0).
    The gradient at a zero norm is zero, as in PyTorch."""
    if dtype is not None:
        input = input.to(dtype)
    if p in ("fro", 2, 2.0, None):
        return _root((input * input).sum(dim, keepdim), 2)
    if p in (float("inf"), "inf"):
        return amax(input.abs(), () if dim is None else dim, keepdim)
    if p in (float("-inf"),):
        return amin(input.abs(), () if dim is None else dim, keepdim)
    if p == 1:
        return input.abs().sum(dim, keepdim)
    if p == 0:
        return (input != 0).to(input.dtype).sum(dim, keepdim)
    return _root((input.abs() ** p).sum(dim, keepdim), p)


def _root(s, p):
    """``s ** (1/p)`` with a zero (not NaN) gradient where ``s == 0``."""
    from .elementwise import where

    if not s._rg:
        return s.sqrt() if p == 2 else s ** (1.0 / p)
    pos = s > 0
    safe = where(pos, s, 1.0)
    r = safe.sqrt() if p == 2 else safe ** (1.0 / p)
    return where(pos, r, 0.0)
