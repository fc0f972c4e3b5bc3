"""Resampling for ``nn.functional``: interpolate (nearest, nearest-exact, linear, bilinear,
trilinear, area) and pixel_shuffle. Interpolation is separable: one gather (nearest) or two
gathers and a lerp (linear) per spatial axis, with PyTorch's source-index rules."""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from .._tensor import _make
from ..backend.device import array_module

__all__ = ["interpolate", "pixel_shuffle", "pixel_unshuffle", "upsample"]

_LINEAR = {"linear": 3, "bilinear": 4, "trilinear": 5}


def _per_axis(value, n: int, name: str):
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise ValueError(
                f"interpolate: {name} shape must match input shape. Input is {n}D, {name} "
                f"is {len(value)}"
            )
        return tuple(value)
    return (value,) * n


def _sizes(input, size, scale_factor, recompute):
    n = input.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError(
            "either size or scale_factor should be defined"
            if size is None
            else "only one of size or scale_factor should be defined"
        )
    if size is not None:
        out = tuple(int(s) for s in _per_axis(size, n, "size"))
        return out, (None,) * n
    factors = tuple(float(f) for f in _per_axis(scale_factor, n, "scale_factor"))
    out = tuple(int(math.floor(s * f)) for s, f in zip(input.shape[2:], factors))
    scales = (None,) * n if recompute else tuple(1.0 / f for f in factors)
    return out, scales


def _nearest_index(xp, n_in, n_out, scale, exact):
    scale = n_in / n_out if scale is None else scale
    offset = 0.5 if exact else 0.0
    src = np.floor((np.arange(n_out) + offset) * scale).astype(np.int64)
    return _make(xp.asarray(np.minimum(src, n_in - 1)))


def _linear_weights(n_in, n_out, scale, align_corners):
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else dst * 0
    else:
        scale = n_in / n_out if scale is None else scale
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0


def _resize_axis(x, axis, n_out, scale, mode, align_corners):
    xp = array_module(x._data)
    n_in = x.shape[axis]
    if mode in ("nearest", "nearest-exact"):
        idx = _nearest_index(xp, n_in, n_out, scale, mode == "nearest-exact")
        return ops.index_select(x, axis, idx)
    i0, i1, lam = _linear_weights(n_in, n_out, scale, align_corners)
    shape = [1] * x.ndim
    shape[axis] = n_out
    lam = _make(xp.asarray(lam.reshape(shape).astype(x._data.dtype)))
    x0 = ops.index_select(x, axis, _make(xp.asarray(i0)))
    x1 = ops.index_select(x, axis, _make(xp.asarray(i1)))
    return x0 + (x1 - x0) * lam


def _check_mode(input, mode, align_corners, antialias):
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported by ember")
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError(
            "align_corners option can only be set with the interpolating modes: "
            "linear | bilinear | bicubic | trilinear"
        )
    if mode in _LINEAR and input.ndim != _LINEAR[mode]:
        raise NotImplementedError(
            f"Got {input.ndim}D input, but {mode} mode needs {_LINEAR[mode]}D input"
        )
    if mode not in ("nearest", "nearest-exact", "area", *_LINEAR):
        raise NotImplementedError(
            f"interpolate: mode {mode!r} is not supported (nearest, nearest-exact, linear, "
            "bilinear, trilinear, area)"
        )
    if input.ndim < 3:
        raise ValueError(
            f"interpolate: expected 3-D, 4-D or 5-D input (N, C, *spatial), got {list(input.shape)}"
        )


def interpolate(
    input,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners=None,
    recompute_scale_factor=None,
    antialias: bool = False,
):
    """Resize the spatial dims of (N, C, *spatial) input to ``size`` or by
    ``scale_factor``, as ``F.interpolate``."""
    _check_mode(input, mode, align_corners, antialias)
    out_sizes, scales = _sizes(input, size, scale_factor, recompute_scale_factor)
    if mode == "area":
        if input.ndim == 3:
            return ops.adaptive_avg_pool1d(input, out_sizes[0])
        if input.ndim == 4:
            return ops.adaptive_avg_pool2d(input, out_sizes)
        raise NotImplementedError("interpolate: area mode supports 3-D and 4-D input")
    x = input
    for k, (n_out, scale) in enumerate(zip(out_sizes, scales)):
        axis = 2 + k
        if n_out == x.shape[axis] and scale in (None, 1.0):
            continue
        x = _resize_axis(x, axis, n_out, scale, mode, bool(align_corners))
    return x


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated alias of ``interpolate``."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def pixel_shuffle(input, upscale_factor: int):
    """(*, C * r**2, H, W) -> (*, C, H * r, W * r)."""
    r = upscale_factor
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(
            f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the "
            f"square of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}"
        )
    n = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)  # (*, C, H, r, W, r)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor: int):
    """(*, C, H * r, W * r) -> (*, C * r**2, H, W)."""
    r = downscale_factor
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise RuntimeError(
            f"pixel_unshuffle expects height and width to be divisible by downscale_factor "
            f"{r}, got {h}x{w}"
        )
    n = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)  # (*, C, r, r, H/r, W/r)
    return x.reshape(*lead, c * r * r, h // r, w // r)
