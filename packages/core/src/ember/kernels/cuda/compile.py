"""Compile ember's CUDA C kernels once per dtype through CuPy's NVRTC (``cupy.RawModule``).

Each kernel source is written once against four names: the storage type ``T``, the
accumulation type ``A``, and the conversions ``LD(T) -> A`` and ``ST(A) -> T``. ``module``
prepends the definitions for one dtype. bfloat16 and float16 are stored as 16-bit integers and
converted by bit operations / PTX ``cvt``, so no CUDA header is needed at run time.
"""

from __future__ import annotations

import numpy as np

_PRELUDE = {
    "float32": "typedef float T; typedef float A;\n"
    "__device__ __forceinline__ A LD(T v) { return v; }\n"
    "__device__ __forceinline__ T ST(A v) { return v; }\n",
    "float64": "typedef double T; typedef double A;\n"
    "__device__ __forceinline__ A LD(T v) { return v; }\n"
    "__device__ __forceinline__ T ST(A v) { return v; }\n",
    "bfloat16": "typedef unsigned short T; typedef float A;\n"
    "__device__ __forceinline__ A LD(T v) { return __uint_as_float(((unsigned int)v) << 16); }\n"
    "__device__ __forceinline__ T ST(A f) {\n"
    "  unsigned int u = __float_as_uint(f);\n"
    "  if ((u & 0x7fffffffu) > 0x7f800000u) return (T)((u >> 16) | 0x40u);\n"
    "  u += 0x7fffu + ((u >> 16) & 1u);\n"
    "  return (T)(u >> 16);\n"
    "}\n",
    "float16": "typedef unsigned short T; typedef float A;\n"
    "__device__ __forceinline__ A LD(T v) {\n"
    '  float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v)); return f; }\n'
    "__device__ __forceinline__ T ST(A f) {\n"
    '  unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }\n',
}

# Block-wide sum and max over ``A`` values (blockDim.x a multiple of 32, at most 1024); ``sh``
# holds 33 values. Every thread gets the result.
_BLOCK_REDUCE = r"""
__device__ __forceinline__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ A warp_max(A v) {
  for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ A block_sum(A v, A* sh) {
  v = warp_sum(v);
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  if (wid == 0) {
    A t = lane < nw ? sh[lane] : (A)0;
    t = warp_sum(t);
    if (lane == 0) sh[32] = t;
  }
  __syncthreads();
  return sh[32];
}
__device__ A block_max(A v, A* sh) {
  v = warp_max(v);
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  if (wid == 0) {
    A t = lane < nw ? sh[lane] : (A)(-__int_as_float(0x7f800000));
    t = warp_max(t);
    if (lane == 0) sh[32] = t;
  }
  __syncthreads();
  return sh[32];
}
"""

_MODULES: dict = {}


_NAMES: dict = {}


def dtype_name(dtype) -> str | None:
    """The prelude key for a NumPy dtype, or None when ember has no CUDA kernel for it
    (cached: ``dtype.name`` of ml_dtypes' bfloat16 runs Python code in NumPy, ~2.5 us)."""
    name = _NAMES.get(dtype, False)
    if name is False:
        name = np.dtype(dtype).name
        name = _NAMES[dtype] = name if name in _PRELUDE else None
    return name


def module(key: str, source: str, dtype):
    """The ``cupy.RawModule`` of ``source`` for ``dtype``, compiled on first use."""
    name = dtype_name(dtype)
    cached = _MODULES.get((key, name))
    if cached is None:
        import cupy

        code = _PRELUDE[name] + _BLOCK_REDUCE + source
        cached = _MODULES[(key, name)] = cupy.RawModule(code=code, options=("-std=c++14",))
    return cached


_FUNCTIONS: dict = {}


def function(key: str, source: str, dtype, name: str):
    """The kernel ``name`` of ``module(key, source, dtype)``, cached: CuPy's ``get_function``
    costs about 10 us per call on the host, more than the launch itself."""
    fkey = (key, dtype, name)  # dtype as given: equal dtypes hash alike, no np.dtype() call
    fn = _FUNCTIONS.get(fkey)
    if fn is None:
        fn = _FUNCTIONS[fkey] = module(key, source, dtype).get_function(name)
    return fn


def raw(a):
    """The array as the kernels see it: 16-bit floats as ``uint16`` (same bytes)."""
    return a.view(np.uint16) if a.dtype.itemsize == 2 else a


def null():
    """A null pointer kernel argument (an optional array that is absent)."""
    import cupy

    return cupy.uint64(0)


def grid(size: int, threads: int = 256) -> int:
    """Blocks for a grid-stride elementwise launch over ``size`` elements (at most 32 per SM
    of a 132-SM card; the loop covers the rest)."""
    return max(1, min(-(-size // threads), 132 * 32))


def acc_dtype(dtype):
    """The accumulation dtype ``A`` for a storage dtype: float64 for float64, else float32."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def usable(*arrays) -> bool:
    """True when every array is a C-contiguous CuPy array of one float dtype with a kernel."""
    if not arrays:
        return False
    dt = arrays[0].dtype
    for a in arrays:
        if a is None:
            continue
        if not type(a).__module__.startswith("cupy") or a.dtype != dt:
            return False
        if not a.flags.c_contiguous:
            return False
    return dtype_name(dt) is not None


_IDENTITY = {n: tuple(range(n)) for n in range(9)}
_LAST = {n: (0, *range(2, n), 1) for n in range(3, 9)}
_BACK = {perm: tuple(int(i) for i in np.argsort(perm)) for perm in _LAST.values()}


def storage_order(a):
    """The axes of ``a`` in memory order when it is dense: ``(0, ..., ndim - 1)`` when it is
    C-contiguous, ``(0, 2, ..., 1)`` when an (N, C, *spatial) array is stored channels last,
    None for any other layout. Read from the strides alone (no views: each CuPy view costs
    microseconds of host time, and the kernels ask this on every call)."""
    c = getattr(a, "_c_contiguous", None)  # CuPy's own flag: ``flags`` builds an object
    if c if c is not None else a.flags.c_contiguous:
        return _IDENTITY.get(a.ndim) or tuple(range(a.ndim))
    perm = _LAST.get(a.ndim)
    if perm is None:
        return None
    shape, strides, expect = a.shape, a.strides, a.itemsize
    for ax in reversed(perm):
        if shape[ax] != 1 and strides[ax] != expect:
            return None
        expect *= shape[ax]
    return perm


def channels_last(a) -> bool:
    """Whether ``a`` is stored channels last and not also C-contiguous (dims of size 1 can
    make both true; then the C-contiguous reading wins)."""
    return storage_order(a) is _LAST.get(a.ndim)


def ptr(a):
    """A dense array's memory as a kernel argument: the address of its first element, which
    for any dense layout (C-contiguous or channels last) is the start of its buffer."""
    return np.uint64(a.data.ptr)


def empty_as(a, dtype=None):
    """An uninitialized CuPy array of ``a``'s shape in ``a``'s layout (C-contiguous, or
    channels last when ``a`` is stored so)."""
    import cupy

    order = storage_order(a)
    dt = a.dtype if dtype is None else dtype
    if order is None or order is not _LAST.get(a.ndim):  # C-contiguous, or not dense
        return cupy.empty(a.shape, dt)
    return empty_strided(a.shape, dt, order)


def empty_strided(shape, dtype, order):
    """An uninitialized CuPy array of ``shape`` whose axes lie in memory in ``order`` (the
    last one fastest). It owns its memory (``base`` is None, as a fresh ``cupy.empty``), so
    autograd stores it as a gradient without the copy it makes of views."""
    import cupy

    key = (tuple(shape), dtype, order)
    hit = _STRIDED.get(key)
    if hit is None:
        itemsize = np.dtype(dtype).itemsize
        strides, step = [0] * len(shape), itemsize
        for ax in reversed(order):
            strides[ax] = step
            step *= shape[ax]
        hit = _STRIDED[key] = (tuple(shape), tuple(strides), step)
        if len(_STRIDED) > 4096:  # shapes seen in one process are few; bound it anyway
            _STRIDED.clear()
    shape, strides, nbytes = hit
    return cupy.ndarray(shape, dtype, cupy.cuda.alloc(nbytes), strides)


_STRIDED: dict = {}  # (shape, dtype, order) -> (shape, strides, bytes) for empty_strided


def empty_4d(shape, dtype, channels_last: bool):
    """An uninitialized (N, C, H, W) CuPy array, C-contiguous or stored channels last."""
    import cupy

    if not channels_last:
        return cupy.empty(shape, dtype)
    return empty_strided(shape, dtype, _LAST[4])


def as_layout(a, like, dtype=None):
    """``a`` (of ``like``'s shape) stored densely in ``like``'s layout and ``dtype``: itself
    when it already is, else a copy."""
    dt = a.dtype if dtype is None else np.dtype(dtype)
    if a.dtype == dt and a.shape == like.shape:
        if a.itemsize == like.itemsize and a.strides == like.strides:  # the common case
            if a.flags.c_contiguous or storage_order(a) is not None:
                return a
        else:
            order = storage_order(a)
            if order is not None and order == storage_order(like):
                return a
    out = empty_as(like, dt)
    out[...] = a
    return out


def usable_dense(*arrays) -> bool:
    """True when every array is a CuPy array of one float dtype with a kernel, all of one
    shape and stored densely in one layout (C-contiguous or channels last): the elementwise
    kernels then run over their memory as flat vectors."""
    if not arrays:
        return False
    first = arrays[0]
    if not type(first).__module__.startswith("cupy") or dtype_name(first.dtype) is None:
        return False
    order = storage_order(first)
    if order is None:
        return False
    for a in arrays[1:]:  # one dtype: equal strides are one layout (size-1 dims may differ)
        if not type(a).__module__.startswith("cupy") or a.dtype != first.dtype:
            return False
        if a.shape != first.shape:
            return False
        if a.strides != first.strides and storage_order(a) != order:
            return False
    return True


def row_block(n: int) -> int:
    """Threads per row block: enough to cover short rows, at most 1024."""
    for t in (64, 128, 256, 512):
        if n <= 4 * t:
            return t
    return 1024
