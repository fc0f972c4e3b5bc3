"""Command line: ``python -m ember_rl train ALGO --env ID ... --out DIR``, ``evaluate DIR``,
``plot DIR [DIR ...] --out curve.png``.

``train`` writes ``DIR/agent.safetensors`` (weights, optimizer and normalisation state,
hyperparameters), ``DIR/episodes.csv`` (one row per finished training episode),
``DIR/losses.csv`` (one row per update) and ``DIR/summary.json``; ``--eval-freq`` adds
``DIR/evaluations.csv`` and ``DIR/best_model.safetensors``, ``--save-freq`` checkpoints in
``DIR/checkpoints``. ``evaluate`` loads ``DIR/agent.safetensors`` and prints the mean and std
return. ``plot`` draws the learning curve (mean ± std over the runs) into a PNG (needs
matplotlib: ``pip install 'ember-rl[plot]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .agents import ALGOS
from .callbacks import CheckpointCallback, EvalCallback

AGENT_FILE = "agent.safetensors"


def _parser():
    parser = argparse.ArgumentParser(prog="python -m ember_rl", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train an agent and save it in --out")
    train.add_argument("algo", choices=sorted(ALGOS))
    train.add_argument("--env", required=True, help="Gymnasium env id, e.g. CartPole-v1")
    train.add_argument("--total-steps", type=int, required=True)
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--out", required=True, help="directory for the agent and its logs")
    train.add_argument("--n-envs", type=int, default=None)
    train.add_argument("--hyperparameters", default="{}", help="JSON, e.g. '{\"n_steps\": 32}'")
    train.add_argument("--eval-episodes", type=int, default=10)
    train.add_argument("--eval-freq", type=int, default=0, help="evaluate every N env steps")
    train.add_argument("--save-freq", type=int, default=0, help="checkpoint every N env steps")
    train.add_argument("--no-progress", action="store_true")
    evaluate = commands.add_parser("evaluate", help="evaluate an agent saved by train")
    evaluate.add_argument("dir")
    evaluate.add_argument("--episodes", type=int, default=10)
    evaluate.add_argument("--seed", type=int, default=None)
    evaluate.add_argument("--stochastic", action="store_true", help="sample actions")
    plot = commands.add_parser("plot", help="plot learning curves of runs (mean ± std)")
    plot.add_argument("dirs", nargs="+", help="run directories, averaged into one curve")
    plot.add_argument("--out", default="curve.png", help="PNG file to write")
    plot.add_argument("--x", choices=["steps", "episodes"], default="steps")
    plot.add_argument("--smoothing", type=int, default=100, help="moving-average window")
    plot.add_argument("--source", choices=["episodes", "evaluations"], default="episodes")
    return parser


def _callbacks(args) -> list:
    callbacks = []
    if args.eval_freq > 0:
        callbacks.append(
            EvalCallback(
                args.env,
                eval_freq=args.eval_freq,
                n_eval_episodes=args.eval_episodes,
                best_model_save_path=args.out,
                log_path=args.out,
                seed=args.seed,
            )
        )
    if args.save_freq > 0:
        checkpoints = os.path.join(args.out, "checkpoints")
        callbacks.append(CheckpointCallback(args.save_freq, checkpoints, name_prefix=args.algo))
    return callbacks


def _train(args) -> dict:
    hyperparameters = json.loads(args.hyperparameters)
    if args.n_envs is not None:
        hyperparameters["n_envs"] = args.n_envs
    agent = ALGOS[args.algo](args.env, seed=args.seed, **hyperparameters)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    agent.learn(
        args.total_steps,
        progress=not args.no_progress,
        log_path=os.path.join(args.out, "episodes.csv"),
        loss_log_path=os.path.join(args.out, "losses.csv"),
        callback=_callbacks(args),
    )
    seconds = time.perf_counter() - start
    agent.save(os.path.join(args.out, AGENT_FILE))
    mean, std = agent.evaluate(args.eval_episodes, seed=args.seed)
    agent.close()
    summary = {
        "algo": args.algo,
        "env": args.env,
        "seed": args.seed,
        "total_steps": agent.num_timesteps,
        "train_seconds": round(seconds, 2),
        "steps_per_second": round(agent.num_timesteps / seconds, 1),
        "eval_mean": mean,
        "eval_std": std,
        "eval_episodes": args.eval_episodes,
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def _evaluate(args) -> dict:
    import ember

    path = os.path.join(args.dir, AGENT_FILE)
    algo = ember.load(path)["algo"]
    agent = ALGOS[algo].load(path)
    mean, std = agent.evaluate(args.episodes, deterministic=not args.stochastic, seed=args.seed)
    agent.close()
    return {"algo": algo, "env": agent.env_id, "episodes": args.episodes, "mean": mean, "std": std}


def _plot(args) -> dict:
    from .plotting import plot_results

    plot_results(args.dirs, args.out, x=args.x, smoothing=args.smoothing, source=args.source)
    return {"out": args.out, "runs": len(args.dirs)}


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); prints a JSON summary."""
    args = _parser().parse_args(argv)
    result = {"train": _train, "evaluate": _evaluate, "plot": _plot}[args.command](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
