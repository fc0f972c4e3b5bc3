"""Convolution: conv2d, its input gradient (which is also conv_transpose2d) and its weight
gradient. Each is the adjoint of another, so all three differentiate twice."""

from __future__ import annotations

import numpy as np

from ..amp import autocast_mode as _amp
from ..autograd.function import Primitive
from ..kernels.cpu import conv as _k
from ..kernels.cuda import conv as cuda_conv


def _kernels(arr):
    """NumPy arrays: the im2col + BLAS kernels. CuPy arrays: the cuDNN frontend graphs, which
    fall back to the same im2col kernels on cuBLAS where cuDNN is off or refuses a shape."""
    if isinstance(arr, np.ndarray):
        return _k

    return cuda_conv


class Conv2d(Primitive):
    @staticmethod
    def forward(ctx, x, w, cfg):
        ctx.cfg = cfg
        ctx.save_for_backward(x, w)
        keep = bool(ctx._rec and ctx.needs(1))  # the weight gradient will want the windows
        y, cols = _kernels(x).conv2d(x, w, *cfg, keep_cols=keep)
        ctx.cols = cols if keep else None
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        gx = gw = None
        if ctx._next[0] is not None:
            gx = ConvInputGrad.apply(g, w, x_shape=x._data.shape, cfg=ctx.cfg)
        if ctx._next[1] is not None:
            gw = ConvWeightGrad.apply(x, g, w_shape=w._data.shape, cfg=ctx.cfg, cols=ctx.cols)
        ctx.cols = None
        return gx, gw


class ConvInputGrad(Primitive):
    """``conv_transpose2d(g, w)``: the gradient of conv2d w.r.t. its input."""

    @staticmethod
    def forward(ctx, g, w, x_shape, cfg):
        ctx.cfg, ctx.x_shape = cfg, x_shape
        ctx.save_for_backward(g, w)
        return _kernels(g).conv2d_input_grad(g, w, x_shape, *cfg)

    @staticmethod
    def backward(ctx, gg):
        g, w = ctx.saved_tensors
        dg = dw = None
        if ctx._next[0] is not None:
            dg = Conv2d.apply(gg, w, cfg=ctx.cfg)
        if ctx._next[1] is not None:
            dw = ConvWeightGrad.apply(gg, g, w_shape=w._data.shape, cfg=ctx.cfg, cols=None)
        return dg, dw


class ConvWeightGrad(Primitive):
    """The gradient of conv2d w.r.t. its weight, from the input and the output gradient."""

    @staticmethod
    def forward(ctx, x, g, w_shape, cfg, cols):
        ctx.cfg, ctx.w_shape = cfg, w_shape
        ctx.save_for_backward(x, g)
        return _kernels(x).conv2d_weight_grad(x, g, w_shape, *cfg, cols=cols)

    @staticmethod
    def backward(ctx, ggw):
        x, g = ctx.saved_tensors
        dx = dg = None
        if ctx._next[0] is not None:
            dx = ConvInputGrad.apply(g, ggw, x_shape=x._data.shape, cfg=ctx.cfg)
        if ctx._next[1] is not None:
            dg = Conv2d.apply(x, ggw, cfg=ctx.cfg)
        return dx, dg


def _pair(v, name, op):
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(i) for i in v)
    if len(v) == 1:
        return (v[0], v[0])
    if len(v) != 2:
        raise ValueError(f"{op}: {name} must be an int or a pair, got {v}")
    return v


def _check(op, x, w, groups, transposed=False):
    if x._data.ndim != 4:
        raise RuntimeError(
            f"{op}: Expected 4D (batched) input to {op}, but got input of size: {list(x.shape)}"
        )
    if w._data.ndim != 4:
        raise RuntimeError(f"{op}: weight must be 4-D, got {list(w.shape)}")
    c = x._data.shape[1]
    want = w._data.shape[0] if transposed else w._data.shape[1] * groups
    if c != want:
        raise RuntimeError(
            f"{op}: Given groups={groups}, weight of size {list(w.shape)}, expected input"
            f"{list(x.shape)} to have {want} channels, but got {c} channels instead"
        )
    if x._data.dtype != w._data.dtype:
        raise RuntimeError(
            f"{op}: Input type ({x.dtype}) and weight type ({w.dtype}) should be the same"
        )


def _same_padding(w, dilation):
    """'same' padding per spatial dim as (symmetric part, extra on the high side): an odd
    total puts the extra element after the input, as PyTorch does."""
    pads, extra = [], []
    for k, d in zip(w._data.shape[2:], dilation):
        total = d * (k - 1)
        pads.append(total // 2)
        extra.append(total % 2)
    return tuple(pads), tuple(extra)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation over (N, C, H, W) input, as ``F.conv2d``."""
    if _amp.STATE.on:
        input, weight, bias = _amp.lower_precision(input, weight, bias)
    unbatched = input._data.ndim == 3
    if unbatched:
        input = input.unsqueeze(0)
    _check("conv2d", input, weight, groups)
    stride, dilation = _pair(stride, "stride", "conv2d"), _pair(dilation, "dilation", "conv2d")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            padding, extra = _same_padding(weight, dilation)
            if any(extra):
                from .shape import pad

                input = pad(input, (0, extra[1], 0, extra[0]))
        else:
            raise ValueError(
                f"Invalid padding string {padding!r}, should be one of 'valid', 'same'"
            )
    padding = _pair(padding, "padding", "conv2d")
    h, w = input._data.shape[2:]
    kh, kw = weight._data.shape[2:]
    if (
        h + 2 * padding[0] < dilation[0] * (kh - 1) + 1
        or w + 2 * padding[1] < dilation[1] * (kw - 1) + 1
    ):
        raise RuntimeError(
            f"conv2d: Calculated padded input size per channel: ({h + 2 * padding[0]} x "
            f"{w + 2 * padding[1]}). Kernel size: ({kh} x {kw}). Kernel size can't be greater "
            "than actual input size"
        )
    out = Conv2d.apply(input, weight, cfg=(stride, padding, dilation, groups))
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation over (N, C, L) input, as ``F.conv1d``."""
    unbatched = input._data.ndim == 2
    if unbatched:
        input = input.unsqueeze(0)
    if input._data.ndim != 3:
        raise RuntimeError(f"conv1d: Expected 3D (batched) input, got {list(input.shape)}")
    s = stride if isinstance(stride, int) else stride[0]
    d = dilation if isinstance(dilation, int) else dilation[0]
    p = padding if isinstance(padding, str | int) else padding[0]
    p2 = p if isinstance(p, str) else (0, p)
    out = conv2d(input.unsqueeze(2), weight.unsqueeze(2), bias, (1, s), p2, (1, d), groups)
    out = out.squeeze(2)
    return out.squeeze(0) if unbatched else out


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Transposed 2-D convolution (the adjoint of conv2d), as ``F.conv_transpose2d``."""
    _check("conv_transpose2d", input, weight, groups, transposed=True)
    stride, dilation = _pair(stride, "stride", "conv_transpose2d"), _pair(dilation, "dilation", "")
    padding, opad = _pair(padding, "padding", ""), _pair(output_padding, "output_padding", "")
    n, c, h, w = input._data.shape
    cin, cout_g, kh, kw = weight._data.shape
    oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + opad[0] + 1
    ow = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + opad[1] + 1
    x_shape = (n, cout_g * groups, oh, ow)
    out = ConvInputGrad.apply(
        input, weight, x_shape=x_shape, cfg=(stride, padding, dilation, groups)
    )
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out
