"""Training-mode batch norm on NumPy arrays: statistics, normalize, scale and shift in a few
passes, and the first-order gradients from the saved centred input.

Shapes: x (N, C, *spatial) is viewed as (N, C, L). Per-channel sums reduce the contiguous L
axis first and per-channel dot products go through ``vecdot``; no multithreaded BLAS call on
these short reductions (a busy core turns its thread handoff into a scheduler time slice).
"""

from __future__ import annotations

import numpy as np


def _work_dtype(x):
    # float16 and bfloat16 (kind "V") compute in float32, as PyTorch's CPU kernel does
    return x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float32)


def _chan_sum(x3):
    """Per-channel sums of (N, C, L) as a (C,) vector."""
    return x3.sum(axis=2).sum(axis=0)


def _chan_dot(a3, b3):
    """Per-channel sums of ``a * b`` over (N, L)."""
    return np.vecdot(a3, b3).sum(0)


def batch_norm_train(x, w, b, eps):
    """Returns (y, mean, biased var, rstd), the statistics as (C,) vectors in the working dtype.

    One full-size buffer: the centred input becomes the output in place, and backward
    recentres the saved input instead of keeping a second copy alive.
    """
    n, c = x.shape[:2]
    dt = _work_dtype(x)
    x3 = x.reshape(n, c, -1).astype(dt, copy=False)
    m = x3.shape[0] * x3.shape[2]
    mean = _chan_sum(x3) / m
    y = x3 - mean[:, None]  # (N, C, L), centred
    var = _chan_dot(y, y) / m
    rstd = (1.0 / np.sqrt(var + eps)).astype(dt, copy=False)
    y *= (rstd if w is None else rstd * w.astype(dt, copy=False))[:, None]
    if b is not None:
        y += b.astype(dt, copy=False)[:, None]
    return y.astype(x.dtype, copy=False).reshape(x.shape), mean, var, rstd


def batch_norm_train_grad(g, x, mean, rstd, w, need_x, need_w, need_b):
    """(gx, gw, gb) from the output gradient ``g``; None where not needed."""
    n, c = x.shape[:2]
    dt = mean.dtype
    g3 = g.reshape(n, c, -1).astype(dt, copy=False)
    m = g3.shape[0] * g3.shape[2]
    xc = x.reshape(n, c, -1) - mean[:, None]  # (N, C, L); becomes gx in place
    sg = _chan_sum(g3)  # (C,) sum of g
    sgx = _chan_dot(g3, xc)  # (C,) sum of g * xc
    gb = sg.astype(g.dtype, copy=False) if need_b else None
    gw = (sgx * rstd).astype(g.dtype, copy=False) if need_w else None
    if not need_x:
        return None, gw, gb
    scale = rstd if w is None else rstd * w.astype(dt, copy=False)
    # gx = scale * (g - mean(g) - xhat * mean(g * xhat)), with xhat = xc * rstd
    xc *= (-sgx * rstd * rstd / m)[:, None]
    xc += g3
    xc -= (sg / m)[:, None]
    xc *= scale[:, None]
    return xc.astype(g.dtype, copy=False).reshape(g.shape), gw, gb
