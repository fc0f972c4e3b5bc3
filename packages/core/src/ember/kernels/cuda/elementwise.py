"""Elementwise CUDA kernels on C-contiguous CuPy arrays, each one launch: GELU (the backward
recomputes Phi(x) or the tanh from the input instead of saving it), ReLU (in place too),
float32 <-> 16-bit casts and same-shape sums, the last two four values per thread."""

from __future__ import annotations

import numpy as np

from .compile import function, grid, raw

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

// 16-bit float <-> float32 casts, four values per thread (8-byte loads, 16-byte stores)
extern "C" __global__ void half_to_f32(const ushort4* __restrict__ x, float4* __restrict__ y,
    long long n4) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n4;
       i += (long long)gridDim.x * blockDim.x) {
    ushort4 v = x[i];
    y[i] = make_float4(LD(v.x), LD(v.y), LD(v.z), LD(v.w));
  }
}

extern "C" __global__ void f32_to_half(const float4* __restrict__ x, ushort4* __restrict__ y,
    long long n4) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n4;
       i += (long long)gridDim.x * blockDim.x) {
    float4 v = x[i];
    y[i] = make_ushort4(ST(v.x), ST(v.y), ST(v.z), ST(v.w));
  }
}

// same-shape sums, four values per thread: 16-bit floats (via A) and float32
extern "C" __global__ void add4_half(const ushort4* __restrict__ a,
    const ushort4* __restrict__ b, ushort4* __restrict__ y, long long n4) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n4;
       i += (long long)gridDim.x * blockDim.x) {
    ushort4 u = a[i], v = b[i];
    y[i] = make_ushort4(ST(LD(u.x) + LD(v.x)), ST(LD(u.y) + LD(v.y)),
                        ST(LD(u.z) + LD(v.z)), ST(LD(u.w) + LD(v.w)));
  }
}

extern "C" __global__ void add4_f32(const float4* __restrict__ a, const float4* __restrict__ b,
    float4* __restrict__ y, long long n4) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n4;
       i += (long long)gridDim.x * blockDim.x) {
    float4 u = a[i], v = b[i];
    y[i] = make_float4(u.x + v.x, u.y + v.y, u.z + v.z, u.w + v.w);
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
"""


def _fn(name, dtype):
    return function("elementwise", _SOURCE, dtype, name)


def gelu(x, approximate: str):
    """GELU of ``x`` (exact erf form, or ``approximate="tanh"``)."""
    import cupy

    y = cupy.empty_like(x)
    if x.size:
        _fn("gelu_fwd", x.dtype)(
            (grid(x.size),),
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
            (grid(x.size),),
            (256,),
            (raw(g), raw(x), raw(gx), np.int64(x.size), np.int32(approximate == "tanh")),
        )
    return gx


def relu(x, out=None):
    """max(x, 0) (NaN stays NaN), into ``out`` when given (``out`` may be ``x``)."""
    import cupy

    y = cupy.empty_like(x) if out is None else out
    if x.size:
        _fn("relu_fwd", x.dtype)((grid(x.size),), (256,), (raw(x), raw(y), np.int64(x.size)))
    return y


def relu_grad(g, y):
    """``g`` where the relu output ``y`` is positive, else 0."""
    import cupy

    gx = cupy.empty_like(y)
    if y.size:
        _fn("relu_bwd", y.dtype)(
            (grid(y.size),), (256,), (raw(g), raw(y), raw(gx), np.int64(y.size))
        )
    return gx


_HALF = ("bfloat16", "float16")


def cast(x, dtype):
    """``x.astype(dtype)`` between float32 and bfloat16/float16 in one vectorized launch, or
    None where this kernel does not apply (other dtypes, a non-contiguous or unaligned ``x``,
    a size not a multiple of 4)."""
    import cupy

    src, dst = x.dtype.name, np.dtype(dtype).name
    if {src, dst} not in ({"float32", "bfloat16"}, {"float32", "float16"}):
        return None
    if not x.flags.c_contiguous or x.size % 4 or x.data.ptr % 16 or not x.size:
        return None
    y = cupy.empty(x.shape, dtype)
    n4 = x.size // 4
    if src == "float32":
        _fn("f32_to_half", np.dtype(dtype))(
            (grid(n4),), (256,), (x, y.view(np.uint16), np.int64(n4))
        )
    else:
        _fn("half_to_f32", x.dtype)((grid(n4),), (256,), (x.view(np.uint16), y, np.int64(n4)))
    return y


def add(a, b):
    """``a + b`` for two same-shape, same-dtype C-contiguous arrays (float32, bfloat16,
    float16; 16-byte aligned, size a multiple of 4) in one vectorized launch, or None."""
    import cupy

    if a.dtype != b.dtype or a.shape != b.shape or a.dtype.name not in ("float32", *_HALF):
        return None
    if not (a.flags.c_contiguous and b.flags.c_contiguous) or a.size % 4 or not a.size:
        return None
    if a.data.ptr % 16 or b.data.ptr % 16:
        return None
    y = cupy.empty_like(a)
    n4 = a.size // 4
    if a.dtype == np.float32:
        _fn("add4_f32", a.dtype)((grid(n4),), (256,), (a, b, y, np.int64(n4)))
    else:
        args = (raw(a), raw(b), raw(y), np.int64(n4))
        _fn("add4_half", a.dtype)((grid(n4),), (256,), args)
    return y
