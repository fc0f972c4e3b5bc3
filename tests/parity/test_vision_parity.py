"""VGG logits against a torch model built to torchvision's layout (torchvision itself does not
install beside this CPU torch build, so the reference is written out here in plain torch).

The key layout (``features.N``, ``classifier.0/3/6``) is checked against torchvision's real
state_dict in tests/vision; this file checks the computation: torch's convolutions, batch norm,
pools and linears on the same weights, loaded from a file written by ``torch.save``.
"""

import numpy as np
import pytest
import torch
from torch import nn as tnn

import ember
from ember_vision import models

# torchvision's VGG configurations (conv widths, "M" = 2x2 max pool)
CFGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M"]
    + [512, 512, 512, "M"],
}


class TorchVGG(tnn.Module):
    def __init__(self, cfg, batch_norm, num_classes):
        super().__init__()
        layers, channels = [], 3
        for v in cfg:
            if v == "M":
                layers.append(tnn.MaxPool2d(2, 2))
                continue
            layers.append(tnn.Conv2d(channels, v, 3, padding=1))
            if batch_norm:
                layers.append(tnn.BatchNorm2d(v))
            layers.append(tnn.ReLU(inplace=True))
            channels = v
        self.features = tnn.Sequential(*layers)
        self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
        self.classifier = tnn.Sequential(
            tnn.Linear(512 * 7 * 7, 4096),
            tnn.ReLU(True),
            tnn.Dropout(),
            tnn.Linear(4096, 4096),
            tnn.ReLU(True),
            tnn.Dropout(),
            tnn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@pytest.mark.parametrize(("name", "batch_norm"), [("vgg11", True), ("vgg16", False)])
def test_vgg_logits_match_torch(tmp_path, name, batch_norm):
    torch.manual_seed(0)
    reference = TorchVGG(CFGS[name], batch_norm, num_classes=10)
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, tnn.BatchNorm2d):  # non-trivial running statistics
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
    reference.eval()
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)

    builder = getattr(models, name + ("_bn" if batch_norm else ""))
    model = builder(num_classes=10)
    model.load_state_dict(ember.load(path))
    model.eval()

    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    with ember.no_grad():
        got = model(ember.tensor(x)).numpy()
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * max(scale, 1.0))
    assert (got.argmax(1) == expected.argmax(1)).all()
