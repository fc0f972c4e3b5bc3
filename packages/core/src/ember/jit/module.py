"""``trace``, the ``TracedModule`` it returns (run, save) and ``load``."""

from __future__ import annotations

import json
import os

from .._tensor import Tensor, _make
from ..serialization import safetensors_io
from ..serialization.atomic import atomic_write
from . import registry, symbolic
from .graph import Graph, Ref, walk
from .tracer import TracerWarning, _warn, run_traced

_FORMAT = "ember.jit"


class TracedModule:
    """A traced program: call it like the original; ``.graph`` shows it; ``.save`` stores it.

    Running it calls each recorded op's ``apply`` on tensors, so gradients flow to inputs
    that require grad. The inputs' dynamic dims (``graph.dynamic``) may change between calls.
    """

    def __init__(self, graph: Graph, ops: dict | None = None):
        self.graph = graph
        self._ops = ops if ops is not None else {n.op: registry.lookup(n.op) for n in graph.nodes}
        self._consts = {vid: _make(graph.tensors[name]) for vid, name in graph.consts.items()}
        self._plan = [_step(n, self._ops[n.op]) for n in graph.nodes]
        self._drop = _last_uses(graph)

    def _check(self, inputs) -> list:
        g = self.graph
        if len(inputs) != len(g.inputs):
            raise TypeError(f"traced module expects {len(g.inputs)} inputs, got {len(inputs)}")
        shapes = []
        for i, (t, vid) in enumerate(zip(inputs, g.inputs)):
            if not isinstance(t, Tensor):
                raise TypeError(f"traced module: input {i} must be a Tensor, got {type(t)}")
            want, got = g.values[vid].shape, t._data.shape
            free = {a for j, a in g.dynamic if j == i}
            if len(got) != len(want) or any(
                w != s for a, (w, s) in enumerate(zip(want, got)) if a not in free
            ):
                dims = ", ".join(map(str, sorted(free)))
                may = f" (dim{'s' * (len(free) > 1)} {dims} may vary)" if free else ""
                raise RuntimeError(
                    f"traced module: input {i} has shape {list(got)}, but the trace expects "
                    f"{list(want)}{may}"
                )
            shapes.append(got)
        return shapes

    def __call__(self, *inputs):
        g = self.graph
        shapes = self._check(inputs)
        env = dict(self._consts)
        env.update(zip(g.inputs, inputs))
        for (apply, args, params, refs, sym, outs), drop in zip(self._plan, self._drop):
            if refs:
                args = [env[a.vid] if a.__class__ is Ref else a for a in args]
            if sym is not None:
                params = _bind(params, sym, env, shapes)
            out = apply(*args, **params)
            if outs.__class__ is int:
                env[outs] = out
            else:
                env.update(zip(outs, out))
            for v in drop:  # free intermediates after their last use, as eager code does
                del env[v]
        outs = [env[v] for v in g.outputs]
        return tuple(outs) if g.tuple_out else outs[0]

    forward = __call__

    def save(self, path) -> None:
        """Write the graph (JSON, in the metadata) and its constants to one safetensors file."""
        meta = {"format": _FORMAT, "graph": json.dumps(self.graph.to_json())}
        atomic_write(path, lambda fh: safetensors_io.write(fh, self.graph.tensors, meta))

    def __repr__(self) -> str:
        return f"TracedModule(\n{self.graph}\n)"


def _step(node, cls) -> tuple:
    """One node as a ready-to-run tuple: (apply, args, params, args hold refs?, symbolic or
    ref-holding params or None, output id or ids)."""
    has_ref = any(isinstance(v, Ref) for v in node.params.values())
    sym = node.sym if (node.sym or has_ref) else None
    outs = node.outputs[0] if len(node.outputs) == 1 else tuple(node.outputs)
    refs = any(a.__class__ is Ref for a in node.args)
    params = dict(node.params)
    prepare = getattr(cls, "prepare", None)  # work an op does once per node, not per call
    return cls.apply, list(node.args), prepare(params) if prepare else params, refs, sym, outs


def _last_uses(graph) -> list:
    """For each node, the values no later node or output reads (dropped after it runs)."""
    last: dict[int, int] = {}
    for i, n in enumerate(graph.nodes):
        for v in n.refs():
            last[v] = i
        for v in n.outputs:
            last.setdefault(v, i)
    keep = set(graph.outputs)
    drop: list[list[int]] = [[] for _ in graph.nodes]
    for v, i in last.items():
        if v not in keep:
            drop[i].append(v)
    return drop


def _bind(params, sym, env, shapes) -> dict:
    params = walk(params, lambda r: env[r.vid]._data)
    for k, v in sym.items():
        params[k] = symbolic.resolve(v, shapes)
    return params


def _names(module) -> dict:
    names = {}
    for attr in ("named_buffers", "named_parameters"):
        if hasattr(module, attr):
            for name, t in getattr(module, attr)():
                names[id(t)] = name
    return names


def _dynamic(inputs, dynamic_batch, dynamic_axes) -> list:
    if dynamic_axes is None:
        sizes = {t.shape[0] for t in inputs if isinstance(t, Tensor) and t.ndim}
        if not dynamic_batch or len(sizes) != 1:
            return []
        return [(i, 0) for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.ndim]
    items = dynamic_axes.items() if isinstance(dynamic_axes, dict) else enumerate(dynamic_axes)
    out = []
    for i, axes in items:
        if not 0 <= i < len(inputs):
            raise ValueError(f"ember.jit.trace: dynamic_axes names input {i}, not an input")
        nd = inputs[i].ndim
        out += [(i, a % nd) for a in (axes or ())]
    return sorted(set(out))


def _check_sizes(inputs, dynamic) -> None:
    by_size: dict = {}
    for i, a in dynamic:
        by_size.setdefault(inputs[i].shape[a], set()).add(a)
    for size, axes in by_size.items():
        if size == 1 or len(axes) > 1:
            _warn(
                f"dynamic dims {sorted(axes)} are traced with the same size {size}; trace "
                "with a distinct size above 1 for each so shapes can be told apart"
            )


def trace(func, example_inputs, *, dynamic_batch: bool = True, dynamic_axes=None):
    """Record the ops ``func(*example_inputs)`` runs into a replayable ``TracedModule``.

    Like ``torch.jit.trace``: control flow is fixed to the path the example took, and a
    ``TracerWarning`` flags tensors turned into Python values. Dynamic dims may change
    between calls: ``dynamic_axes`` maps an input's index to its dynamic axes (``{0: [0, 1]}``
    for batch and sequence of the first input); without it, ``dynamic_batch`` makes dim 0 of
    every input dynamic. Shapes computed from dynamic dims (reshape and expand targets, sizes
    passed to ``ember.arange``/``zeros``/``ones``/``full``) are recomputed at each call.

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
    dynamic = _dynamic(inputs, dynamic_batch, dynamic_axes)
    _check_sizes(inputs, dynamic)
    graph, ops = run_traced(func, inputs, _names(func), dynamic)
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
