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
- ``a2c-cartpole-zoo``: A2C, CartPole-v1, RL-Zoo hyperparameters (8 envs), 500k steps, seeds 0 1 2
- ``reinforce-cartpole``: REINFORCE, CartPole-v1, default hyperparameters, 100k steps, seed 0
- ``reinforce-cartpole-long``: the same for 300k steps, seeds 0 1 2
- ``lunarlander``: PPO, LunarLander-v3, RL-Zoo hyperparameters, 1M steps, seed 0 (needs
  ``pip install 'ember-rl[box2d]'``; about an hour or more on a 2-core CPU)
- ``lunarlander-continuous``: PPO, LunarLanderContinuous-v3, the same, 1M steps, seed 0
- ``sb3-speed``: ember-rl PPO against Stable-Baselines3 PPO on CartPole-v1 in this process,
  RL-Zoo hyperparameters, 50k steps each, seed 0, alternating over 3 rounds (needs
  ``pip install stable-baselines3``; skipped with a note otherwise). Prints env steps/s of
  each, the ember/SB3 speed ratio (above 1: ember-rl is faster) and each final agent's
  evaluation return
- ``all``: all of the above, in that order

``nox -s bench`` runs ``ppo-cartpole`` and ``sb3-speed`` (two to three minutes together on a
2-core CPU).

Usage: python bench/bench_rl.py [--which NAME ...] [--total-steps N] [--seeds 0 1 2] [--out DIR]
[--rounds N]. ``--total-steps`` and ``--seeds`` override every selected run's own defaults
(``sb3-speed`` uses the first seed); ``--rounds`` sets ``sb3-speed``'s rounds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
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
    # RL Baselines3 Zoo, hyperparams/a2c.yml, CartPole-v1: n_envs 8, ent_coef 0.0, 500k steps
    "a2c-cartpole-zoo": Run(
        "a2c", "CartPole-v1", 500_000, (0, 1, 2), 8, {"ent_coef": 0.0}, target=475.0
    ),
    "reinforce-cartpole-long": Run("reinforce", "CartPole-v1", 300_000, (0, 1, 2), target=475.0),
    "lunarlander": Run(
        "ppo", "LunarLander-v3", 1_000_000, (0,), 16, ZOO_LUNARLANDER, 200.0, "Box2D"
    ),
    "lunarlander-continuous": Run(
        "ppo", "LunarLanderContinuous-v3", 1_000_000, (0,), 16, ZOO_LUNARLANDER, 200.0, "Box2D"
    ),
}
SB3_SPEED = "sb3-speed"
SB3_SPEED_STEPS = 50_000
SB3_SPEED_ROUNDS = 3
DEFAULT_RUNS = ["ppo-cartpole", SB3_SPEED]


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


def evaluate_policy(predict, env_id: str, episodes: int = EVAL_EPISODES, seed: int = EVAL_SEED):
    """``(mean, std)`` return of ``predict(obs) -> action`` over ``episodes`` episodes of
    ``env_id``, episode ``i`` reset with ``seed + i`` (the protocol of ``run_seed``)."""
    import gymnasium as gym

    env = gym.make(env_id)
    returns = []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(predict(obs))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return statistics.fmean(returns), statistics.pstdev(returns)


def _lin(value: str):
    """RL-Zoo's ``"lin_<start>"`` as the function of ``progress_remaining`` SB3 takes."""
    start = float(value[len("lin_") :])
    return lambda progress_remaining: progress_remaining * start


def _train_ember(total_steps: int, seed: int):
    """Train ember-rl PPO on CartPole-v1 with the Zoo set; ``(seconds, steps, predict)``."""
    from ember_rl import PPO

    agent = PPO("CartPole-v1", seed=seed, n_envs=N_ENVS, **ZOO_CARTPOLE)
    t0 = time.perf_counter()
    agent.learn(total_steps, progress=False)
    seconds = time.perf_counter() - t0
    agent.close()
    return seconds, agent.num_timesteps, lambda obs: int(agent.predict(obs))


def _train_sb3(total_steps: int, seed: int):
    """Train Stable-Baselines3 PPO on CartPole-v1 with the same hyperparameters and the same
    kind of vector env (8 envs stepped in turn in this process); ``(seconds, steps, predict)``.
    SB3's default ``MlpPolicy`` for PPO is the same [64, 64] tanh actor and critic with
    orthogonal initialisation."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    envs = make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=seed, vec_env_cls=DummyVecEnv)
    hp = dict(ZOO_CARTPOLE)
    hp["learning_rate"], hp["clip_range"] = _lin(hp["learning_rate"]), _lin(hp["clip_range"])
    model = PPO("MlpPolicy", envs, seed=seed, device="cpu", verbose=0, **hp)
    t0 = time.perf_counter()
    model.learn(total_steps, progress_bar=False)
    seconds = time.perf_counter() - t0
    envs.close()
    return seconds, model.num_timesteps, lambda obs: int(model.predict(obs, deterministic=True)[0])


def sb3_speed(total_steps: int = SB3_SPEED_STEPS, rounds: int = SB3_SPEED_ROUNDS, seed: int = 0):
    """Env steps/s of ember-rl PPO and Stable-Baselines3 PPO on CartPole-v1, measured in turn.

    Both train from scratch with RL-Zoo's CartPole hyperparameters and ``seed`` in each of
    ``rounds`` rounds (ember-rl, then SB3), with one torch thread and one BLAS thread.
    ``total_steps`` is rounded up to whole rollouts so both end on the same step. The
    training wall time of ``learn`` alone is timed (updates included; construction and
    evaluation not). Returns the median steps/s of each, their ratio (ember-rl / SB3, so
    above 1 means ember-rl is faster), every round's numbers, both last agents' evaluation
    returns (``evaluate_policy``) and the load average before and after; ``None`` when SB3
    is not installed.
    """
    if importlib.util.find_spec("stable_baselines3") is None:
        return None
    import stable_baselines3
    import torch

    import ember

    per_rollout = ZOO_CARTPOLE["n_steps"] * N_ENVS
    total_steps = math.ceil(total_steps / per_rollout) * per_rollout
    threads = torch.get_num_threads(), ember.get_num_threads()
    torch.set_num_threads(1)
    ember.set_num_threads(1)
    load_before = os.getloadavg()
    speeds = {"ember": [], "sb3": []}
    last = {}  # each library's last run: (env steps, predict)
    try:
        for _ in range(rounds):
            for name, train in (("ember", _train_ember), ("sb3", _train_sb3)):
                seconds, steps, predict = train(total_steps, seed)
                speeds[name].append(steps / seconds)
                last[name] = (steps, predict)
        evals = {name: evaluate_policy(last[name][1], "CartPole-v1") for name in speeds}
    finally:
        torch.set_num_threads(threads[0])
        ember.set_num_threads(threads[1])
    ember_rate, sb3_rate = statistics.median(speeds["ember"]), statistics.median(speeds["sb3"])
    return {
        "total_steps": total_steps,
        "rounds": rounds,
        "seed": seed,
        "steps": {name: last[name][0] for name in speeds},
        "steps_per_second": {"ember": ember_rate, "sb3": sb3_rate},
        "per_round": speeds,
        "ratio": ember_rate / sb3_rate,
        "eval": evals,
        "load_average": (load_before, os.getloadavg()),
        "versions": {
            "stable_baselines3": stable_baselines3.__version__,
            "torch": torch.__version__,
        },
    }


def print_sb3_speed(result) -> None:
    """Print ``sb3_speed``'s result as a markdown table and a ratio line."""
    if result is None:
        print(
            f"{SB3_SPEED}: skipped, Stable-Baselines3 is not installed "
            "(pip install stable-baselines3)"
        )
        return
    print()
    print(
        f"PPO on CartPole-v1, RL-Zoo hyperparameters, seed {result['seed']}, "
        f"{result['total_steps']} env steps per run, rounds: {result['rounds']} (ember-rl then "
        "SB3 in each), one torch thread and one BLAS thread:"
    )
    print()
    print("| library | env steps/s (median) | env steps/s per round | eval return (20 episodes) |")
    print("|---|---:|---|---:|")
    labels = {
        "ember": "ember-rl",
        "sb3": f"Stable-Baselines3 {result['versions']['stable_baselines3']}",
    }
    for name, label in labels.items():
        rounds = ", ".join(f"{v:.0f}" for v in result["per_round"][name])
        mean, std = result["eval"][name]
        row = [label, f"{result['steps_per_second'][name]:.0f}", rounds, f"{mean:.1f} ± {std:.1f}"]
        print("| " + " | ".join(row) + " |")
    before, after = result["load_average"]
    print()
    print(
        f"ember/SB3 speed ratio: {result['ratio']:.2f} (above 1: ember-rl is faster); "
        f"torch {result['versions']['torch']}; load average {before[0]:.2f} before, "
        f"{after[0]:.2f} after",
        flush=True,
    )


def main(argv=None) -> None:
    """Run the benchmark (see the module docstring) and print markdown tables."""
    if importlib.util.find_spec("ember_rl") is None:
        print("bench_rl: ember-rl is not installed (pip install ./packages/rl); skipped")
        return
    parser = argparse.ArgumentParser()
    choices = [*RUNS, SB3_SPEED, "all"]
    parser.add_argument("--which", nargs="+", choices=choices, default=DEFAULT_RUNS)
    parser.add_argument("--total-steps", type=int, default=None, help="default: per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: per run")
    parser.add_argument("--out", default=None)
    parser.add_argument("--rounds", type=int, default=SB3_SPEED_ROUNDS, help="sb3-speed rounds")
    args = parser.parse_args([] if argv is None and __name__ != "__main__" else argv)
    names = choices[:-1] if "all" in args.which else list(dict.fromkeys(args.which))
    training = [name for name in names if name in RUNS]
    if training:
        train_runs(training, args)
    if SB3_SPEED in names:
        seed = args.seeds[0] if args.seeds else 0
        steps = args.total_steps or SB3_SPEED_STEPS
        print_sb3_speed(sb3_speed(steps, args.rounds, seed))


def train_runs(names, args) -> None:
    """Train and evaluate each of ``names`` (keys of ``RUNS``) and print one table row each."""
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
