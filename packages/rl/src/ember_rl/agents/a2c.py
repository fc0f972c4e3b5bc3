"""Advantage Actor-Critic (A2C, the synchronous A3C of Mnih et al. 2016), SB3's defaults.

Per rollout of ``n_steps x n_envs`` steps, one gradient step on the whole rollout minimising

    -mean(A * log pi(a|s)) + vf_coef * mean((returns - V)^2) - ent_coef * entropy

with GAE(lambda) advantages (``gae_lambda=1``: n-step returns) and RMSprop like SB3.
"""

from __future__ import annotations

from dataclasses import dataclass

import ember

from ._base import EnvConfig, OnPolicyAgent

__all__ = ["A2C", "A2CConfig"]


@dataclass
class A2CConfig(EnvConfig):
    """A2C's hyperparameters (Stable-Baselines3's names and defaults)."""

    learning_rate: float | str = 7e-4
    """Optimizer step size: a number, or ``"lin_<start>"`` to anneal linearly to zero."""
    n_steps: int = 5
    """Steps per env per rollout; each rollout is one gradient step."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 1.0
    """GAE's lambda; 1 gives classic n-step bootstrapped returns."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float | None = 0.5
    """Clip the global gradient norm to this value (``None``: no clipping)."""
    rms_prop_eps: float = 1e-5
    """RMSprop's epsilon (SB3 uses 1e-5 rather than PyTorch's 1e-8)."""
    use_rms_prop: bool = True
    """RMSprop (alpha 0.99) like SB3; ``False`` uses Adam."""
    normalize_advantage: bool = False
    """Standardise advantages within each rollout."""


class A2C(OnPolicyAgent):
    """A2C agent: ``A2C(env_id_or_env, seed=None, **hyperparameters)`` (see :class:`A2CConfig`).

    >>> agent = A2C("CartPole-v1", seed=0, n_envs=2)
    >>> _ = agent.learn(total_steps=20, progress=False)
    >>> agent.num_timesteps
    20
    """

    Config = A2CConfig
    algo = "a2c"

    def _make_optimizer(self):
        params = self.policy.parameters()
        if self.config.use_rms_prop:
            return ember.optim.RMSprop(
                params, lr=self._lr(1.0), alpha=0.99, eps=self.config.rms_prop_eps
            )
        return ember.optim.Adam(params, lr=self._lr(1.0), eps=self.config.rms_prop_eps)

    def _update(self, buffer, progress_remaining: float) -> dict:
        cfg = self.config
        self._set_lr(progress_remaining)
        batch = next(buffer.get(batch_size=None))
        values, log_prob, entropy = self.policy.evaluate_actions(batch["obs"], batch["actions"])
        advantages = batch["advantages"]
        if cfg.normalize_advantage:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = -(advantages * log_prob).mean()
        value_loss = ((batch["returns"] - values) ** 2).mean()
        entropy_loss = -entropy.mean()
        loss = policy_loss + cfg.ent_coef * entropy_loss + cfg.vf_coef * value_loss
        self._step_optimizer(loss)
        return {  # SB3's train/ names
            "policy_loss": float(policy_loss),
            "value_loss": float(value_loss),
            "entropy_loss": float(entropy_loss),
            "loss": float(loss),
        }
