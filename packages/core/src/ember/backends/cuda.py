"""``ember.backends.cuda``: the TF32 switch for CUDA matrix products.

CuPy runs ``matmul`` through cuBLAS with a per-dtype compute type; TF32 is CuPy's
``COMPUTE_TYPE_TF32`` for float32. Setting the flag sets that compute type at once when CuPy is
already imported, and the ``CUPY_TF32`` environment variable that CuPy reads on its first
float32 product otherwise, so CuPy is never imported by this module.
"""

from __future__ import annotations

import os
import sys

_PRECISIONS = ("highest", "high", "medium")
# CuPy's cupy/_core/_routines_linalg.pxd enum values, used when the module does not export them
_COMPUTE_TYPE_DEFAULT, _COMPUTE_TYPE_TF32 = 1, 7


class _State:
    precision = "highest"


STATE = _State()


def _apply_to_cupy(tf32: bool) -> None:
    """Hand the float32 compute type to CuPy (now if imported, else through CUPY_TF32)."""
    os.environ["CUPY_TF32"] = "1" if tf32 else "0"
    if "cupy" not in sys.modules:
        return
    try:  # pragma: no cover - needs CuPy
        import numpy as np
        from cupy._core import _routines_linalg as linalg

        kind = "COMPUTE_TYPE_TF32" if tf32 else "COMPUTE_TYPE_DEFAULT"
        fallback = _COMPUTE_TYPE_TF32 if tf32 else _COMPUTE_TYPE_DEFAULT
        linalg.set_compute_type(np.float32, getattr(linalg, kind, fallback))
    except (ImportError, AttributeError):  # pragma: no cover - other CuPy versions
        pass  # CUPY_TF32 still reaches a CuPy whose float32 compute type is not yet chosen


def set_float32_matmul_precision(precision: str) -> None:
    """ "highest" keeps float32 products in full float32; "high" and "medium" allow TF32 on
    CUDA (PyTorch's "medium" also allows bfloat16 passes; ember treats it as "high").

    >>> import ember.backends as backends
    >>> backends.set_float32_matmul_precision("high")
    >>> backends.cuda.matmul.allow_tf32
    True
    >>> backends.set_float32_matmul_precision("highest")
    """
    if precision not in _PRECISIONS:
        raise RuntimeError(
            f"Invalid precision {precision!r}: expected one of {', '.join(_PRECISIONS)}"
        )
    STATE.precision = precision
    _apply_to_cupy(precision != "highest")


def get_float32_matmul_precision() -> str:
    """The current float32 matmul precision: "highest", "high" or "medium"."""
    return STATE.precision


class _Matmul:
    """``backends.cuda.matmul``: ``allow_tf32`` mirrors the float32 matmul precision."""

    __slots__ = ()

    @property
    def allow_tf32(self) -> bool:
        """True when float32 CUDA matrix products may use TF32 tensor cores."""
        return STATE.precision != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        set_float32_matmul_precision("high" if value else "highest")

    def __repr__(self) -> str:
        return f"matmul(allow_tf32={self.allow_tf32})"


matmul = _Matmul()


def is_built() -> bool:
    """True when CUDA support can be loaded (CuPy is installed); imports nothing."""
    import importlib.util

    return importlib.util.find_spec("cupy") is not None
