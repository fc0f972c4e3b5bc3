"""The command line on a tiny run: train writes the agent and logs, evaluate reads them back."""

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
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["total_steps"] == 100 and summary["algo"] == "a2c"
    assert (out / "agent.safetensors").exists() and (out / "episodes.csv").exists()
    assert json.loads((out / "summary.json").read_text())["seed"] == 0
    assert main(["evaluate", str(out), "--episodes", "2", "--seed", "0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 2 and result["env"] == "CartPole-v1" and result["mean"] > 0


def test_module_entry_point_help():
    done = subprocess.run(
        [sys.executable, "-m", "ember_rl", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "train" in done.stdout
