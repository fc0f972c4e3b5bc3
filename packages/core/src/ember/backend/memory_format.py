"""Memory formats, PyTorch's names for how a tensor's elements lie in memory:
``contiguous_format`` (row-major), ``channels_last`` (4-D, stored as N, H, W, C),
``channels_last_3d`` (5-D, stored as N, D, H, W, C) and ``preserve_format`` (keep the layout).
Shapes never change; only strides do.

>>> import ember
>>> x = ember.zeros(2, 3, 4, 5).contiguous(memory_format=ember.channels_last)
>>> x.shape, x.stride(), x.is_contiguous(memory_format=ember.channels_last)
(ember.Size([2, 3, 4, 5]), (60, 1, 15, 3), True)
"""

from __future__ import annotations


class memory_format:
    """One memory format; compare by identity (``fmt is ember.channels_last``)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"ember.{self.name}"


contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
preserve_format = memory_format("preserve_format")

_RANK = {channels_last: 4, channels_last_3d: 5}


def storage_order(fmt, ndim: int, op: str) -> tuple | None:
    """The axes from outermost to innermost in memory for ``fmt`` (None: row-major)."""
    if fmt is None or fmt is contiguous_format:
        return None
    if fmt is preserve_format:
        raise RuntimeError(
            f"{op}: preserve memory format is unsupported by the contiguous operator"
        )
    rank = _RANK.get(fmt)
    if rank is None:
        raise TypeError(f"{op}: memory_format must be an ember memory format, got {fmt!r}")
    if ndim != rank:
        raise RuntimeError(
            f"{op}: required rank {rank} tensor to use {fmt.name} format, got rank {ndim}"
        )
    return (0,) + tuple(range(2, ndim)) + (1,)


def is_laid_out(arr, order) -> bool:
    """Whether ``arr`` is dense in the storage ``order`` (dims of size 1 may have any stride)."""
    expect = 1
    for ax in reversed(order):
        n = arr.shape[ax]
        if n != 1 and arr.strides[ax] != expect * arr.itemsize:
            return False
        expect *= n
    return True


def copy_in_order(arr, order):
    """A copy of ``arr`` (same shape and values) stored in the axis ``order``."""
    inverse = [0] * len(order)
    for i, ax in enumerate(order):
        inverse[ax] = i
    return arr.transpose(order).copy().transpose(inverse)


def batch_stride(shape, strides):
    """One stride (in the units of ``strides``) that walks every index of the batch dims
    ``shape`` in row-major order, 0 when they hold one element, or None when no single
    stride does (heads split from a (B, S, H, D) buffer: B's stride is not H's times H).
    Size-1 dims are skipped. A stack of matrices with one batch stride can go to a strided
    batched GEMM in one call (cuBLAS's on CUDA, OpenBLAS's on the CPU)."""
    stride, span = None, 1
    for n, s in zip(reversed(shape), reversed(strides)):
        if n == 1:
            continue
        if stride is None:
            stride, span = s, n
        elif s == stride * span:
            span *= n
        else:
            return None
    return 0 if stride is None else stride
