"""One function per ember op: emit the ONNX nodes that compute it.

Each handler gets the export context ``cx`` and a graph node ``n``; it reads input names with
``cx.arg(n, i)`` and writes ``cx.out(n)`` through ``cx.emit(op_type, inputs, outputs, **attrs)``.
"""

from __future__ import annotations

import math

import numpy as np

from ..jit.graph import Ref
from . import _ops_index, _ops_shape


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
    x, dt = cx.arg(n, 0), cx.dtype(n.args[0])
    if n.params["approximate"] == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3 = cx.emit("Mul", [cx.emit("Mul", [x, x]), x])
        inner = cx.emit("Add", [x, cx.emit("Mul", [x3, cx.const(np.array(0.044715, dt))])])
        c = cx.const(np.array(math.sqrt(2.0 / math.pi), dt))
        t = cx.emit("Tanh", [cx.emit("Mul", [inner, c])])
        e = cx.emit("Add", [t, cx.const(np.array(1.0, dt))])
        cx.emit("Mul", [cx.emit("Mul", [x, e]), cx.const(np.array(0.5, dt))], cx.outs(n))
        return
    z = cx.emit("Div", [x, cx.const(np.array(math.sqrt(2.0), dt))])
    e = cx.emit("Add", [cx.emit("Erf", [z]), cx.const(np.array(1.0, dt))])
    cx.emit("Mul", [cx.emit("Mul", [x, e]), cx.const(np.array(0.5, dt))], cx.outs(n))


def softmax(cx, n, op_type="Softmax"):
    x, bias = cx.arg(n, 0), n.params.get("bias")
    if isinstance(bias, Ref):  # an attention mask as an additive bias
        x = cx.emit("Add", [x, cx.name(bias.vid)])
    elif bias is not None:
        x = cx.emit("Add", [x, cx.const(np.asarray(bias))])
    cx.emit(op_type, [x], cx.outs(n), axis=n.params["axis"])


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


def log1p(cx, n):
    one = cx.const(np.array(1.0, cx.dtype(n.args[0])))
    cx.emit("Log", [cx.emit("Add", [cx.arg(n, 0), one])], cx.outs(n))


def expm1(cx, n):
    one = cx.const(np.array(1.0, cx.dtype(n.args[0])))
    cx.emit("Sub", [cx.emit("Exp", [cx.arg(n, 0)]), one], cx.outs(n))


def clamp(cx, n):
    dt = cx.dtype(n.args[0])
    lims = ["" if a is None else cx.const(np.array(a, dt)) for a in n.args[1:3]]
    cx.emit("Clip", [cx.arg(n, 0), *lims], cx.outs(n))


def silu(cx, n):
    x = cx.arg(n, 0)
    cx.emit("Mul", [x, cx.emit("Sigmoid", [x])], cx.outs(n))


def cumsum(cx, n):
    x = cx.arg(n, 0)
    if n.params.get("dtype") is not None:
        x = cx.emit("Cast", [x], to=cx.onnx_type(n.params["dtype"]))
    axis = cx.const(np.array(n.params["axis"], np.int64))
    cx.emit("CumSum", [x, axis], cx.outs(n))


def flip(cx, n):
    axes = _axes(cx, n)
    count = len(axes)
    starts = cx.const(np.full(count, -1, np.int64))
    ends = cx.const(np.full(count, np.iinfo(np.int64).min, np.int64))
    steps = cx.const(np.full(count, -1, np.int64))
    ins = [cx.arg(n, 0), starts, ends, cx.const(np.array(axes, np.int64)), steps]
    cx.emit("Slice", ins, cx.outs(n))


def _mean(cx, x, axes):
    if cx.opset >= 18:
        return cx.emit("ReduceMean", [x, cx.const(np.array(axes, np.int64))], keepdims=1)
    return cx.emit("ReduceMean", [x], axes=axes, keepdims=1)


def normalize(cx, n):
    """(x - mean) / sqrt(var + eps) over the node's axes, biased variance (group norm's core)."""
    x, axes = cx.arg(n, 0), _axes(cx, n)
    xc = cx.emit("Sub", [x, _mean(cx, x, axes)])
    var = _mean(cx, cx.emit("Mul", [xc, xc]), axes)
    eps = cx.const(np.array(n.params["eps"], cx.dtype(n.args[0])))
    rstd = cx.emit("Reciprocal", [cx.emit("Sqrt", [cx.emit("Add", [var, eps])])])
    cx.emit("Mul", [xc, rstd], cx.outs(n))


HANDLERS = {
    "Silu": silu,
    "Cumsum": cumsum,
    "Flip": flip,
    "Normalize": normalize,
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
    "Clamp": clamp,
    "Floor": _same("Floor"),
    "Ceil": _same("Ceil"),
    "Sign": _same("Sign"),
    "Log1p": log1p,
    "Expm1": expm1,
    **_ops_index.HANDLERS,
    **_ops_shape.HANDLERS,
}
