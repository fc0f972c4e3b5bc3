"""Actor-critic MLP policies for Discrete, MultiDiscrete and Box action spaces (SB3's
``MlpPolicy``).

The actor outputs a :class:`~ember.distributions.Categorical` for ``Discrete`` actions, a
:class:`MultiCategorical` (one independent Categorical per component) for ``MultiDiscrete``
actions and a diagonal Gaussian (``Independent(Normal(mean, exp(log_std)), 1)``, with a
state-independent ``log_std`` parameter) for ``Box`` actions. The critic outputs ``V(s)``.
Layers are initialised orthogonally like SB3 and CleanRL: gain sqrt(2) for hidden layers, 0.01
for the policy head, 1 for the value head, biases zero.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces

import ember
from ember import nn
from ember.distributions import Categorical, Distribution, Independent, Normal

__all__ = ["ActorCritic", "MultiCategorical", "mlp"]

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU}


def _activation_name(activation_fn) -> str:
    if isinstance(activation_fn, str):
        name = activation_fn.lower()
    else:  # SB3 passes the class itself, e.g. nn.ReLU
        name = {cls: key for key, cls in ACTIVATIONS.items()}.get(activation_fn)
    if name not in ACTIVATIONS:
        raise ValueError(f"activation_fn must be one of {sorted(ACTIVATIONS)}, got {activation_fn}")
    return name


def _layer(in_features: int, out_features: int, gain: float, ortho_init: bool) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    if ortho_init:
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return layer


def mlp(in_features: int, sizes, activation: str = "tanh", ortho_init: bool = True):
    """A ``Sequential`` of Linear + activation layers; ``sizes`` may be empty (identity).

    >>> mlp(4, [64, 64])
    Sequential(
      (0): Linear(in_features=4, out_features=64, bias=True)
      (1): Tanh()
      (2): Linear(in_features=64, out_features=64, bias=True)
      (3): Tanh()
    )
    """
    layers = []
    for size in sizes:
        layers += [_layer(in_features, size, math.sqrt(2), ortho_init), ACTIVATIONS[activation]()]
        in_features = size
    return nn.Sequential(*layers)


class MultiCategorical(Distribution):
    """Independent categoricals over the components of a ``MultiDiscrete`` action.

    ``logits`` has shape ``batch_shape + (sum(nvec),)``: the first ``nvec[0]`` logits are the
    first component's, and so on. A sample has shape ``batch_shape + (len(nvec),)``; its
    log-probability is the sum of the components' and so is the entropy (SB3's
    ``MultiCategoricalDistribution``). ``mode`` is each component's most likely class.

    >>> d = MultiCategorical(ember.tensor([[0.0, 0.0, 0.0, 5.0, 0.0]]), [3, 2])
    >>> d.mode
    tensor([[0, 0]])
    >>> d.sample().shape
    ember.Size([1, 2])
    >>> round(float(d.entropy()[0]), 4)  # log 3 plus the second component's entropy
    1.1388
    """

    arg_constraints: dict = {}  # the components check their own logits and values

    def __init__(self, logits, nvec, validate_args=None):
        self.nvec = [int(n) for n in nvec]
        if logits.shape[-1] != sum(self.nvec):
            raise ValueError(f"expected {sum(self.nvec)} logits, got shape {tuple(logits.shape)}")
        self.components = [
            Categorical(logits=part, validate_args=validate_args)
            for part in logits.split(self.nvec, dim=-1)
        ]
        super().__init__(logits.shape[:-1], (len(self.nvec),), validate_args=validate_args)

    @property
    def mode(self):
        """The most likely class of each component, shape ``batch_shape + (len(nvec),)``."""
        return ember.stack([c.mode for c in self.components], -1)

    def sample(self, sample_shape=()):
        """Independent class indices (int64), shape ``sample_shape + batch + (len(nvec),)``."""
        return ember.stack([c.sample(sample_shape) for c in self.components], -1)

    def log_prob(self, value):
        """The sum over components of ``log p_i(value[..., i])``."""
        value = value.long()
        total = self.components[0].log_prob(value[..., 0])
        for i, component in enumerate(self.components[1:], start=1):
            total = total + component.log_prob(value[..., i])
        return total

    def entropy(self):
        """The sum of the components' entropies."""
        total = self.components[0].entropy()
        for component in self.components[1:]:
            total = total + component.entropy()
        return total


def _split_net_arch(net_arch):
    """SB3's ``net_arch``: a list (same sizes for both nets) or ``dict(pi=[...], vf=[...])``."""
    if isinstance(net_arch, dict):
        return list(net_arch.get("pi", [])), list(net_arch.get("vf", []))
    return list(net_arch), list(net_arch)


class ActorCritic(nn.Module):
    """Policy and value networks for a Gymnasium observation space and action space.

    Keyword arguments follow SB3's ``policy_kwargs``: ``net_arch`` (list or
    ``dict(pi=..., vf=...)``, default ``[64, 64]``), ``activation_fn`` (``"tanh"`` or the class),
    ``ortho_init``, ``log_std_init`` and ``share_features_extractor`` (one trunk, the ``pi``
    sizes, feeds both heads). A ``MultiDiscrete`` space gets one head of ``sum(nvec)`` logits
    and a :class:`MultiCategorical`.

    >>> import gymnasium as gym
    >>> _ = ember.manual_seed(0)
    >>> policy = ActorCritic(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2))
    >>> dist, value = policy(ember.zeros(3, 4))
    >>> dist.sample().shape, value.shape
    (ember.Size([3]), ember.Size([3]))
    >>> int(policy.predict(np.zeros(4, np.float32)))
    0
    """

    def __init__(
        self,
        observation_space,
        action_space,
        net_arch=(64, 64),
        activation_fn="tanh",
        ortho_init: bool = True,
        log_std_init: float = 0.0,
        share_features_extractor: bool = False,
    ):
        super().__init__()
        if not isinstance(observation_space, spaces.Box):
            raise TypeError(f"observations must be a Box space, got {observation_space}")
        self.observation_space, self.action_space = observation_space, action_space
        self.obs_dim = int(np.prod(observation_space.shape))
        activation = _activation_name(activation_fn)
        pi_sizes, vf_sizes = _split_net_arch(net_arch)
        self.share_features_extractor = share_features_extractor
        self.pi_net = mlp(self.obs_dim, pi_sizes, activation, ortho_init)
        if share_features_extractor:
            vf_sizes = pi_sizes
            self.vf_net = None
        else:
            self.vf_net = mlp(self.obs_dim, vf_sizes, activation, ortho_init)
        pi_out = pi_sizes[-1] if pi_sizes else self.obs_dim
        vf_out = vf_sizes[-1] if vf_sizes else self.obs_dim
        self.log_std = self.nvec = None  # set for Box and MultiDiscrete actions respectively
        start = 0  # the first action of a Discrete or MultiDiscrete space's components
        if isinstance(action_space, spaces.Discrete):
            self.action_head = _layer(pi_out, int(action_space.n), 0.01, ortho_init)
            start = int(action_space.start)
        elif isinstance(action_space, spaces.MultiDiscrete):
            self.nvec = [int(n) for n in action_space.nvec.ravel()]
            self.action_head = _layer(pi_out, sum(self.nvec), 0.01, ortho_init)
            start = action_space.start.ravel()
        elif isinstance(action_space, spaces.Box):
            action_dim = int(np.prod(action_space.shape))
            self.action_head = _layer(pi_out, action_dim, 0.01, ortho_init)
            self.log_std = nn.Parameter(ember.full((action_dim,), float(log_std_init)))
        else:
            raise TypeError(
                f"actions must be a Discrete, MultiDiscrete or Box space, got {action_space}"
            )
        # the networks score class indices 0..n-1; the env's actions are those plus ``start``
        self._action_start = np.asarray(start, np.int64) if np.any(start) else None
        self.value_head = _layer(vf_out, 1, 1.0, ortho_init)

    def _features(self, obs):
        obs = obs.reshape(obs.shape[0], self.obs_dim)  # (batch, obs_dim)
        pi_latent = self.pi_net(obs)
        vf_latent = pi_latent if self.vf_net is None else self.vf_net(obs)
        return pi_latent, vf_latent

    def _distribution(self, pi_latent, validate_args=None):
        if self.nvec is not None:
            return MultiCategorical(self.action_head(pi_latent), self.nvec, validate_args)
        if self.log_std is None:
            return Categorical(logits=self.action_head(pi_latent), validate_args=validate_args)
        mean = self.action_head(pi_latent)  # (batch, action_dim)
        normal = Normal(mean, self.log_std.exp().expand_as(mean), validate_args=validate_args)
        return Independent(normal, 1, validate_args=validate_args)

    def forward(self, obs, validate_args=None):
        """``(action distribution, value)`` for a batch of observations ``(batch, *obs_shape)``;
        ``validate_args`` goes to the distribution (``None``: ember's default, checked)."""
        pi_latent, vf_latent = self._features(obs)
        dist = self._distribution(pi_latent, validate_args)
        return dist, self.value_head(vf_latent).squeeze(-1)

    def value(self, obs):
        """``V(s)`` for a batch of observations, shape ``(batch,)``."""
        return self.forward(obs)[1]

    def evaluate_actions(self, obs, actions, *, entropy_grad: bool = True):
        """``(values, log_prob(actions), entropy)`` for a batch, each of shape ``(batch,)``.

        ``entropy_grad=False`` computes the entropy without recording it for backward (for a
        loss that gives it zero weight, where its gradient would be all zeros).
        """
        dist, values = self.forward(obs)
        if self._action_start is not None:
            actions = actions - ember.as_tensor(self._action_start)
        if self.log_std is not None or self.nvec is not None:  # (batch, components)
            actions = actions.reshape(actions.shape[0], -1)
        if entropy_grad:
            entropy = dist.entropy()
        else:
            with ember.no_grad():
                entropy = dist.entropy()
        return values, dist.log_prob(actions), entropy

    def act(self, obs, deterministic: bool = False, *, validate_args=None):
        """``(actions, values, log_probs)`` as NumPy arrays for a batch of NumPy observations.

        ``validate_args=False`` skips the distribution's checks of its parameters and of the
        actions it scores (``None``: ember's default, checked), which take about a sixth of
        this call's time on CartPole.
        """
        with ember.no_grad():
            obs = ember.as_tensor(np.asarray(obs, dtype=np.float32))
            dist, values = self.forward(obs, validate_args)
            if deterministic and isinstance(dist, Categorical):
                actions = dist.probs.argmax(-1)
            elif deterministic:
                actions = dist.mode  # the Gaussian's mean, or each component's argmax
            else:
                actions = dist.sample()
            log_probs = dist.log_prob(actions)
        actions = actions.numpy()
        if self.log_std is not None or self.nvec is not None:
            actions = actions.reshape((-1,) + self.action_space.shape)
        if self._action_start is not None:
            actions = actions + self._action_start.reshape(self.action_space.shape)
        return actions, values.numpy(), log_probs.numpy()

    def predict(self, obs, deterministic: bool = True):
        """Actions for one observation or a batch (NumPy in, NumPy out); Box actions are clipped
        to the action space's bounds, as SB3 does before stepping the env."""
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.shape == self.observation_space.shape
        actions, _, _ = self.act(obs[None] if single else obs, deterministic)
        if self.log_std is not None:
            actions = np.clip(actions, self.action_space.low, self.action_space.high)
        return actions[0] if single else actions
