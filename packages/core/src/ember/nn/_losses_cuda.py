"""Cross entropy over class ids on CUDA in one node, without a device-to-host sync.

The CPU path checks the targets on the host before choosing its fused node; on CUDA that check
would stall the host until the GPU finishes the forward. Here ``ignore_index`` rows count zero
and are left out of the mean, as in PyTorch, and a class id out of range makes the loss NaN
(PyTorch stops with a device-side assert instead; ember reports it in the value, with no sync).
"""

from __future__ import annotations

from .._tensor import _make
from ..autograd import grad_mode as _grad_mode
from ..autograd.function import Primitive
from ..kernels.cuda import rowwise as cuda_rows
from ..ops.norm import _cuda_rows


class CrossEntropyIndicesCuda(Primitive):
    """``-sum_n w_n log_softmax(x)[n, t_n] / sum_n w_n`` (or the sum), ``w_n = t_n != ignore``."""

    @staticmethod
    def forward(ctx, x, t, mean, ignore_index):
        import cupy as xp

        if _cuda_rows(x, 1):
            logp = cuda_rows.softmax(x, log=True)
        else:
            logp = x - x.max(axis=1, keepdims=True)
            logp -= xp.log(xp.exp(logp).sum(axis=1, keepdims=True))
        c = x.shape[1]
        keep = t != ignore_index
        bad = keep & ((t < 0) | (t >= c))
        safe = xp.where(keep & ~bad, t, 0).astype(xp.int64)
        picked = xp.take_along_axis(logp, safe[:, None], 1)[:, 0]
        w = keep.astype(logp.dtype)
        den = w.sum() if mean else xp.asarray(1, logp.dtype)
        loss = -(picked * w).sum() / den
        loss = xp.where(bad.any(), xp.nan, loss).astype(x.dtype)
        if ctx._rec:
            ctx.logp, ctx.safe, ctx.w, ctx.den = logp, safe, w, den
            ctx.save_for_backward(x)
        return loss

    @staticmethod
    def backward(ctx, g):
        import cupy as xp

        (x,) = ctx.saved_tensors
        logp, safe, w, den = ctx.logp, ctx.safe, ctx.w, ctx.den
        rows = xp.arange(logp.shape[0])
        if not _grad_mode.STATE.grad_enabled:
            grad = xp.exp(logp)
            grad[rows, safe] -= 1
            grad *= (w * (g._data / den).astype(logp.dtype))[:, None]
            return _make(grad), None
        from .. import ops

        onehot = xp.zeros(logp.shape, logp.dtype)  # create_graph: a differentiable form
        onehot[rows, safe] = 1
        scale = _make((w / den).astype(logp.dtype)[:, None])
        return (ops.softmax(x, 1) - _make(onehot)) * scale * g, None
