"""Gymnasium vector envs, seeding from one seed, and VecNormalize-style running normalisation.

Vector envs autoreset in ``SAME_STEP`` mode (Stable-Baselines3's convention): when an episode
ends, ``step`` already returns the first observation of the next one and puts the last one in
``info["final_obs"]``, which the agents need to bootstrap through time limits.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

import ember

__all__ = ["make_vec_env", "seed_everything", "final_observations", "RunningMeanStd", "Normalizer"]


def make_vec_env(env_id, n_envs: int = 1, vectorization: str = "sync", env_kwargs=None):
    """``n_envs`` copies of ``env_id`` (an id or a callable returning an env) in one vector env.

    ``vectorization`` is ``"sync"`` (``SyncVectorEnv``, one process) or ``"async"``
    (``AsyncVectorEnv``, one subprocess per env). Seed it with ``envs.reset(seed=seed)``.

    >>> envs = make_vec_env("CartPole-v1", n_envs=2)
    >>> obs, info = envs.reset(seed=0)
    >>> obs.shape
    (2, 4)
    >>> envs.close()
    """
    env_kwargs = dict(env_kwargs or {})

    def make():
        return env_id(**env_kwargs) if callable(env_id) else gym.make(env_id, **env_kwargs)

    classes = {"sync": gym.vector.SyncVectorEnv, "async": gym.vector.AsyncVectorEnv}
    if vectorization not in classes:
        raise ValueError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
    return classes[vectorization]([make] * n_envs, autoreset_mode=AutoresetMode.SAME_STEP)


def seed_everything(envs, seed: int | None):
    """Seed ember's RNG (network init, action sampling), the envs and their action spaces.

    Returns the first observations. Env ``i`` gets ``seed + i``, as Gymnasium does.
    """
    if seed is not None:
        ember.manual_seed(seed)
        envs.action_space.seed(seed)
    obs, _ = envs.reset(seed=seed)
    return obs


def final_observations(info, obs, done):
    """The observations episodes really ended on: ``info["final_obs"]`` where ``done``.

    Works with Gymnasium 1.x (``final_obs``) and 0.29 (``final_observation``); rows that did
    not end keep ``obs``.
    """
    final = np.array(obs, dtype=np.float32, copy=True)
    key = "final_obs" if "final_obs" in info else "final_observation"
    if key in info:
        for i in np.flatnonzero(done):
            if info.get("_" + key, done)[i]:
                final[i] = info[key][i]
    return final


class RunningMeanStd:
    """Running mean and variance of a stream of batches (Chan et al.'s parallel update).

    >>> rms = RunningMeanStd(shape=())
    >>> rms.update(np.array([1.0, 2.0, 3.0]))
    >>> round(float(rms.mean), 3), round(float(rms.var), 3)
    (2.0, 0.667)
    """

    def __init__(self, shape=(), epsilon: float = 1e-4):
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = epsilon  # SB3's prior count, so the first batch dominates

    def update(self, batch) -> None:
        """Fold a batch ``(n, *shape)`` into the statistics."""
        batch = np.asarray(batch, np.float64)
        batch_mean, batch_var, n = batch.mean(axis=0), batch.var(axis=0), batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean = self.mean + delta * n / total
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict:
        """Statistics as tensors and numbers (``ember.save``-able)."""
        return {
            "mean": ember.as_tensor(self.mean),
            "var": ember.as_tensor(self.var),
            "count": float(self.count),
        }

    def load_state_dict(self, state) -> None:
        """Restore statistics saved by :meth:`state_dict`."""
        self.mean = np.asarray(state["mean"].numpy(), np.float64)
        self.var = np.asarray(state["var"].numpy(), np.float64)
        self.count = float(state["count"])


class Normalizer:
    """Observation and reward normalisation with SB3 ``VecNormalize`` semantics.

    Observations: ``clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)``.
    Rewards: divided by the running std of the discounted return (not centred), then clipped.
    Statistics update only while ``training`` is true; they are saved with the agent.

    >>> norm = Normalizer(obs_shape=(2,), norm_obs=True, norm_reward=False)
    >>> norm.normalize_obs(np.array([[1.0, 2.0], [3.0, 4.0]]), update=True).round(3)
    array([[-1., -1.],
           [ 1.,  1.]], dtype=float32)
    """

    def __init__(
        self,
        obs_shape,
        norm_obs: bool = True,
        norm_reward: bool = True,
        clip_obs: float = 10.0,
        clip_reward: float = 10.0,
        gamma: float = 0.99,
        epsilon: float = 1e-8,
    ):
        self.norm_obs, self.norm_reward = norm_obs, norm_reward
        self.clip_obs, self.clip_reward = clip_obs, clip_reward
        self.gamma, self.epsilon = gamma, epsilon
        self.obs_rms = RunningMeanStd(shape=tuple(obs_shape))
        self.ret_rms = RunningMeanStd(shape=())
        self._returns = None

    def normalize_obs(self, obs, update: bool = False):
        """Normalised observations (float32); ``update`` folds the batch into the stats first."""
        obs = np.asarray(obs, np.float32)
        if not self.norm_obs:
            return obs
        if update:
            self.obs_rms.update(obs)
        scaled = (obs - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + self.epsilon)
        return np.clip(scaled, -self.clip_obs, self.clip_obs).astype(np.float32)

    def normalize_reward(self, reward, done, update: bool = False):
        """Scaled rewards; ``done`` (terminated or truncated) resets the discounted return."""
        reward = np.asarray(reward, np.float32)
        if not self.norm_reward:
            return reward
        if update:
            if self._returns is None or self._returns.shape != reward.shape:
                self._returns = np.zeros(reward.shape, np.float64)
            self._returns = self._returns * self.gamma + reward
            self.ret_rms.update(self._returns)
            self._returns[np.asarray(done, bool)] = 0.0
        scaled = reward / np.sqrt(self.ret_rms.var + self.epsilon)
        return np.clip(scaled, -self.clip_reward, self.clip_reward).astype(np.float32)

    def state_dict(self) -> dict:
        """Settings and statistics for ``ember.save``."""
        return {
            "norm_obs": self.norm_obs,
            "norm_reward": self.norm_reward,
            "clip_obs": self.clip_obs,
            "clip_reward": self.clip_reward,
            "gamma": self.gamma,
            "epsilon": self.epsilon,
            "obs_rms": self.obs_rms.state_dict(),
            "ret_rms": self.ret_rms.state_dict(),
        }

    def load_state_dict(self, state) -> None:
        """Restore settings and statistics saved by :meth:`state_dict`."""
        for key in ("norm_obs", "norm_reward", "clip_obs", "clip_reward", "gamma", "epsilon"):
            setattr(self, key, state[key])
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.ret_rms.load_state_dict(state["ret_rms"])
