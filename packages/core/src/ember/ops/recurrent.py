"""Fused primitives for recurrent layers: the LSTM and GRU cell nonlinearities as one node each,
and splitting a tensor into pieces as one node.

A recurrent layer runs one cell step per time step, so per-node overhead dominates its cost;
fusing the ~12 pointwise nodes of a step into one makes LSTM/GRU forward+backward about twice
as fast. Backward is written in tensor ops: when it is itself recorded (``create_graph``), the
activations are recomputed from the saved inputs, so higher-order gradients stay exact.

``ops.split`` / ``ops.unbind`` index each piece separately, and each indexing node's backward
builds a zero tensor of the whole input: unbinding a (T, N, G) sequence into T steps costs
O(T^2) in backward. ``split_pieces`` / ``unbind_pieces`` record one node whose backward
concatenates the pieces' gradients: O(T).
"""

from __future__ import annotations

from .._tensor import _make
from ..autograd.function import Primitive
from ..autograd.grad_mode import STATE
from ..backend.device import array_module
from .join import Pieces, cat
from .unary import sigmoid, tanh

# ---- pieces ------------------------------------------------------------------------------


def split_pieces(input, sizes, dim):
    """``input.split(list(sizes), dim)`` recorded as one node."""
    dim = dim % input.dim()
    return Pieces.apply(input, axis=dim, sizes=tuple(sizes), squeeze=False)


def unbind_pieces(input, dim=0):
    """``input.unbind(dim)`` recorded as one node."""
    dim = dim % input.dim()
    return Pieces.apply(input, axis=dim, sizes=(1,) * input.shape[dim], squeeze=True)


# ---- cell nonlinearities -----------------------------------------------------------------


def _sig(xp, a):
    return 0.5 * (1 + xp.tanh(0.5 * a))  # stable for any sign, one transcendental


def _blocks(t, n, k):
    """The ``k`` consecutive width-``n`` column blocks of ``t`` (N, k*n)."""
    return [t[..., j * n : (j + 1) * n] for j in range(k)]


def _join(parts):
    """Concatenate along the last axis: tensors through ``cat``, arrays through NumPy/CuPy."""
    if hasattr(parts[0], "_data"):
        return cat(parts, -1)
    return array_module(parts[0]).concatenate(parts, axis=-1)


def _lstm_grads(gh, gc, c, i, f, g, o, tc):
    gc = gc + gh * o * (1 - tc * tc)
    parts = [gc * g * i * (1 - i), gc * c * f * (1 - f), gc * i * (1 - g * g)]
    return _join(parts + [gh * tc * o * (1 - o)]), gc * f


def _gru_grads(gout, h, hn, r, z, n):
    dn = gout * (1 - z) * (1 - n * n)
    drz = _join([dn * hn * r * (1 - r), gout * (h - n) * z * (1 - z)])
    return _join([drz, dn]), _join([drz, dn * r]), gout * z


# Backward has two paths with one formula: plain arrays when it is not recorded (the usual
# first-order case), and tensor ops with activations recomputed from the saved inputs when it is
# (create_graph), so higher-order gradients stay exact.


class LSTMPointwise(Primitive):
    """``(gates (N, 4H), c (N, H)) -> (h, c')`` with gates ordered (i, f, g, o)."""

    @staticmethod
    def forward(ctx, gates, c):
        xp = array_module(gates)
        hs = c.shape[-1]
        s = _sig(xp, gates)  # sigmoid of all four blocks; the g block is recomputed as tanh
        i, f, o = s[..., :hs], s[..., hs : 2 * hs], s[..., 3 * hs :]
        g = xp.tanh(gates[..., 2 * hs : 3 * hs])
        c2 = f * c + i * g
        tc = xp.tanh(c2)
        ctx.save_for_backward(gates, c)
        ctx.acts = (i, f, g, o, tc)
        return o * tc, c2

    @staticmethod
    def backward(ctx, gh, gc):
        gates, c = ctx.saved_tensors
        if not STATE.grad_enabled:
            dg, dc = _lstm_grads(gh._data, gc._data, c._data, *ctx.acts)
            return _make(dg), _make(dc)
        i, f, g, o = _blocks(gates, c.shape[-1], 4)
        i, f, g, o = sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
        return _lstm_grads(gh, gc, c, i, f, g, o, tanh(f * c + i * g))


class GRUPointwise(Primitive):
    """``(xw (N, 3H), hw (N, 3H), h (N, H)) -> h'`` with blocks ordered (r, z, n):
    ``n = tanh(xw_n + r * hw_n)``, ``h' = (1 - z) * n + z * h``."""

    @staticmethod
    def forward(ctx, xw, hw, h):
        xp = array_module(xw)
        hs = h.shape[-1]
        rz = _sig(xp, xw[..., : 2 * hs] + hw[..., : 2 * hs])
        r, z = rz[..., :hs], rz[..., hs:]
        n = xp.tanh(xw[..., 2 * hs :] + r * hw[..., 2 * hs :])
        ctx.save_for_backward(xw, hw, h)
        ctx.acts = (r, z, n)
        return n + z * (h - n)

    @staticmethod
    def backward(ctx, gout):
        xw, hw, h = ctx.saved_tensors
        hs = h.shape[-1]
        if not STATE.grad_enabled:
            grads = _gru_grads(gout._data, h._data, hw._data[..., 2 * hs :], *ctx.acts)
            return tuple(_make(g) for g in grads)
        xr, xz, xn = _blocks(xw, hs, 3)
        hr, hz, hn = _blocks(hw, hs, 3)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = tanh(xn + r * hn)
        return _gru_grads(gout, h, hn, r, z, n)


def lstm_pointwise(gates, c):
    """The LSTM cell after its matmuls: ``(h', c')`` from pre-activation gates (i, f, g, o)."""
    return LSTMPointwise.apply(gates, c)


def gru_pointwise(xw, hw, h):
    """The GRU cell after its matmuls: ``h'`` from the input and hidden projections."""
    return GRUPointwise.apply(xw, hw, h)
