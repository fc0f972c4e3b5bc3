"""Training-mode batch norm over (N, C, *spatial) CuPy arrays, C-contiguous or channels last
(outputs and gradients keep the layout), in three launches each way: per-channel partial sums
over slices of the batch, a per-channel pass (statistics, or the backward's coefficients), and
one elementwise pass. The running statistics update in place in the statistics launch (in
one more, ``update_running``, for buffers it cannot take)."""

from __future__ import annotations

import numpy as np

from .compile import acc_dtype, channels_last, dtype_name, empty_as, function, grid, null, ptr

_SOURCE = r"""
// chan_affine (below) over one (n, c) plane of L elements per block: no index division
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

// running statistics, in place: r = (1 - momentum) * r + momentum * batch statistic, the
// variance unbiased by n / (n - 1)
extern "C" __global__ void bn_running(A* __restrict__ rmean, A* __restrict__ rvar,
    const A* __restrict__ mean, const A* __restrict__ var, int c, double momentum,
    double unbias) {
  int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  if (rmean) rmean[ch] = (A)(1.0 - momentum) * rmean[ch] + (A)momentum * mean[ch];
  if (rvar) rvar[ch] = (A)(1.0 - momentum) * rvar[ch] + (A)(momentum * unbias) * var[ch];
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

// chan_sums for channels-last data, an (M, C) matrix: block (cx, part) covers channels
// [32 cx, 32 cx + 32) over rows [part * chunk, (part + 1) * chunk) with 32 x 8 threads (a
// warp reads 32 neighbouring channels of one row); the 8 row lanes are summed in shared memory.
// The shift is the channel's first element, a[0, c] here.
extern "C" __global__ void chan_sums_cl(const T* __restrict__ a, const T* __restrict__ b,
    const A* __restrict__ shift, A* __restrict__ s1, A* __restrict__ s2, long long m, int c,
    long long chunk) {
  __shared__ A sh[2][8][33];
  int tx = threadIdx.x, ty = threadIdx.y, ch = blockIdx.x * 32 + tx;
  long long r0 = blockIdx.y * chunk, r1 = r0 + chunk;
  if (r1 > m) r1 = m;
  A t1 = 0, t2 = 0;
  if (ch < c) {
    A k = b ? shift[ch] : LD(a[ch]);
    for (long long r = r0 + ty; r < r1; r += 8) {
      long long i = r * c + ch;
      A av = LD(a[i]);
      if (b) { t1 += av; t2 += av * (LD(b[i]) - k); }
      else { A d = av - k; t1 += d; t2 += d * d; }
    }
  }
  sh[0][ty][tx] = t1;
  sh[1][ty][tx] = t2;
  __syncthreads();
  if (ty == 0 && ch < c) {
    for (int j = 1; j < 8; ++j) { t1 += sh[0][j][tx]; t2 += sh[1][j][tx]; }
    s1[(long long)blockIdx.y * c + ch] = t1;
    s2[(long long)blockIdx.y * c + ch] = t2;
  }
}

// One warp per channel: batch statistics from the partial sums, and the scale and shift
// that normalize: y = x * scale + bias. w and b are optional (A-typed) affine parameters;
// rmean and rvar, when given, are updated in place like bn_running below.
extern "C" __global__ void bn_stats(const T* __restrict__ x, const A* __restrict__ s1,
    const A* __restrict__ s2, int parts, const A* __restrict__ w, const A* __restrict__ b,
    A* __restrict__ mean, A* __restrict__ var, A* __restrict__ rstd, A* __restrict__ scale,
    A* __restrict__ bias, int c, long long l, long long m, double eps, A* __restrict__ rmean,
    A* __restrict__ rvar, double momentum, double unbias) {
  int ch = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (ch >= c) return;  // the whole warp: ch is the same on its 32 lanes
  A t1 = 0, t2 = 0;
  for (int p = lane; p < parts; p += 32) { t1 += s1[p * c + ch]; t2 += s2[p * c + ch]; }
  t1 = warp_sum(t1);
  t2 = warp_sum(t2);
  if (lane) return;
  A d = t1 / (A)m, mu = LD(x[(long long)ch * l]) + d;
  A v = t2 / (A)m - d * d;
  if (v < (A)0) v = 0;
  A rs = (A)1 / sqrt(v + (A)eps);
  A sc = w ? rs * w[ch] : rs;
  mean[ch] = mu; var[ch] = v; rstd[ch] = rs; scale[ch] = sc;
  bias[ch] = (b ? b[ch] : (A)0) - mu * sc;
  // the running statistics (optional), as bn_running updates them
  if (rmean) rmean[ch] = (A)(1.0 - momentum) * rmean[ch] + (A)momentum * mu;
  if (rvar) rvar[ch] = (A)(1.0 - momentum) * rvar[ch] + (A)(momentum * unbias) * v;
}

// One warp per channel: from sg = sum g and sgx = sum g * (x - mean), the parameter
// gradients and gx = g * k1 + x * k2 + k3 (k1 = scale, the chain rule through the statistics).
extern "C" __global__ void bn_grad_coeffs(const A* __restrict__ s1, const A* __restrict__ s2,
    int parts, const A* __restrict__ mean, const A* __restrict__ rstd, const A* __restrict__ w,
    A* __restrict__ gw, A* __restrict__ gb, A* __restrict__ k1, A* __restrict__ k2,
    A* __restrict__ k3, int c, long long m) {
  int ch = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (ch >= c) return;
  A sg = 0, sgx = 0;
  for (int p = lane; p < parts; p += 32) { sg += s1[p * c + ch]; sgx += s2[p * c + ch]; }
  sg = warp_sum(sg);
  sgx = warp_sum(sgx);
  if (lane) return;
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

// chan_affine for channels-last data, an (M, C) matrix with C % 4 == 0: four neighbouring
// channels per thread (8-byte loads of 16-bit values, 16-byte loads of float32), the
// per-channel coefficients read as float4; n4 = M * C / 4 and c4 = C / 4.
__device__ __forceinline__ float4 ld4(ushort4 v) {
  return make_float4(LD(v.x), LD(v.y), LD(v.z), LD(v.w));
}
__device__ __forceinline__ float4 ld4(float4 v) { return v; }
__device__ __forceinline__ void st4(ushort4* o, float4 y) {
  *o = make_ushort4(ST(y.x), ST(y.y), ST(y.z), ST(y.w));
}
__device__ __forceinline__ void st4(float4* o, float4 y) { *o = y; }

template <typename V>
__device__ void affine_cl4(const V* __restrict__ a, const V* __restrict__ b,
    const float4* __restrict__ p, const float4* __restrict__ q, const float4* __restrict__ r,
    V* __restrict__ out, long long n4, int c4) {
  bool small = n4 < 4294967295LL;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n4;
       i += (long long)gridDim.x * blockDim.x) {
    int ch = small ? (int)((unsigned int)i % (unsigned int)c4) : (int)(i % c4);
    float4 pc = p[ch], rc = r[ch], v = ld4(a[i]);
    float4 y = make_float4(v.x * pc.x + rc.x, v.y * pc.y + rc.y, v.z * pc.z + rc.z,
                           v.w * pc.w + rc.w);
    if (b) {
      float4 qc = q[ch], u = ld4(b[i]);
      y.x += u.x * qc.x; y.y += u.y * qc.y; y.z += u.z * qc.z; y.w += u.w * qc.w;
    }
    st4(out + i, y);
  }
}

extern "C" __global__ void chan_affine_cl4_half(const ushort4* a, const ushort4* b,
    const float4* p, const float4* q, const float4* r, ushort4* out, long long n4, int c4) {
  affine_cl4(a, b, p, q, r, out, n4, c4);
}

extern "C" __global__ void chan_affine_cl4_f32(const float4* a, const float4* b,
    const float4* p, const float4* q, const float4* r, float4* out, long long n4, int c4) {
  affine_cl4(a, b, p, q, r, out, n4, c4);
}
"""


def _fn(name, dtype):
    return function("batchnorm", _SOURCE, dtype, name)


def _chan_sums(a, b, shift, cl: bool):
    """Per-channel partial sums (see the kernels): the addresses of the two (parts, C) rows,
    the part count, and the (2, parts, C) buffer that holds them (for the caller to keep
    alive); ``a`` and ``b`` share one layout, channels last when ``cl``, else C-contiguous."""
    import cupy

    n, c = a.shape[:2]
    acc = acc_dtype(a.dtype)
    opt_b = null() if b is None else ptr(b)
    opt_shift = null() if shift is None else shift
    if cl:
        m, tiles = a.size // c, -(-c // 32)
        parts = max(1, min(-(-m // 256), 2048 // tiles, 1024))
        sums = cupy.empty((2, parts, c), acc)
        s1, s2 = _rows(sums, parts * c)
        chunk = -(-m // parts)
        args = (ptr(a), opt_b, opt_shift, s1, s2, np.int64(m), np.int32(c), np.int64(chunk))
        _fn("chan_sums_cl", a.dtype)((tiles, parts), (32, 8), args)
        return s1, s2, parts, sums
    length = a.size // max(1, n * c)
    total = n * length
    parts = max(1, min(-(-total // 8192), max(1, 1024 // c)))
    sums = cupy.empty((2, parts, c), acc)
    s1, s2 = _rows(sums, parts * c)
    chunk = -(-total // parts)
    args = (ptr(a), opt_b, opt_shift, s1, s2, np.int64(n), np.int32(c), np.int64(length))
    _fn("chan_sums", a.dtype)((c, parts), (256,), (*args, np.int64(chunk)))
    return s1, s2, parts, sums


def _rows(buf, row: int, count: int = 2, first: int = 0):
    """Kernel arguments for ``count`` rows of ``row`` elements of a dense buffer from ``first``:
    the rows' addresses (no CuPy view per row: each costs microseconds of host time). The
    caller keeps ``buf`` alive until its launches are queued (a freed buffer is reused)."""
    base, step = buf.data.ptr, row * buf.itemsize
    return [np.uint64(base + k * step) for k in range(first, first + count)]


_CL4 = {"float32": "chan_affine_cl4_f32", "bfloat16": "chan_affine_cl4_half"}
_CL4["float16"] = _CL4["bfloat16"]  # the 16-bit kernel converts through LD / ST


def _cl4_name(c: int, *arrays):
    """The four-channels-per-thread kernel for channels-last arrays (None entries skipped)
    with ``c`` channels, or None: float64, C not a multiple of 4, or memory not 16-byte
    aligned for vector loads."""
    name = _CL4.get(dtype_name(arrays[0].dtype))
    if name is None or c % 4 or any(a is not None and a.data.ptr % 16 for a in arrays):
        return None
    return name


def _chan_affine(a, b, p, q, r, cl: bool):
    """``a * p[c] + b * q[c] + r[c]`` (``b`` optional) in ``a``'s layout; ``b`` shares it.
    ``p``, ``q``, ``r`` are (C,) accumulation-dtype arguments (arrays or addresses)."""
    n, c = a.shape[:2]
    out = empty_as(a)
    opt_b, opt_q = null() if b is None else ptr(b), null() if q is None else q
    if cl:
        name = _cl4_name(c, a, b, out)
        if name is not None:
            n4 = a.size // 4
            args = (ptr(a), opt_b, p, opt_q, r, ptr(out), np.int64(n4), np.int32(c // 4))
            _fn(name, a.dtype)((grid(n4),), (256,), args)
            return out
    length = 1 if cl else a.size // max(1, n * c)  # elements per channel run
    if length >= 32 and n * c < 2**31:
        threads = min(256, -(-length // 32) * 32)
        args = (ptr(a), opt_b, p, opt_q, r, ptr(out), np.int32(c), np.int64(length))
        _fn("chan_affine_planes", a.dtype)((n * c,), (threads,), args)
        return out
    args = (ptr(a), opt_b, p, opt_q, r, ptr(out), np.int64(a.size), np.int32(c))
    _fn("chan_affine", a.dtype)((grid(a.size),), (256,), (*args, np.int64(length)))
    return out


def batch_norm_usable(x) -> bool:
    """Whether the CUDA batch-norm kernels take ``x``: (N, C, ...) with N*L > 1 elements."""
    return x.ndim >= 2 and x.size > 0 and x.size // x.shape[1] > 1


def _per_channel(a, acc):
    """An optional (C,) parameter in the accumulation dtype (no copy when it already is)."""
    return null() if a is None else a if a.dtype == acc else a.astype(acc)


def batch_norm_train(x, w, b, eps, running=None):
    """(y, mean, biased var, rstd) as the CPU kernel returns them; statistics are (C,) arrays
    in the accumulation dtype. Three launches: partial sums, per-channel statistics, and the
    normalizing pass. ``running``, when given, is (running_mean, running_var, momentum, n)
    with arrays that ``running_ok`` accepts (either may be None): they are updated in place
    in the statistics' launch, the variance unbiased by n / (n - 1)."""
    import cupy

    c = x.shape[1]
    acc = acc_dtype(x.dtype)
    cl = channels_last(x)
    rm, rv, momentum, n = (None, None, 0.0, 2) if running is None else running
    s1, s2, parts, sums = _chan_sums(x, None, None, cl)  # sums: alive until launched
    stats = cupy.empty((5, c), acc)  # mean, var, rstd, scale, bias: one allocation
    mean, var, rstd = stats[0], stats[1], stats[2]
    scale, bias = _rows(stats, c, 2, first=3)
    _fn("bn_stats", x.dtype)(
        (-(-c // 4),),
        (128,),
        (
            ptr(x),
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
            np.int64(1 if cl else x.size // max(1, x.shape[0] * c)),
            np.int64(x.size // c),
            np.float64(eps),
            null() if rm is None else rm,
            null() if rv is None else rv,
            np.float64(momentum),
            np.float64(n / (n - 1)),
        ),
    )
    y = _chan_affine(x, None, scale, None, bias, cl)
    return y, mean, var, rstd


def running_ok(running, x) -> bool:
    """Whether ``batch_norm_train`` can update ``running`` (None, or a contiguous CuPy array
    of the accumulation dtype with one value per channel of ``x``) in place."""
    return running is None or (
        type(running).__module__.startswith("cupy")
        and running.dtype == acc_dtype(x.dtype)
        and running.flags.c_contiguous
        and running.size == x.shape[1]
    )


def running_usable(running, stat) -> bool:
    """Whether ``bn_running`` can update ``running`` (None, or a contiguous CuPy array of
    the statistic's dtype) in place."""
    return running is None or (
        type(running).__module__.startswith("cupy")
        and running.dtype == stat.dtype
        and running.flags.c_contiguous
        and running.size == stat.size
    )


def update_running(rmean, rvar, mean, var, momentum: float, n: int) -> None:
    """Running mean and variance (either may be None) updated in place in one launch; the
    variance enters unbiased (times n / (n - 1)), as PyTorch keeps it."""
    c = mean.size
    _fn("bn_running", mean.dtype)(
        (-(-c // 128),),
        (128,),
        (
            null() if rmean is None else rmean,
            null() if rvar is None else rvar,
            mean,
            var,
            np.int32(c),
            np.float64(momentum),
            np.float64(n / (n - 1)),
        ),
    )


def batch_norm_train_grad(g, x, mean, rstd, w, need_x, need_w, need_b):
    """(gx, gw, gb) from the output gradient ``g``; None where not needed. Three launches:
    partial sums, per-channel coefficients, and the input-gradient pass."""
    import cupy

    c = x.shape[1]
    acc = mean.dtype
    cl = channels_last(x)
    s1, s2, parts, sums = _chan_sums(g, x, mean, cl)  # sum g, sum g * (x - mean)
    gw, gb = cupy.empty(c, acc), cupy.empty(c, acc)  # arrays of their own: .grad keeps them
    coeffs = cupy.empty((3, c), acc)  # as they are (rows of one array would be copied)
    k1, k2, k3 = _rows(coeffs, c, 3)
    _fn("bn_grad_coeffs", g.dtype)(
        (-(-c // 4),),
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
    gx = _chan_affine(g, x, k1, k2, k3, cl) if need_x else None
    return gx, gw, gb
