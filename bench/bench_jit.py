"""Eager vs traced vs optimized (with and without elementwise fusion) inference time in ember.

Rounds interleave eager, traced, optimized-without-fusion and optimized calls (one of each per
round), so load from other processes hits all four alike; the table shows medians, the ratios
to eager, and fused/unfused (the last optimize pass, ``fuse_elementwise``, on its own). The
load average before and after is printed too: on a busy machine the threads that run fused
blocks have fewer cores to use.

Usage: python bench/bench_jit.py [--quick] [--rounds N]
    --quick: only the small models (seconds); default adds ResNet-50 (batch 8, 224x224) and a
    MiniLM-size BERT encoder (6 layers, d=384, batch 32, seq 128), which take minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import ember
import ember.jit
from ember import nn
from ember.jit import TracedModule, passes


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


class _GeluMLP(nn.Module):
    """A transformer MLP with a scaled residual: GELU (tanh form), SiLU gate, Mul + Add."""

    def __init__(self, d=256, hidden=1024):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x):
        h = nn.functional.gelu(self.fc1(x), approximate="tanh")  # (B, hidden)
        return x + 0.5 * self.fc2(h * nn.functional.silu(h))


def _silu_conv_net():
    """Conv + batch norm + SiLU, the block of EfficientNet-style CNNs."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.SiLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.SiLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).eval()


def _resnet50():
    import ember_vision

    return ember_vision.models.resnet50().eval(), (ember.randn(8, 3, 224, 224),)


def _bert():
    import ember_text

    cfg = ember_text.models.BertConfig(
        hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536
    )
    ids = ember.randint(0, cfg.vocab_size, (32, 128))
    mask = ember.ones(32, 128, dtype=ember.int64)
    return ember_text.models.BertModel(cfg).eval(), (ids, mask)


def _small():
    return [
        ("conv net 8x3x32x32", _conv_net(), (ember.randn(8, 3, 32, 32),)),
        ("mlp 32x64", _mlp(), (ember.randn(32, 64),)),
        ("gelu mlp 512x256", _GeluMLP().eval(), (ember.randn(512, 256),)),
        ("silu conv net 8x3x64x64", _silu_conv_net(), (ember.randn(8, 3, 64, 64),)),
    ]


def _interleaved(fns: list, args: tuple, rounds: int) -> list[float]:
    """Median seconds per call of each of ``fns``, one call of each per round."""
    times: list[list[float]] = [[] for _ in fns]
    with ember.no_grad():
        for fn in fns:  # warm-up
            fn(*args)
        for _ in range(rounds):
            for i, fn in enumerate(fns):
                t0 = time.perf_counter()
                fn(*args)
                times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def main() -> None:
    """Print a Markdown table of milliseconds per batch: eager, traced, optimized without and
    with fusion, and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small models only")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per model")
    opts = parser.parse_args()
    cases = [(n, m, a, opts.rounds or 30) for n, m, a in _small()]
    if not opts.quick:
        for name, build in (("ResNet-50 8x3x224x224", _resnet50), ("BERT 6x384 32x128", _bert)):
            model, args = build()
            cases.append((name, model, args, opts.rounds or 7))
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print(
        "| model | eager ms | traced ms | optimized, no fusion ms | optimized ms | "
        "traced/eager | optimized/eager | fused/unfused | fused groups |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, model, args, rounds in cases:
        traced = ember.jit.trace(model, args)
        unfused = TracedModule(passes.optimize(traced.graph), dict(traced._ops))
        fast = ember.jit.optimize_for_inference(traced)
        groups = sum(n.op == "FusedElementwise" for n in fast.graph.nodes)
        e, t, u, o = _interleaved([model, traced, unfused, fast], args, rounds)
        ms = " | ".join(f"{v * 1e3:.1f}" for v in (e, t, u, o))
        ratios = f"{t / e:.2f} | {o / e:.2f} | {o / u:.2f}"
        print(f"| {name} | {ms} | {ratios} | {groups} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
