"""GELU and training-mode batch norm on C-contiguous CuPy arrays, each pass one launch.

GELU's forward saves nothing but its input: the backward recomputes Phi(x) (or the tanh) in
the same pass that applies the chain rule. Batch norm over (N, C, *spatial) reduces per channel
in one launch (partial sums over slices of the batch), normalizes in one, and its backward is
one reduction plus one elementwise pass.
"""

from __future__ import annotations

import numpy as np

from .compile import acc_dtype, module, raw

_SOURCE = r"""
#define K_SQRT_2_OVER_PI 0.7978845608028654
#define K_INV_SQRT_2 0.7071067811865476
#define K_INV_SQRT_2PI 0.3989422804014327

extern "C" __global__ void gelu_fwd(const T* __restrict__ x, T* __restrict__ y,
    long long size, int tanh_mode) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < size;
       i += (long long)gridDim.x * blockDim.x) {
    A v = LD(x[i]);
    A c = tanh_mode ? (A)0.5 * ((A)1 + tanh((A)K_SQRT_2_OVER_PI * (v + (A)0.044715 * v * v * v)))
                    : (A)0.5 * ((A)1 + erf(v * (A)K_INV_SQRT_2));
    y[i] = ST(v * c);
  }
}

extern "C" __global__ void gelu_bwd(const T* __restrict__ g, const T* __restrict__ x,
    T* __restrict__ gx, long long size, int tanh_mode) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < size;
       i += (long long)gridDim.x * blockDim.x) {
    A v = LD(x[i]), d;
    if (tanh_mode) {
      A t = tanh((A)K_SQRT_2_OVER_PI * (v + (A)0.044715 * v * v * v));
      A dt = ((A)1 - t * t) * ((A)K_SQRT_2_OVER_PI * ((A)1 + (A)0.134145 * v * v));
      d = (A)0.5 * ((A)1 + t) + (A)0.5 * v * dt;
    } else {
      d = (A)0.5 * ((A)1 + erf(v * (A)K_INV_SQRT_2)) + v * exp((A)-0.5 * v * v) * (A)K_INV_SQRT_2PI;
    }
    gx[i] = ST(LD(g[i]) * d);
  }
}

// the same over one (n, c) plane of L elements per block (no index division per element)
extern "C" __global__ void chan_affine_planes(const T* __restrict__ a, const T* __restrict__ b,
    const A* __restrict__ p, const A* __restrict__ q, const A* __restrict__ r,
    T* __restrict__ out, int c, long long l) {
  long long plane = blockIdx.x;
  int ch = (int)(plane % c);
  A pc = p[ch], rc = r[ch], qc = b ? q[ch] : (A)0;
  long long base = plane * l;
  for (long long j = threadIdx.x; j < l; j += blockDim.x) {
    A v = LD(a[base + j]) * pc + rc;
    if (b) v += LD(b[base + j]) * qc;
    out[base + j] = ST(v);
  }
}

// relu: y = x > 0 (or NaN) ? x : 0; y may be x (in place)
extern "C" __global__ void relu_fwd(const T* x, T* y, long long size) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < size;
       i += (long long)gridDim.x * blockDim.x) {
    A v = LD(x[i]);
    y[i] = (v > (A)0 || v != v) ? x[i] : ST((A)0);
  }
}

// relu backward from the output: gx = y > 0 ? g : 0
extern "C" __global__ void relu_bwd(const T* __restrict__ g, const T* __restrict__ y,
    T* __restrict__ gx, long long size) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < size;
       i += (long long)gridDim.x * blockDim.x)
    gx[i] = LD(y[i]) > (A)0 ? g[i] : ST((A)0);
}

// Per-channel partial sums over (N, C, L): block (c, part) covers the flat (n, l) range
// [part * chunk, (part + 1) * chunk). Without b: s1 += a - k, s2 += (a - k)^2 with k the
// channel's first element a[0, c, 0] (a shift that keeps the variance exact for large means).
// With b: s1 += a, s2 += a * (b - shift[c]). Outputs are (parts, C).
extern "C" __global__ void chan_sums(const T* __restrict__ a, const T* __restrict__ b,
    const A* __restrict__ shift, A* __restrict__ s1, A* __restrict__ s2,
    long long n, int c, long long l, long long chunk) {
  __shared__ A sh[33];
  int ch = blockIdx.x;
  long long total = n * l, e0 = blockIdx.y * chunk, e1 = e0 + chunk;
  if (e1 > total) e1 = total;
  bool small = total * c < 4294967295LL;
  A k = b ? shift[ch] : LD(a[(long long)ch * l]);
  A t1 = 0, t2 = 0;
  for (long long e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
    long long idx;
    if (small) { unsigned int u = (unsigned int)e, ul = (unsigned int)l;
                 idx = (long long)(((u / ul) * (unsigned int)c + ch) * ul + u % ul); }
    else idx = ((e / l) * c + ch) * l + (e % l);
    A av = LD(a[idx]);
    if (b) { t1 += av; t2 += av * (LD(b[idx]) - k); }
    else { A d = av - k; t1 += d; t2 += d * d; }
  }
  t1 = block_sum(t1, sh);
  t2 = block_sum(t2, sh);
  if (threadIdx.x == 0) {
    s1[(long long)blockIdx.y * c + ch] = t1;
    s2[(long long)blockIdx.y * c + ch] = t2;
  }
}

// One thread per channel: batch statistics from the partial sums, and the scale and shift
// that normalize: y = x * scale + bias. w and b are optional (A-typed) affine parameters.
extern "C" __global__ void bn_stats(const T* __restrict__ x, const A* __restrict__ s1,
    const A* __restrict__ s2, int parts, const A* __restrict__ w, const A* __restrict__ b,
    A* __restrict__ mean, A* __restrict__ var, A* __restrict__ rstd, A* __restrict__ scale,
    A* __restrict__ bias, int c, long long l, long long m, double eps) {
  int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  A t1 = 0, t2 = 0;
  for (int p = 0; p < parts; ++p) { t1 += s1[p * c + ch]; t2 += s2[p * c + ch]; }
  A d = t1 / (A)m, mu = LD(x[(long long)ch * l]) + d;
  A v = t2 / (A)m - d * d;
  if (v < (A)0) v = 0;
  A rs = (A)1 / sqrt(v + (A)eps);
  A sc = w ? rs * w[ch] : rs;
  mean[ch] = mu; var[ch] = v; rstd[ch] = rs; scale[ch] = sc;
  bias[ch] = (b ? b[ch] : (A)0) - mu * sc;
}

// One thread per channel: from sg = sum g and sgx = sum g * (x - mean), the parameter
// gradients and gx = g * k1 + x * k2 + k3 (k1 = scale, the chain rule through the statistics).
extern "C" __global__ void bn_grad_coeffs(const A* __restrict__ s1, const A* __restrict__ s2,
    int parts, const A* __restrict__ mean, const A* __restrict__ rstd, const A* __restrict__ w,
    A* __restrict__ gw, A* __restrict__ gb, A* __restrict__ k1, A* __restrict__ k2,
    A* __restrict__ k3, int c, long long m) {
  int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  A sg = 0, sgx = 0;
  for (int p = 0; p < parts; ++p) { sg += s1[p * c + ch]; sgx += s2[p * c + ch]; }
  A rs = rstd[ch], sc = w ? rs * w[ch] : rs;
  gb[ch] = sg;
  gw[ch] = sgx * rs;
  A c2 = -sc * rs * rs * sgx / (A)m;
  k1[ch] = sc;
  k2[ch] = c2;
  k3[ch] = -sc * sg / (A)m - mean[ch] * c2;
}

// out = a * p[c] + (b ? b * q[c] : 0) + r[c] over (N, C, L)
extern "C" __global__ void chan_affine(const T* __restrict__ a, const T* __restrict__ b,
    const A* __restrict__ p, const A* __restrict__ q, const A* __restrict__ r,
    T* __restrict__ out, long long size, int c, long long l) {
  bool small = size < 4294967295LL;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < size;
       i += (long long)gridDim.x * blockDim.x) {
    int ch = small ? (int)(((unsigned int)i / (unsigned int)l) % (unsigned int)c)
                   : (int)((i / l) % c);
    A v = LD(a[i]) * p[ch] + r[ch];
    if (b) v += LD(b[i]) * q[ch];
    out[i] = ST(v);
  }
}
"""


def _fn(name, dtype):
    return module("elementwise", _SOURCE, dtype).get_function(name)


def _grid(size: int, threads: int = 256) -> int:
    return max(1, min(-(-size // threads), 132 * 32))


def gelu(x, approximate: str):
    """GELU of ``x`` (exact erf form, or ``approximate="tanh"``)."""
    import cupy

    y = cupy.empty_like(x)
    if x.size:
        _fn("gelu_fwd", x.dtype)(
            (_grid(x.size),),
            (256,),
            (raw(x), raw(y), np.int64(x.size), np.int32(approximate == "tanh")),
        )
    return y


def gelu_grad(g, x, approximate: str):
    """``g * GELU'(x)``."""
    import cupy

    gx = cupy.empty_like(x)
    if x.size:
        _fn("gelu_bwd", x.dtype)(
            (_grid(x.size),),
            (256,),
            (raw(g), raw(x), raw(gx), np.int64(x.size), np.int32(approximate == "tanh")),
        )
    return gx


def relu(x, out=None):
    """max(x, 0) (NaN stays NaN), into ``out`` when given (``out`` may be ``x``)."""
    import cupy

    y = cupy.empty_like(x) if out is None else out
    if x.size:
        _fn("relu_fwd", x.dtype)((_grid(x.size),), (256,), (raw(x), raw(y), np.int64(x.size)))
    return y


def relu_grad(g, y):
    """``g`` where the relu output ``y`` is positive, else 0."""
    import cupy

    gx = cupy.empty_like(y)
    if y.size:
        _fn("relu_bwd", y.dtype)(
            (_grid(y.size),), (256,), (raw(g), raw(y), raw(gx), np.int64(y.size))
        )
    return gx


def _null():
    import cupy

    return cupy.uint64(0)


def _chan_sums(a, b, shift):
    """Per-channel partial sums (see the kernel), each (parts, C), and the part count."""
    import cupy

    n, c = a.shape[:2]
    length = a.size // max(1, n * c)
    total = n * length
    parts = max(1, min(-(-total // 8192), max(1, 1024 // c)))
    chunk = -(-total // parts)
    acc = acc_dtype(a.dtype)
    s1, s2 = cupy.empty((2, parts, c), acc)
    _fn("chan_sums", a.dtype)(
        (c, parts),
        (256,),
        (
            raw(a),
            _null() if b is None else raw(b),
            _null() if shift is None else shift,
            s1,
            s2,
            np.int64(n),
            np.int32(c),
            np.int64(length),
            np.int64(chunk),
        ),
    )
    return s1, s2, parts


def _chan_affine(a, b, p, q, r):
    import cupy

    n, c = a.shape[:2]
    length = a.size // max(1, n * c)
    out = cupy.empty_like(a)
    if length >= 32 and n * c < 2**31:
        threads = min(256, -(-length // 32) * 32)
        _fn("chan_affine_planes", a.dtype)(
            (n * c,),
            (threads,),
            (
                raw(a),
                _null() if b is None else raw(b),
                p,
                _null() if q is None else q,
                r,
                raw(out),
                np.int32(c),
                np.int64(length),
            ),
        )
        return out
    _fn("chan_affine", a.dtype)(
        (_grid(a.size),),
        (256,),
        (
            raw(a),
            _null() if b is None else raw(b),
            p,
            _null() if q is None else q,
            r,
            raw(out),
            np.int64(a.size),
            np.int32(c),
            np.int64(length),
        ),
    )
    return out


def batch_norm_usable(x) -> bool:
    """Whether the CUDA batch-norm kernels take ``x``: (N, C, ...) with N*L > 1 elements."""
    return x.ndim >= 2 and x.size > 0 and x.size // x.shape[1] > 1


def _per_channel(a, acc):
    """An optional (C,) parameter in the accumulation dtype (no copy when it already is)."""
    return _null() if a is None else a.astype(acc, copy=False)


def batch_norm_train(x, w, b, eps):
    """(y, mean, biased var, rstd) as the CPU kernel returns them; statistics are (C,) arrays
    in the accumulation dtype. Three launches: partial sums, per-channel statistics, and the
    normalizing pass."""
    import cupy

    c = x.shape[1]
    acc = acc_dtype(x.dtype)
    s1, s2, parts = _chan_sums(x, None, None)
    mean, var, rstd, scale, bias = cupy.empty((5, c), acc)  # one allocation
    _fn("bn_stats", x.dtype)(
        (-(-c // 128),),
        (128,),
        (
            raw(x),
            s1,
            s2,
            np.int32(parts),
            _per_channel(w, acc),
            _per_channel(b, acc),
            mean,
            var,
            rstd,
            scale,
            bias,
            np.int32(c),
            np.int64(x.size // max(1, x.shape[0] * c)),
            np.int64(x.size // c),
            np.float64(eps),
        ),
    )
    y = _chan_affine(x, None, scale, None, bias)
    return y, mean, var, rstd


def batch_norm_train_grad(g, x, mean, rstd, w, need_x, need_w, need_b):
    """(gx, gw, gb) from the output gradient ``g``; None where not needed. Three launches:
    partial sums, per-channel coefficients, and the input-gradient pass."""
    import cupy

    c = x.shape[1]
    acc = mean.dtype
    s1, s2, parts = _chan_sums(g, x, mean)  # sum g, sum g * (x - mean)
    gw, gb, k1, k2, k3 = cupy.empty((5, c), acc)
    _fn("bn_grad_coeffs", g.dtype)(
        (-(-c // 128),),
        (128,),
        (
            s1,
            s2,
            np.int32(parts),
            mean,
            rstd,
            _per_channel(w, acc),
            gw,
            gb,
            k1,
            k2,
            k3,
            np.int32(c),
            np.int64(x.size // c),
        ),
    )
    pdt = g.dtype if w is None else w.dtype  # a float32 affine under bfloat16 activations
    gw = gw.astype(pdt, copy=False) if need_w else None
    gb = gb.astype(pdt, copy=False) if need_b else None
    gx = _chan_affine(g, x, k1, k2, k3) if need_x else None
    return gx, gw, gb
