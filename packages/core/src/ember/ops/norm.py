"""Fused primitives where one node measurably beats a chain of small ones: softmax,
log_softmax, layer norm and batch norm. Forward runs on arrays in few passes; backward is
written in tensor ops, so these still differentiate twice."""

from __future__ import annotations

import numpy as np

from .._tensor import _make, _wrap_dim
from ..amp import autocast_mode as _amp
from ..autograd.function import Primitive
from ..autograd.grad_mode import STATE
from ..backend.device import array_module
from ..kernels.cpu import rowwise
from ..kernels.cuda import compile as cc
from ..kernels.cuda import rowwise as cuda_rows


def _cuda_rows(x, axis, bias=None) -> bool:
    """Whether the fused CUDA row kernels take ``x`` (and ``bias``) along ``axis``."""
    if isinstance(x, np.ndarray) or axis != x.ndim - 1 or x.ndim == 0:
        return False

    if bias is not None and (bias.ndim != 2 or bias.shape != x.shape[-2:] or x.ndim < 2):
        return False
    return cc.usable(x, bias)


class Softmax(Primitive):
    @staticmethod
    def forward(ctx, x, axis, bias=None):
        xp = array_module(x)
        ctx.axis = axis
        if xp is np and axis == x.ndim - 1:  # row blocks on threads
            e = rowwise.softmax_last(x, bias)
            ctx.save_for_backward(e)
            return e
        if _cuda_rows(x, axis, bias):  # one launch per pass on the GPU
            e = cuda_rows.softmax(x, bias)
            ctx.save_for_backward(e)
            return e
        e = x + bias if bias is not None else x.copy()  # ``bias``: an additive mask, no grad
        e -= e.max(axis=axis, keepdims=True)
        xp.exp(e, out=e)
        e /= e.sum(axis=axis, keepdims=True)
        ctx.axis = axis
        ctx.save_for_backward(e)
        return e

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        if not STATE.grad_enabled and isinstance(g._data, np.ndarray) and ctx.axis == g.ndim - 1:
            return _make(rowwise.softmax_last_grad(g._data, y._data)), None
        if not STATE.grad_enabled and _cuda_rows(y._data, ctx.axis):
            ga = (
                g._data
                if g._data.flags.c_contiguous
                else array_module(g._data).ascontiguousarray(g._data)
            )
            if ga.dtype == y._data.dtype:
                return _make(cuda_rows.softmax_grad(ga, y._data)), None
        if not STATE.grad_enabled:  # first order: y * (g - sum(g * y)) in place
            ya, ga = y._data, g._data
            t = ga * ya
            s = t.sum(axis=ctx.axis, keepdims=True)
            array_module(ga).subtract(ga, s, out=t)
            t *= ya
            return _make(t), None
        gy = g * y
        return gy - y * gy.sum(ctx.axis, keepdim=True), None


class LogSoftmax(Primitive):
    @staticmethod
    def forward(ctx, x, axis):
        xp = array_module(x)
        ctx.axis = axis
        if _cuda_rows(x, axis):
            s = cuda_rows.softmax(x, log=True)
            ctx.save_for_backward(s)
            return s
        s = x - x.max(axis=axis, keepdims=True)
        s -= xp.log(xp.exp(s).sum(axis=axis, keepdims=True))
        ctx.axis = axis
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        if not STATE.grad_enabled and _cuda_rows(out._data, ctx.axis):
            ga = array_module(g._data).ascontiguousarray(g._data)
            if ga.dtype == out._data.dtype:
                return _make(cuda_rows.softmax_grad(ga, out._data, log=True))
        if not STATE.grad_enabled:  # first order: g - exp(out) * sum(g), in place
            xp = array_module(g._data)
            t = xp.exp(out._data)
            t *= g._data.sum(axis=ctx.axis, keepdims=True)
            xp.subtract(g._data, t, out=t)
            return _make(t)
        return g - out.exp() * g.sum(ctx.axis, keepdim=True)


def _softmax_in(input, dim, dtype, op):
    if dtype is not None:
        input = input.to(dtype)
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{op}: expected a floating-point input, got {input.dtype}")
    if dim is None:
        dim = 0 if input._data.ndim in (0, 1, 3) else 1  # PyTorch's legacy implicit choice
    return input, _wrap_dim(dim, input._data.ndim, op)


def softmax(input, dim=None, dtype=None):
    """``exp(x) / sum(exp(x))`` along ``dim``, computed stably."""
    if _amp.STATE.on:
        (input,) = _amp.full_precision(input)
    input, ax = _softmax_in(input, dim, dtype, "softmax")
    if input._data.ndim == 0:
        return input * 0 + 1
    return Softmax.apply(input, axis=ax)


def log_softmax(input, dim=None, dtype=None):
    """``log(softmax(x))`` along ``dim``, computed stably."""
    if _amp.STATE.on:
        (input,) = _amp.full_precision(input)
    input, ax = _softmax_in(input, dim, dtype, "log_softmax")
    if input._data.ndim == 0:
        return input * 0
    return LogSoftmax.apply(input, axis=ax)


class Normalize(Primitive):
    """``(x - mean) / sqrt(var + eps)`` over ``axes`` (biased variance), the core of layer,
    group and batch norm. Saves the normalized output and the inverse std."""

    @staticmethod
    def forward(ctx, x, axes, eps):
        xp = array_module(x)
        mu = x.mean(axis=axes, keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(axis=axes, keepdims=True)
        rstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype, copy=False)
        xc *= rstd
        ctx.axes, ctx.eps = axes, eps
        ctx.save_for_backward(xc, rstd, x)
        ctx.stats = (mu, var)
        return xc

    @staticmethod
    def backward(ctx, g):
        xhat, rstd, x = ctx.saved_tensors
        ax = ctx.axes
        if STATE.grad_enabled:  # recording this backward: rstd must depend on x, not be a constant
            xc = x - x.mean(ax, keepdim=True)
            rstd = ((xc * xc).mean(ax, keepdim=True) + ctx.eps).rsqrt()
        # d xhat: rstd * (g - mean(g) - xhat * mean(g * xhat))
        mg = g.mean(ax, keepdim=True)
        mgx = (g * xhat).mean(ax, keepdim=True)
        return rstd * (g - mg - xhat * mgx)


def normalize_stats(input, axes, eps):
    """Normalize over ``axes``; returns (normalized, batch mean, biased batch var) arrays."""
    out = Normalize.apply(input, axes=axes, eps=eps)
    node = out.grad_fn
    if node is None:  # not recorded: recompute the cheap stats from the output's inputs
        mu = input._data.mean(axis=axes, keepdims=True)
        var = input._data.var(axis=axes, keepdims=True)
        return out, mu, var
    return out, node.stats[0], node.stats[1]


class LayerNorm(Primitive):
    """``(x - mean) / sqrt(var + eps) * w + b`` over the last dims in one node."""

    @staticmethod
    def forward(ctx, x, w, b, axes, eps):
        xp = array_module(x)
        ctx.axes, ctx.eps = axes, eps
        ctx.cuda = False
        if xp is np:  # row blocks on threads
            out, xhat, rstd = rowwise.layer_norm(x, w, b, len(axes), eps)
            ctx.save_for_backward(x, w, b, xhat, rstd)
            return out
        if len(axes) == 1 and _cuda_rows(x, x.ndim - 1):
            if cc.usable(x, w, b):  # one launch; saves x with the row statistics only
                out, mean, rstd = cuda_rows.layer_norm(x, w, b, eps)
                ctx.cuda, ctx.mean, ctx.rstd = True, mean, rstd
                ctx.save_for_backward(x, w, b, None, None)  # no xhat/rstd: mean, rstd kept
                return out
        mu = x.mean(axis=axes, keepdims=True)
        xc = x - mu
        var = xp.square(xc).mean(axis=axes, keepdims=True)
        var += eps
        rstd = xp.sqrt(var, out=var)
        xp.reciprocal(rstd, out=rstd)
        xc *= rstd  # xhat
        ctx.axes, ctx.eps = axes, eps
        ctx.save_for_backward(x, w, b, xc, rstd.astype(x.dtype, copy=False))
        if w is None and b is None:
            return xc
        out = xc * w if w is not None else xc.copy()
        if b is not None:
            out += b
        return out

    @staticmethod
    def backward(ctx, g):
        x, w, b, xhat, rstd = ctx.saved_tensors
        ax = ctx.axes
        lead = tuple(range(g._data.ndim - len(ax)))
        need_x, need_w = ctx._next[0] is not None, ctx._next[1] is not None
        need_b = len(ctx._next) > 2 and ctx._next[2] is not None
        if not STATE.grad_enabled and ctx.cuda:
            ga = array_module(g._data).ascontiguousarray(g._data, dtype=x._data.dtype)
            grads = cuda_rows.layer_norm_grad(
                ga,
                x._data,
                None if w is None else w._data,
                ctx.mean,
                ctx.rstd,
                need_x,
                need_w,
                need_b,
            )
            return tuple(None if a is None else _make(a) for a in grads)
        if not STATE.grad_enabled:
            return _layer_norm_grads(
                g._data, w, xhat._data, rstd._data, ax, lead, (need_x, need_w, need_b)
            )
        # recording (create_graph): recompute the statistics from x with tensor ops
        xc = x - x.mean(ax, keepdim=True)
        rstd = ((xc * xc).mean(ax, keepdim=True) + ctx.eps).rsqrt()
        xhat = xc * rstd
        gxhat = g * w if w is not None else g
        gx = (
            rstd
            * (gxhat - gxhat.mean(ax, keepdim=True) - xhat * (gxhat * xhat).mean(ax, keepdim=True))
            if need_x
            else None
        )
        gw = (g * xhat).sum(lead) if need_w else None
        gb = g.sum(lead) if need_b else None
        return gx, gw, gb


def _layer_norm_grads(g, w, xhat, rstd, ax, lead, needs):
    """First-order LayerNorm gradients on arrays, in place where possible."""
    need_x, need_w, need_b = needs
    gw = gb = None
    if isinstance(g, np.ndarray) and g.dtype in (np.float32, np.float64):
        # column sums over all rows: einsum / a matrix-vector product beat a product array and
        # a reduction ((1024, 256): 117 -> 51 us and 29 -> 9 us)
        g2, xh2 = g.reshape(-1, g.shape[-1]), xhat.reshape(-1, xhat.shape[-1])
        if need_w and len(ax) == 1:
            gw = _make(np.einsum("ij,ij->j", g2, xh2))
        if need_b and len(ax) == 1:
            gb = _make(np.ones(g2.shape[0], g.dtype) @ g2)
    if need_w and gw is None:
        gw = _make((g * xhat).sum(axis=lead))
    if need_b and gb is None:
        gb = _make(g.sum(axis=lead))
    gx = None
    if need_x and isinstance(g, np.ndarray):
        gx = _make(
            rowwise.layer_norm_grad_x(g, None if w is None else w._data, xhat, rstd, len(ax))
        )
    elif need_x:
        gxhat = g * w._data if w is not None else g.copy()
        m1 = gxhat.mean(axis=ax, keepdims=True)
        m2 = (gxhat * xhat).mean(axis=ax, keepdims=True)
        gxhat -= m1
        gxhat -= xhat * m2
        gxhat *= rstd
        gx = _make(gxhat)
    return gx, gw, gb


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the last ``len(normalized_shape)`` dims, then scale and shift."""
    if _amp.STATE.on:
        input, weight, bias = _amp.full_precision(input, weight, bias)
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if tuple(input._data.shape[-k:]) != normalized_shape:
        raise RuntimeError(
            f"layer_norm: Given normalized_shape={list(normalized_shape)}, expected input with "
            f"shape [*, {', '.join(map(str, normalized_shape))}], but got input of size "
            f"{list(input.shape)}"
        )
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p._data.shape) != normalized_shape:
            raise RuntimeError(
                f"layer_norm: expected {name} of shape {list(normalized_shape)}, got "
                f"{list(p.shape)}"
            )
    if weight is not None and weight._data.dtype != input._data.dtype:
        weight = weight.to(input.dtype)
    if bias is not None and bias._data.dtype != input._data.dtype:
        bias = bias.to(input.dtype)
    axes = tuple(range(input._data.ndim - k, input._data.ndim))
    return LayerNorm.apply(input, weight, bias, axes=axes, eps=eps)
