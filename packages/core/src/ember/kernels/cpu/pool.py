"""Pooling windows on NumPy or CuPy arrays: max (with argmax indices) and average, and their
adjoints. The array module comes from the array argument, as in ``conv``."""

from __future__ import annotations

import math

import numpy as np

from .conv import windows, xp_of


def pool_out(n, k, s, p, d, ceil_mode):
    """Output length along one axis, with PyTorch's rule for ceil_mode."""
    span = n + 2 * p - d * (k - 1) - 1
    o = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:  # the last window must start inside the input
        o -= 1
    return o


def _padded(x, k, s, p, d, out, fill):
    """Pad (N, C, H, W) by ``p`` and enough extra on the right for ceil_mode windows."""
    need = [(o - 1) * ss + dd * (kk - 1) + 1 for o, ss, dd, kk in zip(out, s, d, k)]
    extra = [max(nd - (n + 2 * pp), 0) for nd, n, pp in zip(need, x.shape[2:], p)]
    widths = ((0, 0), (0, 0), (p[0], p[0] + extra[0]), (p[1], p[1] + extra[1]))
    if any(any(w) for w in widths):
        return xp_of(x).pad(x, widths, constant_values=fill)
    return x


def _offsets(k, s, d, oh, ow):
    """Yield (flat index, row slice, column slice) for each kernel offset."""
    for i in range(k[0]):
        for j in range(k[1]):
            r, q = i * d[0], j * d[1]
            yield (
                i * k[1] + j,
                slice(r, r + s[0] * (oh - 1) + 1, s[0]),
                slice(q, q + s[1] * (ow - 1) + 1, s[1]),
            )


def max_pool(x, k, s, p, d, ceil_mode):
    """Max over windows: a running ``maximum`` over the kh*kw strided views of the input,
    one pass per kernel offset (NaN propagates, as in PyTorch). Returns (values, padded x)."""
    oh = pool_out(x.shape[2], k[0], s[0], p[0], d[0], ceil_mode)
    ow = pool_out(x.shape[3], k[1], s[1], p[1], d[1], ceil_mode)
    fill = -np.inf if x.dtype.kind in "fV" else np.iinfo(x.dtype).min
    xp = _padded(x, k, s, p, d, (oh, ow), fill)
    best = None
    for _, rows, cols in _offsets(k, s, d, oh, ow):
        v = xp[:, :, rows, cols]
        best = v.copy() if best is None else xp_of(x).maximum(best, v, out=best)
    return best, xp


def max_pool_indices(xp, best, k, s, d):
    """The flat in-window index of each window's maximum: the first position holding it, as
    PyTorch's kernel picks (a NaN maximum matches the first NaN)."""
    oh, ow = best.shape[2:]
    xm = xp_of(best)
    idx = xm.zeros(best.shape, np.int32)
    todo = xm.ones(best.shape, bool)
    nan = best != best
    has_nan = _any_nan(nan)
    for flat, rows, cols in _offsets(k, s, d, oh, ow):
        v = xp[:, :, rows, cols]
        hit = (v == best) | (nan & (v != v)) if has_nan else v == best
        hit &= todo
        idx[hit] = flat
        todo &= ~hit
    return idx


def _any_nan(nan) -> bool:
    """Whether to take the NaN branch: asked of NumPy; on CUDA always taken (asking would
    stall the host until the GPU catches up, which costs more than the extra passes)."""
    return bool(nan.any()) if isinstance(nan, np.ndarray) else True


def scatter_first_max(g, xp, best, x_shape, k, s, p, d):
    """Gradient of max_pool without an index array: each window's gradient goes to the first
    position that holds its maximum (fused: about five passes per kernel offset)."""
    n, c, h, w = x_shape
    oh, ow = g.shape[2:]
    overlap = s[0] < k[0] * d[0] or s[1] < k[1] * d[1]
    # windows that tile the input exactly write every element once: no zero fill needed
    tiled = s == k and d == (1, 1) and xp.shape[2:] == (oh * k[0], ow * k[1])
    xm = xp_of(g)
    dx = xm.empty(xp.shape, g.dtype) if tiled else xm.zeros(xp.shape, g.dtype)
    todo = xm.ones(best.shape, bool)
    nan = best != best
    has_nan = _any_nan(nan)
    last = k[0] * k[1] - 1
    for flat, rows, cols in _offsets(k, s, d, oh, ow):
        v = xp[:, :, rows, cols]
        hit = v == best
        if has_nan:
            hit |= nan & (v != v)
        hit &= todo
        if flat < last:
            todo ^= hit
        # multiplying by the bool mask is ~10x faster than np.where in NumPy 2
        if overlap:
            dx[:, :, rows, cols] += g * hit
        else:
            xm.multiply(g, hit, out=dx[:, :, rows, cols])
    return dx[:, :, p[0] : p[0] + h, p[1] : p[1] + w]


def gather_windows(gx, idx, k, s, p, d):
    """Adjoint of scatter_first_max: pick each window's argmax entry of ``gx``."""
    oh, ow = idx.shape[2:]
    xp = _padded(gx, k, s, p, d, (oh, ow), 0)
    win = windows(xp, k[0], k[1], oh, ow, s, d)
    flat = win.reshape(win.shape[:4] + (k[0] * k[1],))
    return xp_of(gx).take_along_axis(flat, idx[..., None], -1)[..., 0]


def avg_divisor(x_shape, k, s, p, ceil_mode, count_include_pad, dtype):
    """Per-output-position divisor of average pooling (PyTorch's counting rules)."""
    h, w = x_shape[2:]
    oh = pool_out(h, k[0], s[0], p[0], 1, ceil_mode)
    ow = pool_out(w, k[1], s[1], p[1], 1, ceil_mode)

    def counts(n, kk, ss, pp, o):
        starts = np.arange(o) * ss - pp
        ends = np.minimum(starts + kk, n + pp)
        if count_include_pad:
            return ends - starts
        return np.minimum(ends, n) - np.maximum(starts, 0)

    ch = counts(h, k[0], s[0], p[0], oh)
    cw = counts(w, k[1], s[1], p[1], ow)
    return (ch[:, None] * cw[None, :]).astype(dtype), (oh, ow)


def _on(div, like):
    """``div`` (a NumPy array from ``avg_divisor``, or a number) on ``like``'s device."""
    if isinstance(div, np.ndarray) and not isinstance(like, np.ndarray):
        return xp_of(like).asarray(div)
    return div


def avg_pool(x, k, s, p, ceil_mode, div):
    """Window sums divided by ``div`` (an (oh, ow) array or a number)."""
    oh, ow = div.shape if hasattr(div, "shape") and div.ndim == 2 else div[1]
    xp = _padded(x, k, s, p, (1, 1), (oh, ow), 0)
    win = windows(xp, k[0], k[1], oh, ow, s, (1, 1))
    return (win.sum(axis=(4, 5)) / _on(div, x)).astype(x.dtype, copy=False)


def avg_pool_grad(g, x_shape, k, s, p, div):
    """Adjoint of avg_pool: spread each output gradient evenly over its window."""
    n, c, h, w = x_shape
    oh, ow = g.shape[2:]
    gd = (g / _on(div, g)).astype(g.dtype, copy=False)
    hp = max(h + 2 * p[0], (oh - 1) * s[0] + k[0])
    wp = max(w + 2 * p[1], (ow - 1) * s[1] + k[1])
    dx = xp_of(g).zeros((n, c, hp, wp), g.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            dx[:, :, i : i + s[0] * (oh - 1) + 1 : s[0], j : j + s[1] * (ow - 1) + 1 : s[1]] += gd
    return dx[:, :, p[0] : p[0] + h, p[1] : p[1] + w]
