"""2-D max pooling on CUDA in one launch each way, for (N, C, H, W) CuPy arrays stored
C-contiguous or channels last (the output and gradients keep the input's layout).

The forward writes each window's maximum and its in-window position (row-major, the first
maximum; a NaN wins and the first NaN is kept, as ember's CPU kernels pick). The backward is
a gather, not a scatter: each input element sums the gradients of the windows whose recorded
maximum it is, so overlapping windows (ResNet's 3x3 stride 2) need no atomics and the result
does not depend on thread order. The composite kernels (kernels/cpu/pool.py) took about 60
CuPy launches for the same work.
"""

from __future__ import annotations

import numpy as np

from .compile import (
    as_layout,
    channels_last,
    dtype_name,
    empty_4d,
    function,
    grid,
    ptr,
    storage_order,
)

_SOURCE = r"""
#define GEOM int n, int c, int h, int w, int oh, int ow, int kh, int kw, int sh, int sw, \
    int ph, int pw, int dh, int dw, int cl

// position i of an (n, c, ny, nx) array -> (y, x), and the flat offset of the same (n, c) at
// (0, 0) in an (n, c, my, mx) array of the same layout with its row and column strides
__device__ __forceinline__ void locate(long long i, int c, int cl, int ny, int nx, int my,
    int mx, int* y, int* x, long long* base, long long* ys, long long* xs) {
  if (cl) {
    long long ch = i % c, r = i / c;
    *x = (int)(r % nx); r /= nx; *y = (int)(r % ny); r /= ny;
    *base = r * my * mx * c + ch; *ys = (long long)mx * c; *xs = c;
  } else {
    long long r = i / nx;
    *x = (int)(i % nx); *y = (int)(r % ny); r /= ny;
    *base = r * my * mx; *ys = mx; *xs = 1;
  }
}

extern "C" __global__ void maxpool_fwd(const T* __restrict__ x, T* __restrict__ y,
    int* __restrict__ idx, GEOM) {
  long long total = (long long)n * c * oh * ow;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    long long xb, xys, xxs;
    int oy, ox;
    locate(i, c, cl, oh, ow, h, w, &oy, &ox, &xb, &xys, &xxs);
    T best = x[xb];
    A bv = -__int_as_float(0x7f800000);
    int bi = -1;
    for (int ky = 0; ky < kh; ++ky) {
      int iy = oy * sh - ph + ky * dh;
      if (iy < 0 || iy >= h) continue;
      for (int kx = 0; kx < kw; ++kx) {
        int ix = ox * sw - pw + kx * dw;
        if (ix < 0 || ix >= w) continue;
        T t = x[xb + iy * xys + ix * xxs];
        A v = LD(t);
        if (bi < 0 || v > bv || (v != v && bv == bv)) { best = t; bv = v; bi = ky * kw + kx; }
      }
    }
    y[i] = bi < 0 ? ST(bv) : best;  // a window wholly in the padding: -inf, as PyTorch
    idx[i] = bi < 0 ? 0 : bi;
  }
}

// gx[n, c, iy, ix] = the sum of gy over the windows whose maximum sits at (iy, ix)
extern "C" __global__ void maxpool_bwd(const T* __restrict__ gy, const int* __restrict__ idx,
    T* __restrict__ gx, GEOM) {
  long long total = (long long)n * c * h * w;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    long long ob, oys, oxs;
    int iy, ix;
    locate(i, c, cl, h, w, oh, ow, &iy, &ix, &ob, &oys, &oxs);
    A acc = 0;
    for (int ky = 0; ky < kh; ++ky) {
      int ty = iy + ph - ky * dh;
      if (ty < 0 || ty % sh) continue;
      int oy = ty / sh;
      if (oy >= oh) continue;
      for (int kx = 0; kx < kw; ++kx) {
        int tx = ix + pw - kx * dw;
        if (tx < 0 || tx % sw) continue;
        int ox = tx / sw;
        if (ox >= ow) continue;
        long long o = ob + oy * oys + ox * oxs;
        if (idx[o] == ky * kw + kx) acc += LD(gy[o]);
      }
    }
    gx[i] = ST(acc);
  }
}
"""


def _geom(x_shape, out_hw, k, s, p, d, cl):
    """The kernels' 15 geometry arguments (see GEOM)."""
    return tuple(np.int32(v) for v in (*x_shape, *out_hw, *k, *s, *p, *d, int(cl)))


def applies(x) -> bool:
    """Whether these kernels take ``x``: a dense 4-D CuPy float array under 2**31 elements."""
    return (
        type(x).__module__.startswith("cupy")
        and x.ndim == 4
        and 0 < x.size < 2**31
        and dtype_name(x.dtype) is not None
        and storage_order(x) is not None
    )


def max_pool(x, k, s, p, d, out_hw):
    """(values, in-window argmax as int32), both (N, C, OH, OW) in ``x``'s layout."""
    cl = channels_last(x)
    shape = (*x.shape[:2], *out_hw)
    y = empty_4d(shape, x.dtype, cl)
    idx = empty_4d(shape, np.int32, cl)
    geom = _geom(x.shape, out_hw, k, s, p, d, cl)
    fn = function("pool", _SOURCE, x.dtype, "maxpool_fwd")
    fn((grid(y.size),), (256,), (ptr(x), ptr(y), ptr(idx), *geom))
    return y, idx


def max_pool_grad(g, idx, x_shape, k, s, p, d):
    """The input gradient of ``max_pool`` from the output gradient ``g``, (N, C, H, W) in
    ``idx``'s layout."""
    cl = channels_last(idx)
    ga = as_layout(g, idx, g.dtype)
    gx = empty_4d(tuple(x_shape), g.dtype, cl)
    geom = _geom(x_shape, idx.shape[2:], k, s, p, d, cl)
    fn = function("pool", _SOURCE, g.dtype, "maxpool_bwd")
    fn((grid(gx.size),), (256,), (ptr(ga), ptr(idx), ptr(gx), *geom))
    return gx
