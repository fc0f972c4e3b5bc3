"""Callbacks that watch and steer training: evaluation, checkpoints, early stopping (SB3's).

``agent.learn(total_steps, callback=...)`` takes one callback or a list of them. A callback
holds the agent (``self.agent``; ``self.model`` is SB3's name for it) and its counters, and
is called at three points:

- ``on_training_start(agent, total_steps)``: once, before the first rollout;
- ``on_step()``: after every rollout and the update that follows it; returning ``False``
  stops training there. (Stable-Baselines3 calls ``on_step`` after every env step; ember-rl's
  loop runs whole rollouts, so it calls it once per update);
- ``on_training_end()``: once, when ``learn`` finishes.

Frequencies (``eval_freq``, ``save_freq``) count env steps over all envs (SB3 counts calls,
that is vector steps). An event fires at the first update at or after each multiple of the
frequency; the multiples count from the agent's first step, so a resumed run keeps the
schedule.
"""

from __future__ import annotations

import csv
import math
import os

import gymnasium as gym
import numpy as np

__all__ = [
    "BaseCallback",
    "CallbackList",
    "CheckpointCallback",
    "EvalCallback",
    "StopTrainingOnRewardThreshold",
    "as_callback",
]

EVALUATION_COLUMNS = ["step", "mean_reward", "std_reward", "mean_ep_length"]


class BaseCallback:
    """Base class: override ``_on_training_start``, ``_on_step`` and ``_on_training_end``.

    Attributes: ``agent``, ``n_calls`` (``on_step`` calls so far), ``num_timesteps`` (the
    agent's env steps at the latest call), ``total_steps`` (what ``learn`` was asked for) and
    ``parent`` (the callback that calls this one, e.g. an :class:`EvalCallback`).

    >>> from ember_rl import PPO
    >>> class StopAfter(BaseCallback):
    ...     def _on_step(self):
    ...         return self.n_calls < 2
    >>> agent = PPO("CartPole-v1", seed=0, n_steps=16, batch_size=16, n_epochs=1)
    >>> agent.learn(1000, progress=False, callback=StopAfter()).num_timesteps
    32
    """

    def __init__(self, verbose: int = 0):
        self.verbose = verbose
        self.agent = None
        self.parent = None
        self.n_calls = 0
        self.num_timesteps = 0
        self.total_steps = 0
        self._previous_timesteps = 0

    @property
    def model(self):
        """The agent, under Stable-Baselines3's name."""
        return self.agent

    @property
    def stats(self) -> dict:
        """The latest update's statistics (``agent.last_stats``: losses, KL, ...)."""
        return self.agent.last_stats

    def on_training_start(self, agent, total_steps: int) -> None:
        """Attach to ``agent`` before its first rollout of a ``learn(total_steps)`` call."""
        self.agent, self.total_steps = agent, total_steps
        self.num_timesteps = self._previous_timesteps = agent.num_timesteps
        self._on_training_start()

    def on_step(self) -> bool:
        """Called after each rollout and update; ``False`` stops training."""
        self.n_calls += 1
        self._previous_timesteps, self.num_timesteps = self.num_timesteps, self.agent.num_timesteps
        return self._on_step() is not False

    def on_training_end(self) -> None:
        """Called once when ``learn`` finishes."""
        self._on_training_end()

    def _due(self, freq: int) -> bool:
        """Whether a multiple of ``freq`` env steps was reached since the previous call."""
        return freq > 0 and self.num_timesteps // freq > self._previous_timesteps // freq

    def _on_training_start(self) -> None:
        pass

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        pass


class CallbackList(BaseCallback):
    """Several callbacks called in order; training stops if any of them returns ``False``
    (all of them are still called for that update)."""

    def __init__(self, callbacks):
        super().__init__()
        self.callbacks = list(callbacks)

    def _on_training_start(self) -> None:
        for callback in self.callbacks:
            callback.on_training_start(self.agent, self.total_steps)

    def _on_step(self) -> bool:
        keep_going = True
        for callback in self.callbacks:
            keep_going = callback.on_step() and keep_going
        return keep_going

    def _on_training_end(self) -> None:
        for callback in self.callbacks:
            callback.on_training_end()


def as_callback(callback) -> BaseCallback | None:
    """``None``, a callback, or a list of callbacks (made a :class:`CallbackList`)."""
    if callback is None or isinstance(callback, BaseCallback):
        return callback
    if isinstance(callback, (list, tuple)):
        return CallbackList([as_callback(c) for c in callback])
    raise TypeError(f"callback must be a BaseCallback or a list of them, got {type(callback)}")


class CheckpointCallback(BaseCallback):
    """Save the agent every ``save_freq`` env steps as
    ``save_path/{name_prefix}_{steps}_steps.safetensors`` (loadable with ``Agent.load``)."""

    def __init__(self, save_freq: int, save_path, name_prefix: str = "rl_model", verbose=0):
        super().__init__(verbose)
        if save_freq <= 0:
            raise ValueError(f"save_freq must be positive, got {save_freq}")
        self.save_freq, self.save_path, self.name_prefix = save_freq, save_path, name_prefix

    def _on_training_start(self) -> None:
        os.makedirs(self.save_path, exist_ok=True)

    def _on_step(self) -> bool:
        if self._due(self.save_freq):
            name = f"{self.name_prefix}_{self.num_timesteps}_steps.safetensors"
            path = os.path.join(self.save_path, name)
            self.agent.save(path)
            if self.verbose:
                print(f"saved checkpoint {path}")
        return True


class EvalCallback(BaseCallback):
    """Evaluate the agent every ``eval_freq`` env steps on a separate env; keep the best one.

    ``eval_env`` is an env id or a ``gymnasium.Env`` (an id is made at training start and
    closed at its end). Each evaluation runs ``n_eval_episodes`` episodes (episode ``i``
    reset with ``seed + i`` when ``seed`` is given, so every evaluation sees the same starts)
    with frozen normalisation statistics. ``log_path`` (a directory) gets
    ``evaluations.csv`` (``step,mean_reward,std_reward,mean_ep_length``, one row per
    evaluation); ``best_model_save_path`` (a directory) gets ``best_model.safetensors``
    whenever the mean return is a new best, and then ``callback_on_new_best`` (e.g.
    :class:`StopTrainingOnRewardThreshold`) is called. ``best_mean_reward`` and
    ``last_mean_reward`` hold the results so far.
    """

    def __init__(
        self,
        eval_env,
        eval_freq: int = 10_000,
        n_eval_episodes: int = 5,
        deterministic: bool = True,
        best_model_save_path=None,
        log_path=None,
        callback_on_new_best: BaseCallback | None = None,
        seed: int | None = None,
        verbose: int = 0,
    ):
        super().__init__(verbose)
        if eval_freq <= 0:
            raise ValueError(f"eval_freq must be positive, got {eval_freq}")
        if not isinstance(eval_env, (str, gym.Env)):
            raise TypeError(f"eval_env must be an env id or a gymnasium.Env, got {type(eval_env)}")
        self.eval_env, self.eval_freq, self.n_eval_episodes = eval_env, eval_freq, n_eval_episodes
        self.deterministic, self.seed = deterministic, seed
        self.best_model_save_path, self.log_path = best_model_save_path, log_path
        self.callback_on_new_best = callback_on_new_best
        if callback_on_new_best is not None:
            callback_on_new_best.parent = self
        self.best_mean_reward = -math.inf
        self.last_mean_reward = -math.inf
        self.evaluations: list[tuple[int, float, float, float]] = []
        self._env = None

    def _on_training_start(self) -> None:
        own = isinstance(self.eval_env, str)
        self._env = gym.make(self.eval_env) if own else self.eval_env
        for path in (self.best_model_save_path, self.log_path):
            if path is not None:
                os.makedirs(path, exist_ok=True)
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.on_training_start(self.agent, self.total_steps)

    def _on_step(self) -> bool:
        if not self._due(self.eval_freq):
            return True
        returns, lengths = self.agent.evaluate(
            self.n_eval_episodes,
            deterministic=self.deterministic,
            seed=self.seed,
            env=self._env,
            return_episode_rewards=True,
        )
        mean, std = float(np.mean(returns)), float(np.std(returns))
        row = (self.num_timesteps, mean, std, float(np.mean(lengths)))
        self.evaluations.append(row)
        self.last_mean_reward = mean
        if self.log_path is not None:
            self._append_row(row)
        if self.verbose:
            print(f"eval at {self.num_timesteps} steps: return {mean:.2f} +/- {std:.2f}")
        if mean <= self.best_mean_reward:
            return True
        self.best_mean_reward = mean
        if self.best_model_save_path is not None:
            self.agent.save(os.path.join(self.best_model_save_path, "best_model.safetensors"))
        if self.callback_on_new_best is not None:
            return self.callback_on_new_best.on_step()
        return True

    def _append_row(self, row) -> None:
        path = os.path.join(self.log_path, "evaluations.csv")
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(EVALUATION_COLUMNS)
            writer.writerow(row)

    def _on_training_end(self) -> None:
        if isinstance(self.eval_env, str) and self._env is not None:
            self._env.close()
        self._env = None
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.on_training_end()


class StopTrainingOnRewardThreshold(BaseCallback):
    """Stop training once the mean return reaches ``reward_threshold``.

    As :class:`EvalCallback`'s ``callback_on_new_best`` (SB3's use) it compares the best
    evaluation mean; on its own in ``learn``'s callbacks it compares the mean training return
    of the last 100 episodes (sampled actions), once there is at least one.
    """

    def __init__(self, reward_threshold: float, verbose: int = 0):
        super().__init__(verbose)
        self.reward_threshold = reward_threshold

    def _on_step(self) -> bool:
        if self.parent is not None and hasattr(self.parent, "best_mean_reward"):
            reward = self.parent.best_mean_reward
        elif self.agent.episode_returns:
            reward = float(np.mean(self.agent.episode_returns))
        else:
            return True
        keep_going = reward < self.reward_threshold
        if not keep_going and self.verbose:
            print(f"stopping: mean return {reward:.2f} reached {self.reward_threshold}")
        return keep_going
