"""The graph IR of ``ember.jit``: values, nodes, printing, and the JSON form they are saved in.

A graph is a straight-line program. Every value has an id (printed ``%3``), a shape and a
dtype; it is a graph input, a constant (a parameter, buffer or other captured tensor, stored
by name), or an output of one node. A node names a ``Primitive`` class (``op``), its
positional arguments (``Ref`` to a value, or a literal such as a Python number) and its
keyword parameters (JSON-able, except that an index array taken from a traced value is a
``Ref`` too, so it changes with the inputs)."""

from __future__ import annotations

import copy

import numpy as np

FORMAT_VERSION = 2


class Ref:
    """A use of value ``vid`` inside a node's arguments or parameters."""

    __slots__ = ("vid",)

    def __init__(self, vid: int):
        self.vid = vid

    def __repr__(self) -> str:
        return f"%{self.vid}"

    def __eq__(self, other) -> bool:
        return isinstance(other, Ref) and other.vid == self.vid

    def __hash__(self) -> int:
        return hash(("Ref", self.vid))


class Value:
    """Shape and dtype of one value, as seen while tracing."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype: str):
        self.shape, self.dtype = tuple(shape), str(dtype)

    def __repr__(self) -> str:
        return f"{self.dtype}[{', '.join(map(str, self.shape))}]"


class Node:
    """One call of ``op`` (a Primitive class name); ``sym`` maps the params whose sizes follow
    the inputs' dynamic dims to their symbolic form (see ``ember.jit.symbolic``)."""

    __slots__ = ("op", "args", "params", "outputs", "sym")

    def __init__(self, op: str, args, params: dict, outputs, sym=None):
        self.op, self.args, self.params = op, list(args), dict(params)
        self.outputs, self.sym = list(outputs), dict(sym or {})

    @property
    def dyn(self) -> tuple:
        """The names of the params re-derived from the input shapes at run time."""
        return tuple(self.sym)

    def refs(self) -> list[int]:
        """Ids of every value this node reads (arguments and parameters)."""
        out: list[int] = []
        walk(self.args, lambda r: out.append(r.vid) or r)
        walk(self.params, lambda r: out.append(r.vid) or r)
        return out

    def rename(self, mapping: dict) -> None:
        """Point every use of value ``a`` at ``mapping[a]`` instead."""

        def fn(r):
            return Ref(mapping.get(r.vid, r.vid))

        self.args = walk(self.args, fn)
        self.params = walk(self.params, fn)


def walk(obj, fn):
    """``obj`` with every ``Ref`` inside lists, tuples and dicts replaced by ``fn(ref)``."""
    if isinstance(obj, Ref):
        return fn(obj)
    if isinstance(obj, list):
        return [walk(x, fn) for x in obj]
    if isinstance(obj, tuple):
        return tuple(walk(x, fn) for x in obj)
    if isinstance(obj, dict):
        return {k: walk(v, fn) for k, v in obj.items()}
    return obj


class Graph:
    """Inputs, constants, nodes and outputs of a traced program; ``print(graph)`` shows it."""

    def __init__(self):
        self.values: dict[int, Value] = {}
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.tuple_out = False
        self.consts: dict[int, str] = {}  # value id -> tensor name
        self.tensors: dict[str, np.ndarray] = {}
        self.nodes: list[Node] = []
        self.dynamic: list[tuple[int, int]] = []  # (input index, axis) of each dynamic dim
        self._next: int | None = None  # the next free value id (None: after the largest)

    def new_value(self, shape, dtype) -> int:
        """Register a value; return its id."""
        vid = max(self.values, default=-1) + 1 if self._next is None else self._next
        self._next = vid + 1
        self.values[vid] = Value(shape, dtype)
        return vid

    def add_const(self, name: str, arr: np.ndarray) -> int:
        """Register a constant array under a unique ``name``; return its value id."""
        base, n = name, 1
        while name in self.tensors:
            name, n = f"{base}_{n}", n + 1
        vid = self.new_value(arr.shape, arr.dtype)
        self.consts[vid], self.tensors[name] = name, arr
        return vid

    def const(self, vid: int):
        """The array of constant ``vid`` (None when it is not a constant)."""
        name = self.consts.get(vid)
        return None if name is None else self.tensors[name]

    def copy(self) -> Graph:
        """A copy whose nodes can be rewritten without touching this graph (arrays shared)."""
        g = copy.copy(self)
        g._next = None
        g.values, g.inputs, g.outputs = dict(self.values), list(self.inputs), list(self.outputs)
        g.consts, g.tensors = dict(self.consts), dict(self.tensors)
        g.dynamic = list(self.dynamic)
        g.nodes = [Node(n.op, n.args, n.params, n.outputs, n.sym) for n in self.nodes]
        return g

    def uses(self) -> dict[int, int]:
        """How many times each value is read by nodes and outputs."""
        count: dict[int, int] = {}
        for n in self.nodes:
            for v in n.refs():
                count[v] = count.get(v, 0) + 1
        for v in self.outputs:
            count[v] = count.get(v, 0) + 1
        return count

    def __str__(self) -> str:
        ins = ", ".join(f"%{v}: {self.values[v]!r}" for v in self.inputs)
        lines = [f"graph({ins}):"]
        for vid, name in self.consts.items():
            lines.append(f"  %{vid} = constant[{name}]  # {self.values[vid]!r}")
        for n in self.nodes:
            outs = ", ".join(f"%{v}" for v in n.outputs)
            args = [repr(a) for a in n.args] + [f"{k}={_short(v)}" for k, v in n.params.items()]
            types = ", ".join(repr(self.values[v]) for v in n.outputs)
            lines.append(f"  {outs} = {n.op}({', '.join(args)})  # {types}")
        lines.append(f"  return ({', '.join(f'%{v}' for v in self.outputs)})")
        return "\n".join(lines)

    __repr__ = __str__

    # ---- JSON -----------------------------------------------------------------------------
    def to_json(self) -> dict:
        """The graph as JSON-able data (constants by name; their arrays are stored apart)."""
        return {
            "version": FORMAT_VERSION,
            "values": {str(k): [list(v.shape), v.dtype] for k, v in self.values.items()},
            "inputs": self.inputs,
            "outputs": self.outputs,
            "tuple_out": self.tuple_out,
            "consts": {str(k): v for k, v in self.consts.items()},
            "dynamic": [list(d) for d in self.dynamic],
            "nodes": [
                {
                    "op": n.op,
                    "args": [encode(a) for a in n.args],
                    "params": {k: encode(v) for k, v in n.params.items()},
                    "outputs": n.outputs,
                    "sym": {k: encode(v) for k, v in n.sym.items()},
                }
                for n in self.nodes
            ],
        }

    @classmethod
    def from_json(cls, data: dict, tensors: dict) -> Graph:
        """Rebuild a graph from ``to_json`` data and the constants' arrays."""
        if data.get("version") not in (1, FORMAT_VERSION):
            raise ValueError(
                f"ember.jit: graph format version {data.get('version')!r} is not supported "
                f"(this ember reads version {FORMAT_VERSION})"
            )
        g = cls()
        g.values = {int(k): Value(s, d) for k, (s, d) in data["values"].items()}
        g.inputs, g.outputs = list(data["inputs"]), list(data["outputs"])
        g.tuple_out = bool(data["tuple_out"])
        old = data.get("version") == 1  # version 1: only dim 0 (the batch) was dynamic
        if old:
            g.dynamic = [(i, 0) for i in range(len(g.inputs))] if data["batch"] else []
        else:
            g.dynamic = [tuple(d) for d in data["dynamic"]]
        g.consts = {int(k): v for k, v in data["consts"].items()}
        missing = set(g.consts.values()) - set(tensors)
        if missing:
            raise ValueError(f"ember.jit: the file lacks the constants {sorted(missing)}")
        g.tensors = {name: tensors[name] for name in g.consts.values()}
        for n in data["nodes"]:
            args = [decode(a) for a in n["args"]]
            params = {k: decode(v) for k, v in n["params"].items()}
            if old:
                sym = {k: (["dim", 0, 0],) + tuple(params[k][1:]) for k in n["dyn"]}
            else:
                sym = {k: decode(v) for k, v in n["sym"].items()}
            g.nodes.append(Node(n["op"], args, params, n["outputs"], sym))
        return g


def _short(v) -> str:
    if isinstance(v, list) and v and all(isinstance(s, dict) and "op" in s for s in v):
        return "[" + ", ".join(s["op"] for s in v) + "]"  # a fused node's steps
    if isinstance(v, np.ndarray):
        return f"array({v.dtype}{list(v.shape)})"
    if isinstance(v, np.dtype):
        return str(v)
    return repr(v)


def encode(v):
    """A JSON-able form of a parameter value (tuples, slices, dtypes, arrays are tagged)."""
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, Ref):
        return {"ref": v.vid}
    if isinstance(v, tuple):
        return {"tuple": [encode(x) for x in v]}
    if isinstance(v, list):
        return [encode(x) for x in v]
    if isinstance(v, slice):
        return {"slice": [encode(v.start), encode(v.stop), encode(v.step)]}
    if v is Ellipsis:
        return {"ellipsis": True}
    if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
        return {"dtype": str(np.dtype(v))}
    if isinstance(v, np.generic):
        return {"scalar": v.item(), "dtype": str(v.dtype)}
    if isinstance(v, np.ndarray):
        return {"array": v.tolist(), "dtype": str(v.dtype), "shape": list(v.shape)}
    if isinstance(v, dict):
        return {"dict": {str(k): encode(x) for k, x in v.items()}}
    raise TypeError(f"ember.jit: cannot store a parameter of type {type(v).__name__}: {v!r}")


def _np_dtype(name: str) -> np.dtype:
    try:
        return np.dtype(name)
    except TypeError:
        from ..backend import dtypes

        return getattr(dtypes, name).np


def decode(v):
    """Invert ``encode``."""
    if isinstance(v, list):
        return [decode(x) for x in v]
    if not isinstance(v, dict):
        return v
    if "ref" in v:
        return Ref(int(v["ref"]))
    if "tuple" in v:
        return tuple(decode(x) for x in v["tuple"])
    if "slice" in v:
        return slice(*[decode(x) for x in v["slice"]])
    if "ellipsis" in v:
        return Ellipsis
    if "array" in v:
        return np.array(v["array"], dtype=_np_dtype(v["dtype"])).reshape(v["shape"])
    if "scalar" in v:
        return _np_dtype(v["dtype"]).type(v["scalar"])
    if "dtype" in v:
        return _np_dtype(v["dtype"])
    if "dict" in v:
        return {k: decode(x) for k, x in v["dict"].items()}
    raise ValueError(f"ember.jit: unknown parameter encoding {v!r}")
