"""Pooling: max_pool2d, avg_pool2d, adaptive_avg_pool2d and their 1-D forms. Each forward and
its adjoint are a pair of primitives, so gradients of gradients work."""

from __future__ import annotations

import numpy as np

from ..autograd.function import Primitive
from ..backend.device import array_module
from ..kernels.cpu import pool as _k
from ..kernels.cpu import pool2x2 as _k2
from ..kernels.cuda import pool as cuda_pool
from .conv import _pair


def _cuda_pool(arr):
    """kernels/cuda/pool.py when it takes ``arr`` (a dense 4-D CUDA float array), else None:
    the window kernels in kernels/cpu/pool.py take their array module from their arrays, so
    they run on CuPy too, as about 60 launches where this is one."""
    if isinstance(arr, np.ndarray):
        return None

    return cuda_pool if cuda_pool.applies(arr) else None


class MaxPool2d(Primitive):
    @staticmethod
    def forward(ctx, x, cfg):
        idx = None
        cuda = _cuda_pool(x)
        if cuda is not None:  # one launch; the argmax comes along
            k, s, p, d, ceil_mode = cfg
            out_hw = tuple(
                _k.pool_out(x.shape[2 + i], k[i], s[i], p[i], d[i], ceil_mode) for i in (0, 1)
            )
            if min(out_hw) > 0:
                vals, idx = cuda.max_pool(x, k, s, p, d, out_hw)
                xp = None  # only the composite double backward reads the padded input
        elif _k2.applies(x, *cfg):  # 2x2 tiles: the argmax comes with the maxima
            vals, idx = _k2.max_pool_2x2(x)
            xp = x
        if idx is None:
            vals, xp = _k.max_pool(x, *cfg)
        if ctx._rec:
            ctx.cfg, ctx.x_shape, ctx.found = cfg, x.shape, (xp, vals, idx)
        return vals

    @staticmethod
    def backward(ctx, g):
        return MaxPoolScatter.apply(g, found=ctx.found, x_shape=ctx.x_shape, cfg=ctx.cfg)


class MaxPoolScatter(Primitive):
    """Route each window's gradient to its (first) maximum."""

    @staticmethod
    def forward(ctx, g, found, x_shape, cfg):
        ctx.found, ctx.cfg = found, cfg
        xp, vals, idx = found
        if idx is not None and not isinstance(idx, np.ndarray):
            return cuda_pool.max_pool_grad(g, idx, x_shape, *cfg[:4])
        if idx is not None:
            return _k2.scatter_2x2(g, idx)
        return _k.scatter_first_max(g, xp, vals, x_shape, *cfg[:4])

    @staticmethod
    def backward(ctx, gg):
        # double backward needs the argmax positions; find them now unless the forward did
        (k, s, _, d, _), (xp, vals, idx) = ctx.cfg, ctx.found
        if idx is None:
            idx = _k.max_pool_indices(xp, vals, k, s, d)
        return MaxPoolGather.apply(
            gg, idx=idx, cfg=ctx.cfg, found=ctx.found, x_shape=gg._data.shape
        )


class MaxPoolGather(Primitive):
    @staticmethod
    def forward(ctx, gx, idx, cfg, found, x_shape):
        ctx.found, ctx.cfg, ctx.x_shape = found, cfg, x_shape
        return _k.gather_windows(gx, idx, *cfg[:4])

    @staticmethod
    def backward(ctx, g):
        return MaxPoolScatter.apply(g, found=ctx.found, x_shape=ctx.x_shape, cfg=ctx.cfg)


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """Max over sliding windows of (N, C, H, W) input, as ``F.max_pool2d``."""
    unbatched = input._data.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    if x._data.ndim != 4:
        raise RuntimeError(f"max_pool2d: expected 3D or 4D input, got {list(input.shape)}")
    k = _pair(kernel_size, "kernel_size", "max_pool2d")
    s = _pair(stride if stride is not None and stride != [] else k, "stride", "max_pool2d")
    p, d = _pair(padding, "padding", "max_pool2d"), _pair(dilation, "dilation", "max_pool2d")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise RuntimeError(
            f"max_pool2d: pad should be at most half of effective kernel size, but got "
            f"pad={p}, kernel_size={k}"
        )
    out = MaxPool2d.apply(x, cfg=(k, s, p, d, ceil_mode))
    if return_indices:
        idx = _flat_indices(out.grad_fn, x, (k, s, p, d, ceil_mode), out)
        out, idx = (out.squeeze(0), idx.squeeze(0)) if unbatched else (out, idx)
        return out, idx
    return out.squeeze(0) if unbatched else out


def _flat_indices(node, x, cfg, out):
    # indices into each H*W plane, as PyTorch returns them
    from .._tensor import _make

    vals, padded = _k.max_pool(x._data, *cfg)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), _ = cfg
    idx = _k.max_pool_indices(padded, vals, (kh, kw), (sh, sw), (dh, dw))
    oh, ow = idx.shape[2:]
    am = array_module(idx)  # NumPy or CuPy, like the input
    r = am.arange(oh)[:, None] * sh - ph + (idx // kw) * dh
    c = am.arange(ow)[None, :] * sw - pw + (idx % kw) * dw
    return _make((r * x._data.shape[3] + c).astype(np.int64))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max over sliding windows of (N, C, L) input."""
    one = lambda v: v if isinstance(v, int) else v[0]  # noqa: E731
    out = max_pool2d(
        input.unsqueeze(-2),
        (1, one(kernel_size)),
        (1, one(stride if stride is not None else kernel_size)),
        (0, one(padding)),
        (1, one(dilation)),
        ceil_mode,
    )
    return out.squeeze(-2)


class AvgPool2d(Primitive):
    @staticmethod
    def forward(ctx, x, cfg, div):
        ctx.cfg, ctx.div, ctx.x_shape = cfg, div, x.shape
        k, s, p, ceil_mode = cfg
        return _k.avg_pool(x, k, s, p, ceil_mode, div)

    @staticmethod
    def backward(ctx, g):
        return AvgPoolGrad.apply(g, cfg=ctx.cfg, div=ctx.div, x_shape=ctx.x_shape)


class AvgPoolGrad(Primitive):
    @staticmethod
    def forward(ctx, g, cfg, div, x_shape):
        ctx.cfg, ctx.div = cfg, div
        k, s, p, _ = cfg
        return _k.avg_pool_grad(g, x_shape, k, s, p, div)

    @staticmethod
    def backward(ctx, gg):
        return AvgPool2d.apply(gg, cfg=ctx.cfg, div=ctx.div)


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """Mean over sliding windows of (N, C, H, W) input, as ``F.avg_pool2d``."""
    unbatched = input._data.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    if x._data.ndim != 4:
        raise RuntimeError(f"avg_pool2d: expected 3D or 4D input, got {list(input.shape)}")
    k = _pair(kernel_size, "kernel_size", "avg_pool2d")
    s = _pair(stride if stride is not None and stride != [] else k, "stride", "avg_pool2d")
    p = _pair(padding, "padding", "avg_pool2d")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise RuntimeError(f"avg_pool2d: pad should be at most half of kernel size, got {p}")
    div, _ = _k.avg_divisor(x._data.shape, k, s, p, ceil_mode, count_include_pad, x._data.dtype)
    if divisor_override:
        div = div * 0 + divisor_override
    out = AvgPool2d.apply(x, cfg=(k, s, p, ceil_mode), div=div)
    return out.squeeze(0) if unbatched else out


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over sliding windows of (N, C, L) input."""
    one = lambda v: v if isinstance(v, int) else v[0]  # noqa: E731
    out = avg_pool2d(
        input.unsqueeze(-2),
        (1, one(kernel_size)),
        (1, one(stride if stride is not None else kernel_size)),
        (0, one(padding)),
        ceil_mode,
        count_include_pad,
    )
    return out.squeeze(-2)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed (oh, ow) output, with PyTorch's bin edges."""
    from .join import stack

    oh, ow = (
        _pair(output_size, "output_size", "adaptive_avg_pool2d")
        if not (isinstance(output_size, tuple | list) and None in output_size)
        else (output_size[0] or input.shape[-2], output_size[1] or input.shape[-1])
    )
    h, w = input._data.shape[-2:]
    if h % oh == 0 and w % ow == 0:
        if (oh, ow) == (1, 1):
            return input.mean((-2, -1), keepdim=True)
        return avg_pool2d(input, (h // oh, w // ow))
    rows = []
    for i in range(oh):
        r0, r1 = (i * h) // oh, -((-(i + 1) * h) // oh)
        cols = []
        for j in range(ow):
            c0, c1 = (j * w) // ow, -((-(j + 1) * w) // ow)
            cols.append(input[..., r0:r1, c0:c1].mean((-2, -1)))
        rows.append(stack(cols, -1))
    return stack(rows, -2)


def adaptive_avg_pool1d(input, output_size):
    """Average pooling of (N, C, L) input to a fixed length."""
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, output_size)).squeeze(-2)
