"""Vector envs, seeding, final observations, and VecNormalize-style statistics."""

import numpy as np
import pytest

from ember_rl.envs import Normalizer, RunningMeanStd, final_observations, make_vec_env


def test_running_mean_std_matches_numpy_over_all_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (n, 3)) for n in (5, 17, 1, 40)]
    rms = RunningMeanStd(shape=(3,), epsilon=1e-12)  # a negligible prior
    for batch in batches:
        rms.update(batch)
    data = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean, data.mean(0), rtol=1e-9)
    np.testing.assert_allclose(rms.var, data.var(0), rtol=1e-9)
    assert rms.count == pytest.approx(len(data))


def test_reward_normalisation_divides_by_discounted_return_std():
    norm = Normalizer(obs_shape=(1,), norm_obs=False, norm_reward=True, gamma=0.5, epsilon=0.0)
    out = []
    for reward, done in [(1.0, False), (1.0, True), (4.0, False)]:
        out.append(
            float(norm.normalize_reward(np.array([reward]), np.array([done]), update=True)[0])
        )
    # discounted returns seen: 1, 1.5, then 4 (reset after done); stats include the 1e-4 prior
    returns = np.array([1.0, 1.5, 4.0])
    prior = 1e-4
    mean = returns.sum() / (3 + prior)
    var = (prior * (0 - mean) ** 2 + prior * 1.0 + ((returns - mean) ** 2).sum()) / (3 + prior)
    np.testing.assert_allclose(out[-1], 4.0 / np.sqrt(var), rtol=1e-4)


def test_observation_normalisation_clips_and_state_round_trips():
    norm = Normalizer(obs_shape=(2,), clip_obs=1.5)
    norm.normalize_obs(np.array([[0.0, 0.0], [2.0, 2.0]]), update=True)
    assert norm.normalize_obs(np.array([[100.0, -100.0]])).tolist() == [[1.5, -1.5]]
    other = Normalizer(obs_shape=(2,))
    other.load_state_dict(norm.state_dict())
    np.testing.assert_allclose(other.obs_rms.mean, norm.obs_rms.mean)
    assert other.clip_obs == 1.5


def test_same_seed_same_observations_and_episode_end_gives_final_obs():
    a, b = make_vec_env("CartPole-v1", n_envs=2), make_vec_env("CartPole-v1", n_envs=2)
    np.testing.assert_array_equal(a.reset(seed=3)[0], b.reset(seed=3)[0])
    for _ in range(200):
        obs, _, terminated, truncated, info = a.step(np.array([1, 1]))
        done = terminated | truncated
        if done.any():
            break
    final = final_observations(info, obs, done)
    for i in np.flatnonzero(done):
        np.testing.assert_array_equal(final[i], info["final_obs"][i])
        assert not np.array_equal(final[i], obs[i])  # obs already holds the next episode's start
    np.testing.assert_array_equal(final[~done], obs[~done])
    a.close(), b.close()


def test_async_vector_env_and_bad_option():
    envs = make_vec_env("CartPole-v1", n_envs=2, vectorization="async")
    try:
        assert envs.reset(seed=0)[0].shape == (2, 4)
    finally:
        envs.close()
    with pytest.raises(ValueError):
        make_vec_env("CartPole-v1", vectorization="threads")
