"""Train ember_rl's PPO on CartPole-v1 for 100k steps and evaluate it on 20 episodes; exits
non-zero when the evaluation mean is below --min-return. `nox -s demo` runs it.

    python examples/train_rl.py [--total-steps 100000] [--seed 0] [--min-return 475]

The hyperparameters are RL Baselines3 Zoo's tuned ones for CartPole-v1, the same as
bench/bench_rl.py's ZOO_CARTPOLE with 8 envs; CartPole's best return is 500.
"""

from __future__ import annotations

import argparse
import sys
import time

import ember
from ember_rl import PPO

# RL Baselines3 Zoo, hyperparams/ppo.yml, CartPole-v1 (bench/bench_rl.py's ZOO_CARTPOLE)
ZOO_CARTPOLE = {
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": "lin_0.001",
    "clip_range": "lin_0.2",
}
N_ENVS = 8
EVAL_EPISODES = 20
EVAL_SEED = 1000  # evaluation episode i is reset with seed 1000 + i, as in bench/bench_rl.py


def main(argv=None) -> float:
    """Train, evaluate with deterministic actions, and return the evaluation mean."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--total-steps", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-return", type=float, default=475.0)
    args = ap.parse_args(argv)

    # the networks are tiny: more BLAS threads only add overhead, and stall on a busy machine
    ember.set_num_threads(1)
    agent = PPO("CartPole-v1", seed=args.seed, n_envs=N_ENVS, **ZOO_CARTPOLE)
    t0 = time.perf_counter()
    agent.learn(args.total_steps, progress=False)
    seconds = time.perf_counter() - t0
    mean, std = agent.evaluate(n_episodes=EVAL_EPISODES, deterministic=True, seed=EVAL_SEED)
    agent.close()
    print(
        f"PPO CartPole-v1, seed {args.seed}: {agent.num_timesteps} env steps in {seconds:.1f}s "
        f"({agent.num_timesteps / seconds:.0f} steps/s, updates included)"
    )
    print(f"evaluation return over {EVAL_EPISODES} episodes: {mean:.1f} +/- {std:.1f}")
    if mean < args.min_return:
        print(f"FAILED: evaluation mean {mean:.1f} < {args.min_return}", file=sys.stderr)
        sys.exit(1)
    return mean


if __name__ == "__main__":
    main()
