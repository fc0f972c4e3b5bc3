"""GAE(lambda) and returns against hand-computed values, and the rollout buffer's bookkeeping."""

import numpy as np
import pytest

from ember_rl.buffers import RolloutBuffer, compute_gae

# one env, three steps, gamma 0.9, lambda 0.5; every expected number below was worked by hand:
# delta_t = r_t + gamma * next_value - V(s_t); A_t = delta_t + gamma * lambda * A_{t+1}, cut at done
REWARDS = [[1.0], [2.0], [3.0]]
VALUES = [[0.5], [1.0], [1.5]]
NO = [[False], [False], [False]]
GAMMA, LAM = 0.9, 0.5


def _gae(terminated=NO, truncated=NO, final=None, last=(2.0,)):
    return compute_gae(
        REWARDS, VALUES, terminated, truncated, np.array(last), final, gamma=GAMMA, gae_lambda=LAM
    )


def test_no_episode_end_bootstraps_from_last_value():
    adv, ret = _gae()
    # A2 = 3 + .9*2 - 1.5 = 3.3; A1 = (2 + .9*1.5 - 1) + .45*3.3 = 3.835; A0 = 1.4 + .45*3.835
    np.testing.assert_allclose(adv.ravel(), [3.12575, 3.835, 3.3])
    np.testing.assert_allclose(ret.ravel(), [3.62575, 4.835, 4.8])


def test_terminated_mid_rollout_does_not_bootstrap():
    adv, ret = _gae(terminated=[[False], [True], [False]])
    # A1 = 2 - 1 = 1 (value after a terminal state is 0); A0 = 1.4 + .45 * 1 = 1.85
    np.testing.assert_allclose(adv.ravel(), [1.85, 1.0, 3.3])
    np.testing.assert_allclose(ret.ravel(), [2.35, 2.0, 4.8])


def test_truncated_mid_rollout_bootstraps_from_final_observation():
    final = [[0.0], [4.0], [0.0]]
    adv, ret = _gae(truncated=[[False], [True], [False]], final=final)
    # A1 = 2 + .9*4 - 1 = 4.6, and V(s_2) (a reset observation) is not used; A0 = 1.4 + .45*4.6
    np.testing.assert_allclose(adv.ravel(), [3.47, 4.6, 3.3])
    np.testing.assert_allclose(ret.ravel(), [3.97, 5.6, 4.8])


def test_truncated_on_last_step_uses_final_value_not_last_value():
    adv, _ = _gae(truncated=[[False], [False], [True]], final=[[0.0], [0.0], [10.0]])
    # A2 = 3 + 9 - 1.5 = 10.5; A1 = 2.35 + .45*10.5 = 7.075; A0 = 1.4 + .45*7.075
    np.testing.assert_allclose(adv.ravel(), [4.58375, 7.075, 10.5])


def test_terminated_on_last_step_ignores_last_value():
    adv, _ = _gae(terminated=[[False], [False], [True]], last=(100.0,))
    # A2 = 3 - 1.5 = 1.5; A1 = 2.35 + .45*1.5 = 3.025; A0 = 1.4 + .45*3.025
    np.testing.assert_allclose(adv.ravel(), [2.76125, 3.025, 1.5])


def test_terminated_wins_when_both_flags_are_set():
    both = [[False], [True], [False]]
    adv, _ = _gae(terminated=both, truncated=both, final=[[0.0], [99.0], [0.0]])
    np.testing.assert_allclose(adv.ravel(), [1.85, 1.0, 3.3])


def test_lambda_one_gamma_one_gives_reward_to_go_per_env():
    rewards = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    terminated = np.array([[False, True], [False, False], [False, False]])
    adv, ret = compute_gae(
        rewards,
        np.zeros((3, 2)),
        terminated,
        np.zeros((3, 2), bool),
        np.array([0.0, 7.0]),
        gamma=1.0,
        gae_lambda=1.0,
    )
    # env 0: reward-to-go 6, 5, 3; env 1: episode ends after 10, then 20 + 30 + V_last 7
    np.testing.assert_allclose(ret, [[6.0, 10.0], [5.0, 57.0], [3.0, 37.0]])
    np.testing.assert_allclose(adv, ret)


def test_buffer_minibatches_cover_every_transition_once():
    buf = RolloutBuffer(n_steps=4, n_envs=3, obs_shape=(2,), action_shape=())
    for t in range(4):
        obs = np.full((3, 2), t, np.float32) + np.arange(3)[:, None] * 10
        buf.add(
            obs,
            np.arange(3),
            np.ones(3),
            np.zeros(3, bool),
            np.zeros(3, bool),
            np.zeros(3),
            np.zeros(3),
        )
    with pytest.raises(RuntimeError):
        buf.add(
            obs,
            np.arange(3),
            np.ones(3),
            np.zeros(3, bool),
            np.zeros(3, bool),
            np.zeros(3),
            np.zeros(3),
        )
    buf.compute_returns_and_advantage(np.zeros(3), gamma=1.0, gae_lambda=1.0)
    np.testing.assert_allclose(buf.returns[:, 0], [4.0, 3.0, 2.0, 1.0])
    batches = list(buf.get(batch_size=5, rng=np.random.default_rng(0)))
    assert [len(b["obs"]) for b in batches] == [5, 5, 2]
    seen = np.concatenate([b["obs"].numpy()[:, 0] for b in batches])
    np.testing.assert_array_equal(np.sort(seen), np.sort(buf.obs[..., 0].ravel()))
    assert batches[0]["actions"].numpy().dtype == np.int64


def test_buffer_refuses_gae_before_full():
    buf = RolloutBuffer(n_steps=2, n_envs=1, obs_shape=(1,), action_shape=())
    with pytest.raises(RuntimeError):
        buf.compute_returns_and_advantage(np.zeros(1), 0.99, 0.95)
