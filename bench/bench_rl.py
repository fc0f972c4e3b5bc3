"""ember-rl benchmarks: evaluation return and env steps/s per seed, one process per run.

Each run trains in its own ``python -m ember_rl train`` process (one BLAS thread: the networks
are tiny, and threads only add overhead), then the saved agent is reloaded and evaluated on 20
episodes with deterministic actions (evaluation env seeded 1000..1019). Prints a markdown table;
docs/rl-results.md records runs of it. Needs ember-rl (packages/rl) installed; skipped with a
note otherwise.

``--which`` picks the runs (default ``ppo-cartpole``, the three-seed CartPole run that
``nox -s bench`` times; the others take longer and run only when asked for):

- ``ppo-cartpole``: PPO, CartPole-v1, RL-Zoo hyperparameters, 100k steps, seeds 0 1 2
- ``ppo-acrobot``: PPO, Acrobot-v1, RL-Zoo hyperparameters, 200k steps, seed 0
- ``ppo-pendulum``: PPO, Pendulum-v1, RL-Zoo hyperparameters without gSDE, 300k steps, seed 0
- ``a2c-cartpole``: A2C, CartPole-v1, default hyperparameters, 100k steps, seed 0
- ``reinforce-cartpole``: REINFORCE, CartPole-v1, default hyperparameters, 100k steps, seed 0
- ``lunarlander``: PPO, LunarLander-v3, RL-Zoo hyperparameters, 1M steps, seed 0 (needs
  ``pip install 'ember-rl[box2d]'``; about an hour or more on a 2-core CPU)
- ``lunarlander-continuous``: PPO, LunarLanderContinuous-v3, the same, 1M steps, seed 0
- ``all``: all of the above, in that order

Usage: python bench/bench_rl.py [--which NAME ...] [--total-steps N] [--seeds 0 1 2] [--out DIR]
(``--total-steps`` and ``--seeds`` override every selected run's own defaults.)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

# RL Baselines3 Zoo, hyperparams/ppo.yml, CartPole-v1
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

# RL Baselines3 Zoo, hyperparams/ppo.yml, Acrobot-v1 (n_envs 16). The Zoo's ``normalize: true``
# wraps the envs in VecNormalize; only its observation half (norm_obs) is used here.
ZOO_ACROBOT = {
    "n_steps": 256,
    "gae_lambda": 0.94,
    "gamma": 0.99,
    "n_epochs": 4,
    "ent_coef": 0.0,
    "norm_obs": True,
}

# RL Baselines3 Zoo, hyperparams/ppo.yml, Pendulum-v1 (n_envs 4), less use_sde/sde_sample_freq:
# ember-rl has no generalized state-dependent exploration, so the policy is a plain Gaussian.
ZOO_PENDULUM = {
    "n_steps": 1024,
    "gae_lambda": 0.95,
    "gamma": 0.9,
    "n_epochs": 10,
    "ent_coef": 0.0,
    "learning_rate": 1e-3,
    "clip_range": 0.2,
}

# RL Baselines3 Zoo, hyperparams/ppo.yml, LunarLander-v2 (n_envs 16, n_timesteps 1e6); its
# LunarLanderContinuous-v2 entry is the same. Gymnasium 1.x names the envs -v3 (v2 is gone).
ZOO_LUNARLANDER = {
    "n_steps": 1024,
    "batch_size": 64,
    "gae_lambda": 0.98,
    "gamma": 0.999,
    "n_epochs": 4,
    "ent_coef": 0.01,
}

EVAL_EPISODES = 20
EVAL_SEED = 1000


@dataclass(frozen=True)
class Run:
    """One benchmark configuration: what to train, for how long, and the target return."""

    algo: str
    env: str
    total_steps: int
    seeds: tuple[int, ...]
    n_envs: int | None = None  # None: the algorithm's default
    hyperparameters: dict = field(default_factory=dict)
    target: float | None = None  # evaluation mean to beat (strictly), if any
    needs: str | None = None  # a module the env needs (an optional extra), if any


RUNS = {
    "ppo-cartpole": Run("ppo", "CartPole-v1", 100_000, (0, 1, 2), N_ENVS, ZOO_CARTPOLE),
    "ppo-acrobot": Run("ppo", "Acrobot-v1", 200_000, (0,), 16, ZOO_ACROBOT, target=-100.0),
    "ppo-pendulum": Run("ppo", "Pendulum-v1", 300_000, (0,), 4, ZOO_PENDULUM, target=-300.0),
    "a2c-cartpole": Run("a2c", "CartPole-v1", 100_000, (0,), target=475.0),
    "reinforce-cartpole": Run("reinforce", "CartPole-v1", 100_000, (0,), target=475.0),
    "lunarlander": Run(
        "ppo", "LunarLander-v3", 1_000_000, (0,), 16, ZOO_LUNARLANDER, 200.0, "Box2D"
    ),
    "lunarlander-continuous": Run(
        "ppo", "LunarLanderContinuous-v3", 1_000_000, (0,), 16, ZOO_LUNARLANDER, 200.0, "Box2D"
    ),
}
DEFAULT_RUNS = ["ppo-cartpole"]


def run_seed(
    seed: int, total_steps: int, out: str, name: str = "ppo-cartpole", run: Run | None = None
) -> dict:
    """Train and evaluate one seed of ``run`` (default: ``RUNS[name]``) in subprocesses.

    Returns the training summary plus ``eval_mean`` and ``eval_std`` over 20 episodes.
    """
    run = run or RUNS[name]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    run_dir = os.path.join(out, f"{name.replace('-', '_')}_seed{seed}")
    train = [sys.executable, "-m", "ember_rl", "train", run.algo, "--env", run.env]
    train += ["--total-steps", str(total_steps), "--seed", str(seed), "--out", run_dir]
    if run.n_envs is not None:
        train += ["--n-envs", str(run.n_envs)]
    train += ["--hyperparameters", json.dumps(run.hyperparameters)]
    train += ["--eval-episodes", "1", "--no-progress"]
    summary = json.loads(
        subprocess.run(train, env=env, check=True, capture_output=True, text=True).stdout
    )
    evaluate = [sys.executable, "-m", "ember_rl", "evaluate", run_dir]
    evaluate += ["--episodes", str(EVAL_EPISODES), "--seed", str(EVAL_SEED)]
    result = json.loads(
        subprocess.run(evaluate, env=env, check=True, capture_output=True, text=True).stdout
    )
    return {**summary, "eval_mean": result["mean"], "eval_std": result["std"]}


def main(argv=None) -> None:
    """Run the benchmark (see the module docstring) and print a markdown table."""
    if importlib.util.find_spec("ember_rl") is None:
        print("bench_rl: ember-rl is not installed (pip install ./packages/rl); skipped")
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--which", nargs="+", choices=[*RUNS, "all"], default=DEFAULT_RUNS)
    parser.add_argument("--total-steps", type=int, default=None, help="default: per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: per run")
    parser.add_argument("--out", default=None)
    args = parser.parse_args([] if argv is None and __name__ != "__main__" else argv)
    names = list(RUNS) if "all" in args.which else list(dict.fromkeys(args.which))
    out = args.out or tempfile.mkdtemp(prefix="bench_rl_")
    print("| run | seed | env steps | train s | steps/s | eval return (20 episodes) | target |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in names:
        run = RUNS[name]
        if run.needs is not None and importlib.util.find_spec(run.needs) is None:
            print(f"| {name} | skipped: needs {run.needs} (pip install 'ember-rl[box2d]') |")
            continue
        for seed in args.seeds if args.seeds is not None else run.seeds:
            r = run_seed(seed, args.total_steps or run.total_steps, out, name, run)
            row = [name, seed, r["total_steps"], f"{r['train_seconds']:.1f}"]
            row += [f"{r['steps_per_second']:.0f}", f"{r['eval_mean']:.1f} ± {r['eval_std']:.1f}"]
            if run.target is None:
                row.append("-")
            else:
                met = "met" if r["eval_mean"] > run.target else "missed"
                row.append(f"> {run.target:g}: {met}")
            print("| " + " | ".join(map(str, row)) + " |", flush=True)
    print(f"runs in {out}")


if __name__ == "__main__":
    main()
