"""How tensors print: ``tensor([1., 2.], requires_grad=True)`` as in PyTorch."""

from __future__ import annotations

import numpy as np

from .backend import dtypes as _dt


def _float_formatter(arr):
    """PyTorch's choice: integers print as ``1.``, else 4 decimals, and scientific notation
    when the nonzero finite magnitudes span more than 1000x, exceed 1e8 or go below 1e-4."""
    finite = arr[np.isfinite(arr)].astype(np.float64)  # no overflow in the ratio below
    mags = np.abs(finite[finite != 0])
    ints = bool(np.all(finite == np.round(finite)))
    sci = False
    if mags.size:
        lo, hi = mags.min(), mags.max()
        sci = hi / lo > 1000.0 or hi > 1.0e8 or (not ints and lo < 1.0e-4)
    if sci:
        fmt = "{:.4e}"
    elif ints:
        fmt = "{:.0f}."
    else:
        fmt = "{:.4f}"
    return lambda v: fmt.format(v) if np.isfinite(v) else str(v)


def _padded(fn, arr):
    """``fn`` with every element right-aligned to the widest one, as PyTorch aligns columns."""
    width = max((len(fn(v)) for v in arr.reshape(-1)), default=0)
    return lambda v: fn(v).rjust(width)


def _body(arr) -> str:
    if arr.dtype == _dt.bfloat16.np or arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.dtype.kind == "f":
        fmt = {"float_kind": _padded(_float_formatter(arr), _shown(arr))}
    elif arr.dtype == bool:
        fmt = {"bool": _padded(lambda v: "True" if v else "False", _shown(arr))}
    else:
        fmt = {"int": _padded(str, _shown(arr))}
    return np.array2string(
        arr,
        separator=", ",
        formatter=fmt,
        prefix="tensor(",
        threshold=1000,
        edgeitems=3,
        max_line_width=80,
    )


def _shown(arr):
    """The elements that will be printed (the edges of a summarized tensor)."""
    if arr.size <= 1000 or arr.ndim == 0:
        return arr
    idx = tuple(np.r_[0 : min(3, n), max(n - 3, 3) : n] for n in arr.shape)
    return arr[np.ix_(*idx)]


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
