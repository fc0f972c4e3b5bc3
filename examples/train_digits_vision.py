"""Train ember_vision's ResNet-18 on scikit-learn's handwritten digits, upscaled from 8x8 to
32x32 through ember_vision.transforms, and report held-out accuracy: the vision part of
`nox -s demo`. It reuses the epoch loop of ``python -m ember_vision.train``.

    python examples/train_digits_vision.py [--epochs 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

import ember
from ember_vision import models
from ember_vision import transforms as T
from ember_vision.train import build_schedule, evaluate, train_one_epoch


class DigitImages(ember.data.Dataset):
    """The digits as 8x8 grayscale PIL images (0..16 ink scaled to 0..255) with their labels."""

    def __init__(self, images, labels, transform):
        self.images = (images * (255 / 16)).round().astype(np.uint8)  # (N, 8, 8)
        self.labels = labels
        self.transform = transform

    def __getitem__(self, index):
        img = Image.fromarray(self.images[index], "L")
        return self.transform(img), int(self.labels[index])

    def __len__(self):
        return len(self.labels)


def load(seed: int):
    """Train and held-out DigitImages, split 80/20 with the same permutation as train_digits."""
    data = load_digits()
    order = np.random.default_rng(seed).permutation(len(data.target))
    cut = int(0.8 * len(order))
    tr, te = order[:cut], order[cut:]
    to_rgb = T.Lambda(lambda img: img.convert("RGB"))  # the ResNet stem takes 3 channels
    tail = [T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)]
    # bilinear upscaling smooths the 8x8 pixels; a small shifted crop augments the training set
    train_tf = T.Compose([T.Resize(32), T.RandomCrop(32, padding=2), to_rgb, *tail])
    eval_tf = T.Compose([T.Resize(32), to_rgb, *tail])
    train = DigitImages(data.images[tr], data.target[tr], train_tf)
    test = DigitImages(data.images[te], data.target[te], eval_tf)
    return train, test


def main(argv=None) -> float:
    """Train and return the held-out top-1 accuracy."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    ember.manual_seed(args.seed)
    train, test = load(args.seed)
    loader = ember.data.DataLoader(train, batch_size=args.batch_size, shuffle=True)
    test_loader = ember.data.DataLoader(test, batch_size=256)
    model = models.resnet18(num_classes=10)
    opt = ember.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    sched = build_schedule("onecycle", opt, args.lr, args.epochs * len(loader))
    loss_fn = ember.nn.CrossEntropyLoss(label_smoothing=0.1)
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        row = train_one_epoch(model, loader, loss_fn, opt, sched, epoch, quiet=False)
        print(f"epoch {epoch}: loss {row['train_loss']:.3f}, train acc {row['train_acc1']:.3f}")
    acc = evaluate(model, test_loader)["acc1"]
    seconds = time.perf_counter() - t0
    print(
        f"resnet18 on 32x32 digits: held-out accuracy {acc:.4f} "
        f"({int(round(acc * len(test)))}/{len(test)} digits) in {seconds:.1f} s"
    )
    return acc


if __name__ == "__main__":
    main()
