"""Agents end to end: truncation bootstrapping, seeding, save/load, smoke runs, a learning check."""

import csv

import gymnasium as gym
import numpy as np
import pytest

import ember
from ember_rl import A2C, PPO, REINFORCE
from ember_rl.buffers import RolloutBuffer
from ember_rl.callbacks import BaseCallback
from ember_rl.envs import make_vec_env

TINY = dict(n_steps=16, batch_size=32, n_epochs=2, n_envs=2)


def _params(agent):
    return [p.detach().numpy().copy() for p in agent.policy.parameters()]


def test_rollout_bootstraps_time_limits_from_the_true_final_observation():
    envs = make_vec_env(lambda: gym.make("CartPole-v1", max_episode_steps=5), n_envs=2)
    agent = PPO(envs, seed=0, n_steps=8)
    buf = RolloutBuffer(8, 2, (4,), (), np.int64)
    agent.collect_rollout(buf)
    assert buf.truncated[4].all() and not buf.truncated[[0, 1, 2, 3, 5, 6, 7]].any()
    assert not buf.terminated.any()  # CartPole does not fall in five steps from its start
    # replay env 0 independently: the 5th step's observation is the one to bootstrap from
    replay = gym.make("CartPole-v1", max_episode_steps=5)
    obs, _ = replay.reset(seed=0)
    np.testing.assert_allclose(buf.obs[0, 0], obs)
    for t in range(5):
        obs, *_ = replay.step(int(buf.actions[t, 0]))
    with ember.no_grad():
        expected = agent.policy.value(ember.as_tensor(obs[None].astype(np.float32))).numpy()[0]
        reset_value = agent.policy.value(ember.as_tensor(buf.obs[5, :1])).numpy()[0]
    np.testing.assert_allclose(buf.final_values[4, 0], expected, rtol=1e-5)
    assert not np.isclose(buf.final_values[4, 0], reset_value)
    assert not buf.final_values[[0, 1, 2, 3, 5, 6, 7]].any()
    agent.close()


class _Recorder(BaseCallback):
    """Keep a copy of the parameters and ``last_stats`` after every update."""

    def __init__(self):
        super().__init__()
        self.history = []

    def _on_step(self):
        self.history.append((_params(self.agent), dict(self.agent.last_stats)))
        return True


def test_same_seed_same_first_ten_updates_and_different_seed_differs():
    runs = []
    for seed in (7, 7, 8):
        agent = PPO("CartPole-v1", seed=seed, **TINY)
        initial, recorder = _params(agent), _Recorder()
        agent.learn(10 * 32, progress=False, callback=recorder)  # 32 env steps per update
        runs.append((initial, recorder.history, agent.episode_log))
        agent.close()
    (initial, same, episodes), (_, again, episodes_again), (other_initial, other, _) = runs
    assert len(same) == len(again) == len(other) == 10
    for (params, stats), (params_again, stats_again) in zip(same, again):
        for a, b in zip(params, params_again):
            np.testing.assert_array_equal(a, b)
        assert list(stats) == list(stats_again)
        np.testing.assert_array_equal(list(stats.values()), list(stats_again.values()))
    assert episodes == episodes_again
    assert any(not np.array_equal(a, b) for a, b in zip(initial, other_initial))
    for (params, stats), (params_other, stats_other) in zip(same, other):
        assert any(not np.array_equal(a, b) for a, b in zip(params, params_other))
        assert stats["loss"] != stats_other["loss"]
    assert any(not np.array_equal(a, b) for a, b in zip(initial, same[0][0]))  # it learned


def test_save_load_round_trip_restores_actions_and_normalisation(tmp_path):
    agent = PPO(
        "CartPole-v1",
        seed=1,
        norm_obs=True,
        norm_reward=True,
        learning_rate="lin_0.001",
        policy_kwargs=dict(net_arch=[32], activation_fn=ember.nn.ReLU),
        **TINY,
    )
    agent.learn(64, progress=False)
    path = tmp_path / "agent.safetensors"
    agent.save(path)
    loaded = PPO.load(path)
    obs = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))
    np.testing.assert_allclose(loaded.normalizer.obs_rms.mean, agent.normalizer.obs_rms.mean)
    np.testing.assert_allclose(loaded.normalizer.ret_rms.var, agent.normalizer.ret_rms.var)
    assert loaded.normalizer.obs_rms.count == agent.normalizer.obs_rms.count
    assert loaded.config == agent.config and loaded.config.policy_kwargs["activation_fn"] == "relu"
    assert loaded.num_timesteps == 64 and loaded.env_id == "CartPole-v1"
    with pytest.raises(ValueError):
        A2C.load(path)
    agent.close(), loaded.close()


@pytest.mark.parametrize("cls", [PPO, A2C, REINFORCE])
def test_smoke_each_agent_on_cartpole(cls, tmp_path):
    agent = cls("CartPole-v1", seed=0, n_envs=2, n_steps=50)
    log = tmp_path / "episodes.csv"
    agent.learn(300, progress=False, log_path=log)
    assert agent.num_timesteps == 300
    assert all(np.isfinite(v) for v in agent.last_stats.values())
    rows = list(csv.reader(open(log)))
    assert rows[0] == ["step", "episode_return", "episode_length"] and len(rows) > 1
    assert len(rows) - 1 == len(agent.episode_log)
    mean, std = agent.evaluate(n_episodes=2, seed=0)
    assert isinstance(mean, float) and mean >= 8 and std >= 0
    agent.close()


def test_smoke_ppo_on_pendulum_with_normalisation():
    agent = PPO(
        "Pendulum-v1",
        seed=0,
        n_steps=64,
        batch_size=64,
        n_epochs=2,
        n_envs=2,
        norm_obs=True,
        norm_reward=True,
        clip_range_vf=0.2,
    )
    agent.learn(256, progress=False)
    action = agent.predict(np.zeros(3, np.float32))
    assert action.shape == (1,) and -2.0 <= float(action[0]) <= 2.0
    assert np.isfinite(agent.evaluate(n_episodes=1, seed=0)[0])
    agent.close()


def test_ppo_learns_cartpole_with_rl_zoo_hyperparameters():
    agent = PPO(
        "CartPole-v1",
        seed=0,
        n_envs=8,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate="lin_0.001",
        clip_range="lin_0.2",
    )
    agent.learn(20_000, progress=False)
    mean, _ = agent.evaluate(n_episodes=5, seed=0)
    assert mean >= 150  # random play scores about 20
    agent.close()


def test_bad_arguments():
    with pytest.raises(TypeError):
        PPO("CartPole-v1", no_such_hyperparameter=1)
    with pytest.raises(ValueError):
        PPO(gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")]))  # NEXT_STEP autoreset


def test_linear_learning_rate_schedule_reaches_zero_at_the_end():
    agent = PPO("CartPole-v1", seed=0, learning_rate="lin_0.001", **TINY)
    seen = []
    original = agent._update

    def spy(buffer, progress_remaining):
        stats = original(buffer, progress_remaining)
        seen.append(agent.optimizer.param_groups[0]["lr"])
        return stats

    agent._update = spy
    agent.learn(128, progress=False)  # 4 rollouts of 32 steps: progress left 3/4, 1/2, 1/4, 0
    np.testing.assert_allclose(seen, [0.00075, 0.0005, 0.00025, 0.0])
    agent.close()


class Corridor(gym.Env):
    """Deterministic env: a fixed start, reward for action 1, truncated after 8 steps, so
    every episode of every env ends on the same step, whatever the RNG."""

    observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.position = 0, 0.0
        return self._obs(), {}

    def _obs(self):
        return np.array([self.t / 8, self.position], np.float32)

    def step(self, action):
        self.t += 1
        self.position += 0.5 if action == 1 else -0.25
        return self._obs(), float(action) - 0.1 * self.position, False, self.t == 8, {}


@pytest.mark.parametrize("cls", [PPO, A2C])
def test_learn_save_load_learn_equals_one_learn_call(cls, tmp_path):
    """Resuming from a file continues the run exactly: weights, optimizer state (Adam's or
    RMSprop's), normalisation statistics, minibatch shuffling and action sampling all carry
    over. The env must be at an episode boundary, since env state is not saved (Corridor's
    episodes all end with the rollouts)."""
    kwargs = dict(seed=3, n_steps=8, n_envs=2, norm_obs=True, norm_reward=True)
    if cls is PPO:
        kwargs.update(batch_size=8, n_epochs=2)
    make = lambda: make_vec_env(Corridor, n_envs=2)  # noqa: E731
    whole = cls(make(), **kwargs).learn(96, progress=False)
    first = cls(make(), **kwargs).learn(48, progress=False)
    first.save(tmp_path / "agent.safetensors")
    resumed = cls.load(tmp_path / "agent.safetensors", env=make())
    for key, value in first.optimizer.state_dict()["state"][0].items():
        np.testing.assert_array_equal(resumed.optimizer.state_dict()["state"][0][key], value)
    resumed.learn(48, progress=False)
    for a, b in zip(_params(whole), _params(resumed)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(whole.normalizer.obs_rms.var, resumed.normalizer.obs_rms.var)
    assert whole.episode_log[len(first.episode_log) :] == resumed.episode_log
    assert resumed.num_timesteps == 96 and whole.last_stats == resumed.last_stats
    for agent in (whole, first, resumed):
        agent.close()


def test_evaluation_during_training_does_not_change_the_run():
    from ember_rl.callbacks import EvalCallback

    plain = PPO("CartPole-v1", seed=2, **TINY).learn(96, progress=False)
    watched = PPO("CartPole-v1", seed=2, **TINY)
    watched.learn(96, progress=False, callback=EvalCallback("CartPole-v1", 32, 1))
    for a, b in zip(_params(plain), _params(watched)):
        np.testing.assert_array_equal(a, b)
    plain.close(), watched.close()
