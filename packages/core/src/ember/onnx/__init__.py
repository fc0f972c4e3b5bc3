"""Export a model to ONNX (``torch.onnx.export``'s signature), from an ``ember.jit`` trace.

The ``onnx`` package is an optional dependency, imported only when ``export`` runs.
"""

from __future__ import annotations

import os

import numpy as np

from .._tensor import Tensor
from ..jit import passes
from ..jit.graph import Ref
from ..jit.module import TracedModule, trace
from ._ops import HANDLERS


class _Context:
    """Names values and collects the ONNX nodes and initializers of one export."""

    def __init__(self, onnx, graph, opset: int, names: dict):
        self.onnx, self.graph, self.opset = onnx, graph, opset
        self.names = names  # value id -> ONNX name
        self.nodes, self.inits, self._n = [], [], 0
        self._dims: dict = {}

    def fresh(self) -> str:
        """A new unique intermediate name."""
        self._n += 1
        return f"_t{self._n}"

    def name(self, vid: int) -> str:
        """The ONNX name of value ``vid``."""
        return self.names.get(vid) or f"v{vid}"

    def shape(self, ref: Ref) -> tuple:
        """The traced shape of a value."""
        return self.graph.values[ref.vid].shape

    def dtype(self, ref: Ref) -> np.dtype:
        """The dtype of a value."""
        return np.dtype(self.graph.values[ref.vid].dtype)

    def onnx_type(self, dtype) -> int:
        """The TensorProto enum of a NumPy dtype."""
        return self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def const(self, arr: np.ndarray) -> str:
        """An initializer holding ``arr``; returns its name."""
        name = self.fresh()
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(arr), name))
        return name

    def arg(self, n, i: int, dtype=None) -> str:
        """The name of positional input ``i`` (a literal becomes an initializer of ``dtype``)."""
        a = n.args[i]
        if isinstance(a, Ref):
            return self.name(a.vid)
        return self.const(np.array(a, dtype))

    def outs(self, n) -> list[str]:
        """The names of node ``n``'s outputs."""
        return [self.name(v) for v in n.outputs]

    def emit(self, op_type: str, inputs, outputs=None, **attrs) -> str:
        """Add one ONNX node; returns its (first) output name."""
        outputs = outputs or [self.fresh()]
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, outputs, **attrs))
        return outputs[0]

    def int64(self, values) -> str:
        """A 1-D int64 initializer."""
        return self.const(np.array(values, np.int64).reshape(-1))

    def size(self, expr) -> str:
        """A 1-D int64 tensor of one element holding the size expression ``expr``."""
        if not isinstance(expr, list):
            return self.int64([expr])
        key = repr(expr)
        if key not in self._dims:
            if expr[0] == "dim":
                shape = self.emit("Shape", [self.name(self.graph.inputs[expr[1]])])
                self._dims[key] = self.emit("Gather", [shape, self.int64([expr[2]])], axis=0)
            else:
                a, b = self.size(expr[1]), self.size(expr[2])
                self._dims[key] = self.emit(_ARITH[expr[0]], [a, b])
        return self._dims[key]

    def shape_tensor(self, entries) -> str:
        """A 1-D int64 tensor holding a shape whose entries are ints or size expressions."""
        if not any(isinstance(e, list) for e in entries):
            return self.int64(list(entries))
        parts, run = [], []
        for e in entries:
            if isinstance(e, list):
                if run:
                    parts, run = parts + [self.int64(run)], []
                parts.append(self.size(e))
            else:
                run.append(e)
        if run:
            parts.append(self.int64(run))
        return parts[0] if len(parts) == 1 else self.emit("Concat", parts, axis=0)

    def scalar(self, expr) -> str:
        """A 0-D int64 tensor holding the size expression ``expr``."""
        if not isinstance(expr, list):
            return self.const(np.array(expr, np.int64))
        return self.emit("Squeeze", [self.size(expr), self.int64([0])])


_ARITH = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "mod": "Mod"}


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "ember.onnx.export needs the optional 'onnx' package: pip install onnx"
        ) from None
    return onnx


def _dims(names: list, dynamic_axes) -> dict:
    out = {}
    for key, axes in (dynamic_axes or {}).items():
        if key not in names:
            raise ValueError(f"ember.onnx.export: dynamic_axes names unknown value {key!r}")
        axes = axes if isinstance(axes, dict) else {a: f"{key}_dim{a}" for a in axes}
        out[key] = axes
    return out


def _value_info(onnx, cx, vid, name, dims):
    v = cx.graph.values[vid]
    shape = [dims.get(i, s) for i, s in enumerate(v.shape)]
    return onnx.helper.make_tensor_value_info(name, cx.onnx_type(v.dtype), shape)


def export(
    model,
    args,
    f,
    input_names=None,
    output_names=None,
    dynamic_axes=None,
    opset_version=None,
    **kwargs,
):
    """Trace ``model(*args)`` and write it as an ONNX model to the path ``f``.

    ``dynamic_axes`` maps input and output names to the axes that may vary (a list, or a dict
    of axis to symbolic name), any axes: the trace recomputes shapes from the dynamic input
    dims (Shape, Gather and Concat nodes), so ``{"input_ids": {0: "batch", 1: "seq"}}``
    serves every batch size and sequence length. ``opset_version`` defaults to 17.
    Convolutions absorb the eval-mode batch norms after them (constant folding). Needs
    the ``onnx`` package; ``onnxruntime`` can then run the file.
    """
    onnx = _import_onnx()
    opset = 17 if opset_version is None else int(opset_version)
    if opset < 17:
        raise ValueError("ember.onnx.export: opset_version must be 17 or newer")
    args = (args,) if isinstance(args, Tensor) else tuple(args)
    in_names = list(input_names or [f"input_{i}" for i in range(len(args))])
    if isinstance(model, TracedModule):
        traced = model
    else:
        axes = {
            i: list(dynamic_axes[n]) for i, n in enumerate(in_names) if n in (dynamic_axes or {})
        }
        traced = trace(model, args, dynamic_axes=axes)
    graph = passes.optimize(traced.graph)
    out_names = list(output_names or [f"output_{i}" for i in range(len(graph.outputs))])
    if len(in_names) != len(graph.inputs) or len(out_names) != len(graph.outputs):
        raise ValueError("ember.onnx.export: input_names/output_names have the wrong length")
    dims = _dims(in_names + out_names, dynamic_axes)
    names = dict(zip(graph.inputs, in_names))
    names.update(graph.consts)
    cx = _Context(onnx, graph, opset, names)
    for n in graph.nodes:
        handler = HANDLERS.get(n.op)
        if handler is None:
            raise NotImplementedError(f"ember.onnx.export: no ONNX mapping for op {n.op!r}")
        handler(cx, n)
    for vid, name in zip(graph.outputs, out_names):
        cx.emit("Identity", [cx.name(vid)], [name])
    inits = [onnx.numpy_helper.from_array(graph.tensors[n], n) for n in graph.consts.values()]
    g = onnx.helper.make_graph(
        cx.nodes,
        "ember",
        [_value_info(onnx, cx, v, n, dims.get(n, {})) for v, n in zip(graph.inputs, in_names)],
        [_value_info(onnx, cx, v, n, dims.get(n, {})) for v, n in zip(graph.outputs, out_names)],
        initializer=inits + cx.inits,
    )
    proto = onnx.helper.make_model(
        g, opset_imports=[onnx.helper.make_opsetid("", opset)], producer_name="ember"
    )
    proto.ir_version = min(proto.ir_version, 8 if opset <= 17 else 9)
    onnx.save(proto, os.fspath(f))


__all__ = ["export"]
