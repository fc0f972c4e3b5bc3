"""Softmax, log-softmax and layer norm over the last axis of C-contiguous CuPy arrays: one
thread block per row, statistics in float32 (float64 for float64 data), one launch per pass
instead of CuPy's five to eight."""

from __future__ import annotations

import numpy as np

from .compile import acc_dtype, function, null, raw, row_block

_SOURCE = r"""
#define NEG_INF (-__int_as_float(0x7f800000))
// y = softmax(x + bias) (or log_softmax when logm) along rows of n; bias is (bias_rows, n),
// repeating every bias_rows rows (an attention mask over the trailing (L, S)), or null.
extern "C" __global__ void softmax_fwd(const T* __restrict__ x, const T* __restrict__ bias,
    T* __restrict__ y, long long rows, int n, int bias_rows, int logm) {
  __shared__ A sh[33];
  long long r = blockIdx.x;
  const T* xr = x + r * n;
  const T* br = bias ? bias + (r % bias_rows) * (long long)n : (const T*)0;
  T* yr = y + r * n;
  A m = (A)NEG_INF;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    A v = LD(xr[i]) + (br ? LD(br[i]) : (A)0);
    m = fmax(m, v);
  }
  m = block_max(m, sh);
  if (m == (A)NEG_INF) m = (A)0;  // a fully masked row: exp gives zeros, the sum 0
  A s = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    A v = LD(xr[i]) + (br ? LD(br[i]) : (A)0);
    s += exp(v - m);
  }
  s = block_sum(s, sh);
  A ls = log(s), inv = (A)1 / s;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    A v = LD(xr[i]) + (br ? LD(br[i]) : (A)0) - m;
    yr[i] = ST(logm ? v - ls : exp(v) * inv);
  }
}

// softmax: gx = y * (g - sum(g * y)); log_softmax: gx = g - exp(y) * sum(g)
extern "C" __global__ void softmax_bwd(const T* __restrict__ g, const T* __restrict__ y,
    T* __restrict__ gx, long long rows, int n, int logm) {
  __shared__ A sh[33];
  long long r = blockIdx.x;
  const T* gr = g + r * n;
  const T* yr = y + r * n;
  T* out = gx + r * n;
  A s = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x)
    s += logm ? LD(gr[i]) : LD(gr[i]) * LD(yr[i]);
  s = block_sum(s, sh);
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    A gv = LD(gr[i]), yv = LD(yr[i]);
    out[i] = ST(logm ? gv - exp(yv) * s : yv * (gv - s));
  }
}

// layer norm over rows of n: y = (x - mean) * rstd * w + b; saves mean and rstd (type A)
extern "C" __global__ void layer_norm_fwd(const T* __restrict__ x, const T* __restrict__ w,
    const T* __restrict__ b, T* __restrict__ y, A* __restrict__ mean, A* __restrict__ rstd,
    long long rows, int n, double eps) {
  __shared__ A sh[33];
  long long r = blockIdx.x;
  const T* xr = x + r * n;
  T* yr = y + r * n;
  A s = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += LD(xr[i]);
  A mu = block_sum(s, sh) / (A)n;
  A q = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) { A d = LD(xr[i]) - mu; q += d * d; }
  A rs = (A)1 / sqrt(block_sum(q, sh) / (A)n + (A)eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    A v = (LD(xr[i]) - mu) * rs;
    if (w) v *= LD(w[i]);
    if (b) v += LD(b[i]);
    yr[i] = ST(v);
  }
  if (threadIdx.x == 0) { mean[r] = mu; rstd[r] = rs; }
}

// gx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)), gh = g * w, xhat = (x - mean) * rstd
extern "C" __global__ void layer_norm_bwd_x(const T* __restrict__ g, const T* __restrict__ x,
    const T* __restrict__ w, const A* __restrict__ mean, const A* __restrict__ rstd,
    T* __restrict__ gx, long long rows, int n) {
  __shared__ A sh[33];
  long long r = blockIdx.x;
  const T* gr = g + r * n;
  const T* xr = x + r * n;
  A mu = mean[r], rs = rstd[r];
  A s1 = 0, s2 = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    A gh = LD(gr[i]) * (w ? LD(w[i]) : (A)1);
    s1 += gh;
    s2 += gh * (LD(xr[i]) - mu) * rs;
  }
  s1 = block_sum(s1, sh) / (A)n;
  s2 = block_sum(s2, sh) / (A)n;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    A gh = LD(gr[i]) * (w ? LD(w[i]) : (A)1);
    A xh = (LD(xr[i]) - mu) * rs;
    gx[r * n + i] = ST(rs * (gh - s1 - xh * s2));
  }
}

// column partial sums for the weight and bias gradients: block (cx, cy) sums rows
// [cy * chunk, (cy + 1) * chunk) of column j; pw/pb are (gridDim.y, n)
extern "C" __global__ void layer_norm_bwd_wb(const T* __restrict__ g, const T* __restrict__ x,
    const A* __restrict__ mean, const A* __restrict__ rstd, A* __restrict__ pw,
    A* __restrict__ pb, long long rows, int n, int chunk) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= n) return;
  long long r0 = (long long)blockIdx.y * chunk, r1 = r0 + chunk;
  if (r1 > rows) r1 = rows;
  A sw = 0, sb = 0;
  for (long long r = r0; r < r1; ++r) {
    A gv = LD(g[r * n + j]);
    sw += gv * (LD(x[r * n + j]) - mean[r]) * rstd[r];
    sb += gv;
  }
  pw[(long long)blockIdx.y * n + j] = sw;
  pb[(long long)blockIdx.y * n + j] = sb;
}

// out[j] = sum over parts of p[part, j], stored as T (the parameter-gradient dtype)
extern "C" __global__ void sum_parts(const A* __restrict__ p, T* __restrict__ out, int parts,
    int n) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= n) return;
  A s = 0;
  for (int k = 0; k < parts; ++k) s += p[(long long)k * n + j];
  out[j] = ST(s);
}
"""


def _fn(name, dtype):
    return function("rowwise", _SOURCE, dtype, name)


def _ptr(a):
    return a if a is not None else null()


def softmax(x, bias=None, log: bool = False):
    """softmax (or log_softmax) of ``x + bias`` over the last axis. ``bias`` is None or a
    C-contiguous array of shape (L, n) that repeats over ``x``'s leading rows (``x``'s
    trailing shape (..., L, n))."""
    import cupy

    n = x.shape[-1]
    rows = x.size // n if n else 0
    y = cupy.empty_like(x)
    if rows == 0 or n == 0:
        return y
    brows = 1 if bias is None else bias.size // n
    args = (raw(x), _ptr(None if bias is None else raw(bias)), raw(y))
    _fn("softmax_fwd", x.dtype)(
        (rows,),
        (row_block(n),),
        (*args, np.int64(rows), np.int32(n), np.int32(brows), np.int32(int(log))),
    )
    return y


def softmax_grad(g, y, log: bool = False):
    """The first-order softmax (or log_softmax) gradient from the output ``y``."""
    import cupy

    n = y.shape[-1]
    rows = y.size // n if n else 0
    gx = cupy.empty_like(y)
    if rows == 0 or n == 0:
        return gx
    _fn("softmax_bwd", y.dtype)(
        (rows,),
        (row_block(n),),
        (raw(g), raw(y), raw(gx), np.int64(rows), np.int32(n), np.int32(int(log))),
    )
    return gx


def layer_norm(x, w, b, eps: float):
    """(y, mean, rstd) of layer norm over the last axis; mean and rstd are (rows,) arrays in
    the accumulation dtype."""
    import cupy

    n = x.shape[-1]
    rows = x.size // n if n else 0
    y = cupy.empty_like(x)
    mean = cupy.empty(rows, acc_dtype(x.dtype))
    rstd = cupy.empty(rows, acc_dtype(x.dtype))
    if rows and n:
        _fn("layer_norm_fwd", x.dtype)(
            (rows,),
            (row_block(n),),
            (
                raw(x),
                _ptr(None if w is None else raw(w)),
                _ptr(None if b is None else raw(b)),
                raw(y),
                mean,
                rstd,
                np.int64(rows),
                np.int32(n),
                np.float64(eps),
            ),
        )
    return y, mean, rstd


def layer_norm_grad(g, x, w, mean, rstd, need_x: bool, need_w: bool, need_b: bool):
    """(gx, gw, gb) of layer norm over the last axis; None where not needed."""
    import cupy

    n = x.shape[-1]
    rows = x.size // n if n else 0
    gx = gw = gb = None
    if need_x:
        gx = cupy.empty_like(x)
        if rows and n:
            _fn("layer_norm_bwd_x", x.dtype)(
                (rows,),
                (row_block(n),),
                (
                    raw(g),
                    raw(x),
                    _ptr(None if w is None else raw(w)),
                    mean,
                    rstd,
                    raw(gx),
                    np.int64(rows),
                    np.int32(n),
                ),
            )
    if need_w or need_b:
        chunk = max(16, -(-rows // 256))  # at most 256 partial rows
        parts = max(1, -(-rows // chunk))
        pw, pb = cupy.zeros((2, parts, n), acc_dtype(x.dtype))
        threads = 128
        if rows and n:
            _fn("layer_norm_bwd_wb", x.dtype)(
                (-(-n // threads), parts),
                (threads,),
                (raw(g), raw(x), mean, rstd, pw, pb, np.int64(rows), np.int32(n), np.int32(chunk)),
            )
        wb = cupy.empty((2, n), x.dtype)
        for k, part in enumerate((pw, pb) if n else ()):
            _fn("sum_parts", x.dtype)(
                (-(-n // threads),), (threads,), (part, raw(wb[k]), np.int32(parts), np.int32(n))
            )
        gw = wb[0] if need_w else None
        gb = wb[1] if need_b else None
    return gx, gw, gb
