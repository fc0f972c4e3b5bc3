"""The less common losses of ``nn.functional``: margin, embedding, Poisson and Gaussian NLL."""

from __future__ import annotations

import math

from .. import ops
from ..autograd.grad_mode import no_grad
from ..ops import elementwise as E
from ..ops import unary as U
from ._activations import logsigmoid, softplus
from ._losses import _check_reduction, legacy_reduction, reduce_loss

__all__ = [
    "cosine_embedding_loss",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "margin_ranking_loss",
    "multilabel_soft_margin_loss",
    "poisson_nll_loss",
    "soft_margin_loss",
    "triplet_margin_loss",
]


def _red(size_average, reduce, reduction):
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    return reduction


def margin_ranking_loss(
    input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"
):
    """``max(0, -target * (input1 - input2) + margin)``; target is +1 or -1."""
    reduction = _red(size_average, reduce, reduction)
    loss = E.clamp(-target * (input1 - input2) + margin, min=0.0)
    return reduce_loss(loss, reduction)


def hinge_embedding_loss(
    input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"
):
    """``input`` where target is 1, ``max(0, margin - input)`` where target is -1."""
    reduction = _red(size_average, reduce, reduction)
    pos = E.where(target == 1, input, 0.0)
    neg = E.where(target == -1, E.clamp(margin - input, min=0.0), 0.0)
    return reduce_loss(pos + neg, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """``log(1 + exp(-target * input))`` for targets +1/-1."""
    reduction = _red(size_average, reduce, reduction)
    return reduce_loss(softplus(-target * input), reduction)


def cosine_embedding_loss(
    input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"
):
    """``1 - cos(x1, x2)`` where target is 1, ``max(0, cos - margin)`` where it is -1."""
    reduction = _red(size_average, reduce, reduction)
    dim = input1.ndim - 1
    eps = 1e-12
    prod = (input1 * input2).sum(dim)
    mag = ((input1 * input1).sum(dim) + eps) * ((input2 * input2).sum(dim) + eps)
    cos = prod / U.sqrt(mag)
    pos = E.where(target == 1, 1.0 - cos, 0.0)
    neg = E.where(target == -1, E.clamp(cos - margin, min=0.0), 0.0)
    return reduce_loss(pos + neg, reduction)


def triplet_margin_loss(
    anchor,
    positive,
    negative,
    margin=1.0,
    p=2,
    eps=1e-6,
    swap=False,
    size_average=None,
    reduce=None,
    reduction="mean",
):
    """``max(0, margin + d(a, p) - d(a, n))`` with ``d`` the pairwise p-norm distance."""
    from .functional import pairwise_distance

    reduction = _red(size_average, reduce, reduction)
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = E.minimum(d_an, pairwise_distance(positive, negative, p, eps))
    return reduce_loss(E.clamp(margin + d_ap - d_an, min=0.0), reduction)


def poisson_nll_loss(
    input,
    target,
    log_input=True,
    full=False,
    size_average=None,
    eps=1e-8,
    reduce=None,
    reduction="mean",
):
    """Poisson negative log likelihood: ``exp(x) - t * x`` for log-rate input, else
    ``x - t * log(x + eps)``; ``full`` adds Stirling's term where t > 1."""
    reduction = _red(size_average, reduce, reduction)
    if log_input:
        loss = U.exp(input) - target * input
    else:
        loss = input - target * U.log(input + eps)
    if full:
        t = target
        safe = E.where(t > 1, t, 1.0)
        stirling = safe * U.log(safe) - safe + 0.5 * U.log(2 * math.pi * safe)
        loss = loss + E.where(t > 1, stirling, 0.0)
    return reduce_loss(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """``0.5 * (log(var) + (input - target)**2 / var)`` (+ ``0.5 * log(2 pi)`` if ``full``);
    ``var`` is clamped at ``eps`` without blocking its gradient, as PyTorch."""
    _check_reduction(reduction)
    if var.shape != input.shape:
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise ValueError(
                f"gaussian_nll_loss: var of shape {list(var.shape)} does not match input "
                f"{list(input.shape)}"
            )
    if bool((var._data < 0).any()):
        raise ValueError("var has negative entry/entries")
    with no_grad():
        bump = E.clamp(var, min=eps) - var  # zero except where var < eps
    var = var + bump
    loss = 0.5 * (U.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return reduce_loss(loss, reduction)


def multilabel_soft_margin_loss(
    input, target, weight=None, size_average=None, reduce=None, reduction="mean"
):
    """Per-class binary logistic loss averaged over classes (dim -1)."""
    reduction = _red(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = ops.mean(loss, input.ndim - 1)
    return reduce_loss(loss, reduction)
