"""Shape propagation while tracing: which dims of each new value follow the dynamic input dims.

Reshape, Expand, Permute, Cat and the creation ops are worked out from their parameters; any
other op's output dim takes the expression of an input dim of the same traced size that it
lines up with: right-aligned as in broadcasting (matmul, elementwise, dropped leading dims)
or, failing that, left-aligned (dropped trailing dims). ``trace`` warns when two dynamic dims
share one traced size, since they could not be told apart.
"""

from __future__ import annotations

from . import symbolic
from .graph import Ref
from .symbolic import combine, is_expr


def _entries(rec, vid) -> tuple:
    e = rec.sym.get(vid)
    return e if e is not None else rec.graph.values[vid].shape


def _set(rec, vid, entries) -> None:
    entries = tuple(entries)
    if any(is_expr(e) for e in entries):
        rec.sym[vid] = entries
        for e, s in zip(entries, rec.graph.values[vid].shape):
            if is_expr(e):
                rec.known.setdefault(s, e)


def _reshape(rec, node):
    src, out = node.args[0].vid, node.outputs[0]
    shape = rec.graph.values[out].shape
    if src not in rec.sym:
        return shape
    entries = symbolic.reshape_entries(rec.sym[src], rec.graph.values[src].shape, shape, rec.value)
    if any(is_expr(e) for e in entries):
        node.sym["shape"] = tuple(entries)
    return entries


def _expand(rec, node):
    src, out = node.args[0].vid, node.outputs[0]
    target = rec.graph.values[out].shape
    have, entries = _entries(rec, src), []
    lead = len(target) - len(have)
    for i, t in enumerate(target):
        j = i - lead
        if j >= 0 and rec.graph.values[src].shape[j] == t:
            entries.append(have[j])
        else:
            entries.append(rec.known.get(t, t))
    if any(is_expr(e) for e in entries):
        node.sym["shape"] = tuple(entries)
    return entries


def _permute(rec, node):
    have = _entries(rec, node.args[0].vid)
    return [have[p] for p in node.params["perm"]]


def _cat(rec, node):
    refs = [a.vid for a in node.args if isinstance(a, Ref)]
    shape = rec.graph.values[node.outputs[0]].shape
    axis = node.params["axis"] % len(shape)
    entries = list(_generic(rec, refs, shape))
    total = 0
    for v in refs:
        total = combine("add", total, _entries(rec, v)[axis])
    entries[axis] = total
    return entries


def _created(rec, node):
    if node.op == "Full":
        return node.sym.get("shape", node.params["shape"])
    start, end, step = (node.sym.get(k, node.params[k]) for k in ("start", "end", "step"))
    if node.params["step"] == 1:
        return [combine("sub", end, start)]
    return rec.graph.values[node.outputs[0]].shape


def _generic(rec, refs, shape):
    ins = [(rec.graph.values[v].shape, _entries(rec, v)) for v in refs]
    out = []
    for i, size in enumerate(shape):
        k = len(shape) - i
        hit = _aligned([(sh[-k], en[-k]) for sh, en in ins if len(sh) >= k], size)
        if hit is None:
            hit = _aligned([(sh[i], en[i]) for sh, en in ins if len(sh) > i], size)
        out.append(size if hit is None else hit)
    return out


def _aligned(pairs, size):
    same = [e for s, e in pairs if s == size]
    if not same:
        return None
    return next((e for e in same if is_expr(e)), size)


_RULES = {
    "Reshape": _reshape,
    "Expand": _expand,
    "Permute": _permute,
    "Cat": _cat,
    "Full": _created,
    "Arange": _created,
}


def propagate(rec, node) -> None:
    """Work out the symbolic shapes of ``node``'s outputs (and its symbolic params)."""
    rule = _RULES.get(node.op)
    if rule is not None:
        _set(rec, node.outputs[0], rule(rec, node))
        return
    refs = [v for v in node.refs() if v in rec.sym]
    if not refs:
        return
    for vid in node.outputs:
        _set(rec, vid, _generic(rec, refs, rec.graph.values[vid].shape))
