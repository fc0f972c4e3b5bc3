"""Timing helpers shared by the benchmarks: interleaved repeats, medians, a ratio table."""

from __future__ import annotations

import statistics
import time


def median_time(fn, warmup: int = 3, repeat: int = 15) -> float:
    """Median wall time of ``fn()`` in seconds after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare(name: str, ember_fn, torch_fn, warmup: int = 3, repeat: int = 15, rounds: int = 3):
    """Time both sides in alternating rounds (so drift hits both) and return a result row."""
    te, tt = [], []
    for _ in range(rounds):
        te.append(median_time(ember_fn, warmup, repeat))
        tt.append(median_time(torch_fn, warmup, repeat))
    e, t = statistics.median(te), statistics.median(tt)
    return {"name": name, "ember_ms": e * 1e3, "torch_ms": t * 1e3, "ratio": e / t}


def print_table(rows, targets=None) -> None:
    """Print ``rows`` as a Markdown table of medians and ember/torch ratios."""
    targets = targets or {}
    print("| benchmark | ember ms | torch ms | ember/torch | target |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        tgt = targets.get(r["name"])
        mark = "" if tgt is None else f"<= {tgt}" + (" ok" if r["ratio"] <= tgt else " MISSED")
        print(
            f"| {r['name']} | {r['ember_ms']:.3f} | {r['torch_ms']:.3f} | {r['ratio']:.2f} | "
            f"{mark} |"
        )
