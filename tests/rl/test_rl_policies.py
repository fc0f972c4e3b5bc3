"""Actor-critic networks: shapes, distributions checked against NumPy formulas, initialisation."""

import gymnasium as gym
import numpy as np
import pytest

import ember
from ember_rl.policies import ActorCritic

OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)


def _obs(n=5, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 4)).astype(np.float32)


def test_discrete_log_prob_and_entropy_match_softmax():
    ember.manual_seed(0)
    policy = ActorCritic(OBS, gym.spaces.Discrete(3))
    obs = ember.as_tensor(_obs())
    dist, values = policy(obs)
    assert values.shape == (5,)
    logits = policy.action_head(policy.pi_net(obs)).detach().numpy().astype(np.float64)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    actions = np.array([0, 1, 2, 1, 0])
    _, log_prob, entropy = policy.evaluate_actions(obs, ember.as_tensor(actions))
    np.testing.assert_allclose(log_prob.detach().numpy(), np.log(p[np.arange(5), actions]), 1e-5)
    np.testing.assert_allclose(entropy.detach().numpy(), -(p * np.log(p)).sum(-1), 1e-5)
    greedy = policy.predict(_obs(), deterministic=True)
    np.testing.assert_array_equal(greedy, p.argmax(-1))


def test_box_is_diagonal_gaussian_with_state_independent_log_std():
    ember.manual_seed(0)
    space = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
    policy = ActorCritic(OBS, space, log_std_init=-0.5)
    assert tuple(policy.log_std.shape) == (2,)
    assert any(p is policy.log_std for p in policy.parameters())
    obs = ember.as_tensor(_obs())
    mean = policy.action_head(policy.pi_net(obs)).detach().numpy().astype(np.float64)
    actions = np.random.default_rng(1).standard_normal((5, 2))
    _, log_prob, entropy = policy.evaluate_actions(obs, ember.as_tensor(actions.astype(np.float32)))
    std = np.exp(-0.5)
    expected = -((actions - mean) ** 2) / (2 * std**2) - np.log(std) - 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(log_prob.detach().numpy(), expected.sum(-1), rtol=1e-5)
    np.testing.assert_allclose(
        entropy.detach().numpy(), 2 * (0.5 + 0.5 * np.log(2 * np.pi) - 0.5), 1e-5
    )
    np.testing.assert_allclose(policy.predict(_obs()), np.clip(mean, -2, 2), rtol=1e-5)
    sampled, values, log_probs = policy.act(_obs())
    assert sampled.shape == (5, 2) and values.shape == (5,) and log_probs.shape == (5,)


def test_predict_single_observation_returns_single_action():
    policy = ActorCritic(OBS, gym.spaces.Box(-1.0, 1.0, (3,), np.float32))
    assert policy.predict(np.zeros(4, np.float32)).shape == (3,)
    assert policy.predict(np.zeros((2, 4), np.float32)).shape == (2, 3)


def test_orthogonal_init_gains_and_zero_biases():
    ember.manual_seed(0)
    policy = ActorCritic(OBS, gym.spaces.Discrete(2), net_arch=[8, 8])
    hidden = policy.pi_net[2].weight.detach().numpy()  # square 8x8: W W^T = 2 I
    np.testing.assert_allclose(hidden @ hidden.T, 2 * np.eye(8), atol=1e-5)
    head = policy.action_head.weight.detach().numpy()  # 2x8 rows orthonormal times 0.01
    np.testing.assert_allclose(head @ head.T, 1e-4 * np.eye(2), atol=1e-8)
    value = policy.value_head.weight.detach().numpy()
    np.testing.assert_allclose((value**2).sum(), 1.0, rtol=1e-5)
    for module in (policy.pi_net[0], policy.action_head, policy.value_head):
        assert not module.bias.detach().numpy().any()


def test_net_arch_dict_shared_trunk_and_activation():
    policy = ActorCritic(
        OBS, gym.spaces.Discrete(2), net_arch=dict(pi=[16], vf=[32]), activation_fn=ember.nn.ReLU
    )
    assert policy.pi_net[0].out_features == 16 and policy.vf_net[0].out_features == 32
    assert isinstance(policy.pi_net[1], ember.nn.ReLU)
    shared = ActorCritic(OBS, gym.spaces.Discrete(2), share_features_extractor=True)
    assert shared.vf_net is None and shared.value(ember.zeros(3, 4)).shape == (3,)


def test_unsupported_spaces_raise():
    with pytest.raises(TypeError):
        ActorCritic(OBS, gym.spaces.MultiBinary(3))
    with pytest.raises(TypeError):
        ActorCritic(gym.spaces.Discrete(3), gym.spaces.Discrete(2))
    with pytest.raises(ValueError):
        ActorCritic(OBS, gym.spaces.Discrete(2), activation_fn="swishy")
