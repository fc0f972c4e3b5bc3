"""PPO on CartPole-v1 with RL-Zoo's tuned hyperparameters: evaluation return and steps/s per seed.

Each seed trains in its own ``python -m ember_rl train`` process (one BLAS thread: the network
is tiny, and threads only add overhead), then the saved agent is evaluated on 20 episodes with
deterministic actions. Prints a markdown table; docs/rl-results.md records a run of it.
Needs ember-rl (packages/rl) installed; skipped with a note otherwise.

Usage: python bench/bench_rl.py [--total-steps N] [--seeds 0 1 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

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
EVAL_EPISODES = 20


def run_seed(seed: int, total_steps: int, out: str) -> dict:
    """Train and evaluate one seed in a subprocess; returns its summary plus evaluation."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    run_dir = os.path.join(out, f"ppo_cartpole_seed{seed}")
    train = [
        sys.executable,
        "-m",
        "ember_rl",
        "train",
        "ppo",
        "--env",
        "CartPole-v1",
        "--total-steps",
        str(total_steps),
        "--seed",
        str(seed),
        "--out",
        run_dir,
        "--n-envs",
        str(N_ENVS),
        "--hyperparameters",
        json.dumps(ZOO_CARTPOLE),
        "--eval-episodes",
        "1",
        "--no-progress",
    ]
    summary = json.loads(
        subprocess.run(train, env=env, check=True, capture_output=True, text=True).stdout
    )
    evaluate = [
        sys.executable,
        "-m",
        "ember_rl",
        "evaluate",
        run_dir,
        "--episodes",
        str(EVAL_EPISODES),
        "--seed",
        "1000",
    ]
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
    parser.add_argument("--total-steps", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=None)
    args = parser.parse_args([] if argv is None and __name__ != "__main__" else argv)
    out = args.out or tempfile.mkdtemp(prefix="bench_rl_")
    print("| seed | env steps | train s | steps/s | eval return (20 episodes) |")
    print("|---:|---:|---:|---:|---:|")
    for seed in args.seeds:
        r = run_seed(seed, args.total_steps, out)
        row = [seed, r["total_steps"], f"{r['train_seconds']:.1f}", f"{r['steps_per_second']:.0f}"]
        row.append(f"{r['eval_mean']:.1f} ± {r['eval_std']:.1f}")
        print("| " + " | ".join(map(str, row)) + " |", flush=True)
    print(f"runs in {out}")


if __name__ == "__main__":
    main()
