"""In-place ops: compute out of place, then write into the tensor's memory, bump its version
counter and, when gradients flow, point its ``grad_fn`` at the new node (PyTorch's rebase)."""

from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _make
from ..autograd.grad_mode import STATE
from ..backend.device import array_module


def check_inplace(t: Tensor, other, op: str) -> bool:
    """Validate an in-place op on ``t``; return True when the graph must be recorded."""
    if not STATE.grad_enabled:
        return False
    other_rg = isinstance(other, Tensor) and other._rg
    if t._rg and t.grad_fn is None:
        raise RuntimeError(
            f"{op}: a leaf Variable that requires grad is being used in an in-place operation."
        )
    if not (t._rg or other_rg):
        return False
    base = t._base
    if base is not None and base._rg:
        raise RuntimeError(
            f"{op}: in-place modification of a view of a tensor that requires grad is not "
            "supported by ember (see docs/differences.md); use an out-of-place op instead."
        )
    return True


def commit(t: Tensor, out: Tensor) -> Tensor:
    """Write ``out`` into ``t``'s memory and, if ``out`` carries a graph, adopt it."""
    d = t._data
    if out._data.dtype != d.dtype:
        if d.dtype.kind in "biu" and out._data.dtype.kind in "fV":
            raise RuntimeError(
                f"result type {out.dtype.name.capitalize()} can't be cast to the desired output "
                f"type {t.dtype.name.capitalize()}"
            )
    if out._data.shape != d.shape:
        raise RuntimeError(
            f"output with shape {list(d.shape)} doesn't match the broadcast shape "
            f"{list(out._data.shape)}"
        )
    if isinstance(d, np.ndarray) and not d.flags.writeable:  # CuPy arrays have no such flag
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor refers to a "
            "single memory location. Please clone() the tensor before performing the operation."
        )
    if out._data is not d:
        d[...] = out._data
    t._vbox[0] += 1
    if out.grad_fn is not None:
        t.grad_fn, t._output_nr, t._rg = out.grad_fn, out._output_nr, True
        # saved references to ``out``'s memory stay valid: out._data is a separate buffer
    return t


# In-place arithmetic with a Python number that needs no graph runs as one ufunc into the
# tensor's own memory: the general path computes ``t op number`` with the same ufunc and the
# same weak Python scalar, then copies the result back. On CUDA that is one launch instead of
# two and an allocation (BatchNorm's num_batches_tracked: 53 a ResNet-50 step). Only for
# float32/float64 and int32/int64 with a number that fits; other dtypes have their own
# scalar handling (elementwise._binary), and larger integers wrap there.
_SCALAR_DTYPES = frozenset(np.dtype(d) for d in (np.float32, np.float64, np.int32, np.int64))


def scalar_inplace(t: Tensor, ufunc: str, other) -> Tensor | None:
    """``t = ufunc(t, other)`` for ``ufunc`` ``"add"``, ``"subtract"`` or ``"multiply"`` and a
    Python int or float, computed in ``t``'s memory when no graph is recorded and the result
    keeps ``t``'s dtype; None where the general path must run (it also raises the errors)."""
    cls = other.__class__
    if cls is not int and cls is not float:
        return None
    if (t._rg and STATE.grad_enabled) or STATE.tracing:
        return None
    d = t._data
    dt = d.dtype
    if dt not in _SCALAR_DTYPES:
        return None
    if dt.kind == "i" and (cls is float or not -(2**31) <= other < 2**31):
        return None
    if isinstance(d, np.ndarray) and not d.flags.writeable:
        return None
    getattr(array_module(d), ufunc)(d, other, out=d)
    t._vbox[0] += 1
    return t


def apply_inplace(t: Tensor, fn, other, *args, op: str = "op", **kwargs) -> Tensor:
    """Run ``fn(t, other, *args)`` out of place and commit the result into ``t``."""
    record = check_inplace(t, other, op)
    if record:
        # backward may need the value from before the write (mul_, log_, clamp_ ...): compute
        # from a copy, as PyTorch saves the original self of an in-place op
        src = _original(t)
        return commit(
            t, fn(src, other, *args, **kwargs) if other is not None else fn(src, *args, **kwargs)
        )
    prev = STATE.grad_enabled
    STATE.grad_enabled = False
    try:
        out = fn(t, other, *args, **kwargs) if other is not None else fn(t, *args, **kwargs)
    finally:
        STATE.grad_enabled = prev
    return commit(t, out)


def _original(t: Tensor) -> Tensor:
    """A copy of ``t``'s current value that stays in ``t``'s graph."""
    if t._rg:
        from .shape import clone

        return clone(t)
    return _make(t._data.copy())


_RELU_CPU = frozenset((np.dtype(np.float32), np.dtype(np.float64)))


def relu_inplace_(t: Tensor) -> Tensor | None:
    """``relu_`` computed in ``t``'s own memory (no copy in, no copy back): a dense CUDA float
    tensor (C-contiguous or channels last), or a contiguous, writeable float32/float64 NumPy
    one; None otherwise (the caller then takes the generic path)."""
    from .unary import ReluInplace, _cuda_kernel_ok

    d = t._data
    if isinstance(d, np.ndarray):
        dense = d.flags.c_contiguous or d.flags.f_contiguous  # no element written twice
        if d.dtype not in _RELU_CPU or not dense or not d.flags.writeable or STATE.tracing:
            return None
    elif not _cuda_kernel_ok(d):
        return None
    record = check_inplace(t, None, "relu_")
    if not record:
        prev = STATE.grad_enabled
        STATE.grad_enabled = False
        try:
            ReluInplace.apply(t)
        finally:
            STATE.grad_enabled = prev
        t._vbox[0] += 1
        return t
    out = ReluInplace.apply(t)
    node = out.grad_fn
    commit(t, out)  # same memory: no copy; bumps the version and adopts the node
    node.vbox, node.version = t._vbox, t._vbox[0]
    return t
