"""Eager vs traced (and traced + optimize_for_inference) inference time in ember, no torch.

Usage: python bench/bench_jit.py
"""

from __future__ import annotations

from _timing import median_time

import ember
import ember.jit
from ember import nn


def _conv_net():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    ).eval()


def _mlp():
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    ).eval()


def _time(fn, x) -> float:
    with ember.no_grad():
        return median_time(lambda: fn(x))


def main() -> None:
    """Print a Markdown table of eager and traced milliseconds per batch and their ratio."""
    cases = [("conv net 8x3x32x32", _conv_net(), (8, 3, 32, 32)), ("mlp 32x64", _mlp(), (32, 64))]
    print("| model | eager ms | traced ms | optimized ms | traced/eager | optimized/eager |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, model, shape in cases:
        x = ember.randn(*shape)
        traced = ember.jit.trace(model, x)
        fast = ember.jit.optimize_for_inference(traced)
        e, t, o = (_time(fn, x) for fn in (model, traced, fast))
        ms = f"{e * 1e3:.3f} | {t * 1e3:.3f} | {o * 1e3:.3f}"
        print(f"| {name} | {ms} | {t / e:.2f} | {o / e:.2f} |")


if __name__ == "__main__":
    main()
