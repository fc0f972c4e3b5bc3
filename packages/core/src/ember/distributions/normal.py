"""``Normal(loc, scale)``: the Gaussian, reparameterizable."""

from __future__ import annotations

import math
from numbers import Number

from .._tensor import Size
from ..autograd import Function, no_grad
from ..creation import randn, tensor
from ..ops import erf, exp, log
from . import constraints
from .distribution import Distribution
from .utils import broadcast_all

__all__ = ["Normal"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class _Ndtri(Function):
    """The standard normal quantile; its derivative is ``1 / pdf(ndtri(p))``."""

    @staticmethod
    def forward(ctx, p):
        from scipy.special import ndtri

        # computed on the host; rarely on a hot path
        z = tensor(ndtri(p.detach().numpy(force=True)), dtype=p.dtype, device=p.device)
        ctx.save_for_backward(z)
        return z

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * exp(0.5 * z * z + _LOG_SQRT_2PI)


class Normal(Distribution):
    """Normal (Gaussian) distribution with mean ``loc`` and standard deviation ``scale``.

    >>> import ember
    >>> from ember.distributions import Normal
    >>> d = Normal(ember.tensor([0.0, 1.0]), ember.tensor([1.0, 2.0]))
    >>> d.batch_shape, d.sample((3,)).shape
    (ember.Size([2]), ember.Size([3, 2]))
    >>> d.log_prob(ember.tensor([0.0, 1.0]))
    tensor([-0.9189, -1.6121])
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True
    _mean_carrier_measure = 0

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        if isinstance(loc, Number) and isinstance(scale, Number):
            batch_shape = Size()
        else:
            batch_shape = self.loc.size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        """A Normal with ``loc`` and ``scale`` broadcast to ``batch_shape``."""
        new = self._get_checked_instance(Normal, _instance)
        batch_shape = Size(batch_shape)
        new.loc = self.loc.expand(*batch_shape)
        new.scale = self.scale.expand(*batch_shape)
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self):
        """``loc``."""
        return self.loc

    @property
    def mode(self):
        """``loc``."""
        return self.loc

    @property
    def stddev(self):
        """``scale``."""
        return self.scale

    @property
    def variance(self):
        """``scale ** 2``."""
        return self.scale.pow(2)

    def sample(self, sample_shape=Size()):
        """Draw samples from ember's default generator, outside the autograd graph."""
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=Size()):
        """``loc + eps * scale`` with ``eps ~ N(0, 1)``: gradients reach loc and scale."""
        shape = self._extended_shape(sample_shape)
        eps = randn(*shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value):
        """``-(x - loc)^2 / (2 scale^2) - log(scale) - log(sqrt(2 pi))``."""
        if self._validate_args:
            self._validate_sample(value)
        var = self.scale**2
        return -((value - self.loc) ** 2) / (2 * var) - log(self.scale) - _LOG_SQRT_2PI

    def cdf(self, value):
        """``(1 + erf((x - loc) / (scale sqrt 2))) / 2``."""
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 * (1 + erf((value - self.loc) * self.scale.reciprocal() / math.sqrt(2)))

    def icdf(self, value):
        """The quantile ``loc + scale * Phi^-1(value)``."""
        return self.loc + self.scale * _Ndtri.apply(value)

    def entropy(self):
        """``0.5 + 0.5 log(2 pi) + log(scale)``."""
        return 0.5 + _LOG_SQRT_2PI + log(self.scale)
