"""PPO runs on LunarLander (Box2D, the optional extra ``ember-rl[box2d]``), discrete and
continuous; skipped when Box2D is missing. Learning itself is checked by bench/bench_rl.py."""

import numpy as np
import pytest

from ember_rl import PPO

pytest.importorskip("Box2D", reason="needs pip install 'ember-rl[box2d]'")

# RL Zoo's LunarLander hyperparameters (bench/bench_rl.py), with rollouts shrunk for a test
TINY_ZOO = dict(n_envs=2, n_steps=64, batch_size=64, n_epochs=1, gae_lambda=0.98, gamma=0.999)


@pytest.mark.parametrize(
    "env_id, action_shape", [("LunarLander-v3", ()), ("LunarLanderContinuous-v3", (2,))]
)
def test_ppo_runs_on_lunarlander(env_id, action_shape, tmp_path):
    agent = PPO(env_id, seed=0, ent_coef=0.01, norm_obs=True, **TINY_ZOO)
    agent.learn(256, progress=False)
    assert agent.num_timesteps == 256
    assert all(np.isfinite(v) for v in agent.last_stats.values())
    obs = np.zeros(8, np.float32)
    action = agent.predict(obs)
    assert np.shape(action) == action_shape and agent.action_space.contains(action)
    agent.save(tmp_path / "agent.safetensors")
    again = PPO.load(tmp_path / "agent.safetensors")
    np.testing.assert_array_equal(again.predict(obs), action)
    agent.close(), again.close()
