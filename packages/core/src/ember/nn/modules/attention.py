"""Multi-head attention (``nn.MultiheadAttention``) and its functional form.

Shapes follow PyTorch: sequence-first ``(L, N, E)`` unless ``batch_first``; unbatched inputs are
``(L, E)``. Masks follow nn.MultiheadAttention's convention: in a bool mask True means "may NOT
attend" (the opposite of ``F.scaled_dot_product_attention``); a float mask is added to the
attention scores.
"""

from __future__ import annotations

import math
import warnings

from ... import ops
from ...creation import empty, full, zeros
from ...ops.recurrent import split_pieces
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from .linear import Linear

# ---- mask and shape helpers ------------------------------------------------------------


def _canonical_mask(mask, name, other, dtype):
    """A bool mask becomes an additive float mask (-inf where True); floats pass through."""
    if mask is None:
        return None
    if mask.dtype.name != "bool" and not mask.dtype.is_floating_point:
        raise AssertionError(f"only bool and floating types of {name} are supported")
    if other is not None and other.dtype != mask.dtype:
        warnings.warn(
            f"Support for mismatched {name} and attn_mask is deprecated. Use same type for "
            "both instead.",
            stacklevel=3,
        )
    if mask.dtype.is_floating_point:
        return mask
    kw = {"dtype": dtype, "device": mask.device}
    return ops.where(mask, full(tuple(mask.shape), -math.inf, **kw), zeros(mask.shape, **kw))


def _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads):
    """PyTorch's shape rules; returns whether the input is batched."""
    q = query.dim()
    if q not in (2, 3):
        raise AssertionError(
            "MultiheadAttention: query should be unbatched 2D or batched 3D tensor but "
            f"received {q}-D query tensor of shape {list(query.shape)}"
        )
    kind = "batched (3-D)" if q == 3 else "unbatched (2-D)"
    if key.dim() != q or value.dim() != q:
        raise AssertionError(
            f"MultiheadAttention: for {kind} `query`, expected `key` and `value` to be {q}-D "
            f"but found shapes {list(key.shape)} and {list(value.shape)}"
        )
    if key_padding_mask is not None and key_padding_mask.dim() != q - 1:
        raise AssertionError(
            f"MultiheadAttention: for {kind} `query`, expected `key_padding_mask` to be None "
            f"or {q - 1}-D but found shape {list(key_padding_mask.shape)}"
        )
    if attn_mask is not None and attn_mask.dim() not in (2, 3):
        raise AssertionError(
            f"MultiheadAttention: for {kind} `query`, expected `attn_mask` to be None, 2-D "
            f"or 3-D but found shape {list(attn_mask.shape)}"
        )
    if q == 2 and attn_mask is not None and attn_mask.dim() == 3:
        want = (num_heads, query.shape[0], key.shape[0])
        if tuple(attn_mask.shape) != want:
            raise AssertionError(
                f"MultiheadAttention: expected `attn_mask` shape to be {want} but got "
                f"{tuple(attn_mask.shape)}"
            )
    return q == 3


def _mask_4d(attn_mask, bsz, num_heads, tgt_len, src_len):
    """A (L, S) or (N*H, L, S) attn_mask as (1, 1, L, S) or (N, H, L, S)."""
    if attn_mask.dim() == 2:
        if tuple(attn_mask.shape) != (tgt_len, src_len):
            raise RuntimeError(
                f"MultiheadAttention: the shape of the 2D attn_mask is "
                f"{tuple(attn_mask.shape)}, but should be {(tgt_len, src_len)}."
            )
        return attn_mask.reshape(1, 1, tgt_len, src_len)
    want = (bsz * num_heads, tgt_len, src_len)
    if tuple(attn_mask.shape) != want:
        raise RuntimeError(
            f"MultiheadAttention: the shape of the 3D attn_mask is {tuple(attn_mask.shape)}, "
            f"but should be {want}."
        )
    return attn_mask.reshape(bsz, num_heads, tgt_len, src_len)


def _causal_mask(tgt_len, src_len, dtype, device):
    """(L, S) float mask, top-left aligned: -inf above the diagonal, 0 elsewhere."""
    return ops.triu(full((tgt_len, src_len), -math.inf, dtype=dtype, device=device), 1)


def _check_dims(query, key, value, embed_dim, num_heads, separate):
    """PyTorch's assertions on the (L, N, E) query and (S, N, *) key/value."""
    if query.shape[-1] != embed_dim:
        raise AssertionError(
            f"MultiheadAttention: was expecting embedding dimension of {embed_dim}, but got "
            f"query of shape {list(query.shape)}"
        )
    if embed_dim % num_heads:
        raise AssertionError(
            f"MultiheadAttention: embed_dim {embed_dim} not divisible by num_heads {num_heads}"
        )
    same = tuple(key.shape) == tuple(value.shape)
    if tuple(key.shape[:2]) != tuple(value.shape[:2]) or not (separate or same):
        raise AssertionError(
            f"MultiheadAttention: key shape {list(key.shape)} does not match value shape "
            f"{list(value.shape)}"
        )


def _prepare_masks(attn_mask, key_padding_mask, is_causal, need_weights, query, heads, src_len):
    """Both masks as additive floats: attn_mask (1|N, 1|H, L, S), key_padding_mask
    (N, 1, 1, S); either may be None."""
    tgt_len, bsz = query.shape[0], query.shape[1]
    kpm = _canonical_mask(key_padding_mask, "key_padding_mask", attn_mask, query.dtype)
    if is_causal and attn_mask is None:
        raise RuntimeError(
            "MultiheadAttention: need attn_mask if specifying the is_causal hint. You may use "
            "the Transformer module method `generate_square_subsequent_mask` to create this mask."
        )
    if is_causal and kpm is None and not need_weights:  # the hint wins, as in PyTorch
        attn_mask = _causal_mask(tgt_len, src_len, query.dtype, query.device)
    attn_mask = _canonical_mask(attn_mask, "attn_mask", None, query.dtype)
    if attn_mask is not None:
        attn_mask = _mask_4d(attn_mask, bsz, heads, tgt_len, src_len)
    if kpm is not None:
        if tuple(kpm.shape) != (bsz, src_len):
            raise RuntimeError(
                f"MultiheadAttention: expected key_padding_mask of shape {(bsz, src_len)}, but "
                f"got {tuple(kpm.shape)}"
            )
        kpm = kpm.reshape(bsz, 1, 1, src_len)
    return attn_mask, kpm


# ---- projections and the attention itself ----------------------------------------------


def _in_projection(query, key, value, w, b, separate):
    """q, k, v projections, each (L_or_S, N, E). ``w`` is in_proj_weight or (w_q, w_k, w_v)."""
    bq = bk = bv = None
    if b is not None:
        bq, bk, bv = split_pieces(b, [b.shape[0] // 3] * 3, 0)
    if separate:
        wq, wk, wv = w
        return ops.linear(query, wq, bq), ops.linear(key, wk, bk), ops.linear(value, wv, bv)
    e = query.shape[-1]
    if key is query and value is query:  # self-attention: one matmul for all three
        return split_pieces(ops.linear(query, w, b), [e, e, e], -1)
    wq, wk, wv = split_pieces(w, [e, e, e], 0)
    if value is key:  # encoder-decoder attention: one matmul for k and v
        bkv = None if b is None else ops.cat([bk, bv])
        k, v = split_pieces(ops.linear(key, ops.cat([wk, wv]), bkv), [e, e], -1)
        return ops.linear(query, wq, bq), k, v
    return ops.linear(query, wq, bq), ops.linear(key, wk, bk), ops.linear(value, wv, bv)


def _heads(x, bsz, num_heads):
    """(S, N, E) -> (N, H, S, E/H)."""
    s = x.shape[0]
    return x.reshape(s, bsz, num_heads, -1).permute(1, 2, 0, 3)


def _attend(q, k, v, mask, dropout_p):
    """softmax(q k^T / sqrt(d) + mask) v on (N, H, L, d) tensors; also returns the weights."""
    scores = ops.matmul(q * math.sqrt(1.0 / q.shape[-1]), k.transpose(-2, -1))  # (N, H, L, S)
    if mask is not None:
        scores = scores + mask
    weights = ops.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = ops.dropout(weights, p=dropout_p)
    return ops.matmul(weights, v), weights


def _extend_kv(k, v, bias_k, bias_v, add_zero_attn, bsz, masks):
    """Append bias_k/bias_v (one step) and a zero step to k, v (N, H, S, d); pad the masks."""
    steps = []
    if bias_k is not None and bias_v is not None:
        nh, d = k.shape[1], k.shape[3]
        bk = bias_k.reshape(1, nh, 1, d).expand(bsz, nh, 1, d)
        bv = bias_v.reshape(1, nh, 1, d).expand(bsz, nh, 1, d)
        steps.append((bk, bv))
    elif (bias_k is None) != (bias_v is None):
        raise AssertionError("MultiheadAttention: bias_k and bias_v must be given together")
    if add_zero_attn:
        z = zeros(k.shape[:2] + (1, k.shape[3]), dtype=k.dtype, device=k.device)
        steps.append((z, z))
    for sk, sv in steps:
        k, v = ops.cat([k, sk], 2), ops.cat([v, sv], 2)
        masks = [None if m is None else ops.pad(m, (0, 1)) for m in masks]
    return k, v, masks


def multi_head_attention_forward(
    query,
    key,
    value,
    embed_dim_to_check,
    num_heads,
    in_proj_weight,
    in_proj_bias,
    bias_k,
    bias_v,
    add_zero_attn,
    dropout_p,
    out_proj_weight,
    out_proj_bias,
    training=True,
    key_padding_mask=None,
    need_weights=True,
    attn_mask=None,
    use_separate_proj_weight=False,
    q_proj_weight=None,
    k_proj_weight=None,
    v_proj_weight=None,
    static_k=None,
    static_v=None,
    average_attn_weights=True,
    is_causal=False,
):
    """Multi-head attention on sequence-first inputs (``F.multi_head_attention_forward``).

    Returns ``(attn_output (L, N, E), attn_weights)``; the weights are ``(N, L, S)`` when
    averaged over heads, ``(N, H, L, S)`` otherwise, and None unless ``need_weights``.
    """
    if static_k is not None or static_v is not None:
        raise NotImplementedError("multi_head_attention_forward: static_k/static_v")
    batched = _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = (query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1))
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    _check_dims(query, key, value, embed_dim_to_check, num_heads, use_separate_proj_weight)
    attn_mask, key_padding_mask = _prepare_masks(
        attn_mask, key_padding_mask, is_causal, need_weights, query, num_heads, src_len
    )

    if use_separate_proj_weight:
        w = (q_proj_weight, k_proj_weight, v_proj_weight)
    else:
        w = in_proj_weight
    q, k, v = _in_projection(query, key, value, w, in_proj_bias, use_separate_proj_weight)
    q, k, v = (_heads(t, bsz, num_heads) for t in (q, k, v))  # (N, H, L|S, d)
    k, v, (attn_mask, key_padding_mask) = _extend_kv(
        k, v, bias_k, bias_v, add_zero_attn, bsz, [attn_mask, key_padding_mask]
    )
    mask = attn_mask
    if key_padding_mask is not None:
        mask = key_padding_mask if mask is None else mask + key_padding_mask

    p = dropout_p if training else 0.0
    if need_weights:
        out, weights = _attend(q, k, v, mask, p)  # (N, H, L, d)
    else:  # PyTorch's fused path: rows with every key masked give zeros, not NaN
        out, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p), None
    out = out.permute(2, 0, 1, 3).reshape(tgt_len, bsz, embed_dim)
    out = ops.linear(out, out_proj_weight, out_proj_bias)  # (L, N, E)
    if weights is not None and average_attn_weights:
        weights = weights.mean(dim=1)  # (N, L, S)
    if not batched:
        out = out.squeeze(1)
        weights = None if weights is None else weights.squeeze(0)
    return out, weights


# ---- the module ------------------------------------------------------------------------


class NonDynamicallyQuantizableLinear(Linear):
    """A plain ``Linear`` under the name PyTorch gives ``MultiheadAttention.out_proj``."""


class MultiheadAttention(Module):
    """Attention from ``query`` to ``key``/``value`` over ``num_heads`` parallel heads.

    Parameters carry PyTorch's names (``in_proj_weight``, ``in_proj_bias``, ``out_proj``, or
    ``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` when ``kdim``/``vdim`` differ from
    ``embed_dim``), so PyTorch state_dicts load unchanged.

    >>> import ember
    >>> mha = ember.nn.MultiheadAttention(8, 2, batch_first=True)
    >>> x = ember.randn(3, 5, 8)
    >>> out, w = mha(x, x, x)
    >>> out.shape, w.shape
    (ember.Size([3, 5, 8]), ember.Size([3, 5, 5]))
    """

    def __init__(
        self,
        embed_dim,
        num_heads,
        dropout=0.0,
        bias=True,
        add_bias_kv=False,
        add_zero_attn=False,
        kdim=None,
        vdim=None,
        batch_first=False,
        device=None,
        dtype=None,
    ):
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                "MultiheadAttention: embed_dim and num_heads must be greater than 0, got "
                f"embed_dim={embed_dim} and num_heads={num_heads} instead"
            )
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError(
                f"MultiheadAttention: embed_dim must be divisible by num_heads, got "
                f"embed_dim={embed_dim} and num_heads={num_heads}"
            )
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **kw))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = Parameter(empty(1, 1, embed_dim, **kw))
            self.bias_v = Parameter(empty(1, 1, embed_dim, **kw))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights=True,
        attn_mask=None,
        average_attn_weights=True,
        is_causal=False,
    ):
        """Attend; returns ``(attn_output, attn_weights)`` (weights None unless
        ``need_weights``). In bool masks True marks positions that may NOT be attended."""
        batched = query.dim() == 3
        if self.batch_first and batched:
            query, key, value = _swap_batch(query, key, value)
        out, weights = multi_head_attention_forward(
            query,
            key,
            value,
            self.embed_dim,
            self.num_heads,
            self.in_proj_weight,
            self.in_proj_bias,
            self.bias_k,
            self.bias_v,
            self.add_zero_attn,
            self.dropout,
            self.out_proj.weight,
            self.out_proj.bias,
            training=self.training,
            key_padding_mask=key_padding_mask,
            need_weights=need_weights,
            attn_mask=attn_mask,
            use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight,
            k_proj_weight=self.k_proj_weight,
            v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights,
            is_causal=is_causal,
        )
        if self.batch_first and batched:
            out = out.transpose(1, 0)
        return out, weights


def _swap_batch(query, key, value):
    """Transpose (N, L, E) to (L, N, E), keeping ``query is key is value`` identities."""
    q = query.transpose(1, 0)
    k = q if key is query else key.transpose(1, 0)
    v = k if value is key else q if value is query else value.transpose(1, 0)
    return q, k, v
