"""Handlers for shape ops, tensor creation, comparisons and masks (see ``_ops``).

Sizes that follow the inputs' dynamic dims (``node.sym``) become Shape -> Gather -> Concat
subgraphs through ``cx.shape_tensor``; static sizes stay constants.
"""

from __future__ import annotations

import numpy as np

from ..jit.graph import Ref


def reshape(cx, n):
    entries = list(n.sym.get("shape", n.params["shape"]))
    dyn = [i for i, e in enumerate(entries) if isinstance(e, list)]
    if dyn:
        entries[dyn[0]] = -1  # Reshape infers one dim; the others come from the input shapes
    cx.emit("Reshape", [cx.arg(n, 0), cx.shape_tensor(entries)], cx.outs(n))


def expand(cx, n):
    entries = list(n.sym.get("shape", n.params["shape"]))
    have = cx.shape(n.args[0])
    lead = len(entries) - len(have)
    for i in range(lead, len(entries)):
        if have[i - lead] == n.params["shape"][i]:
            entries[i] = 1  # ONNX Expand broadcasts: 1 keeps the input's size
    cx.emit("Expand", [cx.arg(n, 0), cx.shape_tensor(entries)], cx.outs(n))


def permute(cx, n):
    cx.emit("Transpose", [cx.arg(n, 0)], cx.outs(n), perm=list(n.params["perm"]))


def cat(cx, n):
    cx.emit("Concat", [cx.arg(n, i) for i in range(len(n.args))], cx.outs(n), axis=n.params["axis"])


def pieces(cx, n):
    axis, sizes = n.params["axis"], np.array(n.params["sizes"], np.int64)
    if not n.params["squeeze"]:
        cx.emit("Split", [cx.arg(n, 0), cx.const(sizes)], cx.outs(n), axis=axis)
        return
    parts = [cx.fresh() for _ in n.outputs]
    cx.emit("Split", [cx.arg(n, 0), cx.const(sizes)], parts, axis=axis)
    ax = cx.int64([axis])
    for part, out in zip(parts, cx.outs(n)):
        cx.emit("Squeeze", [part, ax], [out])


def pad(cx, n):
    widths = n.params["widths"]
    pads = [lo for lo, _ in widths] + [hi for _, hi in widths]
    value = cx.const(np.array(n.params["value"], cx.dtype(n.args[0])))
    cx.emit("Pad", [cx.arg(n, 0), cx.int64(pads), value], cx.outs(n), mode="constant")


def tri(cx, n):
    k = cx.const(np.array(n.params["k"], np.int64))
    x, dt = cx.arg(n, 0), cx.dtype(n.args[0])
    upper = int(n.params["upper"])
    if dt != np.bool_:
        cx.emit("Trilu", [x, k], cx.outs(n), upper=upper)
        return
    # onnxruntime has Trilu kernels for float and int64 only: go through int64
    wide = cx.emit("Cast", [x], to=cx.onnx_type(np.int64))
    t = cx.emit("Trilu", [wide, k], upper=upper)
    cx.emit("Cast", [t], cx.outs(n), to=cx.onnx_type(np.bool_))


def where(cx, n):
    dt = cx.dtype(n.args[1]) if isinstance(n.args[1], Ref) else None
    cx.emit("Where", [cx.arg(n, 0), cx.arg(n, 1, dt), cx.arg(n, 2, dt)], cx.outs(n))


def arange(cx, n):
    dt = np.dtype(cx.graph.values[n.outputs[0]].dtype)
    ends = [cx.scalar(n.sym.get(k, n.params[k])) for k in ("start", "end", "step")]
    if dt != np.int64:
        ends = [cx.emit("Cast", [e], to=cx.onnx_type(dt)) for e in ends]
    cx.emit("Range", ends, cx.outs(n))


def full(cx, n):
    dt = np.dtype(cx.graph.values[n.outputs[0]].dtype)
    value = cx.onnx.numpy_helper.from_array(np.array([n.params["value"]], dt))
    shape = cx.shape_tensor(list(n.sym.get("shape", n.params["shape"])))
    cx.emit("ConstantOfShape", [shape], cx.outs(n), value=value)


_COMPARE = {
    "eq": "Equal",
    "lt": "Less",
    "le": "LessOrEqual",
    "gt": "Greater",
    "ge": "GreaterOrEqual",
    "and": "And",
    "or": "Or",
    "not": "Not",
}


def compare(cx, n):
    op = n.params["op"]
    if op == "not":
        cx.emit("Not", [cx.arg(n, 0)], cx.outs(n))
        return
    ref = next(a for a in n.args if isinstance(a, Ref))
    ins = [cx.arg(n, i, cx.dtype(ref)) for i in range(2)]
    if op == "ne":
        cx.emit("Not", [cx.emit("Equal", ins)], cx.outs(n))
    else:
        cx.emit(_COMPARE[op], ins, cx.outs(n))


HANDLERS = {
    "Reshape": reshape,
    "Expand": expand,
    "Permute": permute,
    "Cat": cat,
    "Pieces": pieces,
    "Pad": pad,
    "Tri": tri,
    "Where": where,
    "Arange": arange,
    "Full": full,
    "Compare": compare,
}
