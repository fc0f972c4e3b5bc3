"""2-D convolution by im2col and one batched GEMM per call, on NumPy or CuPy arrays.

Shapes: x (N, C, H, W); w (O, C/groups, kh, kw); y (N, O, oh, ow). ``cols`` is the
(groups, C/groups*kh*kw, N*oh*ow) matrix of input windows; the three functions below are the
forward and the two gradients, and each is the adjoint of another, which is what lets the
autograd ops differentiate them twice.

Every function takes its array module from its array argument (``array_module``), so the same
code runs on CuPy arrays (cuBLAS GEMMs), the CUDA fallback until the cuDNN frontend lands.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ...backend.device import array_module


def xp_of(a):
    """``numpy`` for a NumPy array, else the array's module (CuPy), read without a fallback."""
    return np if isinstance(a, np.ndarray) else array_module(a)


def out_size(n: int, k: int, s: int, p: int, d: int) -> int:
    """Output length of a convolution along one axis."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _pad(x, ph, pw):
    if not (ph or pw):
        return x
    return xp_of(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def windows(xp, kh, kw, oh, ow, stride, dilation):
    """A (N, C, oh, ow, kh, kw) strided view of the windows of a padded input."""
    n, c = xp.shape[:2]
    s0, s1, s2, s3 = xp.strides
    (sh, sw), (dh, dw) = stride, dilation
    shape, strides = (n, c, oh, ow, kh, kw), (s0, s1, s2 * sh, s3 * sw, s2 * dh, s3 * dw)
    if isinstance(xp, np.ndarray):
        return as_strided(xp, shape, strides, writeable=False)
    return xp_of(xp).lib.stride_tricks.as_strided(xp, shape, strides)


def im2col(x, kh, kw, stride, padding, dilation, groups):
    """The (groups, C/groups*kh*kw, N*oh*ow) window matrix and the output size.

    Rows are (channel, ki, kj), columns (n, oi, oj): the input's contiguous width axis stays
    innermost, so the copy reads long runs instead of kw-long ones.
    """
    n, c, h, w = x.shape
    oh = out_size(h, kh, stride[0], padding[0], dilation[0])
    ow = out_size(w, kw, stride[1], padding[1], dilation[1])
    win = windows(_pad(x, *padding), kh, kw, oh, ow, stride, dilation)  # (N, C, oh, ow, kh, kw)
    cg = c // groups
    win = win.reshape(n, groups, cg, oh, ow, kh, kw).transpose(1, 2, 5, 6, 0, 3, 4)
    return win.reshape(groups, cg * kh * kw, n * oh * ow), (oh, ow)


def _bmm(a, b):
    """Stacked 2-D products, one BLAS call per group. NumPy's stacked matmul falls back to a
    slow loop when an operand is a transposed view; the 2-D ``@`` hands BLAS the transpose."""
    if a.shape[0] == 1:
        return (a[0] @ b[0])[None]
    return xp_of(a).stack([x @ y for x, y in zip(a, b)])


def _gy(g, groups):
    """Output gradient (N, O, oh, ow) as the (groups, O/groups, N*oh*ow) matrix."""
    n, o, oh, ow = g.shape
    og = o // groups
    return g.reshape(n, groups, og, oh * ow).transpose(1, 2, 0, 3).reshape(groups, og, -1)


# Below this many rows of ``cols`` (C*kh*kw, e.g. 27 for an RGB 3x3 conv) the GEMM is
# memory-bound: one product per sample writes (N, O, oh*ow) directly, saving the output
# transpose and the output-gradient transpose, which then cost more than the products.
_SMALL_K = 32


def _per_sample(cols, n):
    """``cols`` (1, K, N*oh*ow) as N strided (K, oh*ow) matrices that BLAS takes as they are."""
    k = cols.shape[1]
    return cols[0].reshape(k, n, -1).transpose(1, 0, 2)


def _pointwise(x, w_shape, stride, padding, groups) -> bool:
    """A 1x1, stride-1, unpadded convolution on NumPy maps of at least 128 positions: a
    product per sample on the input as it lies, (O, C) @ (C, H*W), with no window copy and no
    output transpose (ResNet-50's (8, 256, 56, 56) -> 64: 7.2 -> 3.8 ms). Below 128 positions
    the per-sample products are too thin and one large product wins."""
    return (
        type(x) is np.ndarray
        and tuple(w_shape[2:]) == (1, 1)
        and tuple(stride) == (1, 1)
        and tuple(padding) == (0, 0)
        and groups == 1
        and x.shape[2] * x.shape[3] >= 128
    )


def _large_maps(x, w_shape, stride, padding, dilation, groups, positions=512) -> bool:
    """Whether each sample's output has at least ``positions`` positions (and K > _SMALL_K):
    then one window matrix and one product per sample beat one of each for the batch, whose
    window matrix no cache holds and whose output needs a transpose (ResNet's (8, 64, 56, 56)
    3x3: 22.4 -> 12.6 ms; at 14x14 and below the batch-wide product is faster)."""
    if (
        type(x) is not np.ndarray
        or x.dtype not in (np.float32, np.float64)
        or groups != 1
        or w_shape[1] * w_shape[2] * w_shape[3] <= _SMALL_K
    ):
        return False
    oh = out_size(x.shape[2], w_shape[2], stride[0], padding[0], dilation[0])
    ow = out_size(x.shape[3], w_shape[3], stride[1], padding[1], dilation[1])
    return oh * ow >= positions


def _conv_per_sample(x, w, stride, padding, dilation):
    """One window matrix and one product per sample, written straight into the output."""
    n, o = x.shape[0], w.shape[0]
    w2 = w.reshape(o, -1)
    y = None
    for i in range(n):
        ci, (oh, ow) = im2col(x[i : i + 1], w.shape[2], w.shape[3], stride, padding, dilation, 1)
        if y is None:
            y = np.empty((n, o, oh * ow), x.dtype)
        np.matmul(w2, ci[0], out=y[i])
    return y.reshape(n, o, oh, ow)


# Training keeps the batch-wide window matrix for the weight gradient (a per-sample weight
# gradient recomputes it: 28x28 maps, forward + weight gradient 17.9 ms batch-wide vs 20.0
# per sample); only maps this large gain enough from the per-sample forward to pay for that
# (56x56: 32.9 -> 25.7 ms).
_TRAIN_POSITIONS = 2048


def conv2d(x, w, stride, padding, dilation, groups, keep_cols=True):
    """Forward convolution; returns (y, cols) so the weight gradient can reuse ``cols``
    (None where no window matrix was made, or ``keep_cols`` is false on the per-sample path)."""
    o, cg, kh, kw = w.shape
    n = x.shape[0]
    if n == 0:  # an empty batch: nothing to multiply (the reshapes below need a sample)
        oh = out_size(x.shape[2], kh, stride[0], padding[0], dilation[0])
        ow = out_size(x.shape[3], kw, stride[1], padding[1], dilation[1])
        return xp_of(x).zeros((0, o, oh, ow), x.dtype), None
    if _pointwise(x, w.shape, stride, padding, groups):
        y = np.matmul(w.reshape(o, cg), x.reshape(n, cg, -1))  # (N, O, H*W)
        return y.astype(x.dtype, copy=False).reshape(n, o, *x.shape[2:]), None
    positions = _TRAIN_POSITIONS if keep_cols else 512
    if _large_maps(x, w.shape, stride, padding, dilation, groups, positions):
        return _conv_per_sample(x, w, stride, padding, dilation), None
    cols, (oh, ow) = im2col(x, kh, kw, stride, padding, dilation, groups)
    if groups == 1 and cg * kh * kw <= _SMALL_K:
        y = xp_of(x).matmul(w.reshape(o, -1), _per_sample(cols, n))  # (N, O, oh*ow)
        return y.astype(x.dtype, copy=False).reshape(n, o, oh, ow), cols
    wm = w.reshape(groups, o // groups, cg * kh * kw)
    y = _bmm(wm, cols)  # (G, O/G, N*oh*ow)
    y = y.reshape(groups, o // groups, n, oh, ow).transpose(2, 0, 1, 3, 4)
    # NumPy's bfloat16 matmul returns float32; ascontiguousarray copies anyway
    return xp_of(x).ascontiguousarray(y, dtype=x.dtype).reshape(n, o, oh, ow), cols


def conv2d_input_grad(g, w, x_shape, stride, padding, dilation, groups):
    """Gradient w.r.t. the input (also conv_transpose2d's forward)."""
    if g.shape[0] == 0:
        return xp_of(g).zeros(x_shape, g.dtype)
    if _pointwise(g, w.shape, stride, padding, groups):
        o, c = w.shape[:2]
        gx = np.matmul(w.reshape(o, c).T, g.reshape(g.shape[0], o, -1))  # (N, C, H*W)
        return gx.astype(g.dtype, copy=False).reshape(x_shape)
    if (
        isinstance(g, np.ndarray)
        and tuple(stride) == (1, 1)
        and tuple(dilation) == (1, 1)
        and groups == 1
        and g.dtype in (np.float32, np.float64)
        and _grid_pays(w.shape[0], x_shape, padding, g.shape)
    ):
        return _input_grad_on_grid(g, w, x_shape, padding)
    return _input_grad_col2im(g, w, x_shape, stride, padding, dilation, groups)


def _input_grad_col2im(g, w, x_shape, stride, padding, dilation, groups):
    """The general input gradient: one product, then each window offset scattered back."""
    n, c, h, wd = x_shape
    o, cg, kh, kw = w.shape
    oh, ow = g.shape[2:]
    wm = w.reshape(groups, o // groups, cg * kh * kw)
    dcols = _bmm(wm.transpose(0, 2, 1), _gy(g, groups))  # (G, cg*kh*kw, N*oh*ow)
    dcols = dcols.astype(g.dtype, copy=False).reshape(groups, cg, kh, kw, n, oh, ow)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    dx = xp_of(g).zeros((n, c, h + 2 * ph, wd + 2 * pw), g.dtype)
    for i in range(kh):
        for j in range(kw):
            r, q = i * dh, j * dw
            piece = dcols[:, :, i, j].transpose(2, 0, 1, 3, 4).reshape(n, c, oh, ow)
            dx[:, :, r : r + sh * (oh - 1) + 1 : sh, q : q + sw * (ow - 1) + 1 : sw] += piece
    return dx[:, :, ph : ph + h, pw : pw + wd]


def _grid_pays(out_channels, x_shape, padding, g_shape) -> bool:
    """Whether the padded-grid input gradient beats col2im: its product grows by the grid's
    area over the output's, which costs in proportion to the output channels, while the
    scatter it saves does not. Fitted on nine layer shapes (8 to 32 images, 64 to 512
    channels, 1x1 to 32x32 maps), this rule picked the faster path in each."""
    grid = (x_shape[2] + 2 * padding[0]) * (x_shape[3] + 2 * padding[1])
    growth = grid / max(g_shape[2] * g_shape[3], 1) - 1.0
    return out_channels * growth <= 160


def _input_grad_on_grid(g, w, x_shape, padding):
    """Stride-1 input gradient with long rows only.

    The output gradient is laid on the padded input's grid, (O, N, Hp, Wp) with zeros where no
    output lands, so one product gives every window offset's contribution on that grid and
    each offset (i, j) is the same (C, N*Hp*Wp) rows shifted by ``i*Wp + j``: nine adds of
    whole rows instead of nine strided scatters whose rows are only ``W`` long (NumPy pays
    per row: (32, 32, 16, 16) from 64 channels, 3.7 -> 2.6 ms). The grid costs a product
    ``Hp*Wp / (oh*ow)`` times larger, which the saved passes more than repay.
    """
    n, c, h, wd = x_shape
    o, _, kh, kw = w.shape
    oh, ow = g.shape[2:]
    ph, pw = padding
    hp, wp = h + 2 * ph, wd + 2 * pw
    m = n * hp * wp
    grid = np.zeros((o, n, hp, wp), g.dtype)
    grid[:, :, :oh, :ow] = g.transpose(1, 0, 2, 3)
    dcols = (w.reshape(o, -1).T.astype(g.dtype, copy=False) @ grid.reshape(o, m)).reshape(
        c, kh, kw, m
    )
    dx = dcols[:, 0, 0].copy()  # (C, N*Hp*Wp): offset (0, 0), then the shifted others
    for i in range(kh):
        for j in range(kw):
            if i or j:
                shift = i * wp + j
                dx[:, shift:] += dcols[:, i, j, : m - shift]
    dx = dx.reshape(c, n, hp, wp)[:, :, ph : ph + h, pw : pw + wd]
    return np.ascontiguousarray(dx.transpose(1, 0, 2, 3))


def conv2d_weight_grad(x, g, w_shape, stride, padding, dilation, groups, cols=None):
    """Gradient w.r.t. the weight; ``cols`` from the forward pass saves recomputing it."""
    o, cg, kh, kw = w_shape
    if x.shape[0] == 0:
        return xp_of(g).zeros(w_shape, g.dtype)
    if _pointwise(x, w_shape, stride, padding, groups):
        n = x.shape[0]
        g3, x3 = g.reshape(n, o, -1), x.reshape(n, cg, -1)
        gw = g3[0] @ x3[0].T
        for i in range(1, n):
            gw += g3[i] @ x3[i].T
        return gw.astype(g.dtype, copy=False).reshape(w_shape)
    if cols is None and _large_maps(x, w_shape, stride, padding, dilation, groups):
        gw = np.zeros((o, cg * kh * kw), g.dtype)
        for i in range(x.shape[0]):
            ci, _ = im2col(x[i : i + 1], kh, kw, stride, padding, dilation, 1)
            gw += g[i].reshape(o, -1) @ ci[0].T
        return gw.reshape(w_shape)
    if cols is None:
        cols, _ = im2col(x, kh, kw, stride, padding, dilation, groups)
    if groups == 1 and cg * kh * kw <= _SMALL_K:
        n = g.shape[0]
        g3, c3 = g.reshape(n, o, -1), _per_sample(cols, n)
        gw = g3[0] @ c3[0].T
        for i in range(1, n):
            gw += g3[i] @ c3[i].T
        return gw.astype(g.dtype, copy=False).reshape(o, cg, kh, kw)
    gw = _bmm(_gy(g, groups), cols.transpose(0, 2, 1))  # (G, O/G, cg*kh*kw)
    return gw.astype(g.dtype, copy=False).reshape(o, cg, kh, kw)
