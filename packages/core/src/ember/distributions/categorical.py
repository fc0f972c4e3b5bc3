"""``Categorical(probs | logits)``: one of K classes per batch entry."""

from __future__ import annotations

import numpy as np

from .._tensor import Size
from ..autograd import no_grad
from ..backend.dtypes import int64
from ..creation import arange, full, rand
from . import constraints
from .distribution import Distribution
from .utils import lazy_property, logits_to_probs, normalize_logits, probs_to_logits

__all__ = ["Categorical"]


class Categorical(Distribution):
    """Distribution over ``{0, ..., K-1}`` given by ``probs`` or ``logits`` (exactly one)
    whose last dimension indexes the K classes; ``probs`` are normalized to sum to one.

    >>> import ember
    >>> from ember.distributions import Categorical
    >>> d = Categorical(probs=ember.tensor([1.0, 1.0, 2.0]))
    >>> d.probs
    tensor([0.2500, 0.2500, 0.5000])
    >>> d.log_prob(ember.tensor(2)).exp()
    tensor(0.5000)
    >>> d.sample((4, 5)).shape
    ember.Size([4, 5])
    """

    arg_constraints = {
        "probs": constraints.simplex,
        "logits": constraints.independent(constraints.real, 1),
    }
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            if probs.dim() < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            if logits.dim() < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = normalize_logits(logits)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = self._param.size()[-1]
        batch_shape = self._param.size()[:-1] if self._param.dim() > 1 else Size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        """A Categorical with its parameter broadcast to ``batch_shape``."""
        new = self._get_checked_instance(Categorical, _instance)
        batch_shape = Size(batch_shape)
        param_shape = (*batch_shape, self._num_events)
        if "probs" in self.__dict__:
            new.probs = self.probs.expand(*param_shape)
            new._param = new.probs
        if "logits" in self.__dict__:
            new.logits = self.logits.expand(*param_shape)
            new._param = new.logits
        new._num_events = self._num_events
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        """``integer_interval(0, K - 1)``."""
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self):
        """Normalized log-probabilities (``log_softmax`` of the logits given)."""
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self):
        """Class probabilities, summing to one over the last dim."""
        return logits_to_probs(self.logits)

    @property
    def param_shape(self) -> Size:
        """Shape of ``probs`` / ``logits``: ``batch_shape + (K,)``."""
        return self._param.size()

    @property
    def mean(self):
        """Undefined for a categorical: NaN, as in PyTorch."""
        return full(self._extended_shape(), float("nan"), dtype=self._param.dtype)

    @property
    def mode(self):
        """The most likely class."""
        # max(...).indices, not argmax: argmax(-1) of a 1-d tensor returns a NumPy scalar today
        return self.probs.max(-1).indices

    @property
    def variance(self):
        """Undefined for a categorical: NaN, as in PyTorch."""
        return full(self._extended_shape(), float("nan"), dtype=self._param.dtype)

    def sample(self, sample_shape=Size()):
        """Draw class indices (int64) from ember's default generator by inverting the CDF."""
        sample_shape = Size(sample_shape)
        with no_grad():
            probs_2d = self.probs.reshape(-1, self._num_events)  # (B, K)
            cdf = probs_2d.cumsum(-1)
            n = sample_shape.numel()
            u = rand(n, probs_2d.shape[0], 1, dtype=cdf.dtype, device=cdf.device)  # (n, B, 1)
            u = u * cdf[:, -1:]  # tolerate rounding in the cumulative sum
            idx = (cdf < u).sum(-1).clamp(max=self._num_events - 1)  # (n, B)
        return idx.reshape(*self._extended_shape(sample_shape))

    def log_prob(self, value):
        """Log-probability of the integer class ``value`` (broadcast against the batch)."""
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        shape = np.broadcast_shapes(tuple(value.shape), tuple(self.logits.shape))
        value = value.expand(*shape[:-1], 1)
        log_pmf = self.logits.expand(*shape) if tuple(self.logits.shape) != shape else self.logits
        return log_pmf.gather(-1, value).squeeze(-1)

    def entropy(self):
        """``-sum(p log p)`` over the classes, with ``0 log 0 = 0``."""
        min_real = float(np.finfo(self.logits.dtype.np).min)
        logits = self.logits.clamp(min=min_real)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand: bool = True):
        """``arange(K)`` along a new leading dim, expanded over the batch if ``expand``."""
        values = arange(self._num_events, dtype=int64, device=self._param.device)
        values = values.view(-1, *((1,) * len(self._batch_shape)))
        if expand:
            values = values.expand(-1, *self._batch_shape)
        return values
