"""The reference training script: it overfits a tiny set, resumes bit-identically, and runs
from the command line on an ImageFolder tree and with a registered model."""

import subprocess
import sys

import numpy as np
from PIL import Image

import ember
from ember_vision import train

TINY = ["--model", "tiny", "--data", "fake", "--image-size", "16", "--quiet"]


def _weights(out):
    state = ember.load(str(out / train.CHECKPOINT))
    return {k: v.numpy() for k, v in state["model"].items()}, state


def test_overfits_a_tiny_dataset(tmp_path):
    argv = TINY + ["--fake-size", "16", "--epochs", "10", "--batch-size", "4", "--lr", "0.05"]
    history = train.main(argv + ["--no-augment", "--out", str(tmp_path)])
    assert len(history) == 10
    assert history[-1]["train_acc1"] >= 0.9 and history[-1]["acc1"] >= 0.9
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 5
    assert (tmp_path / "log.jsonl").read_text().count("\n") == 10


def test_resume_is_bit_identical(tmp_path):
    # augmentation, label smoothing and one-cycle momentum all draw on the saved state
    argv = TINY + ["--fake-size", "12", "--epochs", "2", "--batch-size", "4", "--lr", "0.05"]
    argv += ["--label-smoothing", "0.1", "--schedule", "onecycle"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train.main(argv + ["--out", str(straight)])
    assert [r["epoch"] for r in train.main(argv + ["--out", str(split), "--stop-after", "1"])] == [
        1
    ]
    assert [r["epoch"] for r in train.main(argv + ["--out", str(split), "--resume"])] == [2]
    (w_a, state_a), (w_b, state_b) = _weights(straight), _weights(split)
    assert state_a["epoch"] == state_b["epoch"] == 2
    assert w_a.keys() == w_b.keys()
    for key in w_a:
        np.testing.assert_array_equal(w_a[key], w_b[key], err_msg=key)
    assert state_a["rng"] == state_b["rng"]
    assert state_a["scheduler"] == state_b["scheduler"]


def test_cli_on_an_image_folder_with_resnet18(tmp_path):
    g = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in ("cat", "dog", "eel"):
            (tmp_path / "data" / split / name).mkdir(parents=True)
            pixels = g.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / split / name / "a.png")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ember_vision.train", "--model", "resnet18"]
    cmd += ["--data", str(tmp_path / "data"), "--image-size", "16", "--epochs", "1"]
    cmd += ["--batch-size", "3", "--workers", "1", "--out", str(out), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "epoch 1/1" in done.stdout and "val@5 1.000" in done.stdout  # 3 classes: top-5 = all
    weights, state = _weights(out)
    assert weights["fc.weight"].shape == (3, 512) and state["epoch"] == 1


def test_bf16_autocast_on_the_cpu_still_learns(tmp_path):
    argv = TINY + ["--fake-size", "16", "--epochs", "10", "--batch-size", "4", "--lr", "0.05"]
    history = train.main(argv + ["--no-augment", "--amp", "bf16", "--out", str(tmp_path)])
    assert history[-1]["train_acc1"] >= 0.9 and history[-1]["acc1"] >= 0.9
    weights, _ = _weights(tmp_path)
    assert {w.dtype for w in weights.values()} <= {np.dtype("float32"), np.dtype("int64")}


def test_fp16_on_the_cpu_is_refused_with_the_alternative():
    try:
        train.main(TINY + ["--amp", "fp16", "--epochs", "1"])
    except SystemExit as exc:
        assert "--amp fp16 needs --device cuda" in str(exc) and "bf16" in str(exc)
    else:
        raise AssertionError("--amp fp16 on the CPU was accepted")
