"""DataLoader throughput: ember vs torch on one in-memory dataset of 3x64x64 float32 images.

Each ``__getitem__`` normalises one image with NumPy (per-channel mean/std), the kind of work a
transform does; a pass is 16 batches of 64. Reported as batches/s and as the ember/torch time
ratio (lower is better), for num_workers 0 and 2.
"""

from __future__ import annotations

import time

import numpy as np

import ember

BATCH, BATCHES = 64, 16
MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)


class Images:
    """``n`` random uint8 images; a sample is a normalised float32 array and a label."""

    def __init__(self, n: int) -> None:
        self.images = np.random.default_rng(0).integers(0, 256, (n, 3, 64, 64), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i].astype(np.float32) / 255.0
        return (x - MEAN) / STD, i % 10


def _passes_per_second(loader, repeat: int) -> float:
    for _ in loader:  # warm-up pass (starts the workers)
        pass
    t0 = time.perf_counter()
    for _ in range(repeat):
        for _ in loader:
            pass
    return repeat * len(loader) / (time.perf_counter() - t0)


def _row(name, make_ember, make_torch, repeat, rounds=3):
    ours, theirs = [], []
    for _ in range(rounds):  # alternate so drift hits both sides
        ours.append(_passes_per_second(make_ember(), repeat))
        theirs.append(_passes_per_second(make_torch(), repeat))
    e, t = float(np.median(ours)), float(np.median(theirs))
    return name, e, t, t / e


def main() -> None:
    """Print a Markdown table of DataLoader batches/s for ember and torch."""
    try:
        import torch
    except ImportError:
        print("torch is not installed: skipping bench_data")
        return
    ds = Images(BATCH * BATCHES)
    rows = []
    for workers in (0, 2):
        opts = {"batch_size": BATCH, "shuffle": True, "num_workers": workers}
        if workers:
            opts["persistent_workers"] = True
        rows.append(
            _row(
                f"DataLoader bs={BATCH} workers={workers}",
                lambda o=opts: ember.data.DataLoader(ds, **o),
                lambda o=opts: torch.utils.data.DataLoader(ds, **o),
                repeat=3,
            )
        )
    print("| benchmark | ember batches/s | torch batches/s | ember/torch time |")
    print("|---|---:|---:|---:|")
    for name, e, t, ratio in rows:
        print(f"| {name} | {e:.1f} | {t:.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
