"""Scaled-dot-product attention on CuPy arrays through cuDNN's fused (flash) attention graphs:
forward with the softmax statistics saved, and backward from them, in float16 or bfloat16.

Inputs are (B, H, S, D) logically with any strides whose last is 1 (a (B, S, H, D) buffer
transposed, as a model's head split leaves it, goes in without a copy); outputs are written in
the (B, S, H, D) layout, so merging the heads afterwards is a view.
"""

from __future__ import annotations

from . import cudnn_graphs as G

_DTYPES = ("float16", "bfloat16")


def usable(q, k, v, attn_mask, dropout_p, is_causal) -> bool:
    """Whether cuDNN's fused attention takes these arrays and options."""
    if attn_mask is not None or dropout_p > 0.0 or not G.enabled():
        return False
    if not (q.ndim == k.ndim == v.ndim == 4) or q.dtype.name not in _DTYPES:
        return False
    if not (q.dtype == k.dtype == v.dtype):
        return False
    b, h, s_q, d = q.shape
    if k.shape != (b, h, k.shape[2], d) or v.shape != k.shape:  # no GQA, Dv == D
        return False
    if d % 8 or d > 128 or s_q == 0 or k.shape[2] == 0:
        return False
    if is_causal and s_q != k.shape[2]:
        return False
    return all(a.strides[3] == a.itemsize for a in (q, k, v))


def _bshd(shape, dtype):
    import cupy

    b, h, s, d = shape
    return cupy.empty((b, s, h, d), dtype).transpose(0, 2, 1, 3)


def _t(graph, name, a, dt=None):
    return graph.tensor(
        name=name,
        dim=list(a.shape),
        stride=G.elem_strides(a),
        data_type=G.data_type(a.dtype) if dt is None else dt,
    )


def _spec(a):
    return (tuple(a.shape), tuple(G.elem_strides(a)))


def forward(q, k, v, scale: float, is_causal: bool):
    """(out, stats): the attention output (B, H, S, D) and the softmax log-sum-exp statistics
    (B, H, S, 1) float32 that the backward needs; None when cuDNN refuses the graph."""
    import cupy

    o = _bshd(q.shape, q.dtype)
    stats = cupy.empty(q.shape[:3] + (1,), cupy.float32)
    key = ("sdpa", _spec(q), _spec(k), _spec(v), _spec(o), q.dtype.str, float(scale), is_causal)

    def make():
        g = G.new_graph(q.dtype)
        tq, tk, tv = _t(g, "q", q), _t(g, "k", k), _t(g, "v", v)
        to, ts = g.sdpa(
            name="sdpa",
            q=tq,
            k=tk,
            v=tv,
            generate_stats=True,
            attn_scale=float(scale),
            use_causal_mask=bool(is_causal),
        )
        to.set_output(True).set_dim(list(o.shape)).set_stride(G.elem_strides(o))
        to.set_data_type(G.data_type(o.dtype))
        ts.set_output(True).set_data_type(G.cudnn().data_type.FLOAT)
        return g, {"q": tq, "k": tk, "v": tv, "o": to, "stats": ts}, False

    entry = G.build(key, make)
    if entry is None:
        return None
    G.run(entry, {"q": q, "k": k, "v": v, "o": o, "stats": stats})
    return o, stats


def backward(q, k, v, o, stats, do, scale: float, is_causal: bool):
    """(dq, dk, dv) from the forward's output and statistics; None when cuDNN refuses."""
    if do.strides != o.strides:  # the backward graph reads dO in O's layout
        d2 = _bshd(o.shape, o.dtype)
        d2[...] = do
        do = d2
    dq, dk, dv = (_bshd(a.shape, a.dtype) for a in (q, k, v))
    key = ("sdpa_bwd", _spec(q), _spec(k), _spec(v), _spec(o), q.dtype.str, float(scale), is_causal)

    def make():
        g = G.new_graph(q.dtype)
        tq, tk, tv, to, tdo = (
            _t(g, n, a) for n, a in zip(("q", "k", "v", "o", "do"), (q, k, v, o, do))
        )
        ts = _t(g, "stats", stats, G.cudnn().data_type.FLOAT)
        tdq, tdk, tdv = g.sdpa_backward(
            name="sdpa_backward",
            q=tq,
            k=tk,
            v=tv,
            o=to,
            dO=tdo,
            stats=ts,
            attn_scale=float(scale),
            use_causal_mask=bool(is_causal),
        )
        for t, a in ((tdq, dq), (tdk, dk), (tdv, dv)):
            t.set_output(True).set_dim(list(a.shape)).set_stride(G.elem_strides(a))
            t.set_data_type(G.data_type(a.dtype))
        names = {"q": tq, "k": tk, "v": tv, "o": to, "do": tdo, "stats": ts}
        return g, {**names, "dq": tdq, "dk": tdk, "dv": tdv}, False

    entry = G.build(key, make)
    if entry is None:
        return None
    feed = {"q": q, "k": k, "v": v, "o": o, "do": do, "stats": stats, "dq": dq, "dk": dk, "dv": dv}
    G.run(entry, feed)
    return dq, dk, dv
