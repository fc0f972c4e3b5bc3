"""Matrix products on CuPy arrays straight through cuBLAS (``cublasGemmStridedBatchedEx``).

CuPy's ``matmul`` cost 40-65 us of host time per call on the H100 machine, and its stacked
float32 products ran without TF32 (FFMA kernels in the profile) while 2-D ones used it; this
module describes both operands to cuBLAS as they lie in
memory (row-major, or transposed views, with any uniform batch stride) and calls it once, with
TF32 when ``ember.backends.cuda.matmul.allow_tf32`` is set. Whatever it cannot describe (other
dtypes, broadcast batches, irregular strides) returns None and the caller uses CuPy. While a
stream captures a CUDA graph, CuPy's cuBLAS wrapper refuses every call; the same call then goes
to cuBLAS's C entry point through ctypes (``captured_gemm``).

cuBLAS is column-major: a row-major C (m, n) is the column-major C^T (n, m), so
C = A @ B is computed as C^T = B^T A^T, with B first.
"""

from __future__ import annotations

import numpy as np

from ...backend.memory_format import batch_stride as _batch_stride
from ...backends import cuda as backends_cuda
from .compile import dtype_name

_DTYPES = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 14}  # cudaDataType
_COMPUTE_32F, _COMPUTE_32F_TF32, _COMPUTE_64F = 68, 77, 70  # cublasComputeType_t
_OP_N, _OP_T = 0, 1
_ALGO_DEFAULT = -1
_SCALARS = {
    np.dtype(np.float32): (np.ones(1, np.float32), np.zeros(1, np.float32)),
    np.dtype(np.float64): (np.ones(1, np.float64), np.zeros(1, np.float64)),
}


def _operand(shape, strides):
    """(op, ld) for a matrix of ``shape`` (r, c) with element ``strides`` as the cuBLAS
    operand that is its transpose: column-major memory that is the matrix transposed (unit
    column stride) is taken as is (op N); memory that is the matrix itself (unit row stride) is
    transposed (op T). None when neither stride is 1 or the leading dimension is too small."""
    r, c = shape
    sr, sc = strides
    if sc == 1 or c == 1:  # memory, read column-major, is the transpose (c x r), ld = sr
        ld = sr if r > 1 else max(c, 1)
        if ld >= max(1, c):
            return _OP_N, ld
    if sr == 1 or r == 1:  # memory, read column-major, is the matrix (r x c), ld = sc
        ld = sc if c > 1 else max(r, 1)
        if ld >= max(1, r):
            return _OP_T, ld
    return None


def plan(a_shape, a_strides, b_shape, b_strides):
    """The cuBLAS arguments for ``A @ B`` (element strides), or None: a dict with the
    column-major (m, n, k), the operands' ops, leading dimensions and batch strides, and the
    batch count. A 2-D ``B`` under a stacked ``A`` is shared by every batch (stride 0)."""
    if len(a_shape) < 2 or len(b_shape) < 2:
        return None
    m, k = a_shape[-2:]
    k2, n = b_shape[-2:]
    if k != k2 or 0 in (m, n, k):
        return None
    batch = tuple(a_shape[:-2])
    if len(b_shape) > 2 and tuple(b_shape[:-2]) != batch:
        return None
    count = int(np.prod(batch, dtype=np.int64)) if batch else 1
    sa = _batch_stride(batch, a_strides[:-2])
    sb = _batch_stride(tuple(b_shape[:-2]), b_strides[:-2]) if len(b_shape) > 2 else 0
    if sa is None or sb is None:
        return None
    # first operand B^T (n x k), second A^T (k x m)
    ob = _operand((k, n), b_strides[-2:])
    oa = _operand((m, k), a_strides[-2:])
    if ob is None or oa is None:
        return None
    if max(m, n, k, count) >= 2**31:
        return None
    return {
        "m": n, "n": m, "k": k,
        "op_first": ob[0], "ld_first": ob[1], "stride_first": sb,
        "op_second": oa[0], "ld_second": oa[1], "stride_second": sa,
        "ldc": n, "stride_c": m * n, "count": count, "out_shape": batch + (m, n),
    }  # fmt: skip


def enabled() -> bool:
    """True unless ``EMBER_CUBLAS_DIRECT=0`` (then products go through ``cupy.matmul``). On
    by default since an H100 run passed its tests and raised GPT-2 TF32 training from 0.69 to
    0.86 of PyTorch's throughput (bench/gpu_notes.md, run 4)."""
    import os

    return os.environ.get("EMBER_CUBLAS_DIRECT", "1") != "0"


def _strides(a):
    return tuple(s // a.itemsize for s in a.strides)


def matmul(a, b):
    """``a @ b`` for CuPy arrays in one cuBLAS call (or one per leading index, when only the
    inner batch dims share a stride: attention's heads split from a (B, S, H, D) buffer), or
    None where ``plan`` declines (the caller then uses ``cupy.matmul``)."""
    if a.dtype != b.dtype or dtype_name(a.dtype) not in _DTYPES or a.size == 0 or b.size == 0:
        return None
    if any(s % a.itemsize for s in a.strides + b.strides) or a.device.id != b.device.id:
        return None
    import cupy

    p = plan(a.shape, _strides(a), b.shape, _strides(b))
    if p is not None:
        out = cupy.empty(p["out_shape"], a.dtype)
        _call(a, b, out, p)
        return out
    if a.ndim < 4 or b.ndim != a.ndim or a.shape[0] != b.shape[0] or a.shape[0] > 64:
        return None
    p = plan(a.shape[1:], _strides(a)[1:], b.shape[1:], _strides(b)[1:])
    if p is None:
        return None
    out = cupy.empty((a.shape[0],) + p["out_shape"], a.dtype)
    for i in range(a.shape[0]):
        _call(a[i], b[i], out[i], p)
    return out


def _cublas():
    try:
        from cupy_backends.cuda.libs import cublas
    except ImportError:  # older CuPy layouts
        from cupy.cuda import cublas
    return cublas


def _call(a, b, out, p) -> None:
    import cupy  # a plain import: ``from cupy.cuda import device`` runs importlib per call

    cublas = _cublas()
    dt = _DTYPES[dtype_name(a.dtype)]  # cached: bfloat16's dtype.name runs Python code
    if a.dtype == np.float64:
        compute, scalar = _COMPUTE_64F, np.dtype(np.float64)
    else:
        tf32 = a.dtype == np.float32 and backends_cuda.STATE.precision != "highest"
        compute, scalar = (_COMPUTE_32F_TF32 if tf32 else _COMPUTE_32F), np.dtype(np.float32)
    one, zero = _SCALARS[scalar]
    handle = cupy.cuda.device.get_cublas_handle()
    cublas.setPointerMode(handle, 0)  # CUBLAS_POINTER_MODE_HOST: alpha and beta on the host
    args = (
        handle,
        p["op_first"],
        p["op_second"],
        p["m"],
        p["n"],
        p["k"],
        one.ctypes.data,
        b.data.ptr,
        dt,
        p["ld_first"],
        p["stride_first"],
        a.data.ptr,
        dt,
        p["ld_second"],
        p["stride_second"],
        zero.ctypes.data,
        out.data.ptr,
        dt,
        p["ldc"],
        p["stride_c"],
        p["count"],
        compute,
        _ALGO_DEFAULT,
    )
    try:
        cublas.gemmStridedBatchedEx(*args)
    except NotImplementedError:  # CuPy refuses any cuBLAS call while the stream captures
        stream = cupy.cuda.get_current_stream()
        if not stream.is_capturing():
            raise
        captured_gemm(stream.ptr, args)


_C = {}  # "lib": the cuBLAS library CuPy loaded, opened again through ctypes


def _cublas_c():
    """cuBLAS's C entry points through ctypes (the library already in the process)."""
    lib = _C.get("lib")
    if lib is None:
        import ctypes

        for name in ("libcublas.so.13", "libcublas.so.12", "libcublas.so"):
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        else:
            raise RuntimeError("matmul: cuBLAS is not loadable through ctypes during capture")
        p, i, ll = ctypes.c_void_p, ctypes.c_int, ctypes.c_longlong
        lib.cublasSetStream_v2.argtypes = [p, p]
        lib.cublasGemmStridedBatchedEx.argtypes = [p, i, i, i, i, i, p, p, i, i, ll]
        lib.cublasGemmStridedBatchedEx.argtypes += [p, i, i, ll, p, p, i, i, ll, i, i, i]
        _C["lib"] = lib
    return lib


def captured_gemm(stream: int, args: tuple) -> None:
    """``cublasGemmStridedBatchedEx(*args)`` on ``stream`` without CuPy's wrapper, which
    raises NotImplementedError whenever the stream is capturing a CUDA graph (cuBLAS itself
    allows capture: the host-mode alpha and beta are read when the call is captured)."""
    lib = _cublas_c()
    status = lib.cublasSetStream_v2(args[0], stream)
    if status == 0:
        status = lib.cublasGemmStridedBatchedEx(*args)
    if status != 0:
        raise RuntimeError(f"matmul: cuBLAS returned status {status} while capturing")
