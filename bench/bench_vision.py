"""CPU benchmarks of ember_vision's ResNets against the same networks in PyTorch, in one
process: ResNet-50 inference (batch 8, 224x224) and a ResNet-18 SGD training step (batch 32,
32x32, 10 classes). Prints ratios ember/torch (lower is better).

torchvision is not installed (a 5.5 GB wheel), so the torch side is a twin written here with
torch.nn: torchvision's architecture and state_dict names, into which ember's weights are
copied key by key; the two then compute the same function (checked before timing).
"""

from __future__ import annotations

import numpy as np
import torch
from _timing import compare, host_line, print_table
from torch import nn

import ember
from ember_vision import models

TARGETS = {
    "ResNet-50 inference b8 224x224": 2.0,
    "ResNet-18 train step b32 32x32": 2.0,
}


class BasicBlock(nn.Module):
    """torchvision's two-conv residual block (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(out + skip)


class Bottleneck(nn.Module):
    """torchvision's 1x1-3x3-1x1 block, stride on the 3x3 (ResNet V1.5, ResNet-50 up)."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(out + skip)


class TorchResNet(nn.Module):
    """torchvision's ResNet for ``block`` and ``layers`` (same modules, same key names)."""

    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0], 1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, C, H/32, W/32)
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (B, num_classes)


def twin(ember_model, block, layers, num_classes):
    """The torch twin of ``ember_model``, holding a copy of its weights and buffers."""
    model = TorchResNet(block, layers, num_classes)
    state = {k: torch.from_numpy(np.array(v.numpy())) for k, v in ember_model.state_dict().items()}
    model.load_state_dict(state)
    return model


def check_same_function(em, tm, x_np, atol):
    """Fail loudly unless both models give the same eval-mode logits on ``x_np``."""
    em.eval(), tm.eval()
    with ember.no_grad(), torch.no_grad():
        a = em(ember.from_numpy(x_np)).numpy()
        b = tm(torch.from_numpy(x_np)).numpy()
    diff = float(np.abs(a - b).max())
    if diff > atol:
        raise AssertionError(f"ember and torch twins differ by {diff:.2e} (> {atol})")
    return diff


def bench_resnet50_inference(rs):
    """Eval-mode, no-grad forward of ResNet-50 on a (8, 3, 224, 224) batch."""
    ember.manual_seed(0)
    em = models.resnet50(num_classes=1000)
    tm = twin(em, Bottleneck, [3, 4, 6, 3], 1000)
    x_np = rs.standard_normal((8, 3, 224, 224)).astype(np.float32)
    diff = check_same_function(em, tm, x_np, 1e-2)
    xe, xt = ember.from_numpy(x_np), torch.from_numpy(x_np)

    def run_ember():
        with ember.no_grad():
            em(xe)

    def run_torch():
        with torch.no_grad():
            tm(xt)

    row = compare("ResNet-50 inference b8 224x224", run_ember, run_torch, 1, 3, 2)
    row["max |diff|"] = diff
    return row


def _train_step(lib, model, x, y):
    loss_fn = lib.nn.CrossEntropyLoss()
    opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def run():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    return run


def bench_resnet18_train(rs):
    """One SGD-momentum step (forward, cross-entropy, backward, update) of ResNet-18."""
    ember.manual_seed(0)
    em = models.resnet18(num_classes=10)
    tm = twin(em, BasicBlock, [2, 2, 2, 2], 10)
    x_np = rs.standard_normal((32, 3, 32, 32)).astype(np.float32)
    y_np = rs.integers(0, 10, 32)
    diff = check_same_function(em, tm, x_np, 1e-3)
    em.train(), tm.train()
    run_ember = _train_step(ember, em, ember.from_numpy(x_np), ember.from_numpy(y_np))
    run_torch = _train_step(torch, tm, torch.from_numpy(x_np), torch.from_numpy(y_np))
    row = compare("ResNet-18 train step b32 32x32", run_ember, run_torch, 2, 5, 2)
    row["max |diff|"] = diff
    return row


def main():
    """Time both benchmarks and print the table (and how closely the twins agree)."""
    print(
        f"ember {ember.__version__}, torch {torch.__version__}, "
        f"torch threads {torch.get_num_threads()}, ember threads {ember.get_num_threads()}"
    )
    print(host_line())
    rs = np.random.default_rng(0)
    rows = [bench_resnet50_inference(rs), bench_resnet18_train(rs)]
    print_table(rows, TARGETS)
    for row in rows:
        print(f"{row['name']}: logits agree to {row['max |diff|']:.1e} before timing")


if __name__ == "__main__":
    main()
