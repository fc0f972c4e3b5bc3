"""``Distribution``: the base class with PyTorch's shapes, sampling API and argument checks."""

from __future__ import annotations

import numpy as np

from .._tensor import Size, Tensor
from ..autograd import no_grad
from . import constraints
from .utils import extended_shape, lazy_property

__all__ = ["Distribution"]


def _shown(value) -> str:
    return str(value.item() if value.numel() == 1 else value.tolist())


class Distribution:
    """Base class of probability distributions (``torch.distributions.Distribution``).

    ``batch_shape`` indexes independent distributions, ``event_shape`` is the shape of one
    draw; ``sample(sample_shape)`` returns ``sample_shape + batch_shape + event_shape``.
    With ``validate_args`` (default True) bad parameters and values raise ValueError.
    """

    has_rsample = False
    has_enumerate_support = False
    _validate_args = True

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Turn argument validation on or off for distributions made afterwards."""
        if value not in (True, False):
            raise ValueError
        Distribution._validate_args = value

    def __init__(self, batch_shape=Size(), event_shape=Size(), validate_args=None):
        self._batch_shape = Size(batch_shape)
        self._event_shape = Size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            self._check_parameters()

    def _check_parameters(self) -> None:
        for param, constraint in self.arg_constraints.items():
            if isinstance(constraint, constraints._Dependent):
                continue
            if param not in self.__dict__ and isinstance(
                getattr(type(self), param, None), lazy_property
            ):
                continue  # a lazily derived parameter the user did not pass
            value = getattr(self, param)
            ok = constraint.check(value)
            if not bool(ok.all()):
                raise ValueError(
                    f"Expected parameter {param} ({type(value).__name__} of shape "
                    f"{tuple(value.shape)}) of distribution {self!r} to satisfy the constraint "
                    f"{constraint!r}, but found invalid values:\n{_shown(value)}"
                )

    # ---- shapes ---------------------------------------------------------------------------
    @property
    def batch_shape(self) -> Size:
        """The shape over which parameters are batched."""
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        """The shape of a single sample (without batching)."""
        return self._event_shape

    def _extended_shape(self, sample_shape=Size()) -> Size:
        return extended_shape(sample_shape, self._batch_shape, self._event_shape)

    @property
    def arg_constraints(self) -> dict:
        """Parameter name -> the constraint it must satisfy."""
        raise NotImplementedError

    @property
    def support(self):
        """The constraint every sample satisfies."""
        raise NotImplementedError

    def expand(self, batch_shape, _instance=None):
        """A distribution with parameters broadcast (not copied) to ``batch_shape``."""
        raise NotImplementedError

    # ---- sampling -------------------------------------------------------------------------
    def sample(self, sample_shape=Size()):
        """Draw ``sample_shape`` batches of samples, outside the autograd graph."""
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=Size()):
        """Draw reparameterized samples that carry gradients to the parameters."""
        raise NotImplementedError(f"{type(self).__name__} does not support rsample")

    def sample_n(self, n: int):
        """``sample((n,))``."""
        return self.sample(Size((n,)))

    # ---- densities and moments ------------------------------------------------------------
    def log_prob(self, value):
        """Log of the probability density/mass function at ``value``."""
        raise NotImplementedError

    def cdf(self, value):
        """Cumulative distribution function at ``value``."""
        raise NotImplementedError

    def icdf(self, value):
        """Inverse cumulative distribution function at probability ``value``."""
        raise NotImplementedError

    def entropy(self):
        """Entropy of each distribution of the batch, shape ``batch_shape``."""
        raise NotImplementedError

    def perplexity(self):
        """``exp(entropy())``."""
        return self.entropy().exp()

    def enumerate_support(self, expand: bool = True):
        """All values of a discrete support, along a new leading dimension."""
        raise NotImplementedError

    @property
    def mean(self):
        """The mean of the distribution."""
        raise NotImplementedError

    @property
    def mode(self):
        """The mode of the distribution."""
        raise NotImplementedError(f"{type(self)} does not implement mode")

    @property
    def variance(self):
        """The variance of the distribution."""
        raise NotImplementedError

    @property
    def stddev(self):
        """The standard deviation, ``variance.sqrt()``."""
        return self.variance.sqrt()

    # ---- checks ---------------------------------------------------------------------------
    def _validate_sample(self, value) -> None:
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        event_dim_start = value.dim() - len(self._event_shape)
        if tuple(value.shape[event_dim_start:]) != tuple(self._event_shape):
            raise ValueError(
                f"The right-most size of value must match event_shape: "
                f"{value.shape} vs {self._event_shape}."
            )
        actual = tuple(value.shape)
        expected = tuple(self._batch_shape) + tuple(self._event_shape)
        try:
            np.broadcast_shapes(actual, expected)
        except ValueError:
            raise ValueError(
                f"Value is not broadcastable with batch_shape+event_shape: "
                f"{Size(actual)} vs {Size(expected)}."
            ) from None
        support = self.support
        if support is None:
            return
        ok = support.check(value)
        if not bool(ok.all()):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) "
                f"to be within the support ({support!r}) of the distribution {self!r}, "
                f"but found invalid values:\n{_shown(value)}"
            )

    def _get_checked_instance(self, cls, _instance=None):
        if _instance is None and type(self).__init__ != cls.__init__:
            raise NotImplementedError(
                f"Subclass {type(self).__name__} of {cls.__name__} that defines a custom "
                "__init__() method must also define a custom .expand() method."
            )
        return self.__new__(type(self)) if _instance is None else _instance

    def __repr__(self) -> str:
        shown = []
        for name in self.arg_constraints:
            if name in self.__dict__:
                v = self.__dict__[name]
                shown.append(f"{name}: {v.item() if v.numel() == 1 else v.size()}")
        args = ", ".join(shown)
        return f"{type(self).__name__}({args})"
