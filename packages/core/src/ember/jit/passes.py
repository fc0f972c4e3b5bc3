"""Graph rewrites. Each pass takes a ``Graph`` and returns a new one computing the same outputs.

``fuse_elementwise`` (in fusion.py, re-exported here) groups chains of elementwise ops into
one node that runs them on cache-sized blocks; ``unfuse`` undoes it.

Eval-mode batch norm is a composite in ember (``x * scale + shift``, with ``scale`` and
``shift`` computed from the running statistics), so ``fold_batchnorm`` first folds those
constant computations, then merges the per-channel ``Mul``/``Add``/``Sub`` by constants that
follow a ``Conv2d`` into the convolution's weight and one bias add.
"""

from __future__ import annotations

import json

import numpy as np

from .._tensor import _make
from ..autograd.grad_mode import no_grad
from . import registry
from .fusion import FUSED, FusedElementwise, fuse_elementwise, unfuse
from .graph import Graph, Ref, encode, walk

_NO_FOLD = ("Expand",)  # folding a broadcast view would only store a bigger constant


def dce(graph: Graph) -> Graph:
    """Drop nodes and constants no output depends on."""
    g = graph.copy()
    live = set(g.outputs)
    keep = []
    for n in reversed(g.nodes):
        if any(v in live for v in n.outputs):
            keep.append(n)
            live.update(n.refs())
    g.nodes = keep[::-1]
    for vid in [v for v in g.consts if v not in live]:
        del g.tensors[g.consts.pop(vid)]
    live.update(g.inputs)
    live.update(v for n in g.nodes for v in n.outputs)
    g.values = {k: v for k, v in g.values.items() if k in live}
    return g


def constant_fold(graph: Graph) -> Graph:
    """Evaluate nodes whose inputs are all constants; their outputs become constants."""
    g = graph.copy()
    keep = []
    for n in g.nodes:
        refs = n.refs()
        cls = registry.ops().get(n.op)
        if cls is None or n.sym or n.op in _NO_FOLD or not refs:
            keep.append(n)
            continue
        if any(v not in g.consts for v in refs):
            keep.append(n)
            continue
        args = [_make(g.const(a.vid)) if isinstance(a, Ref) else a for a in n.args]
        params = walk(n.params, lambda r: g.const(r.vid))
        with no_grad():
            out = cls.apply(*args, **params)
        for vid, o in zip(n.outputs, out if isinstance(out, tuple) else (out,)):
            name = f"folded_{vid}"
            g.consts[vid], g.tensors[name] = name, np.array(o._data)
    g.nodes = keep
    return dce(g)


def _key(n) -> str:
    return json.dumps([n.op, encode(n.args), encode(n.params), encode(n.sym)], sort_keys=True)


def cse(graph: Graph) -> Graph:
    """Merge nodes that apply the same op with the same parameters to the same values."""
    g = graph.copy()
    seen: dict[str, list[int]] = {}
    mapping: dict[int, int] = {}
    keep = []
    for n in g.nodes:
        n.rename(mapping)
        k = _key(n)
        if k in seen:
            mapping.update(zip(n.outputs, seen[k]))
        else:
            seen[k] = n.outputs
            keep.append(n)
    g.nodes = keep
    g.outputs = [mapping.get(v, v) for v in g.outputs]
    return dce(g)


def _per_channel(g: Graph, arg, channels: int):
    """The (C,) vector a constant broadcasts as over (N, C, H, W), else None."""
    arr = g.const(arg.vid) if isinstance(arg, Ref) else None
    if arr is None or arr.ndim > 4:
        return None
    shape = (1,) * (4 - arr.ndim) + arr.shape
    if shape[0] != 1 or shape[2:] != (1, 1) or shape[1] not in (1, channels):
        return None
    return np.broadcast_to(arr.reshape(-1).astype(np.float64), (channels,))


def _affine_chain(g: Graph, conv, uses, readers):
    """The Mul/Add/Sub-by-per-channel-constant nodes that follow ``conv`` one after another."""
    chain, cur = [], conv.outputs[0]
    channels = g.values[cur].shape[1]
    while uses.get(cur) == 1 and cur not in g.outputs and cur in readers:
        n = readers[cur]
        if n.op not in ("Mul", "Add", "Sub") or len(n.args) != 2:
            break
        if n.args[0] == Ref(cur):
            other = n.args[1]
        elif n.op != "Sub" and n.args[1] == Ref(cur):
            other = n.args[0]
        else:
            break
        vec = _per_channel(g, other, channels)
        if vec is None or g.values[n.outputs[0]].shape != g.values[cur].shape:
            break
        chain.append((n, vec))
        cur = n.outputs[0]
    return chain


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold eval-mode batch norm (and any per-channel scale and shift) into the preceding
    ``Conv2d``: ``conv(x, W) * s + t`` becomes ``conv(x, W * s) + t``."""
    g = constant_fold(graph)
    uses = g.uses()
    readers = {v: n for n in g.nodes for v in n.refs()}
    drop = set()
    for conv in g.nodes:
        if conv.op != "Conv2d" or g.const(conv.args[1].vid) is None:
            continue
        chain = _affine_chain(g, conv, uses, readers)
        if not chain:
            continue
        w = g.const(conv.args[1].vid)
        wf, bias, has_bias = w.astype(np.float64), np.zeros(w.shape[0]), False
        for n, vec in chain:
            if n.op == "Mul":
                wf, bias = wf * vec[:, None, None, None], bias * vec
            else:
                bias, has_bias = bias + vec if n.op == "Add" else bias - vec, True
        wname = g.consts[conv.args[1].vid]
        conv.args[1] = Ref(g.add_const(f"{wname}.folded", wf.astype(w.dtype)))
        last = chain[-1][0]
        drop.update(id(n) for n, _ in chain)
        if has_bias:
            b = bias.astype(w.dtype).reshape(1, -1, 1, 1)
            last.op, last.params, last.sym = "Add", {}, {}
            last.args = [Ref(conv.outputs[0]), Ref(g.add_const(f"{wname}.folded_bias", b))]
            drop.discard(id(last))
        else:
            conv.outputs = [last.outputs[0]]
    g.nodes = [n for n in g.nodes if id(n) not in drop]
    return dce(g)


def optimize(graph: Graph, *, fuse: bool = False) -> Graph:
    """Constant folding, conv + batch norm folding, CSE, dead-code elimination; with
    ``fuse``, then ``fuse_elementwise(..., skip_cheap=True)``. Fused nodes in ``graph`` are
    expanded first, so the result without ``fuse`` holds only the traced ops (what ONNX
    export maps)."""
    out = dce(cse(fold_batchnorm(unfuse(graph))))
    return fuse_elementwise(out, skip_cheap=True) if fuse else out


def optimize_for_inference(traced):
    """A new ``TracedModule`` whose graph went through ``optimize(graph, fuse=True)`` (like
    PyTorch's ``torch.jit.optimize_for_inference``): batch norm folded into the convolution,
    then chains of elementwise ops fused into one node each, run on cache-sized blocks
    (groups of only cheap one-pass ops such as bias-add + ReLU stay as they are).

    >>> import ember
    >>> from ember import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.SiLU()).eval()
    >>> fast = ember.jit.optimize_for_inference(ember.jit.trace(net, ember.randn(2, 1, 5, 5)))
    >>> [n.op for n in fast.graph.nodes]
    ['Conv2d', 'FusedElementwise']
    >>> [step["op"] for step in fast.graph.nodes[1].params["steps"]]
    ['Add', 'Silu']
    """
    from .module import TracedModule

    ops = dict(traced._ops)
    ops[FUSED] = FusedElementwise
    return TracedModule(optimize(traced.graph, fuse=True), ops)
