"""Train an image classifier: ``python -m ember_vision.train --model resnet18 --data cifar10``.

The reference recipe: SGD with momentum, a cosine or one-cycle lr schedule stepped every batch,
cross-entropy with label smoothing, top-1/top-5 evaluation and a checkpoint after every epoch.
``--resume`` continues from ``OUT/checkpoint.ember`` bit-identically on the CPU: the checkpoint
holds the model, optimizer and scheduler state dicts, the finished epoch and the state of
ember's default generator (which shuffles, augments and seeds the loader workers).

``--data`` is ``fake`` (FakeData, for smoke tests), ``mnist``, ``cifar10`` (under ``--root``,
fetched with ``--download``) or a folder with ``train/`` and ``val/`` ImageFolder trees.
``--model`` is any name of ``ember_vision.models.list_models()`` or ``tiny``, a two-conv net
kept here for smoke tests and the test suite.

``--device cuda`` trains on the GPU. ``--amp bf16`` or ``--amp fp16`` runs the forward pass
under ``ember.autocast(device, dtype)`` (matrix products and convolutions in the lower
precision, losses and norms in float32, as PyTorch's autocast lists them); ``fp16`` adds an
``ember.amp.GradScaler`` whose state goes into the checkpoint. On the CPU only ``bf16`` is
offered, as PyTorch's CPU autocast does.

    python -m ember_vision.train --model tiny --data fake --epochs 2 --out runs/smoke
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tqdm import tqdm

import ember
import ember.nn as nn
import ember.nn.functional as F

from . import datasets, models
from . import transforms as T

CHECKPOINT = "checkpoint.ember"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's, as torchvision uses


class TinyNet(nn.Module):
    """Two conv-bn-relu blocks and a linear head: the smoke-test model (``--model tiny``)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(32 * 4 * 4, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # (B, 16, H/2, W/2)
        x = self.pool(F.relu(self.bn2(self.conv2(x))))  # (B, 32, 4, 4)
        return self.fc(x.flatten(1))  # (B, num_classes)


def build_model(name: str, num_classes: int, weights: str | None = None) -> nn.Module:
    """A registered model (or ``tiny``) with a ``num_classes``-way head; with ``weights``, the
    pretrained body is loaded and its last linear layer replaced (fine-tuning)."""
    if name == "tiny":
        return TinyNet(num_classes)
    if weights is None:
        return models.get_model(name, num_classes=num_classes)
    model = models.get_model(name, weights=weights)
    if hasattr(model, "fc"):
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    else:  # VGG: the classifier's last layer
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
    return model


def build_transforms(size: int, augment: bool):
    """``(train, eval)`` transforms to ``size``x``size`` RGB tensors, normalized like ImageNet."""
    tail = [T.ToTensor(), T.Normalize(MEAN, STD)]
    rgb = T.Lambda(lambda img: img.convert("RGB"))  # MNIST is grayscale; the models want 3
    resize = T.Resize((size, size))
    evaluate = T.Compose([rgb, resize, *tail])
    if not augment:
        return evaluate, evaluate
    crop = T.RandomCrop(size, padding=max(1, size // 8))
    train = T.Compose([rgb, resize, crop, T.RandomHorizontalFlip(), *tail])
    return train, evaluate


def build_datasets(args):
    """``(train, val, num_classes)`` for ``args.data``; see the module docstring. FakeData's
    labels are random, so its "val" set is the training images without augmentation: the
    evaluation then measures memorization, which is what a smoke test can check."""
    train_tf, eval_tf = build_transforms(args.image_size, args.augment)
    kind = args.data
    if kind == "fake":
        k, shape = args.num_classes or 10, (3, args.image_size, args.image_size)
        train = datasets.FakeData(args.fake_size, shape, k, transform=train_tf)
        val = datasets.FakeData(args.fake_size, shape, k, transform=eval_tf)
        return train, val, k
    if kind in ("mnist", "cifar10"):
        cls = datasets.MNIST if kind == "mnist" else datasets.CIFAR10
        train = cls(args.root, train=True, transform=train_tf, download=args.download)
        val = cls(args.root, train=False, transform=eval_tf, download=args.download)
        return train, val, args.num_classes or 10
    if not os.path.isdir(kind):
        raise SystemExit(f"--data {kind!r}: not fake, mnist, cifar10 or a folder")
    train_dir = os.path.join(kind, "train")
    val_dir = os.path.join(kind, "val")
    if not os.path.isdir(train_dir):  # one tree: evaluate on the training images
        train_dir = val_dir = kind
    train = datasets.ImageFolder(train_dir, transform=train_tf)
    val = datasets.ImageFolder(val_dir, transform=eval_tf)
    return train, val, args.num_classes or len(train.classes)


def build_schedule(name: str, opt, lr: float, total_steps: int):
    """A per-batch lr schedule: ``cosine`` annealing to zero or ``onecycle``."""
    if name == "onecycle":
        return ember.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps)
    return ember.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)


def topk_correct(logits, target, ks=(1, 5)) -> list[int]:
    """How many rows of ``logits`` have ``target`` among their top ``k``, for each k."""
    k_max = min(max(ks), logits.shape[1])
    pred = logits.topk(k_max, dim=1).indices.numpy()  # (B, k_max)
    hit = pred == target.numpy()[:, None]
    return [int(hit[:, : min(k, k_max)].any(axis=1).sum()) for k in ks]


AMP_DTYPES = {"bf16": ember.bfloat16, "fp16": ember.float16}


class Precision:
    """The mixed-precision setting of a run: an autocast context per step and a GradScaler.

    ``amp`` is ``"off"``, ``"bf16"`` or ``"fp16"``; ``fp16`` is refused on the CPU (PyTorch's
    CPU autocast is bfloat16-only) and gets a ``GradScaler`` on CUDA.
    """

    def __init__(self, amp: str, device: str):
        if amp not in ("off", *AMP_DTYPES):
            raise SystemExit(f"--amp {amp!r}: choose off, bf16 or fp16")
        self.device = ember.device(device).type
        if amp == "fp16" and self.device == "cpu":
            raise SystemExit("--amp fp16 needs --device cuda; on the CPU use --amp bf16")
        self.amp = amp
        self.scaler = ember.amp.GradScaler(self.device, enabled=amp == "fp16")

    def autocast(self):
        """The context one forward pass and loss run in."""
        return ember.autocast(
            self.device, dtype=AMP_DTYPES.get(self.amp, ember.bfloat16), enabled=self.amp != "off"
        )

    def step(self, loss, opt) -> None:
        """Backward and optimizer step, through the scaler when it is enabled."""
        opt.zero_grad()
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()


def train_one_epoch(
    model, loader, loss_fn, opt, sched, epoch: int, quiet: bool, precision=None
) -> dict:
    """One pass over ``loader``; returns the mean loss and running top-1 accuracy."""
    precision = precision or Precision("off", "cpu")
    model.train()
    total = correct = 0
    loss_sum = 0.0
    bar = tqdm(loader, desc=f"epoch {epoch} train", disable=quiet, leave=False, mininterval=1.0)
    for x, y in bar:
        x, y = x.to(precision.device), y.to(precision.device)
        with precision.autocast():
            logits = model(x)
            loss = loss_fn(logits, y)
        precision.step(loss, opt)
        sched.step()
        n = y.shape[0]
        total += n
        loss_sum += loss.item() * n
        correct += topk_correct(logits.detach().float().cpu(), y.cpu(), (1,))[0]
        bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{correct / total:.3f}", refresh=False)
    return {"train_loss": loss_sum / total, "train_acc1": correct / total}


def evaluate(model, loader, quiet: bool = True, precision=None) -> dict:
    """Top-1 and top-5 accuracy of ``model`` over ``loader``, in eval mode without a graph."""
    precision = precision or Precision("off", "cpu")
    model.eval()
    total, hits = 0, [0, 0]
    with ember.no_grad():
        for x, y in tqdm(loader, desc="eval", disable=quiet, leave=False, mininterval=1.0):
            with precision.autocast():
                logits = model(x.to(precision.device)).float().cpu()
            hits = [a + b for a, b in zip(hits, topk_correct(logits, y))]
            total += y.shape[0]
    return {"acc1": hits[0] / total, "acc5": hits[1] / total}


def save_checkpoint(path: str, model, opt, sched, epoch: int, args, scaler=None) -> None:
    """Write everything a bit-identical resume needs (atomically, via ``ember.save``)."""
    state = {
        "scaler": (scaler.state_dict() if scaler is not None and scaler.is_enabled() else {}),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": epoch,
        "rng": ember.default_generator.get_state(),
        "args": json.dumps(vars(args), sort_keys=True),
    }
    ember.save(state, path)


def load_checkpoint(path: str, model, opt, sched, scaler=None) -> int:
    """Restore a checkpoint written by ``save_checkpoint``; returns the epochs already done."""
    state = ember.load(path)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    if scaler is not None and scaler.is_enabled() and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    ember.default_generator.set_state(state["rng"])
    return int(state["epoch"])


def parse_args(argv=None):
    """The command line; see ``python -m ember_vision.train --help``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = ap.add_argument
    add("--model", default="resnet18", help="a name of list_models(), or 'tiny'")
    add("--weights", default=None, help="pretrained weights to fine-tune from, e.g. DEFAULT")
    add("--data", default="fake", help="fake, mnist, cifar10 or an ImageFolder directory")
    add("--root", default="data", help="where mnist/cifar10 files live")
    add("--download", action="store_true", help="fetch mnist/cifar10 if missing")
    add("--fake-size", type=int, default=64, help="number of FakeData images")
    add("--epochs", type=int, default=10)
    add("--stop-after", type=int, default=None, help="end this run after that epoch")
    add("--batch-size", type=int, default=32)
    add("--lr", type=float, default=0.1)
    add("--momentum", type=float, default=0.9)
    add("--weight-decay", type=float, default=1e-4)
    add("--label-smoothing", type=float, default=0.0)
    add("--schedule", choices=("cosine", "onecycle"), default="cosine")
    add("--num-classes", type=int, default=None, help="default: the dataset's")
    add("--image-size", type=int, default=32)
    add("--augment", action=argparse.BooleanOptionalAction, default=True)
    add("--out", default="runs/train", help="checkpoint and log folder")
    add("--resume", action="store_true", help="continue from OUT/checkpoint.ember")
    add("--seed", type=int, default=0)
    add("--workers", type=int, default=0)
    add("--threads", type=int, default=None, help="BLAS/compute threads")
    add("--device", default="cpu", help="cpu or cuda")
    add("--amp", choices=("off", "bf16", "fp16"), default="off", help="mixed precision")
    add("--quiet", action="store_true", help="no progress bars")
    return ap.parse_args(argv)


def main(argv=None) -> list[dict]:
    """Train as the command line says; returns one metrics dict per epoch run."""
    args = parse_args(argv)
    if args.threads:
        ember.set_num_threads(args.threads)
    ember.manual_seed(args.seed)
    train_set, val_set, num_classes = build_datasets(args)
    precision = Precision(args.amp, args.device)
    model = build_model(args.model, num_classes, args.weights).to(precision.device)
    loader_kw = {"batch_size": args.batch_size, "num_workers": args.workers}
    train_loader = ember.data.DataLoader(train_set, shuffle=True, **loader_kw)
    val_loader = ember.data.DataLoader(val_set, shuffle=False, **loader_kw)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    opt = ember.optim.SGD(
        model.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
    )
    sched = build_schedule(args.schedule, opt, args.lr, args.epochs * len(train_loader))
    os.makedirs(args.out, exist_ok=True)
    ckpt = os.path.join(args.out, CHECKPOINT)
    start = 0
    if args.resume and os.path.exists(ckpt):
        start = load_checkpoint(ckpt, model, opt, sched, precision.scaler)
        print(f"resumed from {ckpt} after epoch {start}", file=sys.stderr)
    last = args.epochs if args.stop_after is None else min(args.epochs, args.stop_after)
    history = []
    for epoch in range(start + 1, last + 1):
        t0 = time.perf_counter()
        row = {
            "epoch": epoch,
            **train_one_epoch(
                model, train_loader, loss_fn, opt, sched, epoch, args.quiet, precision
            ),
        }
        row.update(evaluate(model, val_loader, args.quiet, precision))
        row["seconds"] = round(time.perf_counter() - t0, 3)
        save_checkpoint(ckpt, model, opt, sched, epoch, args, precision.scaler)
        with open(os.path.join(args.out, "log.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")
        print(
            f"epoch {epoch}/{args.epochs}  loss {row['train_loss']:.4f}  "
            f"train@1 {row['train_acc1']:.3f}  val@1 {row['acc1']:.3f}  val@5 {row['acc5']:.3f}"
        )
        history.append(row)
    return history


if __name__ == "__main__":
    main()
