"""Embedding lookup as a pair of primitives (lookup and its adjoint, a row scatter-add), so
``padding_idx`` rows get exactly zero gradient and double backward works."""

from __future__ import annotations

import numpy as np

from .. import ops
from .._tensor import Tensor, _make
from ..autograd.function import Primitive
from ..autograd.grad_mode import no_grad
from ..backend.device import array_module

__all__ = ["embedding"]


def _scatter_rows(g, idx, num, xp):
    """Sum the rows of ``g`` (n, D) into a (num, D) array at ``idx`` (n,)."""
    out = xp.zeros((num, g.shape[-1]), g.dtype)
    if idx.size == 0:
        return out
    if xp is not np:  # pragma: no cover - GPU machines only (atomic adds are fast there)
        xp.add.at(out, idx, g)
        return out
    # one sparse (unique ids x n) @ (n, D) product: far faster than np.add.at or reduceat
    from scipy import sparse

    uniq, inv = np.unique(idx, return_inverse=True)
    work = g if g.dtype in (np.float32, np.float64) else g.astype(np.float32)
    ones = np.ones(idx.size, work.dtype)
    onehot = sparse.csr_matrix((ones, (inv, np.arange(idx.size))), shape=(uniq.size, idx.size))
    out[uniq] = onehot @ work
    return out


class EmbeddingLookup(Primitive):
    """``weight[idx]``; with ``zero_pad`` the positions where idx == padding_idx give zeros
    (that variant is the adjoint of ``EmbeddingGrad``)."""

    @staticmethod
    def forward(ctx, w, idx, padding_idx, zero_pad, freq):
        ctx.idx, ctx.num, ctx.pad, ctx.freq = idx, w.shape[0], padding_idx, freq
        out = w.take(idx, axis=0)
        if zero_pad and padding_idx is not None:
            out[idx == padding_idx] = 0
        if zero_pad and freq is not None:
            out /= freq[idx][..., None]
        return out

    @staticmethod
    def backward(ctx, g):
        return EmbeddingGrad.apply(g, idx=ctx.idx, num=ctx.num, padding_idx=ctx.pad, freq=ctx.freq)


class EmbeddingGrad(Primitive):
    """The weight gradient of a lookup: rows of ``g`` summed at their indices (optionally
    divided by each index's count), with the padding row left at zero."""

    @staticmethod
    def forward(ctx, g, idx, num, padding_idx, freq):
        ctx.idx, ctx.pad, ctx.freq = idx, padding_idx, freq
        xp = array_module(g)
        d = g.shape[-1]
        flat = g.reshape(-1, d)
        if freq is not None:
            flat = flat / freq[idx.reshape(-1)][:, None]
        out = _scatter_rows(flat, idx.reshape(-1), num, xp)
        if padding_idx is not None:
            out[padding_idx] = 0
        return out

    @staticmethod
    def backward(ctx, gg):
        return EmbeddingLookup.apply(
            gg, idx=ctx.idx, padding_idx=ctx.pad, zero_pad=True, freq=ctx.freq
        )


def _renorm_(weight, idx, max_norm, norm_type):
    xp = array_module(idx)
    rows = _make(xp.unique(idx.reshape(-1)))
    with no_grad():
        sel = weight[rows]
        norms = ops.norm(sel, norm_type, 1, keepdim=True)
        scale = ops.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight[rows] = sel * scale


def embedding(
    input,
    weight,
    padding_idx=None,
    max_norm=None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
):
    """Rows of ``weight`` (num_embeddings, dim) at the integer ``input`` ids; the
    ``padding_idx`` row receives no gradient. ``max_norm`` renormalizes the used rows in
    place first, as PyTorch."""
    if not isinstance(input, Tensor) or input.dtype.is_floating_point:
        raise RuntimeError(
            "embedding: Expected tensor for argument #1 'indices' to have one of the following "
            f"scalar types: Long, Int; but got {getattr(input, 'dtype', type(input).__name__)}"
        )
    if weight.ndim != 2:
        raise RuntimeError(f"embedding: 'weight' must be 2-D, got {list(weight.shape)}")
    num = weight.shape[0]
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx = padding_idx % num
    idx = input._data
    bad = None
    if not isinstance(idx, np.ndarray):  # CUDA: no host check (it would sync); see below
        xp = array_module(idx)
        bad = (idx < 0) | (idx >= num)
        idx = xp.clip(idx, 0, num - 1)
    elif idx.size and (idx.min() < 0 or idx.max() >= num):
        raise IndexError(
            f"embedding: index out of range in self (ids must be in [0, {num}), got "
            f"{int(idx.min())}..{int(idx.max())})"
        )
    idx = idx.astype(np.int64, copy=False)
    if max_norm is not None:
        _renorm_(weight, idx, max_norm, norm_type)
    freq = None
    if scale_grad_by_freq:
        freq = array_module(idx).bincount(idx.reshape(-1), minlength=num).astype(weight._data.dtype)
    out = EmbeddingLookup.apply(weight, idx=idx, padding_idx=padding_idx, zero_pad=False, freq=freq)
    if bad is not None:  # out-of-range ids on CUDA give NaN rows instead of an error
        xp = array_module(bad)
        poison = xp.where(bad, np.nan, 0).astype(weight._data.dtype)[..., None]
        out = out + _make(poison)
    return out
