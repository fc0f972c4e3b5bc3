"""``trace``, the ``TracedModule`` it returns (run, save) and ``load``."""

from __future__ import annotations

import json
import os

from .._tensor import Tensor, _make
from ..serialization import safetensors_io
from ..serialization.atomic import atomic_write
from . import registry
from .graph import Graph, Ref, walk
from .tracer import TracerWarning, _warn, run_traced

_FORMAT = "ember.jit"


class TracedModule:
    """A traced program: call it like the original; ``.graph`` shows it; ``.save`` stores it.

    Running it calls each recorded op's ``apply`` on tensors, so gradients flow to inputs
    that require grad. Inputs may change their dim 0 (the batch) when the trace was dynamic.
    """

    def __init__(self, graph: Graph, ops: dict | None = None):
        self.graph = graph
        self._ops = ops if ops is not None else {n.op: registry.lookup(n.op) for n in graph.nodes}
        self._consts = {vid: _make(graph.tensors[name]) for vid, name in graph.consts.items()}

    def _check(self, inputs) -> int | None:
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise TypeError(f"traced module expects {len(g.inputs)} inputs, got {len(inputs)}")
        batch = None
        for i, (t, vid) in enumerate(zip(inputs, g.inputs)):
            if not isinstance(t, Tensor):
                raise TypeError(f"traced module: input {i} must be a Tensor, got {type(t)}")
            want, got = g.values[vid].shape, tuple(t.shape)
            lo = 1 if g.batch is not None and want else 0
            if len(got) != len(want) or got[lo:] != want[lo:]:
                raise RuntimeError(
                    f"traced module: input {i} has shape {list(got)}, but the trace expects "
                    f"{list(want)}" + (" (dim 0 may vary)" if lo else "")
                )
            if lo:
                if batch is not None and got[0] != batch:
                    raise RuntimeError("traced module: the inputs disagree on the batch size")
                batch = got[0]
        return batch

    def __call__(self, *inputs):
        g = self.graph
        batch = self._check(inputs)
        env = dict(self._consts)
        env.update(zip(g.inputs, inputs))
        resize = batch is not None and batch != g.batch
        for node in g.nodes:
            args = [env[a.vid] if a.__class__ is Ref else a for a in node.args]
            params = node.params
            if node.dyn or any(isinstance(v, Ref) for v in params.values()):
                params = walk(params, lambda r: env[r.vid]._data)
                if resize:
                    for k in node.dyn:
                        params[k] = (batch,) + tuple(params[k][1:])
            out = self._ops[node.op].apply(*args, **params)
            if len(node.outputs) == 1 and not isinstance(out, tuple):
                env[node.outputs[0]] = out
            else:
                env.update(zip(node.outputs, out))
        outs = [env[v] for v in g.outputs]
        return tuple(outs) if g.tuple_out else outs[0]

    forward = __call__

    def save(self, path) -> None:
        """Write the graph (JSON, in the metadata) and its constants to one safetensors file."""
        meta = {"format": _FORMAT, "graph": json.dumps(self.graph.to_json())}
        atomic_write(path, lambda fh: safetensors_io.write(fh, self.graph.tensors, meta))

    def __repr__(self) -> str:
        return f"TracedModule(\n{self.graph}\n)"


def _names(module) -> dict:
    names = {}
    for attr in ("named_buffers", "named_parameters"):
        if hasattr(module, attr):
            for name, t in getattr(module, attr)():
                names[id(t)] = name
    return names


def trace(func, example_inputs, *, dynamic_batch: bool = True) -> TracedModule:
    """Record the ops ``func(*example_inputs)`` runs into a replayable ``TracedModule``.

    Like ``torch.jit.trace``: control flow is fixed to the path the example took, and a
    ``TracerWarning`` flags tensors turned into Python values. With ``dynamic_batch`` the
    inputs' dim 0 may change: a Reshape or Expand whose input carries the batch and whose
    target starts with the traced batch size gets the new batch size there instead.

    >>> import ember
    >>> from ember import nn
    >>> net = nn.Sequential(nn.Linear(3, 2), nn.ReLU()).eval()
    >>> traced = ember.jit.trace(net, ember.randn(4, 3))
    >>> x = ember.randn(6, 3)
    >>> bool((traced(x) == net(x)).all())
    True
    >>> [n.op for n in traced.graph.nodes]
    ['Linear', 'Relu']
    """
    if isinstance(example_inputs, Tensor):
        example_inputs = (example_inputs,)
    inputs = tuple(example_inputs)
    batch = None
    if dynamic_batch:
        sizes = {t.shape[0] for t in inputs if isinstance(t, Tensor) and t.ndim}
        if len(sizes) == 1:
            batch = sizes.pop()
            if batch == 1:
                _warn("tracing with batch size 1 cannot tell the batch from other size-1 dims")
    graph, ops = run_traced(func, inputs, _names(func), batch)
    return TracedModule(graph, ops)


def load(path) -> TracedModule:
    """Load a ``TracedModule`` saved by ``.save``; needs ember only, not the model's code."""
    with open(os.fspath(path), "rb") as fh:
        buf = fh.read()
    arrays, meta = safetensors_io.read(buf, "ember.jit.load")
    if meta.get("format") != _FORMAT or "graph" not in meta:
        raise ValueError(f"ember.jit.load: {path!s} is not a traced module saved by ember.jit")
    return TracedModule(Graph.from_json(json.loads(meta["graph"]), arrays))


__all__ = ["TracedModule", "TracerWarning", "load", "trace"]
