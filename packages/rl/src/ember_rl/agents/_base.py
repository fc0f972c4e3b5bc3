"""What REINFORCE, A2C and PPO share: envs, rollout collection, logging, evaluation, save/load.

Each algorithm file holds its hyperparameter dataclass and its update rule (``_update``); this
module holds the loop around them, so the three read the same way.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
from collections import deque

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from tqdm.auto import tqdm

import ember

from ..buffers import RolloutBuffer, explained_variance
from ..callbacks import as_callback
from ..envs import Normalizer, final_observations, make_vec_env, seed_everything
from ..policies import ActorCritic, _activation_name

__all__ = ["OnPolicyAgent", "get_schedule"]

EPISODE_COLUMNS = ["step", "episode_return", "episode_length"]


def get_schedule(value):
    """A function of SB3's ``progress_remaining`` (1 at the start, 0 at the end).

    ``value`` is a number (constant) or RL-Zoo's ``"lin_<start>"`` (linear decay to zero).

    >>> get_schedule("lin_0.001")(0.5)
    0.0005
    >>> get_schedule(0.2)(0.1)
    0.2
    """
    if isinstance(value, str):
        if not value.startswith("lin_"):
            raise ValueError(f"a schedule is a number or 'lin_<start>', got {value!r}")
        start = float(value[len("lin_") :])
        return lambda progress_remaining: progress_remaining * start
    return lambda progress_remaining: float(value)


def clip_grad_norm(parameters, max_norm: float) -> None:
    """Scale the parameters' gradients in place so that their global 2-norm is at most
    ``max_norm``: ``ember.nn.utils.clip_grad_norm_``'s arithmetic, bit for bit, on the
    gradients' NumPy arrays.

    The norm of the per-tensor norms, then every gradient times ``min(1, max_norm / (norm +
    1e-6))``, each step in float32 as ember computes it. ember's function builds about 70
    small tensor ops per call; this is a few NumPy calls, which made PPO's CartPole training
    (20 gradient steps per 256 env steps) about a tenth faster.

    >>> w = ember.nn.Parameter(ember.zeros(2))
    >>> w.grad = ember.tensor([3.0, 4.0])
    >>> clip_grad_norm([w], 1.0)
    >>> w.grad
    tensor([0.6000, 0.8000])
    """
    grads = [p.grad.numpy() for p in parameters if p.grad is not None]
    if not grads:
        return
    norms = np.stack([np.sqrt(np.sum(g * g)) for g in grads])
    total = np.sqrt(np.sum(norms * norms))
    coef = np.minimum(float(max_norm) / (total + 1e-6), 1.0)
    if coef < 1.0:  # times exactly 1 changes nothing
        for g in grads:
            np.multiply(g, coef, out=g)


def _csv_writer(stack: contextlib.ExitStack, path, header):
    """A csv writer appending to ``path`` (closed with ``stack``); the header goes into new or
    empty files only, so a resumed run keeps extending the same log."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    writer = csv.writer(stack.enter_context(open(path, "a", newline="")))
    if new:
        writer.writerow(header)
    return writer


def _env_id(env):
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else None


@dataclasses.dataclass
class EnvConfig:
    """Hyperparameters every agent shares: the policy network and how its envs are built.
    Each agent's config adds its own fields after these."""

    policy_kwargs: dict = dataclasses.field(default_factory=dict)
    """Passed to :class:`ember_rl.policies.ActorCritic` (``net_arch``, ``activation_fn``, ...)."""
    n_envs: int = 1
    """Parallel envs when the agent is given an env id."""
    vectorization: str = "sync"
    """``"sync"`` (SyncVectorEnv) or ``"async"`` (AsyncVectorEnv, one process per env)."""
    norm_obs: bool = False
    """Normalise observations by running mean/std (SB3 VecNormalize's ``norm_obs``)."""
    norm_reward: bool = False
    """Divide rewards by the running std of the discounted return (VecNormalize's
    ``norm_reward``)."""


class OnPolicyAgent:
    """Base of the on-policy agents; subclasses set ``Config`` and implement ``_update``."""

    Config = None
    algo = "base"

    def __init__(self, env, seed: int | None = None, **hyperparameters):
        self.config = self.Config(**hyperparameters)
        cfg = self.config
        kwargs = dict(cfg.policy_kwargs or {})
        if "activation_fn" in kwargs:  # store a name, so the hyperparameters stay JSON-able
            kwargs["activation_fn"] = _activation_name(kwargs["activation_fn"])
        cfg.policy_kwargs = json.loads(json.dumps(kwargs))
        self.seed = seed
        self.envs, self.env_id = self._make_envs(env)
        cfg.n_envs = self.envs.num_envs
        self._obs = seed_everything(self.envs, seed)  # before the network, which draws from ember
        self.observation_space = self.envs.single_observation_space
        self.action_space = self.envs.single_action_space
        self.policy = ActorCritic(self.observation_space, self.action_space, **cfg.policy_kwargs)
        self.optimizer = self._make_optimizer()
        self.normalizer = Normalizer(
            self.observation_space.shape, cfg.norm_obs, cfg.norm_reward, gamma=cfg.gamma
        )
        self.rng = np.random.default_rng(seed)
        self.num_timesteps = 0
        self.episode_returns = deque(maxlen=100)  # SB3's ep_rew_mean window
        self.episode_log: list[tuple[int, float, int]] = []  # (step, return, length)
        self.last_stats: dict = {}  # the latest update's losses etc. (SB3's train/ names)
        self._ep_return = np.zeros(cfg.n_envs)
        self._ep_length = np.zeros(cfg.n_envs, dtype=np.int64)

    # -- set-up ------------------------------------------------------------------------------
    def _make_envs(self, env):
        cfg = self.config
        if isinstance(env, str):
            return make_vec_env(env, cfg.n_envs, cfg.vectorization), env
        if isinstance(env, gym.vector.VectorEnv):
            if (
                env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
                != AutoresetMode.SAME_STEP
            ):
                raise ValueError("vector envs must use autoreset_mode=AutoresetMode.SAME_STEP")
            return env, _env_id(env.envs[0]) if hasattr(env, "envs") else None
        if isinstance(env, gym.Env):
            vec = gym.vector.SyncVectorEnv([lambda: env], autoreset_mode=AutoresetMode.SAME_STEP)
            return vec, _env_id(env)
        raise TypeError(f"env must be an id, a gymnasium.Env or a VectorEnv, got {type(env)}")

    def _make_optimizer(self):
        return ember.optim.Adam(self.policy.parameters(), lr=self._lr(1.0), eps=1e-5)

    def _lr(self, progress_remaining: float) -> float:
        return get_schedule(self.config.learning_rate)(progress_remaining)

    def _set_lr(self, progress_remaining: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr(progress_remaining)

    # -- acting ------------------------------------------------------------------------------
    def predict(self, obs, deterministic: bool = True):
        """Action(s) for one raw observation or a batch (normalised as during training).

        Unlike SB3, returns the action alone, not ``(action, state)``.
        """
        obs = np.asarray(obs, np.float32)
        single = obs.shape == self.observation_space.shape
        batch = self.normalizer.normalize_obs(obs[None] if single else obs)
        actions = self.policy.predict(batch, deterministic)
        return actions[0] if single else actions

    def _env_actions(self, actions):
        if isinstance(self.action_space, spaces.Box):  # the buffer keeps the unclipped sample
            return np.clip(actions, self.action_space.low, self.action_space.high)
        return actions

    def _values(self, raw_obs):
        obs = self.normalizer.normalize_obs(raw_obs)
        with ember.no_grad():
            return self.policy.value(ember.as_tensor(obs)).numpy()

    # -- the loop ----------------------------------------------------------------------------
    def collect_rollout(self, buffer: RolloutBuffer, on_step=None, on_episode=None) -> None:
        """Step the envs ``n_steps`` times with the current policy and fill ``buffer``."""
        buffer.reset()
        while not buffer.full:
            obs = self.normalizer.normalize_obs(self._obs, update=True)
            # unchecked: the sampled actions are valid by construction, and the update's
            # evaluate_actions (checked) still rejects a policy that outputs NaN
            actions, values, log_probs = self.policy.act(obs, validate_args=False)
            next_obs, rewards, terminated, truncated, info = self.envs.step(
                self._env_actions(actions)
            )
            self.num_timesteps += self.config.n_envs
            done = terminated | truncated
            self._track_episodes(rewards, done, on_episode)
            scaled = self.normalizer.normalize_reward(rewards, done, update=True)
            final_values = None
            if np.any(truncated & ~terminated):  # bootstrap through the time limit
                final = final_observations(info, next_obs, truncated & ~terminated)
                final_values = np.where(truncated, self._values(final), 0.0)
            buffer.add(obs, actions, scaled, terminated, truncated, values, log_probs, final_values)
            self._obs = next_obs
            if on_step is not None:
                on_step(self.config.n_envs)
        last_values = self._values(self._obs)
        buffer.compute_returns_and_advantage(
            last_values, self.config.gamma, getattr(self.config, "gae_lambda", 1.0)
        )

    def _track_episodes(self, rewards, done, on_episode) -> None:
        self._ep_return += rewards
        self._ep_length += 1
        for i in np.flatnonzero(done):
            row = (self.num_timesteps, float(self._ep_return[i]), int(self._ep_length[i]))
            self.episode_returns.append(row[1])
            self.episode_log.append(row)
            if on_episode is not None:
                on_episode(row)
            self._ep_return[i], self._ep_length[i] = 0.0, 0

    def learn(
        self,
        total_steps: int,
        progress: bool = True,
        log_path=None,
        callback=None,
        loss_log_path=None,
    ):
        """Train for at least ``total_steps`` more env steps (all envs counted, whole rollouts).

        ``progress`` shows a tqdm bar with steps/s and the mean return of the last 100
        episodes; ``log_path`` appends one CSV row per finished episode
        (``step,episode_return,episode_length``) and ``loss_log_path`` one per update
        (``step`` then :attr:`last_stats`, SB3's ``train/`` names). ``callback`` is a
        :class:`ember_rl.callbacks.BaseCallback` or a list of them, called after every
        rollout and update; one returning ``False`` stops training.
        """
        cfg = self.config
        discrete = isinstance(self.action_space, (spaces.Discrete, spaces.MultiDiscrete))
        action_dtype = np.int64 if discrete else np.float32
        buffer = RolloutBuffer(
            cfg.n_steps,
            cfg.n_envs,
            self.observation_space.shape,
            self.action_space.shape,
            action_dtype,
        )
        callback = as_callback(callback)
        start = self.num_timesteps
        per_rollout = cfg.n_steps * cfg.n_envs  # learn() runs whole rollouts, like SB3
        planned = -(-total_steps // per_rollout) * per_rollout
        with contextlib.ExitStack() as stack:
            episodes = losses = None
            if log_path is not None:
                episodes = _csv_writer(stack, log_path, EPISODE_COLUMNS)
            bar = stack.enter_context(
                tqdm(total=planned, unit="step", disable=not progress, dynamic_ncols=True)
            )
            if callback is not None:
                callback.on_training_start(self, total_steps)
            while self.num_timesteps - start < total_steps:
                self.collect_rollout(
                    buffer, on_step=bar.update, on_episode=episodes and episodes.writerow
                )
                progress_remaining = max(0.0, 1.0 - (self.num_timesteps - start) / total_steps)
                stats = self._update(buffer, progress_remaining)
                self.last_stats = self._train_stats(stats, buffer)
                if loss_log_path is not None:
                    if losses is None:
                        losses = _csv_writer(stack, loss_log_path, ["step", *self.last_stats])
                    losses.writerow([self.num_timesteps, *self.last_stats.values()])
                if self.episode_returns:
                    bar.set_postfix(ep_return=f"{np.mean(self.episode_returns):.1f}")
                if callback is not None and not callback.on_step():
                    break
            if callback is not None:
                callback.on_training_end()
        return self

    def _train_stats(self, stats: dict, buffer: RolloutBuffer) -> dict:
        """The update's statistics plus what SB3 logs for every algorithm."""
        stats = dict(stats)
        stats["explained_variance"] = explained_variance(buffer.values, buffer.returns)
        stats["learning_rate"] = float(self.optimizer.param_groups[0]["lr"])
        if self.policy.log_std is not None:
            stats["std"] = float(self.policy.log_std.detach().exp().mean())
        return stats

    def _update(self, buffer: RolloutBuffer, progress_remaining: float) -> dict:
        raise NotImplementedError

    def _step_optimizer(self, loss) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        if self.config.max_grad_norm is not None:
            clip_grad_norm(self.policy.parameters(), self.config.max_grad_norm)
        self.optimizer.step()

    # -- evaluation and checkpoints ----------------------------------------------------------
    def evaluate(
        self,
        n_episodes: int = 10,
        deterministic: bool = True,
        seed: int | None = None,
        env=None,
        return_episode_rewards: bool = False,
    ):
        """``(mean, std)`` of the undiscounted return over ``n_episodes`` fresh episodes.

        ``env`` is an env id or a ``gymnasium.Env`` (default: a new env of the agent's id; an
        env passed in is left open). Episode ``i`` is reset with ``seed + i`` when ``seed`` is
        given. ``return_episode_rewards=True`` returns the per-episode ``(returns, lengths)``
        lists instead, like SB3's ``evaluate_policy``.
        """
        env = self.env_id if env is None else env
        if env is None:
            raise ValueError("evaluate() needs an env id; this agent was given an env without one")
        own = isinstance(env, str)
        env = gym.make(env) if own else env
        returns, lengths = [], []
        try:
            for episode in range(n_episodes):
                obs, _ = env.reset(seed=None if seed is None else seed + episode)
                total, length, done = 0.0, 0, False
                while not done:
                    action = self._env_actions(self.predict(obs, deterministic))
                    obs, reward, terminated, truncated, _ = env.step(action)
                    total, length = total + float(reward), length + 1
                    done = terminated or truncated
                returns.append(total)
                lengths.append(length)
        finally:
            if own:
                env.close()
        if return_episode_rewards:
            return returns, lengths
        return float(np.mean(returns)), float(np.std(returns))

    def save(self, path) -> None:
        """Write everything needed to evaluate or resume training to one file (ember.save).

        That is the policy weights, the optimizer's state, the normalisation statistics, the
        hyperparameters, the step count and the random generators' states. The envs' own
        state is not saved (Gymnasium has no API for it): :meth:`load` starts fresh episodes.
        """
        rng = {"agent": self.rng.bit_generator.state, "ember": ember.default_generator.get_state()}
        ember.save(
            {
                "algo": self.algo,
                "env_id": self.env_id,
                "seed": self.seed,
                "num_timesteps": int(self.num_timesteps),
                "hyperparameters": json.loads(json.dumps(dataclasses.asdict(self.config))),
                "policy": self.policy.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "normalizer": self.normalizer.state_dict(),
                "rng": json.dumps(rng),  # PCG64 states hold 128-bit integers: JSON keeps them
            },
            path,
        )

    @classmethod
    def load(cls, path, env=None):
        """An agent rebuilt from :meth:`save`'s file, on ``env`` or on the saved env id.

        ``learn`` then continues the saved run: same optimizer state, normalisation and random
        streams. The envs restart from episodes reset with the saved seed, and for a seeded
        agent ember's global generator is set to its saved state (the constructor seeds it).
        """
        state = ember.load(path)
        if cls.algo != "base" and state["algo"] != cls.algo:
            raise ValueError(f"{path} holds a {state['algo']} agent, not {cls.algo}")
        env = env if env is not None else state["env_id"]
        agent = cls(env, seed=state["seed"], **state["hyperparameters"])
        agent.policy.load_state_dict(state["policy"])
        agent.normalizer.load_state_dict(state["normalizer"])
        agent.num_timesteps = state["num_timesteps"]
        if "optimizer" in state:  # files from before the optimizer was saved lack these two
            agent.optimizer.load_state_dict(state["optimizer"])
        if "rng" in state:
            rng = json.loads(state["rng"])
            agent.rng.bit_generator.state = rng["agent"]
            if state["seed"] is not None:
                ember.default_generator.set_state(rng["ember"])
        return agent

    def close(self) -> None:
        """Close the training envs."""
        self.envs.close()
