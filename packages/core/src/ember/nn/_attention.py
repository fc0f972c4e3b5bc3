"""``scaled_dot_product_attention`` as a composite: matmul, mask, softmax, dropout, matmul.
Rows whose every key is masked give zeros (PyTorch's safe softmax), not NaN."""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from .._tensor import _make
from ..backend.device import array_module
from ..ops.norm import Softmax

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


def _mask_bias(scores, attn_mask, is_causal):
    """The mask as an additive bias array (0 or -inf for bool masks), plus the rows left with
    no key at all (those get a zero bias and are zeroed after the softmax, as PyTorch does)."""
    xp = array_module(scores._data)
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError(
                "scaled_dot_product_attention: Explicit attn_mask should not be set when "
                "is_causal=True"
            )
        l, s = scores.shape[-2:]
        attn_mask = _make(xp.tril(xp.ones((l, s), dtype=bool)))
    if attn_mask is None:
        return None, None
    m = attn_mask._data
    if m.dtype == bool:
        bias = xp.zeros(m.shape, scores._data.dtype)
        bias[~m] = -xp.inf
    else:
        bias = m.astype(scores._data.dtype, copy=False)
    dead = xp.isneginf(bias).all(axis=-1, keepdims=True)
    if not bool(dead.any()):
        return bias, None
    bias = xp.where(dead, 0, bias).astype(bias.dtype)
    return bias, _make(~dead)


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
    aligned). ``enable_gqa`` repeats key/value heads (dim -3) to the query's head count."""
    _check(query, key, value, enable_gqa)
    if enable_gqa:
        key = _repeat_heads(key, query.shape[-3])
        value = _repeat_heads(value, query.shape[-3])
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    scores = ops.matmul(query * scale, key.transpose(-2, -1))  # (..., L, S)
    bias, alive = _mask_bias(scores, attn_mask, is_causal)
    if bias is not None and bias.shape != scores.shape:
        try:
            if np.broadcast_shapes(bias.shape, scores.shape) != scores.shape:
                raise ValueError
        except ValueError:
            raise RuntimeError(
                f"scaled_dot_product_attention: attn_mask of shape {list(attn_mask.shape)} "
                f"does not broadcast to the attention scores' shape {list(scores.shape)}"
            ) from None
    attn = Softmax.apply(scores, axis=scores.ndim - 1, bias=bias)
    if alive is not None:
        attn = attn * alive
    if dropout_p > 0.0:
        attn = ops.dropout(attn, dropout_p, True)
    return ops.matmul(attn, value)  # (..., L, Ev)
