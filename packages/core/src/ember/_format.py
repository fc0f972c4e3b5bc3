"""How tensors print: ``tensor([1., 2.], requires_grad=True)`` as in PyTorch."""

from __future__ import annotations

import numpy as np

from .backend import dtypes as _dt


def _body(arr) -> str:
    if arr.dtype == _dt.bfloat16.np or arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.dtype.kind == "f":
        finite = arr[np.isfinite(arr)]
        ints = finite.size == 0 or bool(np.all(finite == np.round(finite)))
        big = finite.size and (
            np.abs(finite).max() >= 1e8 or (np.abs(finite[finite != 0]).min(initial=1.0) < 1e-4)
        )
        if ints and not big:
            fmt = {"float_kind": lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)}
        elif big:
            fmt = {"float_kind": lambda v: f"{v:.4e}"}
        else:
            fmt = {"float_kind": lambda v: f"{v:.4f}"}
        return np.array2string(
            arr, separator=", ", formatter=fmt, prefix="tensor(", threshold=1000, edgeitems=3
        )
    if arr.dtype == bool:
        return np.array2string(
            arr,
            separator=", ",
            prefix="tensor(",
            formatter={"bool": lambda v: "True" if v else "False"},
        )
    return np.array2string(arr, separator=", ", prefix="tensor(", threshold=1000, edgeitems=3)


def format_tensor(t) -> str:
    """PyTorch-style repr: values, then non-default dtype, device and autograd info."""
    arr = t._data if isinstance(t._data, np.ndarray) else t._data.get()
    body = _body(arr)
    extras = []
    d = t.dtype
    if arr.size == 0:
        body = "[]"
        if arr.ndim != 1:
            extras.append(f"size={tuple(arr.shape)}")
    default_float = _dt.get_default_dtype()
    if d not in (default_float, _dt.int64, _dt.bool_):
        extras.append(f"dtype={d!r}")
    if not isinstance(t._data, np.ndarray):
        extras.append(f"device='{t.device}'")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._rg:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"
