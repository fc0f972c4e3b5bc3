"""Handlers for indexing ops: basic slicing, advanced (array) indexing, embedding lookups,
gather and einsum (see ``_ops``)."""

from __future__ import annotations

import numpy as np

from ..jit.graph import Ref

INT_MAX = 2**63 - 1


def _expand_key(key, nd):
    key = key if isinstance(key, tuple) else (key,)
    used = sum(
        (k.ndim if _is_array(k) and _bool(k) else 1)
        for k in key
        if k is not None and k is not Ellipsis
    )
    out = []
    for k in key:
        out.extend([slice(None)] * (nd - used) if k is Ellipsis else [k])
    if not any(k is Ellipsis for k in key):
        out.extend([slice(None)] * (nd - used))
    return out


def _is_array(k) -> bool:
    return isinstance(k, Ref | np.ndarray)


def _bool(k) -> bool:
    return isinstance(k, np.ndarray) and k.dtype == np.bool_


def getitem(cx, n):
    key = _expand_key(n.params["key"], len(cx.shape(n.args[0])))
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    dim = pos = 0
    for k in key:
        if k is None:
            unsqueeze.append(pos)
            pos += 1
            continue
        if isinstance(k, slice):
            step = 1 if k.step is None else k.step
            lo = k.start if k.start is not None else (0 if step > 0 else -1)
            hi = k.stop if k.stop is not None else (INT_MAX if step > 0 else -INT_MAX)
            if (lo, hi, step) != (0, INT_MAX, 1):
                starts, ends, axes, steps = starts + [lo], ends + [hi], axes + [dim], steps + [step]
            pos += 1
        else:
            hi = k + 1 if k != -1 else INT_MAX
            starts, ends, axes, steps = starts + [k], ends + [hi], axes + [dim], steps + [1]
            squeeze.append(dim)
        dim += 1
    x = cx.arg(n, 0)
    if axes:
        x = cx.emit("Slice", [x, *(cx.int64(v) for v in (starts, ends, axes, steps))])
    if squeeze:
        x = cx.emit("Squeeze", [x, cx.int64(squeeze)])
    if unsqueeze:
        x = cx.emit("Unsqueeze", [x, cx.int64(unsqueeze)])
    cx.emit("Identity", [x], cx.outs(n))


def _index(cx, k) -> str:
    return cx.name(k.vid) if isinstance(k, Ref) else cx.const(np.asarray(k))


def adv_getitem(cx, n):
    """One index array on one axis (Gather, or Compress for a 1-D bool mask); int arrays on
    the leading axes (GatherND); a bool mask over the leading axes (NonZero + GatherND)."""
    x, nd = cx.arg(n, 0), len(cx.shape(n.args[0]))
    key = _expand_key(n.params["key"], nd)
    arrays = [i for i, k in enumerate(key) if _is_array(k)]
    rest_full = all(
        isinstance(k, slice) and k == slice(None) for i, k in enumerate(key) if i not in arrays
    )
    if not rest_full:
        raise NotImplementedError(
            "ember.onnx: advanced indexing mixed with slices, ints or None is not exported"
        )
    first = key[arrays[0]]
    is_bool = _bool(first) or (isinstance(first, Ref) and cx.dtype(first) == np.bool_)
    if is_bool and len(arrays) == 1:
        idx = _index(cx, first)
        mask_nd = len(cx.shape(first)) if isinstance(first, Ref) else first.ndim
        if mask_nd == 1:
            cx.emit("Compress", [x, idx], cx.outs(n), axis=arrays[0])
            return
        if arrays[0] != 0:
            raise NotImplementedError("ember.onnx: a multi-dim bool mask must index dim 0")
        nz = cx.emit("Transpose", [cx.emit("NonZero", [idx])], perm=[1, 0])
        cx.emit("GatherND", [x, nz], cx.outs(n))
        return
    if len(arrays) == 1:
        idx = cx.emit("Cast", [_index(cx, first)], to=cx.onnx_type(np.int64))
        cx.emit("Gather", [x, idx], cx.outs(n), axis=arrays[0])
        return
    if arrays != list(range(len(arrays))):
        raise NotImplementedError("ember.onnx: index arrays must sit on the leading dims")
    last = cx.int64([-1])
    parts = [
        cx.emit(
            "Unsqueeze", [cx.emit("Cast", [_index(cx, key[i])], to=cx.onnx_type(np.int64)), last]
        )
        for i in arrays
    ]
    cx.emit("GatherND", [x, cx.emit("Concat", parts, axis=-1)], cx.outs(n))


def embedding(cx, n):
    idx = n.params["idx"]
    name = cx.name(idx.vid) if isinstance(idx, Ref) else cx.const(np.asarray(idx, np.int64))
    cx.emit("Gather", [cx.arg(n, 0), name], cx.outs(n), axis=0)


def gather(cx, n):
    idx = n.params["index"]
    name = cx.name(idx.vid) if isinstance(idx, Ref) else cx.const(np.asarray(idx, np.int64))
    cx.emit("GatherElements", [cx.arg(n, 0), name], cx.outs(n), axis=n.params["dim"])


def einsum(cx, n):
    eq = ",".join(n.params["ins"]) + "->" + n.params["out"]
    cx.emit("Einsum", [cx.arg(n, i) for i in range(len(n.args))], cx.outs(n), equation=eq)


HANDLERS = {
    "GetItem": getitem,
    "AdvGetItem": adv_getitem,
    "EmbeddingLookup": embedding,
    "Gather": gather,
    "Einsum": einsum,
}
