"""Joining and splitting: cat/stack (copies) and split/chunk/unbind/narrow (views)."""

from __future__ import annotations

import math

import numpy as np

from .._tensor import _make, _wrap_dim
from ..autograd.function import Primitive
from ..autograd.grad_mode import STATE
from ..backend.device import array_module
from ._util import result_dtype
from .shape import unsqueeze


class Cat(Primitive):
    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        ctx.sizes = [a.shape[axis] for a in arrays]
        return array_module(arrays[0]).concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, g):
        out, start = [], 0
        idx = [slice(None)] * g._data.ndim
        for n in ctx.sizes:
            idx[ctx.axis] = slice(start, start + n)
            out.append(g[tuple(idx)])
            start += n
        return tuple(out)


def cat(tensors, dim=0):
    """Join tensors along an existing dimension."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat(): expected a non-empty list of Tensors")
    tensors = [t for t in tensors if not (t._data.ndim == 1 and t._data.size == 0)] or tensors[:1]
    ref = tensors[0]
    n = ref._data.ndim
    if n == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    ax = _wrap_dim(dim, n, "cat")
    for i, t in enumerate(tensors[1:], 1):
        s = t._data.shape
        if len(s) != n:
            raise RuntimeError(f"Tensors must have same number of dimensions: got {n} and {len(s)}")
        for k in range(n):
            if k != ax and s[k] != ref._data.shape[k]:
                raise RuntimeError(
                    f"Sizes of tensors must match except in dimension {ax}. Expected size "
                    f"{ref._data.shape[k]} but got size {s[k]} for tensor number {i} in the list."
                )
    rt = result_dtype(*tensors) if len({t._data.dtype for t in tensors}) > 1 else None
    if rt is not None:
        tensors = [t.to(rt) for t in tensors]
    return Cat.apply(*tensors, axis=ax)


concat = cat
concatenate = cat


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dimension."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    s0 = tensors[0]._data.shape
    for i, t in enumerate(tensors):
        if t._data.shape != s0:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(s0)} at entry 0 and "
                f"{list(t._data.shape)} at entry {i}"
            )
    d = _wrap_dim(dim, len(s0) + 1, "stack")
    return cat([unsqueeze(t, d) for t in tensors], d)


def hstack(tensors):
    """Stack horizontally (along dim 1, or 0 for 1-D)."""
    tensors = list(tensors)
    return cat(tensors, 0 if tensors[0]._data.ndim == 1 else 1)


def vstack(tensors):
    """Stack vertically (rows)."""
    return cat([t if t._data.ndim > 1 else unsqueeze(t, 0) for t in tensors], 0)


class Pieces(Primitive):
    """Consecutive pieces of one dimension as views, recorded as one node (its backward is one
    concatenation instead of one zero-filled full-size gradient per piece)."""

    view = True

    @staticmethod
    def forward(ctx, x, axis, sizes, squeeze):
        ctx.axis, ctx.squeeze, ctx.sizes = axis, squeeze, sizes
        lead = (slice(None),) * axis
        out, start = [], 0
        for n in sizes:
            key = lead + ((start,) if squeeze else (slice(start, start + n),))
            out.append(x[key + (Ellipsis,)])  # Ellipsis keeps a 0-d piece an array
            start += n
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        if not STATE.grad_enabled:
            whole = _whole([g._data for g in grads], ctx.axis, ctx.sizes, ctx.squeeze)
            if whole is not None:
                return _make(whole)
        if ctx.squeeze:
            return stack(grads, ctx.axis)
        return cat(grads, ctx.axis)


def _whole(arrays, axis, sizes, squeeze):
    """The one array the piece gradients already form, or None: when every piece is a view
    of one C-contiguous buffer exactly where ``Pieces.forward`` cut it from a tensor of that
    buffer's size, that buffer (reshaped) is the joined gradient and no copy is needed.
    (Fused attention writes dq, dk, dv so: nn/_attention_cpu.py.)"""
    base = arrays[0].base
    if type(base) is not np.ndarray or not base.flags.c_contiguous:
        return None
    shape = list(arrays[0].shape)
    shape[axis : axis + (0 if squeeze else 1)] = [sum(sizes)]
    if base.size != math.prod(shape) or any(a.base is not base for a in arrays):
        return None
    full = base.reshape(shape)
    lead, start = (slice(None),) * axis, 0
    for a, n in zip(arrays, sizes):
        piece = full[lead + ((start,) if squeeze else (slice(start, start + n),))]
        if (piece.ctypes.data, piece.strides, piece.shape, piece.dtype) != (
            a.ctypes.data,
            a.strides,
            a.shape,
            a.dtype,
        ):
            return None
        start += n
    return full


def narrow(input, dim, start, length):
    """A view of ``length`` entries of ``dim`` from ``start``."""
    d = _wrap_dim(dim, input._data.ndim, "narrow")
    size = input._data.shape[d]
    start = int(start)
    if start < 0:
        start += size
    if not (0 <= start and start + length <= size):
        raise RuntimeError(
            f"narrow: start ({start}) + length ({length}) exceeds dimension size ({size})."
        )
    idx = (slice(None),) * d + (slice(start, start + length),)
    return input[idx]


def split(input, split_size_or_sections, dim=0):
    """Views of consecutive pieces along ``dim`` (a size for each, or a list of sizes)."""
    d = _wrap_dim(dim, input._data.ndim, "split")
    size = input._data.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        sizes = [min(step, size - i) for i in range(0, size, step)] if step else [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != size:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's "
                f"size at dimension {d}), but got split_sizes={sizes}"
            )
    return Pieces.apply(input, axis=d, sizes=tuple(sizes), squeeze=False)


def chunk(input, chunks, dim=0):
    """Split into ``chunks`` nearly equal views (the last may be smaller)."""
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0")
    d = _wrap_dim(dim, input._data.ndim, "chunk")
    size = input._data.shape[d]
    step = max(-(-size // chunks), 1)
    return split(input, step, d)


def unbind(input, dim=0):
    """A tuple of the slices along ``dim`` (each a view without that dimension)."""
    d = _wrap_dim(dim, input._data.ndim, "unbind")
    return Pieces.apply(input, axis=d, sizes=(1,) * input._data.shape[d], squeeze=True)
