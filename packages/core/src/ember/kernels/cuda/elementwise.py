"""Elementwise CUDA kernels, each one launch over the memory of dense CuPy arrays that share
one layout (C-contiguous or channels last, see compile.storage_order): GELU (the backward
recomputes Phi(x) or the tanh from the input instead of saving it), ReLU (in place too),
float32 <-> 16-bit casts and same-shape sums; ReLU, casts and sums four values per thread."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from .compile import empty_as, function, grid, ptr, storage_order

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

// relu: y = x > 0 (or NaN) ? x : 0; y may be x (in place). One value per thread, or four
// (8- or 16-byte loads) for 16-bit floats and float32.
__device__ __forceinline__ T relu1(T v) { A f = LD(v); return (f > (A)0 || f != f) ? v : ST((A)0); }
__device__ __forceinline__ float relu32(float v) { return (v > 0.f || v != v) ? v : 0.f; }
#define GRID_LOOP(n) for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; \
    i < (n); i += (long long)gridDim.x * blockDim.x)

extern "C" __global__ void relu_fwd(const T* x, T* y, long long size) {
  GRID_LOOP(size) y[i] = relu1(x[i]);
}

extern "C" __global__ void relu_fwd4_half(const ushort4* x, ushort4* y, long long n4) {
  GRID_LOOP(n4) {
    ushort4 v = x[i];
    y[i] = make_ushort4(relu1(v.x), relu1(v.y), relu1(v.z), relu1(v.w));
  }
}

extern "C" __global__ void relu_fwd4_f32(const float4* x, float4* y, long long n4) {
  GRID_LOOP(n4) {
    float4 v = x[i];
    y[i] = make_float4(relu32(v.x), relu32(v.y), relu32(v.z), relu32(v.w));
  }
}

// relu backward from the output: gx = y > 0 ? g : 0
extern "C" __global__ void relu_bwd(const T* __restrict__ g, const T* __restrict__ y,
    T* __restrict__ gx, long long size) {
  GRID_LOOP(size) gx[i] = LD(y[i]) > (A)0 ? g[i] : ST((A)0);
}

extern "C" __global__ void relu_bwd4_half(const ushort4* __restrict__ g,
    const ushort4* __restrict__ y, ushort4* __restrict__ gx, long long n4) {
  GRID_LOOP(n4) {
    ushort4 a = g[i], b = y[i];
    gx[i] = make_ushort4(LD(b.x) > (A)0 ? a.x : 0, LD(b.y) > (A)0 ? a.y : 0,
                         LD(b.z) > (A)0 ? a.z : 0, LD(b.w) > (A)0 ? a.w : 0);
  }
}

extern "C" __global__ void relu_bwd4_f32(const float4* __restrict__ g,
    const float4* __restrict__ y, float4* __restrict__ gx, long long n4) {
  GRID_LOOP(n4) {
    float4 a = g[i], b = y[i];
    gx[i] = make_float4(b.x > 0.f ? a.x : 0.f, b.y > 0.f ? a.y : 0.f, b.z > 0.f ? a.z : 0.f,
                        b.w > 0.f ? a.w : 0.f);
  }
}
"""


_F32 = np.dtype(np.float32)
_HALF = frozenset((np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16)))  # dtypes, not names:
_VEC4 = _HALF | {_F32}  # ml_dtypes' ``dtype.name`` runs Python code in NumPy on every call


def _fn(name, dtype):
    return function("elementwise", _SOURCE, dtype, name)


def _launch(name, ins, out) -> None:
    """Kernel ``name`` over the memory of ``ins`` and ``out`` (dense, one layout) as flat
    vectors: four values per thread (``name`` + ``4_half`` / ``4_f32``) where the dtype, size
    and alignment allow, else one."""
    n = out.size
    if not n:
        return
    arrays = [ptr(a) for a in (*ins, out)]
    dt = out.dtype
    if dt in _VEC4 and n % 4 == 0 and all(int(a) % 16 == 0 for a in arrays):
        name += "4_f32" if dt == _F32 else "4_half"
        n //= 4
    _fn(name, out.dtype)((grid(n),), (256,), (*arrays, np.int64(n)))


def gelu(x, approximate: str):
    """GELU of ``x`` (exact erf form, or ``approximate="tanh"``)."""
    y = empty_as(x)
    if x.size:
        args = (ptr(x), ptr(y), np.int64(x.size), np.int32(approximate == "tanh"))
        _fn("gelu_fwd", x.dtype)((grid(x.size),), (256,), args)
    return y


def gelu_grad(g, x, approximate: str):
    """``g * GELU'(x)`` (``g`` and ``x`` in one layout)."""
    gx = empty_as(x)
    if x.size:
        tanh = np.int32(approximate == "tanh")
        args = (ptr(g), ptr(x), ptr(gx), np.int64(x.size), tanh)
        _fn("gelu_bwd", x.dtype)((grid(x.size),), (256,), args)
    return gx


def relu(x, out=None):
    """max(x, 0) (NaN stays NaN), into ``out`` when given (``out`` may be ``x``)."""
    y = empty_as(x) if out is None else out
    _launch("relu_fwd", [x], y)
    return y


def relu_grad(g, y):
    """``g`` where the relu output ``y`` is positive, else 0 (``g`` in ``y``'s layout)."""
    gx = empty_as(y)
    _launch("relu_bwd", [g, y], gx)
    return gx


def _vec4_ok(*arrays) -> bool:
    """Dense arrays of one shape and layout, a size that is a multiple of 4, 16-byte aligned."""
    a = arrays[0]
    order = storage_order(a)
    if not a.size or a.size % 4 or order is None:
        return False
    return all(
        b.shape == a.shape and storage_order(b) == order and b.data.ptr % 16 == 0 for b in arrays
    )


def cast(x, dtype):
    """``x.astype(dtype)`` between float32 and bfloat16/float16 in one vectorized launch (the
    result in ``x``'s layout), or None where this kernel does not apply (other dtypes, a
    non-dense or unaligned ``x``, a size not a multiple of 4)."""
    src, dst = x.dtype, np.dtype(dtype)
    if not ((src == _F32 and dst in _HALF) or (dst == _F32 and src in _HALF)):
        return None
    if not _vec4_ok(x):
        return None
    y = empty_as(x, dtype)
    n4 = x.size // 4
    name, dt = ("f32_to_half", dst) if src == _F32 else ("half_to_f32", src)
    _fn(name, dt)((grid(n4),), (256,), (ptr(x), ptr(y), np.int64(n4)))
    return y


def add(a, b):
    """``a + b`` for two same-shape, same-dtype arrays stored in one dense layout (float32,
    bfloat16, float16; 16-byte aligned, size a multiple of 4) in one vectorized launch, or
    None."""
    if a.dtype != b.dtype or a.shape != b.shape or a.dtype not in _VEC4:
        return None
    if not _vec4_ok(a, b):
        return None
    y = empty_as(a)
    n4 = a.size // 4
    args = (ptr(a), ptr(b), ptr(y), np.int64(n4))
    _fn("add4_f32" if a.dtype == _F32 else "add4_half", a.dtype)((grid(n4),), (256,), args)
    return y
