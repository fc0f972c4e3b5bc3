"""Train a small conv net on scikit-learn's bundled 8x8 handwritten digits and report held-out
accuracy. This is ember's main job for now: `nox -s demo` runs it.

    python examples/train_digits.py [--epochs 15] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import load_digits
from tqdm import tqdm

import ember
import ember.nn as nn
import ember.nn.functional as F


class DigitNet(nn.Module):
    """Two conv-bn-relu blocks, a pool, and a linear classifier for 1x8x8 images."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(64 * 4 * 4, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))  # (B, 32, 8, 8)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)  # (B, 64, 4, 4)
        return self.fc(self.drop(x.flatten(1)))


def load(seed: int):
    """Digits scaled to [0, 1], split 80/20 with a fixed permutation."""
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(0.8 * len(y))
    tr, te = order[:cut], order[cut:]
    return (x[tr], y[tr]), (x[te], y[te])


def accuracy(model, x, y) -> float:
    """Fraction of correct predictions, in eval mode without recording the graph."""
    model.eval()
    with ember.no_grad():
        pred = model(ember.from_numpy(x)).argmax(1).numpy()
    model.train()
    return float((pred == y).mean())


def main(argv=None) -> float:
    """Train and return the held-out accuracy."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    ember.manual_seed(args.seed)
    (xtr, ytr), (xte, yte) = load(args.seed)
    model = DigitNet()
    opt = ember.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    steps = args.epochs * -(-len(ytr) // args.batch_size)
    sched = ember.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    rng = np.random.default_rng(args.seed)
    bar = tqdm(total=steps, desc="training", unit="step", mininterval=1.0)
    for epoch in range(args.epochs):
        order = rng.permutation(len(ytr))
        for i in range(0, len(order), args.batch_size):
            idx = order[i : i + args.batch_size]
            loss = F.cross_entropy(model(ember.from_numpy(xtr[idx])), ember.from_numpy(ytr[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    acc = accuracy(model, xte, yte)
    print(f"held-out accuracy: {acc:.4f} ({int(round(acc * len(yte)))}/{len(yte)} digits)")
    return acc


if __name__ == "__main__":
    main()
