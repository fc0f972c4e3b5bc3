"""Probability distributions with PyTorch's ``torch.distributions`` API.

>>> import ember
>>> from ember.distributions import Normal
>>> ember.manual_seed(0)  # doctest: +ELLIPSIS
<...>
>>> x = Normal(ember.tensor(0.0), ember.tensor(1.0)).sample((2, 3))
>>> x.shape
ember.Size([2, 3])
"""

from . import constraints
from .bernoulli import Bernoulli
from .categorical import Categorical
from .distribution import Distribution
from .independent import Independent
from .kl import kl_divergence, register_kl
from .normal import Normal

__all__ = [
    "Bernoulli",
    "Categorical",
    "Distribution",
    "Independent",
    "Normal",
    "constraints",
    "kl_divergence",
    "register_kl",
]
