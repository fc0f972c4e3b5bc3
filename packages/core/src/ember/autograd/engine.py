"""The backward engine: walks the graph from the outputs in dependency order, summing the
gradients that reach each node before running its backward, and accumulating into leaves."""

from __future__ import annotations

import sys

import numpy as np

from .._tensor import Tensor, _make
from ..backend.device import array_module
from .grad_mode import STATE


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Compute gradients of ``tensors`` and accumulate them into the leaves' ``.grad``."""
    tensors = _as_list(tensors)
    grads = _as_list(grad_tensors) if grad_tensors is not None else [None] * len(tensors)
    if len(grads) != len(tensors):
        raise RuntimeError(f"backward: got {len(tensors)} tensors and {len(grads)} gradients")
    roots = _roots(tensors, grads, "backward")
    keep = create_graph if retain_graph is None else retain_graph
    only = None
    if inputs is not None:
        only = {id(t) for t in _as_list(inputs)}
        if not only:
            raise RuntimeError("backward: inputs argument was passed as an empty list")
    _execute(roots, keep, create_graph, leaves_only=only)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    allow_unused=None,
    materialize_grads=False,
):
    """Return d(outputs)/d(inputs) without touching any ``.grad``.

    >>> import ember
    >>> x = ember.tensor(3.0, requires_grad=True)
    >>> (g,) = ember.autograd.grad(x ** 3, x, create_graph=True)
    >>> g, ember.autograd.grad(g, x)[0]
    (tensor(27., grad_fn=<MulBackward0>), tensor(18.))
    """
    outputs = _as_list(outputs)
    inputs = _as_list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t._rg:
            raise RuntimeError(f"grad: input {i} does not require grad")
    gos = _as_list(grad_outputs) if grad_outputs is not None else [None] * len(outputs)
    roots = _roots(outputs, gos, "grad")
    keep = create_graph if retain_graph is None else retain_graph
    captured = _execute(roots, keep, create_graph, capture=inputs)
    result = []
    for i, t in enumerate(inputs):
        g = captured.get(i)
        if g is None:
            if materialize_grads:
                g = _make(array_module(t._data).zeros_like(t._data))
            elif not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors (input {i}) appears to not have been "
                    "used in the graph. Set allow_unused=True if this is the desired behavior."
                )
        result.append(g)
    return tuple(result)


def _as_list(x):
    if x is None:
        return []
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def _roots(tensors, grads, op):
    roots = []
    for i, (t, g) in enumerate(zip(tensors, grads, strict=True)):
        if not t._rg:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn"
            )
        if g is None:
            if t._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = _make(_ones(t._data))
        elif not isinstance(g, Tensor):
            from ..creation import tensor

            g = tensor(g, dtype=t.dtype)
        if tuple(g.shape) != tuple(t.shape):
            raise RuntimeError(
                f"{op}: Mismatch in shape: grad_output[{i}] has a shape of {list(g.shape)} and "
                f"output[{i}] has a shape of {list(t.shape)}."
            )
        edge = (t.grad_fn, t._output_nr) if t.grad_fn is not None else t
        roots.append((edge, g))
    return roots


def _ones(d):
    return array_module(d).ones(d.shape, d.dtype)


def _execute(roots, keep, create, capture=None, leaves_only=None):
    """Run backward from ``roots``; return captured gradients by input index."""
    cap_leaf, cap_node = {}, {}
    if capture is not None:
        for i, t in enumerate(capture):
            if t.grad_fn is None:
                cap_leaf[id(t)] = i
            else:
                cap_node.setdefault(t.grad_fn, []).append((t._output_nr, i))
    nodes = [e[0] for e, _ in roots if e.__class__ is tuple]
    deps = _count_deps(nodes, cap_leaf, cap_node if capture is not None else None)
    buffers = {}
    captured = {}
    shared = set()  # ids of gradient arrays already stored in a .grad (must not alias)
    hooked = {}  # leaves with hooks: their gradient is summed first, so hooks run once
    leaf = (create, shared, cap_leaf, captured, leaves_only, hooked)
    prev = STATE.grad_enabled
    STATE.grad_enabled = bool(create)
    try:
        for edge, g in roots:
            shared.add(id(g._data))
            if edge.__class__ is tuple:
                _add(buffers, edge[0], edge[1], g)
            else:
                _to_leaf(edge, g, *leaf)
        ready = [n for n in dict.fromkeys(nodes) if deps.get(n, 0) == 0 and n in deps]
        while ready:
            node = ready.pop()
            grads = buffers.pop(node, None)
            if grads is not None:
                grads = _pre_hooks(node, grads, create, shared)
                if node in cap_node:
                    for nr, i in cap_node[node]:
                        if grads[nr] is not None:
                            captured[i] = grads[nr]
                ins = _run_node(node, grads, create)
                if not keep:
                    node._release()
            else:
                ins = None
            for k, e in enumerate(node._next):
                if e is None:
                    continue
                g = ins[k] if ins is not None else None
                if e.__class__ is tuple:
                    m = e[0]
                    if m not in deps:
                        continue
                    if g is not None:
                        _add(buffers, m, e[1], g)
                    deps[m] -= 1
                    if deps[m] == 0:
                        ready.append(m)
                elif g is not None:
                    _to_leaf(e, g, *leaf)
        for t, g in hooked.values():
            for fn in list(t._hooks):
                r = fn(g)
                if r is not None:
                    g = r
            _deliver(t, g, *leaf[:5])
    finally:
        STATE.grad_enabled = prev
    return captured


def _count_deps(nodes, cap_leaf, cap_node):
    """Incoming-edge counts for every node that must run. With a capture set, only nodes
    from which a captured tensor can be reached run."""
    deps = {}
    seen = set(nodes)
    order = []
    stack = list(seen)
    while stack:
        n = stack.pop()
        order.append(n)
        for e in n._next:
            if e.__class__ is tuple and e[0] not in seen:
                seen.add(e[0])
                stack.append(e[0])
    if cap_node is None:
        for n in order:
            deps.setdefault(n, 0)
            for e in n._next:
                if e.__class__ is tuple:
                    deps[e[0]] = deps.get(e[0], 0) + 1
        return deps
    needed = _needed(order, cap_leaf, cap_node)
    for n in order:
        if n not in needed:
            continue
        deps.setdefault(n, 0)
        for e in n._next:
            if e.__class__ is tuple and e[0] in needed:
                deps[e[0]] = deps.get(e[0], 0) + 1
    return deps


def _needed(order, cap_leaf, cap_node):
    # Post-order by repeated relaxation: a node is needed if it is a captured tensor's grad_fn
    # or leads to a needed node or a captured leaf.
    children = {n: [e for e in n._next if e is not None] for n in order}
    needed = set(cap_node)
    changed = True
    while changed:
        changed = False
        for n in order:
            if n in needed:
                continue
            for e in children[n]:
                if (e.__class__ is tuple and e[0] in needed) or (
                    e.__class__ is not tuple and id(e) in cap_leaf
                ):
                    needed.add(n)
                    changed = True
                    break
    return needed


def _add(buffers, node, nr, g):
    buf = buffers.get(node)
    if buf is None:
        buf = buffers[node] = [None] * node._nout
    old = buf[nr]
    buf[nr] = g if old is None else old + g


def _pre_hooks(node, grads, create, shared):
    hooks = node._hooks
    if hooks:
        for nr, fns in hooks.items():
            g = grads[nr]
            if g is None:
                continue
            for fn in list(fns):
                r = fn(g)
                if r is not None:
                    g = r
            grads[nr] = g
    kept = node._retained
    if kept:
        for nr, t in kept.items():
            g = grads[nr]
            if g is not None:
                g = g if create else g.detach()
                t.grad = _own(g, shared, t) if t.grad is None else t.grad + g
    return grads


def _run_node(node, grads, create):
    if node._nout > 1 and node._materialize:
        grads = [g if g is not None else _zeros_for(node, nr) for nr, g in enumerate(grads)]
    out = node.backward(node, *grads)
    if out.__class__ is not tuple:
        out = (out,)
    n = len(node._next)
    if len(out) != n:
        if len(out) > n and all(o is None for o in out[n:]):
            out = out[:n]
        else:
            raise RuntimeError(
                f"function {node.name()} returned an incorrect number of gradients "
                f"(expected {n}, got {len(out)})"
            )
    if STATE.anomaly:
        _check_nan(node, out)
    post = node.__dict__.get("_post")
    if post:
        for fn in list(post):
            r = fn(out, tuple(grads))
            if r is not None:
                out = tuple(r)
    return out


def _zeros_for(node, nr):
    xp, shape, dtype = node._out_meta[nr]
    return _make(xp.zeros(shape, dtype))


def _check_nan(node, grads):
    for i, g in enumerate(grads):
        if g is not None and g.dtype.is_floating_point:
            xp = g._data
            bad = (xp != xp).any()
            if bool(bad):
                trace = "".join(node._stack or ["(no forward trace recorded)\n"])
                raise RuntimeError(
                    f"Function '{node.name()}' returned nan values in its {i}th output. "
                    f"It was produced by the forward op {type(node).__name__}, called from:\n"
                    f"{trace}"
                )


def _private_view(d) -> bool:
    """Whether the view ``d`` covers all of its base array and nothing but the gradient tensor
    holds either of them: the op's own temporary (a reshape of a fresh product, as a
    convolution's weight gradient is), whose memory nobody else can see or change. PyTorch
    likewise keeps a gradient that nothing else holds instead of copying it."""
    base = d.base
    if type(base) is not type(d) or base.size != d.size:
        return False
    refs_d, refs_base = _refs(d, base)
    return refs_d <= _ALONE[0] and refs_base <= _ALONE[1]


def _refs(d, base) -> tuple:
    """(references to ``d``, references to ``base``), as seen from ``_private_view``."""
    return sys.getrefcount(d), sys.getrefcount(base)


def _alone_refs() -> tuple:
    """``_refs`` of a view held only as a tensor's array (and the caller's local name), over a
    base only the view holds: measured rather than assumed, as the counts differ between
    Python versions."""

    class Holder:
        pass

    def probe(d):  # the frames of _own -> _private_view -> _refs
        base = d.base
        return _refs(d, base)

    holder = Holder()
    holder._data = np.empty(4).reshape(2, 2)
    d = holder._data
    return probe(d)


_ALONE = _alone_refs()


def _own(g, shared, t=None):
    """A gradient safe to store in ``.grad``: not a view of memory something else holds, not
    shared with another leaf, and laid out as the tensor ``t`` it is for (PyTorch's gradient
    layout contract: a channels-last weight gets a channels-last gradient, a C-contiguous one
    a C-contiguous gradient); a copy is made only where one of these does not hold."""
    d = g._data
    like = t._data if t is not None and t._data.shape == d.shape else None
    misfit = (
        like is not None
        and d.strides != like.strides
        and not (d.flags.c_contiguous and like.flags.c_contiguous)  # size-1 dims' strides
    )
    view = d.base is not None and not _private_view(d)
    if misfit or id(d) in shared or view or not getattr(d.flags, "writeable", True):
        if g.grad_fn is None:
            like = d if like is None else like
            if isinstance(d, np.ndarray):
                out = np.empty_like(like, dtype=d.dtype)  # order "K": like's strides
            else:  # C-contiguous or channels last, allocated as the CUDA kernels do
                from ..kernels.cuda.compile import empty_as

                out = empty_as(like, d.dtype)
            out[...] = d
            g = _make(out)
        else:
            g = g + 0
    shared.add(id(g._data))
    return g


def _to_leaf(t, g, create, shared, cap_leaf, captured, only, hooked):
    if t._hooks:
        k = id(t)
        if k in hooked:
            hooked[k][1] = hooked[k][1] + g
        else:
            hooked[k] = [t, g]
        return
    _deliver(t, g, create, shared, cap_leaf, captured, only)


def _deliver(t, g, create, shared, cap_leaf, captured, only):
    """Hand a leaf its gradient: capture it for autograd.grad or accumulate into .grad."""
    if cap_leaf:
        i = cap_leaf.get(id(t))
        if i is not None:
            captured[i] = g if i not in captured else captured[i] + g
        return
    if only is not None and id(t) not in only:
        return
    if g._data.shape != t._data.shape:
        raise RuntimeError(
            f"backward: gradient of shape {list(g.shape)} does not match the leaf's shape "
            f"{list(t.shape)}"
        )
    if g._data.dtype != t._data.dtype:
        g = g.to(t.dtype)
    if not create:
        if g.grad_fn is not None:
            g = g.detach()
        if t.grad is None:
            t.grad = _own(g, shared, t)
        else:
            cur = t.grad
            if cur.grad_fn is None and getattr(cur._data.flags, "writeable", 1) and not cur._rg:
                cur._data += g._data
                cur._vbox[0] += 1
            else:
                t.grad = cur + g
    else:
        t.grad = g if t.grad is None else t.grad + g
