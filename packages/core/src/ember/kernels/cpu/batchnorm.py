"""Training-mode batch norm on NumPy arrays: statistics, normalize, scale and shift in a few
passes, and the first-order gradients from the saved centred input.

Shapes: x (N, C, *spatial) is viewed as (N, C*L), so elementwise passes broadcast per-channel
values along whole rows. Per-channel sums reduce over N first, then L; per-channel dot
products go through ``vecdot``; no multithreaded BLAS call on these short reductions (a busy
core turns its thread handoff into a scheduler time slice).
"""

from __future__ import annotations

import numpy as np


def _work_dtype(x):
    # float16 and bfloat16 (kind "V") compute in float32, as PyTorch's CPU kernel does
    return x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float32)


def _chan_sum(x2, c):
    """Per-channel sums of (N, C*L) as a (C,) vector: over N first (whole rows), then L."""
    return x2.sum(axis=0).reshape(c, -1).sum(axis=1)


def _chan_dot(a2, b2, c):
    """Per-channel sums of ``a * b`` over (N, L), for (N, C*L) arrays."""
    n = a2.shape[0]
    return np.vecdot(a2.reshape(n, c, -1), b2.reshape(n, c, -1)).sum(0)


def _per_element(v, length):
    """A (C,) per-channel vector spread to (C*L,), to broadcast along whole (N, C*L) rows:
    NumPy pays per row, and rows of C*L are long where rows of L (8x8 maps) are not
    (scale and shift of (32, 128, 8, 8): 91 -> 61 us)."""
    return np.repeat(v, length)


def batch_norm_train(x, w, b, eps):
    """Returns (y, mean, biased var, rstd), the statistics as (C,) vectors in the working dtype.

    One full-size buffer: the centred input becomes the output in place, and backward
    recentres the saved input instead of keeping a second copy alive.
    """
    n, c = x.shape[:2]
    dt = _work_dtype(x)
    x2 = x.reshape(n, -1).astype(dt, copy=False)  # (N, C*L)
    length = x2.shape[1] // c
    m = n * length
    mean = _chan_sum(x2, c) / m
    y = x2 - _per_element(mean, length)  # centred
    var = _chan_dot(y, y, c) / m
    rstd = (1.0 / np.sqrt(var + eps)).astype(dt, copy=False)
    y *= _per_element(rstd if w is None else rstd * w.astype(dt, copy=False), length)
    if b is not None:
        y += _per_element(b.astype(dt, copy=False), length)
    return y.astype(x.dtype, copy=False).reshape(x.shape), mean, var, rstd


def batch_norm_train_grad(g, x, mean, rstd, w, need_x, need_w, need_b):
    """(gx, gw, gb) from the output gradient ``g``; None where not needed."""
    n, c = x.shape[:2]
    dt = mean.dtype
    g2 = g.reshape(n, -1).astype(dt, copy=False)  # (N, C*L)
    length = g2.shape[1] // c
    m = n * length
    xc = x.reshape(n, -1) - _per_element(mean, length)  # centred; becomes gx in place
    sg = _chan_sum(g2, c)  # (C,) sum of g
    sgx = _chan_dot(g2, xc, c)  # (C,) sum of g * xc
    gb = sg.astype(g.dtype, copy=False) if need_b else None
    gw = (sgx * rstd).astype(g.dtype, copy=False) if need_w else None
    if not need_x:
        return None, gw, gb
    scale = rstd if w is None else rstd * w.astype(dt, copy=False)
    # gx = scale * (g - mean(g) - xhat * mean(g * xhat)), with xhat = xc * rstd
    xc *= _per_element(-sgx * rstd * rstd / m * scale, length)
    xc += g2 * _per_element(scale, length)
    xc -= _per_element(sg / m * scale, length)
    return xc.astype(g.dtype, copy=False).reshape(g.shape), gw, gb


def batch_norm_eval(x, mean, var, w, b, eps):
    """Inference-mode batch norm of a C-contiguous float32/float64 (N, C, *spatial) array:
    ``x * scale + shift`` per channel, with the running statistics folded into one scale and
    one shift, computed on cache-sized blocks of (sample, channel) planes in threads (one
    multiply into the output and one add in place: (8, 256, 56, 56) 8.0 -> 3.4 ms against
    two whole-array passes)."""
    from .parallel import run_rows

    n, c = x.shape[:2]
    dt = x.dtype
    with np.errstate(divide="ignore", invalid="ignore"):  # the same roundings as ops below
        scale = (1 / np.sqrt(var.astype(dt) + eps)).astype(dt, copy=False)
    if w is not None:
        scale = scale * w.astype(dt, copy=False)
    shift = -mean.astype(dt) * scale
    if b is not None:
        shift = shift + b.astype(dt, copy=False)
    planes = x.reshape(n * c, -1)
    scale_rows = np.tile(scale, n)[:, None]  # one value per (sample, channel) row
    shift_rows = np.tile(shift, n)[:, None]

    def kern(out, xs, ss, bs):
        np.multiply(xs, ss, out=out)
        out += bs

    return run_rows(kern, np.empty_like(planes), planes, scale_rows, shift_rows).reshape(x.shape)
