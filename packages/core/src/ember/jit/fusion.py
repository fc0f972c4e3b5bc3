"""Fusing chains of elementwise nodes into one ``FusedElementwise`` node, and running it.

``fuse_elementwise`` groups elementwise nodes (unary math, arithmetic with broadcasting,
comparisons, where, clamp, casts, GELU/SiLU/sigmoid) whose intermediate values nobody outside
the group reads. Each group becomes one node that holds its steps as data::

    {"op": "Mul", "args": [["in", 0], ["lit", 0.5]], "params": {}, "shape": [...], "dtype": ...}

where ``["in", i]`` is the fused node's input ``i``, ``["step", j]`` the result of step ``j``
and ``["lit", v]`` a literal. The last step's result is the node's output.

On the CPU the node runs its steps on blocks of about 64K elements of the output's leading
dims (``kernels.cpu.parallel.run_rows``: threads for large arrays), so the intermediates of a
block stay in cache. Each step calls the same op's ``forward`` on the block that the unfused
node calls on the whole array: the same ufuncs in the same order on the same dtypes, so the
output is bitwise the one of the unfused graph. Inputs that broadcast along the blocked dims
(a bias of shape ``(C,)``) are passed whole; small ones that broadcast along some of them (a
``(1, C, 1, 1)`` bias over ``(N, C)`` rows) are broadcast into a small copy first. When
blocking does not pay or is not possible (outputs under 256K elements, non-contiguous inputs,
other dtypes than traced, inputs that need grad, CuPy arrays) the steps run one by one on
whole arrays, as the unfused graph would.
"""

from __future__ import annotations

import math

import numpy as np

from .._tensor import _make
from ..autograd.function import Primitive
from ..autograd.grad_mode import STATE
from ..kernels.cpu.parallel import CHUNK, run_rows
from . import registry
from .graph import Graph, Node, Ref, _np_dtype

FUSED = "FusedElementwise"

ELEMENTWISE = frozenset(
    (
        "Cast Add Sub Mul Div Pow Maximum Minimum Clamp Where Compare "
        "Neg Exp Log Log1p Expm1 Sqrt Rsqrt Sin Cos Tanh Sigmoid Relu Abs Erf "
        "Sign Floor Ceil Trunc Round Gelu Silu"
    ).split()
)
# ops that make several passes over their input on their own: blocking pays even for one
# (measured: 0.3-0.5x the time on 6M elements); float32 exact GELU is blocked already
MULTI_PASS = frozenset(("Sigmoid", "Silu", "Gelu"))
# one cheap pass each: a group of only these is memory-bound either way, and blocking it
# measured 0.83-1.4x the unfused time for bias-add + ReLU (ResNet-50 overall: 1.05x)
CHEAP = frozenset(
    "Cast Add Sub Mul Maximum Minimum Clamp Where Compare Neg Abs Relu Sign Floor Ceil".split()
)


def _worth_alone(g: Graph, n: Node) -> bool:
    if n.op not in MULTI_PASS:
        return False
    exact32 = n.op == "Gelu" and n.params.get("approximate") == "none"
    return not (exact32 and g.values[n.outputs[0]].dtype == "float32")


# ---- the pass ------------------------------------------------------------------------------


def _fusible(n: Node) -> bool:
    if n.op not in ELEMENTWISE or len(n.outputs) != 1 or n.sym:
        return False
    return len(n.refs()) == sum(isinstance(a, Ref) for a in n.args)  # no refs in params


def _groups(g: Graph) -> list[list[int]]:
    """Node indices of each group, in graph order; a group's last node is its only output."""
    readers: dict[int, list[int]] = {}
    for i, n in enumerate(g.nodes):
        for v in n.refs():
            readers.setdefault(v, []).append(i)
    outs = set(g.outputs)
    group_of: dict[int, int] = {}
    groups: list[list[int]] = []
    for i in range(len(g.nodes) - 1, -1, -1):  # readers first: a value joins its readers
        n = g.nodes[i]
        if not _fusible(n):
            continue
        v = n.outputs[0]
        owners = {group_of.get(j) for j in readers.get(v, ())}
        if v not in outs and len(owners) == 1 and None not in owners:
            gid = owners.pop()
        else:
            gid = len(groups)
            groups.append([])
        group_of[i] = gid
        groups[gid].append(i)
    return [sorted(m) for m in groups]


def _fused_node(g: Graph, nodes: list[Node]) -> Node:
    inside = {n.outputs[0]: j for j, n in enumerate(nodes)}
    inputs: list[int] = []
    steps = []
    for n in nodes:
        args = []
        for a in n.args:
            if not isinstance(a, Ref):
                args.append(["lit", a])
            elif a.vid in inside:
                args.append(["step", inside[a.vid]])
            else:
                if a.vid not in inputs:
                    inputs.append(a.vid)
                args.append(["in", inputs.index(a.vid)])
        v = g.values[n.outputs[0]]
        step = {"op": n.op, "args": args, "params": dict(n.params)}
        steps.append(dict(step, shape=list(v.shape), dtype=v.dtype))
    params = {"steps": steps, "dtypes": [g.values[v].dtype for v in inputs]}
    return Node(FUSED, [Ref(v) for v in inputs], params, [nodes[-1].outputs[0]])


def fuse_elementwise(graph: Graph, min_nodes: int = 2, skip_cheap: bool = False) -> Graph:
    """Replace each group of at least ``min_nodes`` elementwise nodes, whose intermediate
    values are read only inside the group, by one ``FusedElementwise`` node (single nodes of
    multi-pass ops, sigmoid, SiLU and GELU but float32 exact GELU, are fused too).
    ``skip_cheap`` leaves groups made only of cheap one-pass ops (add, multiply, ReLU, ...)
    alone, as ``optimize_for_inference`` does: blocking does not pay for those.

    >>> import ember
    >>> from ember.jit import passes
    >>> g = ember.jit.trace(lambda x: (x * 2 + 1).relu(), ember.randn(4, 3)).graph
    >>> [n.op for n in passes.fuse_elementwise(g).nodes]
    ['FusedElementwise']
    """
    g = graph.copy()
    fused: dict[int, Node] = {}
    drop: set[int] = set()
    for members in _groups(g):
        lone = len(members) == 1 and _worth_alone(g, g.nodes[members[0]])
        if len(members) < min_nodes and not lone:
            continue
        if skip_cheap and all(g.nodes[i].op in CHEAP for i in members):
            continue
        fused[members[-1]] = _fused_node(g, [g.nodes[i] for i in members])
        drop.update(members[:-1])
    g.nodes = [fused.get(i, n) for i, n in enumerate(g.nodes) if i not in drop]
    live = set(g.inputs) | set(g.consts) | {v for n in g.nodes for v in n.outputs}
    g.values = {k: v for k, v in g.values.items() if k in live}
    return g


def unfuse(graph: Graph) -> Graph:
    """Expand every ``FusedElementwise`` node back into the nodes it was made from (ONNX
    export and the other passes work on unfused graphs)."""
    g = graph.copy()
    nodes: list[Node] = []
    for n in g.nodes:
        if n.op != FUSED:
            nodes.append(n)
            continue
        made: list[int] = []
        steps = n.params["steps"]
        for j, s in enumerate(steps):
            last = j == len(steps) - 1
            vid = n.outputs[0] if last else g.new_value(s["shape"], s["dtype"])
            args = [_unfused_arg(n, made, kind, x) for kind, x in s["args"]]
            nodes.append(Node(s["op"], args, s["params"], [vid]))
            made.append(vid)
    g.nodes = nodes
    return g


def _unfused_arg(n: Node, made: list[int], kind: str, x):
    if kind == "in":
        return n.args[x]
    return Ref(made[x]) if kind == "step" else x


# ---- running a fused node --------------------------------------------------------------------


def _caller(cls):
    """``call(*args, **params)`` running one op on arrays as ``cls.apply`` would, minus the
    Tensor wrapping and autograd bookkeeping."""
    if isinstance(cls, type) and issubclass(cls, Primitive):
        forward = cls.forward

        def call(*args, **params):
            ctx = cls.__new__(cls)
            ctx._rec, ctx._args = False, args
            out = forward(ctx, *args, **params)
            return np.asarray(out) if isinstance(out, np.generic) else out

        return call

    def call_apply(*args, _wrap=(), **params):  # graph ops that work on Tensors
        args = [_make(a) if i in _wrap else a for i, a in enumerate(args)]
        return cls.apply(*args, **params)._data

    return call_apply


def compile_steps(steps) -> list:
    """The steps as ``(call, args, params)`` with args ``(kind, value)``: 0 input, 1 step
    result, 2 literal."""
    kinds = {"in": 0, "step": 1, "lit": 2}
    plan = []
    for s in steps:
        cls = registry.lookup(s["op"])
        args = [(kinds[k], x) for k, x in s["args"]]
        params = dict(s["params"])
        call = _caller(cls)
        if not (isinstance(cls, type) and issubclass(cls, Primitive)):
            params["_wrap"] = tuple(i for i, (k, _) in enumerate(args) if k < 2)
        plan.append((call, args, params))
    return plan


def run_steps(plan, arrays) -> object:
    """Run a compiled plan on whole arrays (or blocks of them); returns the last result."""
    made: list = []
    for call, args, params in plan:
        vals = [arrays[x] if k == 0 else made[x] if k == 1 else x for k, x in args]
        made.append(call(*vals, **params))
    return made[-1]


def generated_kernel(steps, arrays):
    """A device kernel generated from ``steps`` for ``arrays``, or None to run them op by op.

    TODO(gpu): on CUDA, emit one ``cupy.ElementwiseKernel`` from the steps. Until that code
    generator lands (and is tested on a GPU), this returns None for every input, so fused
    groups on CuPy arrays run op by op, exactly like the unfused graph."""
    return None


WHOLE, ROWS, SPREAD = 0, 1, 2
# below this many output elements the unfused passes stay in cache anyway and blocks only
# add overhead (measured: a bias add + ReLU on 131K float32 ran 1.3x slower blocked)
MIN_BLOCKED = 4 * CHUNK


def _block_dims(shape: tuple, arrays) -> tuple[int, list[int]]:
    """How many leading dims of ``shape`` to block over, and per array how it is passed:
    ``WHOLE`` (it broadcasts along those dims), ``ROWS`` (its leading dims are the output's:
    sliced) or ``SPREAD`` (a small array such as a ``(1, C, 1, 1)`` bias, broadcast along
    those dims into a copy, then sliced), so that rows hold at most ``CHUNK`` elements."""
    nd, size = len(shape), math.prod(shape)
    fit = next(k for k in range(nd + 1) if math.prod(shape[k:]) <= CHUNK)
    best: tuple[int, list[int]] = (0, [])
    for k in range(1, nd + 1):
        kinds = []
        for a in arrays:
            lead = ((1,) * (nd - a.ndim) + a.shape)[:k]
            copied = math.prod(shape[:k]) * math.prod(a.shape[max(0, a.ndim - nd + k) :])
            if all(d == 1 for d in lead):
                kinds.append(WHOLE)
            elif lead == shape[:k]:
                kinds.append(ROWS)
            elif k <= fit and copied * 16 <= size:
                kinds.append(SPREAD)
            else:
                return best
        best = (k, kinds)
    return best


def _parts(shape, k, arrays, kinds) -> list:
    rows, nd = math.prod(shape[:k]), len(shape)
    parts = []
    for a, kind in zip(arrays, kinds):
        tail = ((1,) * (nd - a.ndim) + a.shape)[k:]
        if kind == WHOLE:
            parts.append(a.reshape(a.shape[max(0, a.ndim - len(tail)) :]))
        elif kind == ROWS:
            parts.append(a.reshape((rows,) + tail))
        else:
            wide = np.broadcast_to(a.reshape((1,) * (nd - a.ndim) + a.shape), shape[:k] + tail)
            parts.append(np.ascontiguousarray(wide).reshape((rows,) + tail))
    return parts


def run_blocked(plan, arrays: list, out_dtype) -> np.ndarray | None:
    """The plan's result computed block by block, or None when blocking does not apply."""
    if max(a.size for a in arrays) * 8 < MIN_BLOCKED:
        return None
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    if math.prod(shape) < MIN_BLOCKED:
        return None
    k, kinds = _block_dims(shape, arrays)
    rows = math.prod(shape[:k])
    if k == 0 or rows < 2:
        return None
    if not all(a.flags.c_contiguous for a, kind in zip(arrays, kinds) if kind == ROWS):
        return None  # slicing would not give views; the unfused layout is kept instead
    parts = _parts(shape, k, arrays, kinds)
    where = [i for i, kind in enumerate(kinds) if kind != WHOLE]
    out = np.empty((rows,) + shape[k:], out_dtype)

    def kernel(out_block, *blocks):
        vals = list(parts)
        for i, b in zip(where, blocks):
            vals[i] = b
        out_block[...] = run_steps(plan, vals)

    run_rows(kernel, out, *(parts[i] for i in where))
    return out.reshape(shape)


class FusedElementwise:
    """A group of elementwise nodes run as one: ``steps`` as ``fuse_elementwise`` writes them,
    ``dtypes`` the traced dtypes of the inputs."""

    @classmethod
    def prepare(cls, params: dict) -> dict:
        """``params`` plus what every call would otherwise redo: the compiled steps, the
        input and output dtypes (a ``TracedModule`` calls this once per node)."""
        steps = params["steps"]
        prepared = (compile_steps(steps), [_np_dtype(d) for d in params["dtypes"]])
        return dict(params, prepared=prepared + (_np_dtype(steps[-1]["dtype"]),))

    @classmethod
    def apply(cls, *inputs, steps, dtypes, prepared=None):
        """Run the steps on the input tensors; returns one tensor."""
        if STATE.grad_enabled and any(t._rg for t in inputs):
            return _apply_one_by_one(steps, inputs)  # records autograd as the nodes would
        if prepared is None:
            prepared = cls.prepare({"steps": steps, "dtypes": dtypes})["prepared"]
        plan, in_dtypes, out_dtype = prepared
        arrays = [t._data for t in inputs]
        if not all(a.__class__ is np.ndarray for a in arrays):
            kernel = generated_kernel(steps, arrays)
            return _make(run_steps(plan, arrays) if kernel is None else kernel(*arrays))
        out = None
        if all(a.dtype == d for a, d in zip(arrays, in_dtypes)):
            out = run_blocked(plan, arrays, out_dtype)
        return _make(run_steps(plan, arrays) if out is None else out)


def _apply_one_by_one(steps, inputs):
    made: list = []
    for s in steps:
        vals = [inputs[x] if k == "in" else made[x] if k == "step" else x for k, x in s["args"]]
        made.append(registry.lookup(s["op"]).apply(*vals, **s["params"]))
    return made[-1]
