"""The predict command line on a generated image with a local weights file."""

import subprocess
import sys

import numpy as np
from PIL import Image

import ember
from ember_vision import models, predict, transforms


def _image(path):
    g = np.random.default_rng(0)
    Image.fromarray(g.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)).save(path)


def test_predict_cli_with_local_weights(tmp_path, capsys):
    ember.manual_seed(0)
    model = models.resnet18(num_classes=3)
    weights = tmp_path / "w.pth"
    ember.save(model.state_dict(), str(weights))
    image = tmp_path / "img.png"
    _image(image)
    argv = [str(image), "--model", "resnet18", "--weights", str(weights), "--num-classes", "3"]
    assert predict.main(argv + ["--offline"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("class ") for line in lines)
    probs = [float(line.split(": ")[1]) for line in lines]
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-3
    # the same numbers by hand: preset, forward, softmax
    preset = models.ResNet18_Weights.DEFAULT.transforms()
    with ember.no_grad():
        logits = model.eval()(preset(Image.open(image).convert("RGB")).unsqueeze(0)).numpy()[0]
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(probs, np.sort(expected)[::-1], atol=1e-4)
    assert isinstance(preset, transforms.ImageClassification)


def test_predict_cli_offline_without_cache_fails_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path))
    image = tmp_path / "img.png"
    _image(image)
    result = subprocess.run(
        [sys.executable, "-m", "ember_vision.predict", str(image), "--offline"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "resnet18-f37072fd.pth" in result.stderr
