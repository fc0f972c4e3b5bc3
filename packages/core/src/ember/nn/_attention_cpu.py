"""Scaled dot-product attention on NumPy arrays in one node, as PyTorch's CPU kernel is one op.

Against the composite (scale, matmul, softmax, matmul) it saves whole passes: the scale rides
in the products' ``alpha``; the output is laid out like the query (heads split from a
(B, L, H, D) buffer give a (B, L, H, D) output, so ``y.transpose(1, 2).reshape(B, L, H * D)``
is a view, as in PyTorch); and the backward writes dq, dk, dv laid out like q, k, v, into one
buffer when they are pieces of one (a fused qkv projection), which ``split``'s backward then
takes whole instead of concatenating. The first-order backward runs on arrays; with
``create_graph`` it is recorded in tensor ops, so double backward works."""

from __future__ import annotations

import numpy as np

from .. import ops
from .._tensor import _make
from ..autograd.function import Primitive
from ..autograd.grad_mode import STATE
from ..kernels.cpu import gemm_batch, rowwise
from ..ops.linalg import _blas_ready, _operands
from ..ops.norm import Softmax


def usable(q, k, v) -> bool:
    """Whether the fused CPU path takes these arrays: float32/float64 NumPy arrays of one
    dtype with at least one batch dim, equal batch shapes (no broadcasting), not traced."""
    if STATE.tracing or not all(type(x) is np.ndarray for x in (q, k, v)):
        return False
    if q.dtype not in (np.float32, np.float64) or not q.dtype == k.dtype == v.dtype:
        return False
    if not (q.ndim >= 3 and q.ndim == k.ndim == v.ndim) or not (q.size and k.size and v.size):
        return False
    return q.shape[:-2] == k.shape[:-2] == v.shape[:-2]


def _mm(a, b, out=None, alpha=1.0):
    """``alpha * a @ b`` into ``out`` (allocated when None): one batched GEMM where
    kernels/cpu/gemm_batch.py can describe it, else NumPy's matmul. Operands are prepared as
    ``matmul`` prepares them (ops/linalg.py ``_operands``): a broadcast (stride-0) operand is
    copied, and so is a transposed right operand under a short inner dimension."""
    a, b = _operands(a, b)
    got = gemm_batch.matmul(a, b, out=out, alpha=alpha)
    if got is not None:
        return got
    got = np.matmul(a, b, out=out)
    if alpha != 1.0:
        got *= got.dtype.type(alpha)
    return got


def _like(x, shape=None):
    """An empty array laid out like ``x`` (its axis order by stride, as ``empty_like``)."""
    if shape is None or tuple(shape) == x.shape:
        return np.empty_like(x)
    order = sorted(range(x.ndim), key=lambda i: -x.strides[i])
    buf = np.empty([shape[i] for i in order], x.dtype)
    return buf.transpose(np.argsort(order))


def _grad_buffers(arrays, needed):
    """Empty gradient arrays laid out like ``arrays`` (None where not ``needed``); when all
    are needed and tile one C-contiguous buffer, views into one new buffer at the same
    offsets (``Pieces.backward`` in ops/join.py then returns that buffer whole)."""
    base = arrays[0].base
    joint = (
        all(needed)
        and base is not None
        and type(base) is np.ndarray
        and base.flags.c_contiguous
        and all(x.base is base for x in arrays)
        and base.size == sum(x.size for x in arrays)
        and _disjoint(arrays)  # with the sizes: the arrays tile the buffer exactly
    )
    if not joint:
        return [_like(x) if n else None for x, n in zip(arrays, needed)]
    buf = np.empty_like(base)
    start = base.ctypes.data
    return [
        np.ndarray(x.shape, x.dtype, buffer=buf, offset=x.ctypes.data - start, strides=x.strides)
        for x in arrays
    ]


def _disjoint(arrays) -> bool:
    """Whether no two arrays share memory (too hard to decide counts as shared)."""
    for i, x in enumerate(arrays):
        for y in arrays[i + 1 :]:
            try:
                if np.shares_memory(x, y, max_work=10_000):
                    return False
            except np.exceptions.TooHardError:
                return False
    return True


class CpuAttention(Primitive):
    """``softmax(q @ k^T * scale + bias) @ v`` over (..., L, E) queries and (..., S, E) keys;
    ``bias`` is an additive mask array (0 / -inf) or None and carries no gradient."""

    @staticmethod
    def forward(ctx, q, k, v, bias, scale):
        scores = _mm(q, k.swapaxes(-1, -2), alpha=scale)  # (..., L, S)
        p = rowwise.softmax_last(scores, bias)
        out = _mm(p, v, out=_like(q, q.shape[:-1] + v.shape[-1:]))
        ctx.scale, ctx.bias = scale, bias
        ctx.save_for_backward(q, k, v, p)
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v, p = ctx.saved_tensors
        if STATE.grad_enabled:  # create_graph: record the closed form from q, k, v
            return (*recorded_grads(q, k, v, g, ctx.scale, ctx.bias), None, None)
        need = [e is not None for e in ctx._next[:3]]
        qa, ka, va, pa, ga = q._data, k._data, v._data, p._data, g._data
        if not _blas_ready(ga):  # a broadcast gradient (``y.sum().backward()``): copy it once
            ga = np.ascontiguousarray(ga)
        dq, dk, dv = _grad_buffers((qa, ka, va), need)
        if need[2]:
            _mm(pa.swapaxes(-1, -2), ga, out=dv)
        if need[0] or need[1]:
            ds = rowwise.softmax_last_grad(_mm(ga, va.swapaxes(-1, -2)), pa)
            if need[0]:
                _mm(ds, ka, out=dq, alpha=ctx.scale)
            if need[1]:
                _mm(ds.swapaxes(-1, -2), qa, out=dk, alpha=ctx.scale)
        return tuple(None if x is None else _make(x) for x in (dq, dk, dv)) + (None, None)


def recorded_grads(q, k, v, g, scale, bias):
    """dq, dk, dv of ``softmax(q k^T * scale + bias) v`` in (differentiable) tensor ops."""
    scores = ops.matmul(q * scale, k.transpose(-2, -1))
    if bias is not None:
        scores = scores + _make(bias)
    p = Softmax.apply(scores, axis=scores.ndim - 1)
    dv = ops.matmul(p.transpose(-2, -1), g)
    dp = ops.matmul(g, v.transpose(-2, -1))
    ds = p * (dp - (dp * p).sum(-1, keepdim=True))
    return ops.matmul(ds, k) * scale, ops.matmul(ds.transpose(-2, -1), q) * scale, dv
