"""Stacked matrix products on NumPy arrays in one call of OpenBLAS's batched GEMM
(``cblas_sgemm_batch_strided`` / ``cblas_dgemm_batch_strided``, in the OpenBLAS NumPy links).

Why: NumPy's ``matmul`` over a stack calls GEMM once per matrix, and each call splits its one
small product between the BLAS threads, which for attention's 128 x 64 x 128 products costs
as much as it saves; the batched call gives whole products to each thread. (32, 128, 64) @
(32, 64, 128) float32 on this 2-core machine: 0.65 -> 0.32 ms; (32, 128, 128) @ (32, 128, 64):
0.35 -> 0.27 ms. Each product is the same GEMM as NumPy's, so results agree to rounding.

``matmul`` returns None (the caller uses NumPy) for what it cannot describe: other dtypes,
broadcast batch shapes, matrices with no unit stride, batch dims that share no stride (the
leading one is looped over when the inner ones do: heads split from a (B, S, H, D) buffer),
and products smaller than ``_MIN_MNK`` multiply-adds (see there).
"""

from __future__ import annotations

import ctypes
import math

import numpy as np

from ...backend.memory_format import batch_stride
from .blas1 import numpy_blas

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_SYMBOLS = {
    np.dtype(np.float32): ("cblas_sgemm_batch_strided", "scipy_cblas_sgemm_batch_strided64_"),
    np.dtype(np.float64): ("cblas_dgemm_batch_strided", "scipy_cblas_dgemm_batch_strided64_"),
}
_FNS: dict = {}  # dtype -> the bound function, or None where the BLAS has none
_MAX_LOOP = 64  # leading indices looped over when only the inner batch dims share a stride
# OpenBLAS up to 0.3.31 (NumPy's bundled build included) sends batches of products with
# m * n * k <= 100**3 to its small-matrix kernels, which crash in DYNAMIC_ARCH builds (fixed
# upstream in August 2026, OpenMathLib/OpenBLAS#5980; reproduced here: 100x100x100 crashes,
# 100x100x101 does not). Smaller products stay with NumPy, with a margin.
_MIN_MNK = 1 << 20


def _function(dtype):
    """The bound batched GEMM for ``dtype`` (64-bit integers, as NumPy's OpenBLAS), or None."""
    if dtype in _FNS:
        return _FNS[dtype]
    handle, fn = numpy_blas(), None
    for name in _SYMBOLS[dtype] if handle is not None else ():
        fn = getattr(handle, name, None)
        if fn is not None:
            i, n, p = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
            real = ctypes.c_float if dtype == np.float32 else ctypes.c_double
            fn.argtypes = [i, i, i, n, n, n, real, p, n, n, p, n, n, real, p, n, n, n]
            fn.restype = None
            break
    _FNS[dtype] = fn
    return fn


def _matrix(shape, strides, item):
    """(transpose flag, leading dimension) for a matrix of ``shape`` with byte ``strides``
    as a row-major BLAS operand, or None (no unit stride, or a size-1 dim's stride)."""
    r, c = shape
    sr, sc = strides
    if r < 2 or c < 2:
        return None  # NumPy handles the degenerate cases
    if sc == item and sr % item == 0 and sr >= c * item:
        return _NO_TRANS, sr // item
    if sr == item and sc % item == 0 and sc >= r * item:
        return _TRANS, sc // item
    return None


def matmul(a, b, out=None, alpha: float = 1.0):
    """``alpha * (a @ b)`` for two stacked float32/float64 NumPy arrays of one batch shape, in
    one batched GEMM call (or one per leading index), or None where NumPy should do it.
    ``out``, when given, receives the result: any array of the result's shape and dtype whose
    matrices have unit column stride (a (B, H, L, D) view of a (B, L, H, D) buffer, say)."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or a.dtype != b.dtype:
        return None
    if not (a.flags.aligned and b.flags.aligned):
        return None
    if a.dtype not in _SYMBOLS or a.ndim < 3 or a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2]:
        return None
    (m, k), (k2, n) = a.shape[-2:], b.shape[-2:]
    batch = a.shape[:-2]
    count = math.prod(batch)
    if k != k2 or count < 2 or m * n * k < _MIN_MNK:
        return None
    item = a.itemsize
    op_a = _matrix((m, k), a.strides[-2:], item)
    op_b = _matrix((k, n), b.strides[-2:], item)
    fn = None if op_a is None or op_b is None else _function(a.dtype)
    if fn is None:
        return None
    if out is None:
        out = np.empty(batch + (m, n), a.dtype)
    elif not _out_ok(out, batch + (m, n), a.dtype):
        return None
    shape = (m, n, k, op_a, op_b, out.strides[-2] // item, item)
    sa, sb = batch_stride(batch, a.strides[:-2]), batch_stride(batch, b.strides[:-2])
    sc = batch_stride(batch, out.strides[:-2])
    if _fits(shape, (sa, sb, sc), count):
        _call(fn, shape, alpha, (a, sa), (b, sb), (out, sc), count)
        return out
    if len(batch) < 2 or batch[0] > _MAX_LOOP:
        return None
    inner = [batch_stride(batch[1:], x.strides[1:-2]) for x in (a, b, out)]
    if not _fits(shape, inner, count // batch[0]):
        return None
    for i in range(batch[0]):
        _call(fn, shape, alpha, (a[i], inner[0]), (b[i], inner[1]), (out[i], inner[2]),
              count // batch[0])  # fmt: skip
    return out


def _out_ok(out, shape, dtype) -> bool:
    """Whether ``out`` can take the product: the shape and dtype, aligned and writeable, each
    matrix's rows at a positive stride of whole elements with unit stride along them."""
    if type(out) is not np.ndarray or out.shape != shape or out.dtype != dtype:
        return False
    if not (out.flags.aligned and out.flags.writeable):
        return False
    rows, cols = out.strides[-2:]
    item = out.itemsize
    return cols == item and rows % item == 0 and rows >= shape[-1] * item


def _fits(shape, strides, count) -> bool:
    """Whether the batch strides exist and every size, leading dimension and stride is a
    non-negative integer below 2**31 (what any build of the call takes; a reversed view's
    negative batch stride goes to NumPy)."""
    if any(s is None for s in strides):
        return False
    m, n, k, (_, lda), (_, ldb), ldc, item = shape
    values = (m, n, k, lda, ldb, ldc, *(s // item for s in strides), m * n, count)
    return all(0 <= v < 2**31 for v in values)


def _call(fn, shape, alpha, a, b, c, count) -> None:
    """One batched GEMM: ``count`` products ``alpha * a @ b`` into ``c``; each of ``a``, ``b``,
    ``c`` is (array, byte stride between its matrices)."""
    m, n, k, (ta, lda), (tb, ldb), ldc, item = shape
    (pa, sa), (pb, sb), (pc, sc) = ((x.ctypes.data, s // item) for x, s in (a, b, c))
    fn(_ROW_MAJOR, ta, tb, m, n, k, alpha, pa, lda, sa, pb, ldb, sb, 0.0, pc, ldc, sc, count)
