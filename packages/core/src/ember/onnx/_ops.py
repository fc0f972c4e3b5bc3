"""One function per ember op: emit the ONNX nodes that compute it.

Each handler gets the export context ``cx`` and a graph node ``n``; it reads input names with
``cx.arg(n, i)`` and writes ``cx.out(n)`` through ``cx.emit(op_type, inputs, outputs, **attrs)``.
"""

from __future__ import annotations

import math

import numpy as np

from ..jit.graph import Ref

INT_MAX = 2**63 - 1


def _same(op_type):
    def handler(cx, n):
        cx.emit(op_type, [cx.arg(n, i) for i in range(len(n.args))], cx.outs(n))

    return handler


def _binary(op_type):
    def handler(cx, n):
        dtype = next(cx.dtype(a) for a in n.args if isinstance(a, Ref))
        ins = [cx.arg(n, i, dtype) for i in range(2)]
        cx.emit(op_type, ins, cx.outs(n))

    return handler


def cast(cx, n):
    cx.emit("Cast", [cx.arg(n, 0)], cx.outs(n), to=cx.onnx_type(n.params["dtype"]))


def rsqrt(cx, n):
    cx.emit("Reciprocal", [cx.emit("Sqrt", [cx.arg(n, 0)])], cx.outs(n))


def gelu(cx, n):
    if n.params["approximate"] != "none":
        raise NotImplementedError("ember.onnx: only gelu(approximate='none') is exported")
    x, dt = cx.arg(n, 0), cx.dtype(n.args[0])
    z = cx.emit("Div", [x, cx.const(np.array(math.sqrt(2.0), dt))])
    e = cx.emit("Add", [cx.emit("Erf", [z]), cx.const(np.array(1.0, dt))])
    cx.emit("Mul", [cx.emit("Mul", [x, e]), cx.const(np.array(0.5, dt))], cx.outs(n))


def softmax(cx, n, op_type="Softmax"):
    if n.params.get("bias") is not None:
        raise NotImplementedError("ember.onnx: softmax with an additive bias is not exported")
    cx.emit(op_type, [cx.arg(n, 0)], cx.outs(n), axis=n.params["axis"])


def log_softmax(cx, n):
    softmax(cx, n, "LogSoftmax")


def layer_norm(cx, n):
    axes, shape = n.params["axes"], cx.shape(n.args[0])
    dt, norm = cx.dtype(n.args[0]), tuple(shape[a] for a in axes)
    w = cx.arg(n, 1) if n.args[1] is not None else cx.const(np.ones(norm, dt))
    b = cx.arg(n, 2) if n.args[2] is not None else cx.const(np.zeros(norm, dt))
    cx.emit(
        "LayerNormalization",
        [cx.arg(n, 0), w, b],
        cx.outs(n),
        axis=axes[0],
        epsilon=n.params["eps"],
    )


def linear(cx, n):
    x, w = cx.arg(n, 0), cx.arg(n, 1)
    has_b = n.args[2] is not None
    if len(cx.shape(n.args[0])) == 2:
        ins = [x, w] + ([cx.arg(n, 2)] if has_b else [])
        cx.emit("Gemm", ins, cx.outs(n), transB=1)
        return
    wt = cx.emit("Transpose", [w], perm=[1, 0])
    if not has_b:
        cx.emit("MatMul", [x, wt], cx.outs(n))
        return
    cx.emit("Add", [cx.emit("MatMul", [x, wt]), cx.arg(n, 2)], cx.outs(n))


def conv(cx, n):
    stride, pad, dil, groups = n.params["cfg"]
    if isinstance(pad, str):
        raise NotImplementedError("ember.onnx: string conv padding is not exported")
    cx.emit(
        "Conv",
        [cx.arg(n, 0), cx.arg(n, 1)],
        cx.outs(n),
        strides=list(stride),
        pads=[pad[0], pad[1], pad[0], pad[1]],
        dilations=list(dil),
        group=groups,
    )


def max_pool(cx, n):
    k, s, p, d, ceil = n.params["cfg"]
    attrs = dict(kernel_shape=list(k), strides=list(s), dilations=list(d), ceil_mode=int(ceil))
    cx.emit("MaxPool", [cx.arg(n, 0)], cx.outs(n), pads=[p[0], p[1], p[0], p[1]], **attrs)


def avg_pool(cx, n):
    k, s, p, ceil = n.params["cfg"]
    div = np.asarray(n.params["div"])
    include = int(bool(np.all(div == k[0] * k[1])))
    cx.emit(
        "AveragePool",
        [cx.arg(n, 0)],
        cx.outs(n),
        kernel_shape=list(k),
        strides=list(s),
        pads=[p[0], p[1], p[0], p[1]],
        ceil_mode=int(ceil),
        count_include_pad=include,
    )


def _axes(cx, n, key="axes"):
    axes = n.params[key]
    nd = len(cx.shape(n.args[0]))
    return list(range(nd)) if axes is None else [a % nd for a in np.atleast_1d(axes).tolist()]


def reduce_sum(cx, n):
    if n.params.get("dtype") is not None:
        raise NotImplementedError("ember.onnx: sum(dtype=...) is not exported")
    axes = cx.const(np.array(_axes(cx, n), np.int64))
    cx.emit("ReduceSum", [cx.arg(n, 0), axes], cx.outs(n), keepdims=int(n.params["keepdim"]))


def _reduce(op_type):
    def handler(cx, n):
        axes, keep = _axes(cx, n), int(n.params["keepdim"])
        if cx.opset >= 18:
            ins = [cx.arg(n, 0), cx.const(np.array(axes, np.int64))]
            cx.emit(op_type, ins, cx.outs(n), keepdims=keep)
        else:
            cx.emit(op_type, [cx.arg(n, 0)], cx.outs(n), axes=axes, keepdims=keep)

    return handler


def reshape(cx, n):
    shape = list(n.params["shape"])
    if n.dyn:
        shape[0] = 0  # ONNX Reshape: 0 copies the input's dim 0 (the batch)
    cx.emit("Reshape", [cx.arg(n, 0), cx.const(np.array(shape, np.int64))], cx.outs(n))


def expand(cx, n):
    shape = np.array(n.params["shape"], np.int64)
    if n.dyn:
        rest = cx.const(shape[1:])
        target = cx.emit("Concat", [cx.batch_size(), rest], axis=0)
    else:
        target = cx.const(shape)
    cx.emit("Expand", [cx.arg(n, 0), target], cx.outs(n))


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
    ax = cx.const(np.array([axis], np.int64))
    for part, out in zip(parts, cx.outs(n)):
        cx.emit("Squeeze", [part, ax], [out])


def _expand_key(key, nd):
    key = key if isinstance(key, tuple) else (key,)
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    out = []
    for k in key:
        out.extend([slice(None)] * (nd - used) if k is Ellipsis else [k])
    if Ellipsis not in key:
        out.extend([slice(None)] * (nd - used))
    return out


def getitem(cx, n):
    if not n.params["basic"]:
        raise NotImplementedError("ember.onnx: advanced indexing is not exported")
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
        arrs = [cx.const(np.array(v, np.int64)) for v in (starts, ends, axes, steps)]
        x = cx.emit("Slice", [x, *arrs])
    if squeeze:
        x = cx.emit("Squeeze", [x, cx.const(np.array(squeeze, np.int64))])
    if unsqueeze:
        x = cx.emit("Unsqueeze", [x, cx.const(np.array(unsqueeze, np.int64))])
    cx.emit("Identity", [x], cx.outs(n))


def embedding(cx, n):
    idx = n.params["idx"]
    name = cx.name(idx.vid) if isinstance(idx, Ref) else cx.const(np.asarray(idx, np.int64))
    cx.emit("Gather", [cx.arg(n, 0), name], cx.outs(n), axis=0)


def gather(cx, n):
    idx = n.params["index"]
    name = cx.name(idx.vid) if isinstance(idx, Ref) else cx.const(np.asarray(idx, np.int64))
    cx.emit("GatherElements", [cx.arg(n, 0), name], cx.outs(n), axis=n.params["dim"])


def clamp(cx, n):
    dt = cx.dtype(n.args[0])
    lims = ["" if a is None else cx.const(np.array(a, dt)) for a in n.args[1:3]]
    cx.emit("Clip", [cx.arg(n, 0), *lims], cx.outs(n))


HANDLERS = {
    "Add": _binary("Add"),
    "Sub": _binary("Sub"),
    "Mul": _binary("Mul"),
    "Div": _binary("Div"),
    "Pow": _binary("Pow"),
    "Maximum": _binary("Max"),
    "Minimum": _binary("Min"),
    "Matmul": _same("MatMul"),
    "Where": _same("Where"),
    "Clone": _same("Identity"),
    "Relu": _same("Relu"),
    "Sigmoid": _same("Sigmoid"),
    "Tanh": _same("Tanh"),
    "Neg": _same("Neg"),
    "Exp": _same("Exp"),
    "Log": _same("Log"),
    "Sqrt": _same("Sqrt"),
    "Abs": _same("Abs"),
    "Erf": _same("Erf"),
    "Sin": _same("Sin"),
    "Cos": _same("Cos"),
    "Rsqrt": rsqrt,
    "Cast": cast,
    "Gelu": gelu,
    "Softmax": softmax,
    "LogSoftmax": log_softmax,
    "LayerNorm": layer_norm,
    "Linear": linear,
    "Conv2d": conv,
    "MaxPool2d": max_pool,
    "AvgPool2d": avg_pool,
    "Sum": reduce_sum,
    "Amax": _reduce("ReduceMax"),
    "Amin": _reduce("ReduceMin"),
    "Reshape": reshape,
    "Expand": expand,
    "Permute": permute,
    "Cat": cat,
    "Pieces": pieces,
    "GetItem": getitem,
    "EmbeddingLookup": embedding,
    "Gather": gather,
    "Clamp": clamp,
}
