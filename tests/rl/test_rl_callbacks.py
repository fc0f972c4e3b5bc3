"""Callbacks in learn(): call order and stopping, evaluation CSV and best model, checkpoints,
reward thresholds; the per-update losses CSV."""

import csv
import math

import gymnasium as gym
import numpy as np
import pytest

from ember_rl import PPO, REINFORCE
from ember_rl.callbacks import (
    BaseCallback,
    CallbackList,
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnRewardThreshold,
    as_callback,
)

TINY = dict(n_steps=16, batch_size=32, n_epochs=1, n_envs=2)  # 32 env steps per update


class Recorder(BaseCallback):
    """Records what it sees; stops after ``stop_after`` calls if given."""

    def __init__(self, stop_after=None):
        super().__init__()
        self.stop_after, self.events = stop_after, []

    def _on_training_start(self):
        self.events.append(("start", self.num_timesteps, self.total_steps))

    def _on_step(self):
        self.events.append(("step", self.n_calls, self.num_timesteps, sorted(self.stats)))
        return self.stop_after is None or self.n_calls < self.stop_after

    def _on_training_end(self):
        self.events.append(("end", self.num_timesteps))


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_callback_sees_every_update_and_can_stop_training():
    agent = PPO("CartPole-v1", seed=0, **TINY)
    recorder = Recorder()
    agent.learn(96, progress=False, callback=recorder)
    assert recorder.model is agent and recorder.events[0] == ("start", 0, 96)
    assert [e[:3] for e in recorder.events[1:4]] == [
        ("step", 1, 32),
        ("step", 2, 64),
        ("step", 3, 96),
    ]
    assert "policy_gradient_loss" in recorder.events[1][3] and recorder.events[-1] == ("end", 96)
    stopper = Recorder(stop_after=2)
    agent.learn(1000, progress=False, callback=[stopper, Recorder()])  # a list works too
    assert agent.num_timesteps == 96 + 64 and stopper.events[-1] == ("end", 160)
    agent.close()


def test_callback_list_calls_every_callback_even_when_one_stops():
    first, second = Recorder(stop_after=1), Recorder()
    agent = PPO("CartPole-v1", seed=0, **TINY)
    agent.learn(1000, progress=False, callback=CallbackList([first, second]))
    assert agent.num_timesteps == 32
    assert [e[0] for e in second.events] == ["start", "step", "end"]
    assert as_callback(None) is None and as_callback(first) is first
    with pytest.raises(TypeError):
        as_callback(lambda *_: True)
    agent.close()


def test_eval_callback_writes_csv_and_saves_the_best_model(tmp_path):
    agent = PPO("CartPole-v1", seed=0, **TINY)
    callback = EvalCallback(
        "CartPole-v1",
        eval_freq=40,  # first update at or after 40, 80, 120: steps 64, 96, 128
        n_eval_episodes=2,
        best_model_save_path=tmp_path / "best",
        log_path=tmp_path / "logs",
        seed=5,
    )
    agent.learn(128, progress=False, callback=callback)
    rows = _rows(tmp_path / "logs" / "evaluations.csv")
    assert rows[0] == ["step", "mean_reward", "std_reward", "mean_ep_length"]
    assert [int(r[0]) for r in rows[1:]] == [64, 96, 128]
    means = [float(r[1]) for r in rows[1:]]
    assert callback.best_mean_reward == max(means) and callback.last_mean_reward == means[-1]
    best = PPO.load(tmp_path / "best" / "best_model.safetensors")
    assert best.num_timesteps == [64, 96, 128][int(np.argmax(means))]
    # the same seeds give the same evaluation of the saved best agent
    assert best.evaluate(2, seed=5)[0] == pytest.approx(max(means))
    best.close(), agent.close()


def test_eval_callback_with_reward_threshold_stops_training(tmp_path):
    env = gym.make("CartPole-v1")  # an env object is used as given and left open
    stop = StopTrainingOnRewardThreshold(reward_threshold=-math.inf)  # any return stops
    callback = EvalCallback(env, eval_freq=32, n_eval_episodes=1, callback_on_new_best=stop)
    agent = PPO("CartPole-v1", seed=0, **TINY)
    agent.learn(320, progress=False, callback=callback)
    assert agent.num_timesteps == 32 and stop.parent is callback and len(callback.evaluations) == 1
    env.reset(seed=0)  # still open
    env.close(), agent.close()


def test_reward_threshold_alone_uses_the_training_returns():
    agent = REINFORCE("CartPole-v1", seed=0, n_steps=50)
    agent.learn(1000, progress=False, callback=StopTrainingOnRewardThreshold(0.0))
    assert agent.num_timesteps == 50 and agent.episode_returns  # stopped after the first update
    agent.close()


def test_checkpoint_callback_saves_loadable_agents(tmp_path):
    agent = PPO("CartPole-v1", seed=0, **TINY)
    agent.learn(128, progress=False, callback=CheckpointCallback(64, tmp_path, "ppo"))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ppo_128_steps.safetensors", "ppo_64_steps.safetensors"]
    assert PPO.load(tmp_path / "ppo_64_steps.safetensors").num_timesteps == 64
    with pytest.raises(ValueError):
        CheckpointCallback(0, tmp_path)
    agent.close()


def test_losses_csv_has_a_row_per_update_with_sb3_names(tmp_path):
    path = tmp_path / "losses.csv"
    agent = PPO("Pendulum-v1", seed=0, **TINY)
    agent.learn(64, progress=False, loss_log_path=path)
    agent.learn(32, progress=False, loss_log_path=path)  # appends, one header
    rows = _rows(path)
    assert rows[0] == [
        "step",
        "policy_gradient_loss",
        "value_loss",
        "entropy_loss",
        "approx_kl",
        "loss",
        "clip_fraction",
        "clip_range",
        "explained_variance",
        "learning_rate",
        "std",
    ]
    assert [int(r[0]) for r in rows[1:]] == [32, 64, 96]
    values = np.array(rows[1:], dtype=float)
    assert np.isfinite(values).all() and (values[:, 6] >= 0).all() and (values[:, 9] == 3e-4).all()
    agent.close()
