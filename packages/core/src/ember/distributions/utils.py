"""Helpers shared by the distributions: broadcasting parameters, probs <-> logits."""

from __future__ import annotations

from numbers import Number

import numpy as np

from .._tensor import Size, Tensor
from ..backend.dtypes import get_default_dtype
from ..creation import tensor
from ..ops import log, log1p, logsumexp, sigmoid, softmax


def broadcast_all(*values):
    """Broadcast numbers and tensors to one shape; numbers take the first tensor's dtype."""
    like = next((v for v in values if isinstance(v, Tensor)), None)
    for v in values:
        if not isinstance(v, (Tensor, Number)):
            raise ValueError(
                f"Input arguments must all be instances of numbers.Number or Tensor, got {type(v)}"
            )
    if like is None:
        dtype, device = get_default_dtype(), None
    else:
        dtype, device = like.dtype, like.device
    ts = [v if isinstance(v, Tensor) else tensor(v, dtype=dtype, device=device) for v in values]
    shape = np.broadcast_shapes(*(tuple(t.shape) for t in ts))
    return tuple(t if tuple(t.shape) == shape else t.expand(*shape) for t in ts)


def sum_rightmost(value, dim: int):
    """Sum over the ``dim`` rightmost dimensions of ``value``."""
    if dim == 0:
        return value
    return value.reshape(*value.shape[: value.dim() - dim], -1).sum(-1)


def _eps(t):
    return float(np.finfo(t.dtype.np).eps)


def clamp_probs(probs):
    """Clamp probabilities to ``[eps, 1 - eps]`` so their logs stay finite."""
    eps = _eps(probs)
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs, is_binary: bool = False):
    """Log-probabilities (categorical) or log-odds (``is_binary``) from probabilities."""
    p = clamp_probs(probs)
    return log(p) - log1p(-p) if is_binary else log(p)


def logits_to_probs(logits, is_binary: bool = False):
    """Probabilities from log-odds (``is_binary``) or unnormalized log-probabilities."""
    return sigmoid(logits) if is_binary else softmax(logits, dim=-1)


def normalize_logits(logits):
    """Logits shifted so that their ``logsumexp`` over the last dim is zero."""
    return logits - logsumexp(logits, dim=-1, keepdim=True)


def extended_shape(sample_shape, batch_shape, event_shape) -> Size:
    """``sample_shape + batch_shape + event_shape`` as an ``ember.Size``."""
    return Size(tuple(Size(sample_shape)) + tuple(batch_shape) + tuple(event_shape))


class lazy_property:
    """Compute an attribute on first access, then store it on the instance."""

    def __init__(self, fn):
        self.fn = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = self.fn(instance)
        setattr(instance, self.fn.__name__, value)
        return value
