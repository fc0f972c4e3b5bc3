"""REINFORCE (Williams 1992) with a learned state-value baseline.

Per rollout of ``n_steps x n_envs`` steps: discounted Monte Carlo returns ``G_t`` (GAE with
lambda 1; a return cut by the rollout's end or a time limit is completed by ``V``), then one
gradient step minimising

    -mean((G_t - V(s_t)) * log pi(a_t|s_t)) + vf_coef * mean((G_t - V(s_t))^2)
    - ent_coef * entropy

The baseline lowers the variance of the gradient without biasing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._base import EnvConfig, OnPolicyAgent

__all__ = ["REINFORCE", "REINFORCEConfig"]


@dataclass
class REINFORCEConfig(EnvConfig):
    """REINFORCE's hyperparameters (Stable-Baselines3's names where SB3 has one)."""

    learning_rate: float | str = 1e-3
    """Adam's step size: a number, or ``"lin_<start>"`` to anneal linearly to zero."""
    n_steps: int = 500
    """Steps per env per rollout; each rollout is one gradient step."""
    gamma: float = 0.99
    """Discount factor."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the baseline's (value) loss."""
    max_grad_norm: float | None = 0.5
    """Clip the global gradient norm to this value (``None``: no clipping)."""
    normalize_advantage: bool = True
    """Standardise ``G_t - V(s_t)`` within each rollout."""


class REINFORCE(OnPolicyAgent):
    """REINFORCE agent: ``REINFORCE(env_id_or_env, seed=None, **hyperparameters)``.

    >>> agent = REINFORCE("CartPole-v1", seed=0, n_steps=20)
    >>> _ = agent.learn(total_steps=20, progress=False)
    >>> agent.num_timesteps
    20
    """

    Config = REINFORCEConfig
    algo = "reinforce"

    def _update(self, buffer, progress_remaining: float) -> dict:
        cfg = self.config
        self._set_lr(progress_remaining)
        batch = next(buffer.get(batch_size=None))
        values, log_prob, entropy = self.policy.evaluate_actions(batch["obs"], batch["actions"])
        # the buffer's returns are G_t (lambda = 1); the baseline is the current V(s_t)
        advantages = batch["returns"] - values.detach()
        if cfg.normalize_advantage and advantages.numel() > 1:
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
