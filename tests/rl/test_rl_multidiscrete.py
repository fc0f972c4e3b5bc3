"""MultiDiscrete actions: the distribution against NumPy, the policy, each agent, and learning."""

import gymnasium as gym
import numpy as np
import pytest

import ember
from ember_rl import A2C, PPO, REINFORCE
from ember_rl.envs import make_vec_env
from ember_rl.policies import ActorCritic, MultiCategorical

NVEC = (3, 4)
EPISODE_LENGTH = 8


class MatchPair(gym.Env):
    """Each step shows a random one-hot pair ``(a, b)``, ``a`` in 0..2 and ``b`` in 0..3, and
    pays 1 for ``action[0] == (a + 1) % 3`` plus 1 for ``action[1] == 3 - b``; episodes end
    after 8 steps. The best return is 16; a uniform random policy expects
    ``8 * (1/3 + 1/4)``, about 4.7. Deterministic given the reset seed."""

    observation_space = gym.spaces.Box(0.0, 1.0, (sum(NVEC),), np.float32)
    action_space = gym.spaces.MultiDiscrete(NVEC)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._draw(), {}

    def _draw(self):
        self.a = int(self.np_random.integers(NVEC[0]))
        self.b = int(self.np_random.integers(NVEC[1]))
        obs = np.zeros(sum(NVEC), np.float32)
        obs[self.a] = obs[NVEC[0] + self.b] = 1.0
        return obs

    def step(self, action):
        reward = float(action[0] == (self.a + 1) % 3) + float(action[1] == 3 - self.b)
        self.t += 1
        return self._draw(), reward, self.t == EPISODE_LENGTH, False, {}


def _reference(logits, nvec, actions):
    """Float64 NumPy log-probabilities and entropies of independent softmax components."""
    log_prob, entropy, start = np.zeros(len(logits)), np.zeros(len(logits)), 0
    for i, n in enumerate(nvec):
        part = logits[:, start : start + n].astype(np.float64)
        start += n
        log_p = part - part.max(-1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
        log_prob += log_p[np.arange(len(logits)), actions[:, i]]
        entropy -= (np.exp(log_p) * log_p).sum(-1)
    return log_prob, entropy


def test_multicategorical_log_prob_and_entropy_match_numpy():
    rng = np.random.default_rng(0)
    nvec = [2, 5, 3]
    logits = (3 * rng.standard_normal((64, sum(nvec)))).astype(np.float32)
    actions = np.stack([rng.integers(n, size=64) for n in nvec], -1)
    dist = MultiCategorical(ember.as_tensor(logits), nvec)
    expected_log_prob, expected_entropy = _reference(logits, nvec, actions)
    log_prob = dist.log_prob(ember.as_tensor(actions)).numpy()
    np.testing.assert_allclose(log_prob, expected_log_prob, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dist.entropy().numpy(), expected_entropy, rtol=1e-5, atol=1e-5)
    assert dist.batch_shape == (64,) and dist.event_shape == (3,)
    starts = np.cumsum([0, *nvec[:-1]])
    greedy = np.stack([logits[:, s : s + n].argmax(-1) for s, n in zip(starts, nvec)], -1)
    np.testing.assert_array_equal(dist.mode.numpy(), greedy)
    samples = dist.sample().numpy()
    assert samples.shape == (64, 3) and samples.dtype == np.int64
    assert ((samples >= 0) & (samples < np.array(nvec))).all()
    with pytest.raises(ValueError):
        MultiCategorical(ember.as_tensor(logits), [2, 5])  # 7 logits expected, 10 given


def test_multicategorical_samples_follow_the_component_probabilities():
    ember.manual_seed(0)
    logits = ember.as_tensor(np.log(np.array([[0.2, 0.8, 0.5, 0.3, 0.2]], np.float32)))
    samples = MultiCategorical(logits, [2, 3]).sample((20_000,)).numpy()[:, 0]  # (20000, 2)
    np.testing.assert_allclose(np.bincount(samples[:, 0]) / 20_000, [0.2, 0.8], atol=0.015)
    np.testing.assert_allclose(np.bincount(samples[:, 1]) / 20_000, [0.5, 0.3, 0.2], atol=0.015)


def test_policy_for_multidiscrete_with_start_offsets():
    ember.manual_seed(0)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    space = gym.spaces.MultiDiscrete([3, 4], start=[1, -2])
    policy = ActorCritic(obs_space, space)
    assert policy.action_head.out_features == 7
    obs = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)
    actions, values, log_probs = policy.act(obs)
    assert actions.shape == (50, 2) and actions.dtype == np.int64 and values.shape == (50,)
    assert all(space.contains(a) for a in actions)
    logits = policy.action_head(policy.pi_net(ember.as_tensor(obs))).detach().numpy()
    expected, entropy = _reference(logits, [3, 4], actions - np.array([1, -2]))
    np.testing.assert_allclose(log_probs, expected, rtol=1e-5, atol=1e-6)
    _, log_prob, ent = policy.evaluate_actions(ember.as_tensor(obs), ember.as_tensor(actions))
    np.testing.assert_allclose(log_prob.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ent.detach().numpy(), entropy, rtol=1e-5, atol=1e-6)
    greedy = np.stack([logits[:, :3].argmax(-1) + 1, logits[:, 3:].argmax(-1) - 2], -1)
    np.testing.assert_array_equal(policy.predict(obs), greedy)
    assert policy.predict(obs[0]).shape == (2,)


@pytest.mark.parametrize("cls", [PPO, A2C, REINFORCE])
def test_smoke_each_agent_on_multidiscrete(cls, tmp_path):
    kwargs = dict(seed=0, n_steps=16)
    if cls is PPO:
        kwargs.update(batch_size=32, n_epochs=2)
    agent = cls(make_vec_env(MatchPair, n_envs=2), **kwargs)
    seen = []
    original = agent._update

    def spy(buffer, progress_remaining):
        seen.append((buffer.actions.dtype, buffer.actions.shape, buffer.actions.copy()))
        return original(buffer, progress_remaining)

    agent._update = spy
    agent.learn(64, progress=False)
    assert agent.num_timesteps == 64 and len(seen) == 2
    dtype, shape, actions = seen[0]
    assert dtype == np.int64 and shape == (16, 2, 2)
    assert ((actions >= 0) & (actions < np.array(NVEC))).all()
    assert all(np.isfinite(v) for v in agent.last_stats.values())
    assert len(agent.episode_log) == 64 // EPISODE_LENGTH
    obs = np.stack([MatchPair().reset(seed=s)[0] for s in range(4)])
    action = agent.predict(obs[0])
    assert action.shape == (2,) and MatchPair.action_space.contains(action)
    mean, std = agent.evaluate(n_episodes=2, seed=0, env=MatchPair())
    assert 0.0 <= mean <= 16.0 and std >= 0.0
    agent.save(tmp_path / "agent.safetensors")
    loaded = cls.load(tmp_path / "agent.safetensors", env=make_vec_env(MatchPair, n_envs=2))
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))
    agent.close(), loaded.close()


def _random_policy_mean(n_episodes: int) -> float:
    env = MatchPair()
    env.action_space.seed(0)
    returns = []
    for episode in range(n_episodes):
        env.reset(seed=episode)
        total, done = 0.0, False
        while not done:
            _, reward, done, _, _ = env.step(env.action_space.sample())
            total += reward
        returns.append(total)
    return float(np.mean(returns))


def test_ppo_learns_the_multidiscrete_matching_task():
    random_mean = _random_policy_mean(200)
    assert 3.5 < random_mean < 6.0  # 8 * (1/3 + 1/4) = 4.67 expected
    agent = PPO(
        make_vec_env(MatchPair, n_envs=4),
        seed=0,
        n_steps=32,
        batch_size=64,
        n_epochs=10,
        learning_rate=1e-3,
    )
    agent.learn(4096, progress=False)
    mean, _ = agent.evaluate(n_episodes=20, seed=0, env=MatchPair())
    # at least 80% of the way from random play to the best return, 16
    assert mean >= random_mean + 0.8 * (2 * EPISODE_LENGTH - random_mean)
    agent.close()
