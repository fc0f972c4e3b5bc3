"""Convolution entry points of ``nn.functional``: ember's conv primitives plus what they leave
to the caller, padding='same' with an even kernel (asymmetric padding) and conv_transpose1d."""

from __future__ import annotations

from ..ops import conv as _ops
from ..ops.shape import pad as _pad

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]


def _tuple(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


def same_padding(kernel, dilation):
    """Per spatial dim, the (before, after) zero padding that keeps the size at stride 1;
    the odd unit goes after, as PyTorch."""
    out = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        out.append((total // 2, total - total // 2))
    return out


def _pad_same(input, weight, stride, dilation, n, op):
    """Input padded for 'same' (asymmetric case) and the conv padding to use."""
    if any(s != 1 for s in _tuple(stride, n)):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
    pairs = same_padding(tuple(weight.shape[2:]), _tuple(dilation, n))
    if all(lo == hi for lo, hi in pairs):
        return input, tuple(lo for lo, _ in pairs)
    flat = [v for lo_hi in reversed(pairs) for v in lo_hi]  # F.pad order: last dim first
    return _pad(input, flat), (0,) * n


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation over (N, C, H, W) or (C, H, W) input; ``padding`` may be an
    int, a pair, 'valid' or 'same'."""
    if isinstance(padding, str) and padding == "same":
        input, padding = _pad_same(input, weight, stride, dilation, 2, "conv2d")
    return _ops.conv2d(input, weight, bias, stride, padding, dilation, groups)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation over (N, C, L) or (C, L) input; ``padding`` may be an int,
    'valid' or 'same'."""
    if isinstance(padding, str) and padding == "same":
        input, padding = _pad_same(input, weight, stride, dilation, 1, "conv1d")
    return _ops.conv1d(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Transposed 2-D convolution (the gradient of conv2d w.r.t. its input)."""
    unbatched = input.ndim == 3
    if unbatched:
        input = input.unsqueeze(0)
    out = _ops.conv_transpose2d(
        input, weight, bias, stride, padding, output_padding, groups, dilation
    )
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Transposed 1-D convolution over (N, C, L) or (C, L) input."""

    def one(v):
        return v if isinstance(v, int) else v[0]

    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    out = _ops.conv_transpose2d(
        x.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        (1, one(stride)),
        (0, one(padding)),
        (0, one(output_padding)),
        groups,
        (1, one(dilation)),
    ).squeeze(2)
    return out.squeeze(0) if unbatched else out
