"""``Bernoulli(probs | logits)``: a 0/1 coin per batch entry."""

from __future__ import annotations

from numbers import Number

from .._tensor import Size
from ..autograd import no_grad
from ..creation import rand, tensor
from ..nn._losses import binary_cross_entropy_with_logits
from ..ops import where
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, lazy_property, logits_to_probs, probs_to_logits

__all__ = ["Bernoulli"]


class Bernoulli(Distribution):
    """Bernoulli distribution: 1 with probability ``probs`` (or ``sigmoid(logits)``), else 0.

    ``log_prob`` and ``entropy`` go through the logits with the same stable expression as
    ``binary_cross_entropy_with_logits``, so they stay finite for large logits.

    >>> import ember
    >>> from ember.distributions import Bernoulli
    >>> d = Bernoulli(logits=ember.tensor([0.0, 100.0]))
    >>> d.log_prob(ember.tensor([1.0, 0.0]))
    tensor([  -0.6931, -100.0000])
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True
    _mean_carrier_measure = 0

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            scalar = isinstance(probs, Number)
            (self.probs,) = broadcast_all(probs)
        else:
            scalar = isinstance(logits, Number)
            (self.logits,) = broadcast_all(logits)
        self._param = self.probs if probs is not None else self.logits
        batch_shape = Size() if scalar else self._param.size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        """A Bernoulli with its parameter broadcast to ``batch_shape``."""
        new = self._get_checked_instance(Bernoulli, _instance)
        batch_shape = Size(batch_shape)
        if "probs" in self.__dict__:
            new.probs = self.probs.expand(*batch_shape)
            new._param = new.probs
        if "logits" in self.__dict__:
            new.logits = self.logits.expand(*batch_shape)
            new._param = new.logits
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @lazy_property
    def logits(self):
        """Log-odds ``log(p) - log(1 - p)`` (probabilities clamped away from 0 and 1)."""
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        """Probability of a 1, ``sigmoid(logits)``."""
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self) -> Size:
        """Shape of ``probs`` / ``logits``."""
        return self._param.size()

    @property
    def mean(self):
        """``probs``."""
        return self.probs

    @property
    def mode(self):
        """1 where ``probs > 0.5``, 0 where below, NaN at exactly 0.5."""
        p = self.probs
        return where(p == 0.5, float("nan"), (p > 0.5).to(p.dtype))

    @property
    def variance(self):
        """``probs * (1 - probs)``."""
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=Size()):
        """Draw 0/1 values (in the parameter's dtype) from ember's default generator."""
        shape = self._extended_shape(sample_shape)
        with no_grad():
            p = self.probs.expand(*shape)
            u = rand(*shape, dtype=p.dtype, device=p.device)
            return (u < p).to(p.dtype)

    def log_prob(self, value):
        """``-binary_cross_entropy_with_logits(logits, value)``, elementwise."""
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self):
        """``binary_cross_entropy_with_logits(logits, probs)``, elementwise."""
        return binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    def enumerate_support(self, expand: bool = True):
        """``[0., 1.]`` along a new leading dim, expanded over the batch if ``expand``."""
        values = tensor([0.0, 1.0], dtype=self._param.dtype, device=self._param.device)
        values = values.view(-1, *((1,) * len(self._batch_shape)))
        if expand:
            values = values.expand(-1, *self._batch_shape)
        return values
