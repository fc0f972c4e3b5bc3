"""BLAS level-1 updates (``y += a * x``, ``x *= a``) on contiguous float32/float64 NumPy
arrays, called in the OpenBLAS that NumPy itself links (found by threadpoolctl).

Why: an optimizer step is a few whole-array updates. ``p -= lr * buf`` in NumPy is two passes
(a product array, then the subtraction) and runs on one core; BLAS's ``axpy`` is one pass, one
rounding (a fused multiply-add, as PyTorch's ``add_(x, alpha=a)`` rounds), and uses the BLAS
worker threads that sit idle between matrix products. The MLP benchmark's SGD step: 417 us ->
248 us.

Every function returns False when it did nothing (no usable BLAS, another dtype, a
non-contiguous array): the caller then runs its NumPy code.
"""

from __future__ import annotations

import ctypes

import numpy as np

_FUNCS: list = []  # [None] when no BLAS was found, else [{name: function}]

# NumPy >= 2 wheels bundle scipy-openblas with 64-bit integers and these symbol names; a NumPy
# built against another BLAS falls back to NumPy code.
_NAMES = {
    "saxpy": "scipy_cblas_saxpy64_",
    "daxpy": "scipy_cblas_daxpy64_",
    "sscal": "scipy_cblas_sscal64_",
    "dscal": "scipy_cblas_dscal64_",
}


_HANDLE: list = []  # [the ctypes handle of NumPy's OpenBLAS, or None]


def numpy_blas():
    """A ctypes handle on the OpenBLAS NumPy links (found by threadpoolctl), or None."""
    if not _HANDLE:
        found = None
        try:
            from threadpoolctl import ThreadpoolController

            for lib in ThreadpoolController().select(user_api="blas").lib_controllers:
                if "numpy" in lib.filepath:
                    found = ctypes.CDLL(lib.filepath)
                    break
        except (ImportError, OSError):  # pragma: no cover - no threadpoolctl or an odd BLAS
            found = None
        _HANDLE.append(found)
    return _HANDLE[0]


def _load() -> dict | None:
    if not _FUNCS:
        handle = numpy_blas()
        ok = handle is not None and all(hasattr(handle, sym) for sym in _NAMES.values())
        _FUNCS.append(_bind(handle) if ok else None)
    return _FUNCS[0]


def _bind(handle) -> dict:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    out = {}
    for name, sym in _NAMES.items():
        fn = getattr(handle, sym)
        real = ctypes.c_float if name[0] == "s" else ctypes.c_double
        fn.restype = None
        if name.endswith("axpy"):
            fn.argtypes = [i64, real, ptr, i64, ptr, i64]
        else:
            fn.argtypes = [i64, real, ptr, i64]
        out[name] = fn
    return out


def _ok(*arrays) -> bool:
    first = arrays[0]
    return all(
        type(a) is np.ndarray
        and a.dtype == first.dtype
        and a.flags.c_contiguous
        and a.size == first.size
        for a in arrays
    ) and first.dtype in (np.float32, np.float64)


def usable(*arrays) -> bool:
    """Whether :func:`axpy` and :func:`scal` will take these arrays: distinct, contiguous
    NumPy arrays of one float dtype and size, with NumPy's BLAS found."""
    if not _ok(*arrays):
        return False
    for i, a in enumerate(arrays):
        if any(np.may_share_memory(a, b) for b in arrays[i + 1 :]):
            return False
    return _load() is not None


def axpy(a: float, x: np.ndarray, y: np.ndarray) -> bool:
    """``y += a * x`` in place, one rounding per element; False if not done.

    >>> import numpy as np
    >>> x, y = np.arange(4, dtype=np.float32), np.ones(4, np.float32)
    >>> if not axpy(2.0, x, y):  # no usable BLAS here: the caller runs its NumPy code
    ...     y += np.float32(2.0) * x
    >>> y.tolist()
    [1.0, 3.0, 5.0, 7.0]
    """
    if not _ok(x, y) or np.may_share_memory(x, y):
        return False
    fns = _load()
    if fns is None:
        return False
    fn = fns["saxpy" if y.dtype == np.float32 else "daxpy"]
    fn(y.size, a, x.ctypes.data, 1, y.ctypes.data, 1)
    return True


def scal(a: float, x: np.ndarray) -> bool:
    """``x *= a`` in place; False if not done."""
    if not _ok(x):
        return False
    fns = _load()
    if fns is None:
        return False
    fns["sscal" if x.dtype == np.float32 else "dscal"](x.size, a, x.ctypes.data, 1)
    return True
