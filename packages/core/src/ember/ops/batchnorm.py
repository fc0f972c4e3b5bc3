"""Batch norm in training mode as one fused primitive: batch statistics over every dim but the
channel dim (1), normalize, then scale and shift, with one backward giving all three
gradients. First-order backward runs on arrays; a recorded backward (``create_graph``) is
written in tensor ops, so batch norm still differentiates twice."""

from __future__ import annotations

import numpy as np

from .._tensor import _make
from ..autograd.function import Primitive
from ..autograd.grad_mode import STATE
from ..kernels.cpu import batchnorm as _k
from ..kernels.cuda import batchnorm as cuda_bn
from ..kernels.cuda import compile as cc


class BatchNormTrain(Primitive):
    """``(x - mean) / sqrt(var + eps) * w + b`` with per-channel batch statistics; the
    statistics (mean, biased var) are appended to ``stats`` for the running update."""

    @staticmethod
    def forward(ctx, x, w, b, eps, stats, running=None):
        if running is None:
            y, mean, var, rstd = _kernels(x).batch_norm_train(x, w, b, eps)
        else:  # CUDA: the running statistics update in the statistics' own launch
            y, mean, var, rstd = _kernels(x).batch_norm_train(x, w, b, eps, running=running)
        stats.extend((mean, var))
        if ctx._rec:
            ctx.eps, ctx.mean, ctx.rstd = eps, mean, rstd
            ctx.save_for_backward(x, w)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        if STATE.grad_enabled:  # recording this backward: rebuild it from x in tensor ops
            return _grad_graph(g, x, w, ctx.eps, ctx._next)
        need = [e is not None for e in ctx._next[:3]]
        ga = g._data
        if not isinstance(ga, np.ndarray):  # the CUDA kernels want g in x's layout and dtype
            ga = cc.as_layout(ga, x._data, x._data.dtype)
        gx, gw, gb = _kernels(ga).batch_norm_train_grad(
            ga, x._data, ctx.mean, ctx.rstd, None if w is None else w._data, *need
        )
        return tuple(None if a is None else _make(a) for a in (gx, gw, gb))


def _grad_graph(g, x, w, eps, nxt):
    ax = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    xc = x - x.mean(ax, keepdim=True)
    rstd = ((xc * xc).mean(ax, keepdim=True) + eps).rsqrt()
    xhat = xc * rstd
    gx = gw = gb = None
    if nxt[0] is not None:
        gh = g if w is None else g * w.reshape(shape)
        mg = gh.mean(ax, keepdim=True)
        mgx = (gh * xhat).mean(ax, keepdim=True)
        gx = rstd * (gh - mg - xhat * mgx)
    if nxt[1] is not None:
        gw = (g * xhat).sum(ax)
    if nxt[2] is not None:
        gb = g.sum(ax)
    return gx, gw, gb


def _kernels(arr):
    """The batch-norm kernel module for an array: NumPy's, or the CUDA one."""
    if isinstance(arr, np.ndarray):
        return _k

    return cuda_bn


def fused_available(x) -> bool:
    """Whether a fused kernel runs on ``x``: always on the CPU; on CUDA for float tensors
    stored C-contiguous or channels last with more than one value per channel."""
    a = x._data
    if isinstance(a, np.ndarray):
        return True

    return cc.usable_dense(a) and cuda_bn.batch_norm_usable(a)


def batch_norm_train(x, w, b, eps, running=None):
    """Returns (output, batch mean array (C,), biased batch var array (C,)). ``running``
    (CUDA only): (running_mean, running_var, momentum, n) arrays the kernel updates in place
    (see kernels/cuda/batchnorm.py)."""
    stats = []
    out = BatchNormTrain.apply(x, w, b, eps=eps, stats=stats, running=running)
    return out, stats[0], stats[1]
