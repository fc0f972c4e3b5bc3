"""``scaled_dot_product_attention`` as a composite: matmul, mask, softmax, dropout, matmul.
Rows whose every key is masked give zeros (PyTorch's safe softmax), not NaN."""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from .._tensor import _make
from ..autograd.function import Primitive
from ..autograd.grad_mode import STATE
from ..backend.device import array_module
from ..kernels.cuda import attention as cuda_attention
from ..ops.norm import Softmax
from . import _attention_cpu as _cpu

__all__ = ["scaled_dot_product_attention"]


def _check(query, key, value, enable_gqa):
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise RuntimeError(
            "scaled_dot_product_attention: query, key and value must be at least 2-D, got "
            f"{list(query.shape)}, {list(key.shape)} and {list(value.shape)}"
        )
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(
            "scaled_dot_product_attention: expected query (..., L, E), key (..., S, E) and "
            f"value (..., S, Ev), got query {list(query.shape)}, key {list(key.shape)} and "
            f"value {list(value.shape)}"
        )
    if enable_gqa and (query.ndim < 3 or query.shape[-3] % key.shape[-3]):
        raise RuntimeError(
            "scaled_dot_product_attention: with enable_gqa=True the number of query heads "
            f"({query.shape[-3]}) must be a multiple of the key/value heads ({key.shape[-3]})"
        )


def _repeat_heads(x, heads: int):
    """(..., Hk, S, E) -> (..., heads, S, E), each kv head repeated for its query group."""
    hk = x.shape[-3]
    if hk == heads:
        return x
    rep = heads // hk
    lead, (s, e) = tuple(x.shape[:-3]), tuple(x.shape[-2:])
    return x.unsqueeze(-3).expand(*lead, hk, rep, s, e).reshape(*lead, heads, s, e)


_CAUSAL: dict = {}


def _causal_bias(xp, l, s, dtype):
    """The (l, s) additive causal mask (0 on and below the diagonal, -inf above), cached per
    shape, dtype and device: models ask for the same one in every layer and step."""
    dev = 0 if xp is np else int(xp.cuda.runtime.getDevice())
    key = (l, s, np.dtype(dtype).str, xp.__name__, dev)
    bias = _CAUSAL.get(key)
    if bias is None:
        if len(_CAUSAL) > 8:
            _CAUSAL.clear()
        bias = _CAUSAL[key] = xp.triu(xp.full((l, s), -np.inf, dtype=dtype), 1)
    return bias


def _mask_bias(xp, dtype, l, s, attn_mask, is_causal):
    """The mask as an additive bias array (0 or -inf for bool masks) for (..., l, s) scores
    of ``dtype``, plus the rows left with no key at all (those get a zero bias and are zeroed
    after the softmax, as PyTorch does)."""
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError(
                "scaled_dot_product_attention: Explicit attn_mask should not be set when "
                "is_causal=True"
            )
        if s > 0:  # every row keeps key 0: no dead rows to look for (a device sync on CUDA)
            return _causal_bias(xp, l, s, dtype), None
        attn_mask = _make(xp.tril(xp.ones((l, s), dtype=bool)))
    if attn_mask is None:
        return None, None
    m = attn_mask._data
    if m.dtype == bool:
        bias = xp.zeros(m.shape, dtype)
        bias[~m] = -xp.inf
    else:
        bias = m.astype(dtype, copy=False)
    dead = xp.isneginf(bias).all(axis=-1, keepdims=True)
    if not bool(dead.any()):
        return bias, None
    bias = xp.where(dead, 0, bias).astype(bias.dtype)
    return bias, _make(~dead)


def _check_bias(bias, attn_mask, shape):
    """Raise when the mask does not broadcast to the scores' ``shape``."""
    if bias is None or bias.shape == shape:
        return
    try:
        if np.broadcast_shapes(bias.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise RuntimeError(
            f"scaled_dot_product_attention: attn_mask of shape {list(attn_mask.shape)} "
            f"does not broadcast to the attention scores' shape {list(shape)}"
        ) from None


def scaled_dot_product_attention(
    query,
    key,
    value,
    attn_mask=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale=None,
    enable_gqa: bool = False,
):
    """``softmax(query @ key.T * scale + mask) @ value`` over (..., L, E) queries and
    (..., S, E) keys. A bool ``attn_mask`` marks with True the keys that take part; a float
    one is added to the scores. ``is_causal`` masks keys after each query (top-left
    aligned). ``enable_gqa`` repeats key/value heads (dim -3) to the query's head count.
    Without dropout, float32/float64 CPU inputs run as one node whose output is laid out like
    the query (heads split from a (B, L, H, E) buffer give a (B, L, H, E)-ordered output), as
    PyTorch's CPU kernel does."""
    _check(query, key, value, enable_gqa)
    if enable_gqa:
        key = _repeat_heads(key, query.shape[-3])
        value = _repeat_heads(value, query.shape[-3])
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    if not isinstance(query._data, np.ndarray):
        fused = _cudnn_attention(query, key, value, attn_mask, dropout_p, is_causal, scale)
        if fused is not None:
            return fused
    q, k, v = query._data, key._data, value._data
    if dropout_p == 0.0 and _cpu.usable(q, k, v):  # one node (nn/_attention_cpu.py)
        bias, alive = _mask_bias(np, q.dtype, q.shape[-2], k.shape[-2], attn_mask, is_causal)
        _check_bias(bias, attn_mask, q.shape[:-1] + k.shape[-2:-1])
        if alive is None:
            return _cpu.CpuAttention.apply(query, key, value, bias, scale)
    scores = ops.matmul(query * scale, key.transpose(-2, -1))  # (..., L, S)
    xp, (l, s) = array_module(scores._data), scores.shape[-2:]
    bias, alive = _mask_bias(xp, scores._data.dtype, l, s, attn_mask, is_causal)
    _check_bias(bias, attn_mask, tuple(scores.shape))
    attn = Softmax.apply(scores, axis=scores.ndim - 1, bias=bias)
    if alive is not None:
        attn = attn * alive
    if dropout_p > 0.0:
        attn = ops.dropout(attn, dropout_p, True)
    return ops.matmul(attn, value)  # (..., L, Ev)


# ---- CUDA: cuDNN's fused attention -----------------------------------------------------


class _FusedAttention(Primitive):
    """Attention whose forward cuDNN already ran (``result``: output and softmax statistics);
    backward is cuDNN's fused backward, or the closed-form gradients in tensor ops when
    recording (double backward) or when cuDNN refuses the backward graph."""

    @staticmethod
    def forward(ctx, q, k, v, result, scale, is_causal):
        out, stats = result
        ctx.scale, ctx.is_causal, ctx.stats = scale, is_causal, stats
        ctx.save_for_backward(q, k, v, out)
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v, out = ctx.saved_tensors
        if not STATE.grad_enabled:
            grads = cuda_attention.backward(
                q._data,
                k._data,
                v._data,
                out._data,
                ctx.stats,
                g._data.astype(q._data.dtype, copy=False),
                ctx.scale,
                ctx.is_causal,
            )
            if grads is not None:
                return tuple(_make(a) for a in grads)
        return _closed_form_grads(q, k, v, g, ctx.scale, ctx.is_causal)


def _closed_form_grads(q, k, v, g, scale, is_causal):
    """dq, dk, dv of softmax(q k^T * scale + causal mask) v, in (differentiable) tensor ops."""
    bias = None
    if is_causal:
        l, s = q.shape[-2], k.shape[-2]
        bias = _causal_bias(array_module(q._data), l, s, q._data.dtype)
    return _cpu.recorded_grads(q, k, v, g, scale, bias)


def _cudnn_attention(query, key, value, attn_mask, dropout_p, is_causal, scale):
    """The output through cuDNN's fused attention, or None where it does not apply."""
    from ..amp import autocast_mode as _amp

    if attn_mask is not None or dropout_p > 0.0:  # never fused: don't cast for nothing
        return None
    if _amp.STATE.on:
        query, key, value = _amp.lower_precision(query, key, value)
    q, k, v = query._data, key._data, value._data
    if not cuda_attention.usable(q, k, v, attn_mask, dropout_p, is_causal):
        return None
    result = cuda_attention.forward(q, k, v, float(scale), bool(is_causal))
    if result is None:
        return None
    return _FusedAttention.apply(
        query, key, value, result=result, scale=float(scale), is_causal=bool(is_causal)
    )
