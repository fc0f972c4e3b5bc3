"""The command line on a tiny run: train writes the agent, logs, evaluations and checkpoints;
evaluate reads the agent back (plot is tested in test_rl_plotting.py)."""

import json
import subprocess
import sys

from ember_rl.__main__ import main


def test_train_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "a2c",
        "--env",
        "CartPole-v1",
        "--total-steps",
        "100",
        "--seed",
        "0",
        "--out",
        str(out),
        "--n-envs",
        "2",
        "--no-progress",
        "--eval-episodes",
        "1",
        "--hyperparameters",
        '{"n_steps": 10}',
        "--eval-freq",
        "40",
        "--save-freq",
        "60",
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["total_steps"] == 100 and summary["algo"] == "a2c"
    assert (out / "agent.safetensors").exists() and (out / "episodes.csv").exists()
    losses = (out / "losses.csv").read_text().splitlines()
    assert losses[0].startswith("step,policy_loss,value_loss") and len(losses) == 1 + 5
    evaluations = (out / "evaluations.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in evaluations[1:]] == ["40", "80"]
    assert (out / "best_model.safetensors").exists()
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["a2c_60_steps.safetensors"]
    assert json.loads((out / "summary.json").read_text())["seed"] == 0
    assert main(["evaluate", str(out), "--episodes", "2", "--seed", "0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 2 and result["env"] == "CartPole-v1" and result["mean"] > 0


def test_module_entry_point_help():
    done = subprocess.run(
        [sys.executable, "-m", "ember_rl", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "train" in done.stdout
