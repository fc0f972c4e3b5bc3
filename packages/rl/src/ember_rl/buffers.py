"""Rollout storage for on-policy agents, and GAE(lambda) with correct time-limit bootstrapping.

Arrays are laid out ``(n_steps, n_envs, ...)``: row ``t`` holds the observation the agents saw
at step ``t``, the action taken, and what ``env.step`` answered (reward, terminated, truncated).
When an episode ends at step ``t`` the vector env has already reset, so the next row starts a
new episode. Two endings differ:

* ``terminated`` (a true terminal state): the value after it is zero.
* ``truncated`` (a time limit): the episode could have gone on, so the target bootstraps from
  ``V(final observation)``, the observation Gymnasium hands back in ``info["final_obs"]``.
"""

from __future__ import annotations

import numpy as np

import ember

__all__ = ["compute_gae", "explained_variance", "RolloutBuffer"]


def explained_variance(y_pred, y_true) -> float:
    """``1 - Var(y_true - y_pred) / Var(y_true)``: how much of the returns the critic predicts.

    1 is perfect, 0 no better than a constant, negative worse; NaN when ``y_true`` is constant
    (SB3's ``train/explained_variance``, computed on the rollout's values and returns).

    >>> explained_variance(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    0.8571428571428571
    """
    y_pred = np.asarray(y_pred, np.float64).ravel()
    y_true = np.asarray(y_true, np.float64).ravel()
    var = np.var(y_true)
    return float("nan") if var == 0 else float(1.0 - np.var(y_true - y_pred) / var)


def compute_gae(
    rewards,
    values,
    terminated,
    truncated,
    last_values,
    final_values=None,
    gamma: float = 0.99,
    gae_lambda: float = 0.95,
):
    """Generalized advantage estimates and returns for a ``(n_steps, n_envs)`` rollout.

    ``values[t]`` is ``V(s_t)``; ``last_values`` is ``V`` of the observation after the last row;
    ``final_values[t]`` is ``V(final observation)`` where ``truncated[t]`` (ignored elsewhere).
    Returns ``(advantages, returns)`` with ``returns = advantages + values``.

    >>> adv, ret = compute_gae(
    ...     rewards=[[1.0], [1.0]], values=[[0.0], [0.0]], terminated=[[False], [True]],
    ...     truncated=[[False], [False]], last_values=[5.0], gamma=0.5, gae_lambda=1.0)
    >>> ret.ravel().tolist()
    [1.5, 1.0]
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    terminated = np.asarray(terminated, dtype=bool)
    truncated = np.asarray(truncated, dtype=bool) & ~terminated
    last_values = np.asarray(last_values, dtype=np.float64)
    if final_values is None:
        final_values = np.zeros_like(values)
    final_values = np.asarray(final_values, dtype=np.float64)
    n_steps = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    next_advantage = np.zeros_like(last_values)
    for t in reversed(range(n_steps)):
        next_values = last_values if t == n_steps - 1 else values[t + 1]
        # the value of whatever follows step t: 0 after a terminal state, V(final obs) after a
        # time limit, V(s_{t+1}) when the episode goes on
        next_values = np.where(truncated[t], final_values[t], next_values)
        next_values = np.where(terminated[t], 0.0, next_values)
        delta = rewards[t] + gamma * next_values - values[t]
        done = terminated[t] | truncated[t]
        next_advantage = delta + gamma * gae_lambda * np.where(done, 0.0, next_advantage)
        advantages[t] = next_advantage
    return advantages, advantages + values


class RolloutBuffer:
    """Fixed-size storage of one rollout of ``n_steps`` steps from ``n_envs`` envs.

    Fill it with :meth:`add`, call :meth:`compute_returns_and_advantage` once, then iterate
    shuffled minibatches with :meth:`get`.

    >>> buf = RolloutBuffer(n_steps=2, n_envs=1, obs_shape=(3,), action_shape=())
    >>> for _ in range(2):
    ...     buf.add(np.zeros((1, 3)), np.zeros(1), np.ones(1), np.zeros(1, bool),
    ...             np.zeros(1, bool), np.zeros(1), np.zeros(1))
    >>> buf.compute_returns_and_advantage(last_values=np.zeros(1), gamma=1.0, gae_lambda=1.0)
    >>> buf.returns.ravel().tolist()
    [2.0, 1.0]
    >>> [len(batch["obs"]) for batch in buf.get(batch_size=1)]
    [1, 1]
    """

    def __init__(self, n_steps: int, n_envs: int, obs_shape, action_shape, action_dtype=np.int64):
        self.n_steps, self.n_envs = n_steps, n_envs
        shape = (n_steps, n_envs)
        self.obs = np.zeros(shape + tuple(obs_shape), dtype=np.float32)
        self.actions = np.zeros(shape + tuple(action_shape), dtype=action_dtype)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.truncated = np.zeros(shape, dtype=bool)
        self.values = np.zeros(shape, dtype=np.float32)
        self.log_probs = np.zeros(shape, dtype=np.float32)
        self.final_values = np.zeros(shape, dtype=np.float32)
        self.advantages = np.zeros(shape, dtype=np.float32)
        self.returns = np.zeros(shape, dtype=np.float32)
        self.pos = 0

    @property
    def full(self) -> bool:
        """Whether all ``n_steps`` rows have been written."""
        return self.pos == self.n_steps

    def reset(self) -> None:
        """Start writing from the first row again."""
        self.pos = 0

    def add(self, obs, action, reward, terminated, truncated, value, log_prob, final_value=None):
        """Write one step for every env; ``final_value`` is ``V(final obs)`` where truncated."""
        if self.full:
            raise RuntimeError("RolloutBuffer is full; call reset() first")
        t = self.pos
        self.obs[t] = obs
        self.actions[t] = action
        self.rewards[t] = reward
        self.terminated[t] = terminated
        self.truncated[t] = truncated
        self.values[t] = value
        self.log_probs[t] = log_prob
        self.final_values[t] = 0.0 if final_value is None else final_value
        self.pos += 1

    def compute_returns_and_advantage(self, last_values, gamma: float, gae_lambda: float):
        """Fill ``advantages`` and ``returns`` (GAE); ``last_values``: V of the next observation."""
        if not self.full:
            raise RuntimeError("RolloutBuffer is not full yet")
        adv, ret = compute_gae(
            self.rewards,
            self.values,
            self.terminated,
            self.truncated,
            last_values,
            self.final_values,
            gamma=gamma,
            gae_lambda=gae_lambda,
        )
        self.advantages[:] = adv
        self.returns[:] = ret

    def get(self, batch_size: int | None = None, rng: np.random.Generator | None = None):
        """Yield dicts of ember tensors (obs, actions, values, log_probs, advantages, returns).

        Rows from every step and env are flattened and shuffled with ``rng``; ``batch_size=None``
        yields the whole rollout in order, in one batch.
        """
        total = self.n_steps * self.n_envs
        if batch_size is None:
            indices, batch_size = np.arange(total), total
        else:
            rng = rng if rng is not None else np.random.default_rng()
            indices = rng.permutation(total)
        flat = {
            "obs": self.obs.reshape((total,) + self.obs.shape[2:]),
            "actions": self.actions.reshape((total,) + self.actions.shape[2:]),
            "values": self.values.reshape(total),
            "log_probs": self.log_probs.reshape(total),
            "advantages": self.advantages.reshape(total),
            "returns": self.returns.reshape(total),
        }
        for start in range(0, total, batch_size):
            idx = indices[start : start + batch_size]
            yield {key: ember.as_tensor(np.ascontiguousarray(a[idx])) for key, a in flat.items()}
