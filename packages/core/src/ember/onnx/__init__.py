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
        self._batch = None

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

    def batch_size(self) -> str:
        """A 1-D int64 tensor holding the batch size of the first input."""
        if self._batch is None:
            shape = self.emit("Shape", [self.name(self.graph.inputs[0])])
            zero, one = self.const(np.array([0], np.int64)), self.const(np.array([1], np.int64))
            self._batch = self.emit("Slice", [shape, zero, one])
        return self._batch


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
        if set(axes) - {0}:
            raise ValueError("ember.onnx.export: only dim 0 (the batch) can be dynamic")
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
    of axis to symbolic name); ember supports dim 0, the batch. ``opset_version`` defaults
    to 17. Convolutions absorb the eval-mode batch norms after them (constant folding). Needs
    the ``onnx`` package; ``onnxruntime`` can then run the file.
    """
    onnx = _import_onnx()
    opset = 17 if opset_version is None else int(opset_version)
    if opset < 17:
        raise ValueError("ember.onnx.export: opset_version must be 17 or newer")
    args = (args,) if isinstance(args, Tensor) else tuple(args)
    traced = model if isinstance(model, TracedModule) else trace(model, args)
    graph = passes.optimize(traced.graph)
    in_names = list(input_names or [f"input_{i}" for i in range(len(graph.inputs))])
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
