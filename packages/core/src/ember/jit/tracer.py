"""Recording a graph: while tracing, ``Primitive.apply`` is wrapped (and restored after), so
every op call becomes a node; nothing is checked on the op path when no trace runs."""

from __future__ import annotations

import sys
import warnings

import numpy as np

from .._tensor import TENSOR_TYPES, Size, Tensor
from ..autograd.function import Primitive
from ..autograd.grad_mode import STATE, no_grad
from . import hooks, shapes, symbolic
from .graph import Graph, Node, Ref


class TracerWarning(UserWarning):
    """The trace may not generalize: a traced value became a Python value or a constant."""


def _host(arr) -> np.ndarray:
    return np.array(arr if isinstance(arr, np.ndarray) else arr.get())


class Recorder:
    """Maps live tensors to graph values while one trace runs."""

    def __init__(self, names: dict, dynamic):
        self.graph = Graph()
        self.graph.dynamic = sorted(dynamic)
        self.names = names  # id(tensor) -> parameter or buffer name
        self.by_id: dict[int, int] = {}  # id(tensor) -> value id
        self.by_data: dict[int, int] = {}  # id(array) -> value id (aliases of a value)
        self.version: dict[int, int] = {}  # id(tensor) -> version counter when registered
        self.keep: list = []  # keeps recorded objects alive so their ids stay unique
        self.sym: dict[int, tuple] = {}  # value id -> its shape with dynamic dims as expressions
        self.known: dict[int, object] = {}  # traced size -> the first expression seen with it
        self.ops: dict = {}  # op name -> Primitive class

    def bind(self, t: Tensor, vid: int) -> None:
        """Make tensor ``t`` (and its array) stand for value ``vid``."""
        self.keep.append(t)
        self.by_id[id(t)], self.by_data[id(t._data)] = vid, vid
        self.version[id(t)] = t._vbox[0]

    def add_input(self, t: Tensor) -> None:
        """Register a graph input."""
        i = len(self.graph.inputs)
        vid = self.graph.new_value(t._data.shape, t._data.dtype)
        self.graph.inputs.append(vid)
        dyn = {a for j, a in self.graph.dynamic if j == i}
        if dyn:
            shape = t._data.shape
            self.sym[vid] = tuple(["dim", i, a] if a in dyn else s for a, s in enumerate(shape))
            for a in sorted(dyn):
                self.known.setdefault(shape[a], ["dim", i, a])
        self.bind(t, vid)

    def value(self, expr) -> int:
        """The traced value of a size expression."""
        return symbolic.evaluate(expr, [self.graph.values[v].shape for v in self.graph.inputs])

    def traced(self, t) -> int | None:
        """The value id of ``t`` when it is a traced (not constant) value, else None."""
        vid = self.by_id.get(id(t)) if isinstance(t, Tensor) else None
        return None if vid is None or vid in self.graph.consts else vid

    def shape_of(self, t: Tensor):
        """``t.shape`` with its dynamic dims as SymInts."""
        entries = self.sym.get(self.by_id.get(id(t)))
        if entries is None or entries and len(entries) != t._data.ndim:
            return Size(t._data.shape)
        return Size(symbolic.sym(s, e) for s, e in zip(t._data.shape, entries))

    def lookup(self, t: Tensor) -> int:
        """The value id of ``t``; a tensor not seen before becomes a constant."""
        vid = self.by_id.get(id(t))
        if vid is not None:
            if self.version[id(t)] != t._vbox[0]:
                _warn("a traced tensor was modified in place through a view")
            return vid
        vid = self.by_data.get(id(t._data))
        if vid is not None:  # an alias (same array, new Tensor object) of a traced value
            self.bind(t, vid)
            return vid
        name = self.names.get(id(t))
        if name is None:
            name = f"const_{sum(1 for n in self.graph.tensors if n.startswith('const_'))}"
        vid = self.graph.add_const(name, _host(t._data))
        self.bind(t, vid)
        return vid

    def _param(self, x):
        if isinstance(x, tuple):
            return tuple(self._param(y) for y in x)
        if isinstance(x, list):
            return [self._param(y) for y in x]
        if isinstance(x, np.ndarray) or hasattr(x, "__cuda_array_interface__"):
            vid = self.by_data.get(id(x))
            if vid is not None and vid not in self.graph.consts:
                return Ref(vid)
            if self._looks_traced(x):
                _warn("an index array computed from a traced value is recorded as a constant")
            return _host(x)
        return x

    def _looks_traced(self, arr) -> bool:
        for vid in self.by_data.values():
            v = self.graph.values[vid]
            if vid not in self.graph.consts and v.shape == arr.shape and v.dtype == str(arr.dtype):
                return True
        return False

    def record(self, cls, args, params, out) -> None:
        """Add the node for ``cls.apply(*args, **params)`` that returned ``out``."""
        name = cls.__name__
        if self.ops.setdefault(name, cls) is not cls:
            raise RuntimeError(f"ember.jit.trace: two different ops are named {name!r}")
        rargs = [Ref(self.lookup(a)) if a.__class__ in TENSOR_TYPES else a for a in args]
        rparams, sym = {}, {}
        for k, v in params.items():
            plain, with_expr = symbolic.split_symints(v)
            rparams[k] = self._param(plain)
            if symbolic.has_expr(with_expr):
                sym[k] = with_expr
        outs = out if isinstance(out, tuple) else (out,)
        node = Node(name, rargs, rparams, [], sym)
        for o in outs:
            vid = self.graph.new_value(o._data.shape, o._data.dtype)
            node.outputs.append(vid)
            self.bind(o, vid)
        if self.graph.dynamic:
            shapes.propagate(self, node)
        self.graph.nodes.append(node)

    def commit(self, t: Tensor, out: Tensor) -> None:
        """``t`` was overwritten in place with ``out``: it now stands for ``out``'s value."""
        vid = self.by_id.get(id(out))
        if vid is not None:
            self.bind(t, vid)


def _warn(what: str) -> None:
    warnings.warn(
        f"ember.jit.trace: {what}; the trace might not generalize to other inputs "
        "(data-dependent values are recorded as constants).",
        TracerWarning,
        stacklevel=4,
    )


def _patch_conversions(rec: Recorder) -> list:
    """Wrap the Tensor methods that turn a value into Python or NumPy data."""
    saved = []
    for attr in ("item", "tolist", "numpy"):
        orig = Tensor.__dict__[attr]

        def conv(self, *a, _orig=orig, _attr=attr, **k):
            # a tensor the trace has not seen was most likely computed outside the recorded
            # ops (a comparison, say) from traced values; parameters and buffers are known
            vid = rec.by_id.get(id(self))
            if vid not in rec.graph.consts and id(self) not in rec.names:
                _warn(f"converting a traced tensor to a Python value (Tensor.{_attr})")
            return _orig(self, *a, **k)

        saved.append((Tensor, attr, orig))
        setattr(Tensor, attr, conv)
    return saved


def _patch_commit(rec: Recorder) -> list:
    from ..ops import inplace

    orig = inplace.commit

    def commit(t, out):
        res = orig(t, out)
        rec.commit(t, out)
        return res

    saved = []
    for mod in list(sys.modules.values()):
        if not getattr(mod, "__name__", "").startswith("ember"):
            continue
        if mod.__dict__.get("commit") is orig:
            saved.append((mod, "commit", orig))
            mod.commit = commit
    return saved


def run_traced(fn, inputs: tuple, names: dict, dynamic):
    """Call ``fn(*inputs)`` under no_grad, recording; return (graph, op classes).
    ``dynamic`` lists the ``(input index, axis)`` dims that may change between calls."""
    rec = Recorder(names, dynamic)
    for t in inputs:
        rec.add_input(t)
    orig = Primitive.__dict__["apply"]

    def apply(cls, *args, **params):
        out = orig.__func__(cls, *args, **params)
        rec.record(cls, args, params, out)
        return out

    saved = [(Primitive, "apply", orig)]
    Primitive.apply = classmethod(apply)
    try:
        saved += _patch_conversions(rec)
        saved += _patch_commit(rec)
        if dynamic:
            saved += hooks.patch_shape(rec) + hooks.patch_creation(rec)
        saved += hooks.patch_compare(rec) + hooks.patch_attention(rec)
        saved.append((STATE, "tracing", STATE.tracing))
        STATE.tracing = True  # fast paths that skip Primitive.apply step aside
        with no_grad():
            out = fn(*inputs)
    finally:
        for owner, attr, value in reversed(saved):
            setattr(owner, attr, value)
    outs = out if isinstance(out, tuple | list) else (out,)
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(
                f"ember.jit.trace: outputs must be Tensors or tuples of Tensors, "
                f"got {type(o).__name__}"
            )
    rec.graph.outputs = [rec.lookup(o) for o in outs]
    rec.graph.tuple_out = isinstance(out, tuple | list)
    return rec.graph, rec.ops
