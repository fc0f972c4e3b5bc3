"""Proximal Policy Optimization (Schulman et al. 2017), clipped objective, SB3's defaults.

Per rollout of ``n_steps x n_envs`` steps: GAE(lambda) advantages, then ``n_epochs`` passes of
shuffled minibatches of ``batch_size`` minimising

    -min(ratio * A, clip(ratio, 1 - clip_range, 1 + clip_range) * A)
    + vf_coef * (returns - V)^2 - ent_coef * entropy

with ``ratio = pi(a|s) / pi_old(a|s)`` and gradients clipped to ``max_grad_norm``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import ember

from ._base import EnvConfig, OnPolicyAgent, get_schedule

__all__ = ["PPO", "PPOConfig"]


@dataclass
class PPOConfig(EnvConfig):
    """PPO's hyperparameters (Stable-Baselines3's names and defaults)."""

    learning_rate: float | str = 3e-4
    """Adam's step size: a number, or ``"lin_<start>"`` to anneal linearly to zero."""
    n_steps: int = 2048
    """Steps per env per rollout; a rollout holds ``n_steps * n_envs`` transitions."""
    batch_size: int = 64
    """Minibatch size for the gradient steps."""
    n_epochs: int = 10
    """Passes over each rollout."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE's bias/variance trade-off (1: Monte Carlo returns, 0: one-step TD)."""
    clip_range: float | str = 0.2
    """Policy ratio clipping, a number or ``"lin_<start>"``."""
    clip_range_vf: float | str | None = None
    """If set, clip the value change per update to this range (OpenAI's value clipping);
    it depends on the reward scale. ``None`` disables it."""
    normalize_advantage: bool = True
    """Standardise advantages within each minibatch."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float | None = 0.5
    """Clip the global gradient norm to this value (``None``: no clipping)."""
    target_kl: float | None = None
    """Stop the epochs of an update early once the approximate KL exceeds ``1.5 * target_kl``."""


def standardize(x: np.ndarray) -> np.ndarray:
    """``(x - x.mean()) / (x.std() + 1e-8)`` with the unbiased std, as ember computes it on a
    float32 tensor (sum then divide for the means, ``sum(d * d) / (n - 1)`` for the variance),
    bit for bit, in a handful of NumPy calls instead of a dozen tensor ops.

    >>> x = ember.randn(100)
    >>> y = (x - x.mean()) / (x.std() + 1e-8)
    >>> standardize(x.numpy()).tobytes() == y.numpy().tobytes()
    True
    """
    n = x.size
    d = x - np.sum(x, keepdims=True) / n
    std = np.sqrt(np.sum(d * d) / (n - 1))
    return (x - np.sum(x) / n) / (std + 1e-8)


def _kl_and_clip_fraction(ratio, log_ratio, clip_range: float) -> tuple[float, float]:
    """Schulman's low-variance estimate of KL(old || new), ``mean((ratio - 1) - log_ratio)``,
    and the fraction of ratios outside ``1 +- clip_range``, computed on the NumPy arrays (the
    float32 operations ember's tensor ops would run, without the graph bookkeeping)."""
    ratio, log_ratio = ratio.detach().numpy(), log_ratio.detach().numpy()
    n = ratio.size
    approx_kl = np.sum((ratio - 1) - log_ratio) / n
    clipped = np.sum((np.abs(ratio - 1) > clip_range).astype(ratio.dtype)) / n
    return float(approx_kl), float(clipped)


class PPO(OnPolicyAgent):
    """PPO agent: ``PPO(env_id_or_env, seed=None, **hyperparameters)`` (see :class:`PPOConfig`).

    >>> agent = PPO("CartPole-v1", seed=0, n_steps=16, batch_size=16, n_epochs=1)
    >>> _ = agent.learn(total_steps=32, progress=False)
    >>> agent.num_timesteps
    32
    >>> int(agent.predict([0.0, 0.0, 0.0, 0.0])) in (0, 1)
    True
    """

    Config = PPOConfig
    algo = "ppo"

    def _update(self, buffer, progress_remaining: float) -> dict:
        cfg = self.config
        self._set_lr(progress_remaining)
        clip_range = get_schedule(cfg.clip_range)(progress_remaining)
        clip_vf = None
        if cfg.clip_range_vf is not None:
            clip_vf = get_schedule(cfg.clip_range_vf)(progress_remaining)
        names = ("policy_gradient_loss", "value_loss", "entropy_loss", "approx_kl", "loss")
        stats = {name: [] for name in (*names, "clip_fraction")}  # SB3's train/ names
        for _ in range(cfg.n_epochs):
            kls = []
            for batch in buffer.get(cfg.batch_size, self.rng):
                values, log_prob, entropy = self.policy.evaluate_actions(
                    batch["obs"], batch["actions"], entropy_grad=cfg.ent_coef != 0
                )
                advantages = batch["advantages"]
                if cfg.normalize_advantage and advantages.numel() > 1:
                    advantages = ember.as_tensor(standardize(advantages.numpy()))
                log_ratio = log_prob - batch["log_probs"]
                ratio = log_ratio.exp()
                surrogate = ember.minimum(
                    ratio * advantages, ratio.clamp(1 - clip_range, 1 + clip_range) * advantages
                )
                policy_loss = -surrogate.mean()
                if clip_vf is not None:
                    old = batch["values"]
                    values = old + (values - old).clamp(-clip_vf, clip_vf)
                value_loss = ((batch["returns"] - values) ** 2).mean()
                entropy_loss = -entropy.mean()
                if cfg.ent_coef != 0:
                    loss = policy_loss + cfg.ent_coef * entropy_loss + cfg.vf_coef * value_loss
                else:  # the same value and gradients, without the entropy in the graph
                    loss = policy_loss + cfg.vf_coef * value_loss
                approx_kl, clipped = _kl_and_clip_fraction(ratio, log_ratio, clip_range)
                kls.append(approx_kl)
                if cfg.target_kl is not None and approx_kl > 1.5 * cfg.target_kl:
                    break
                self._step_optimizer(loss)
                values_now = (policy_loss, value_loss, entropy_loss, approx_kl, loss, clipped)
                for key, value in zip(stats, values_now):
                    stats[key].append(float(value))
            if cfg.target_kl is not None and kls and kls[-1] > 1.5 * cfg.target_kl:
                break
        stats = {key: float(np.mean(v)) if v else float("nan") for key, v in stats.items()}
        return {**stats, "clip_range": float(clip_range)}
