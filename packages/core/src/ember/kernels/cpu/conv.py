"""2-D convolution on NumPy arrays by im2col and one batched GEMM per call.

Shapes: x (N, C, H, W); w (O, C/groups, kh, kw); y (N, O, oh, ow). ``cols`` is the
(groups, N*oh*ow, C/groups*kh*kw) matrix of input windows; the three functions below are the
forward and the two gradients, and each is the adjoint of another, which is what lets the
autograd ops differentiate them twice.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def out_size(n: int, k: int, s: int, p: int, d: int) -> int:
    """Output length of a convolution along one axis."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _pad(x, ph, pw):
    if not (ph or pw):
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def windows(xp, kh, kw, oh, ow, stride, dilation):
    """A (N, C, oh, ow, kh, kw) strided view of the windows of a padded input."""
    n, c = xp.shape[:2]
    s0, s1, s2, s3 = xp.strides
    (sh, sw), (dh, dw) = stride, dilation
    return as_strided(
        xp, (n, c, oh, ow, kh, kw), (s0, s1, s2 * sh, s3 * sw, s2 * dh, s3 * dw), writeable=False
    )


def im2col(x, kh, kw, stride, padding, dilation, groups):
    """The (groups, N*oh*ow, C/groups*kh*kw) window matrix and the output size."""
    n, c, h, w = x.shape
    oh = out_size(h, kh, stride[0], padding[0], dilation[0])
    ow = out_size(w, kw, stride[1], padding[1], dilation[1])
    win = windows(_pad(x, *padding), kh, kw, oh, ow, stride, dilation)
    cg = c // groups
    win = win.reshape(n, groups, cg, oh, ow, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
    return win.reshape(groups, n * oh * ow, cg * kh * kw), (oh, ow)


def conv2d(x, w, stride, padding, dilation, groups):
    """Forward convolution; returns (y, cols) so the weight gradient can reuse ``cols``."""
    o, cg, kh, kw = w.shape
    n = x.shape[0]
    cols, (oh, ow) = im2col(x, kh, kw, stride, padding, dilation, groups)
    wm = w.reshape(groups, o // groups, cg * kh * kw)
    y = np.matmul(cols, wm.transpose(0, 2, 1))  # (G, N*oh*ow, O/G)
    y = y.reshape(groups, n, oh, ow, o // groups).transpose(1, 0, 4, 2, 3)
    # NumPy's bfloat16 matmul returns float32; ascontiguousarray copies anyway
    return np.ascontiguousarray(y, dtype=x.dtype).reshape(n, o, oh, ow), cols


def conv2d_input_grad(g, w, x_shape, stride, padding, dilation, groups):
    """Gradient w.r.t. the input (also conv_transpose2d's forward)."""
    n, c, h, wd = x_shape
    o, cg, kh, kw = w.shape
    oh, ow = g.shape[2:]
    og = o // groups
    g2 = g.reshape(n, groups, og, oh, ow).transpose(1, 0, 3, 4, 2).reshape(groups, n * oh * ow, og)
    dcols = np.matmul(g2, w.reshape(groups, og, cg * kh * kw))  # (G, N*oh*ow, cg*kh*kw)
    dcols = dcols.reshape(groups, n, oh, ow, cg, kh, kw).transpose(1, 0, 4, 5, 6, 2, 3)
    dcols = dcols.reshape(n, c, kh, kw, oh, ow)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    dx = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), g.dtype)
    for i in range(kh):
        for j in range(kw):
            r, q = i * dh, j * dw
            dx[:, :, r : r + sh * (oh - 1) + 1 : sh, q : q + sw * (ow - 1) + 1 : sw] += dcols[
                :, :, i, j
            ]
    return dx[:, :, ph : ph + h, pw : pw + wd]


def conv2d_weight_grad(x, g, w_shape, stride, padding, dilation, groups, cols=None):
    """Gradient w.r.t. the weight; ``cols`` from the forward pass saves recomputing it."""
    o, cg, kh, kw = w_shape
    if cols is None:
        cols, _ = im2col(x, kh, kw, stride, padding, dilation, groups)
    n = g.shape[0]
    oh, ow = g.shape[2:]
    og = o // groups
    g2 = g.reshape(n, groups, og, oh, ow).transpose(1, 2, 0, 3, 4).reshape(groups, og, n * oh * ow)
    return np.matmul(g2, cols).astype(g.dtype, copy=False).reshape(o, cg, kh, kw)
