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


def host_line() -> str:
    """The CPU model and each library's BLAS, for the header of a benchmark's output: the
    ratios depend on them (torch's MKL is tuned for Intel; NumPy's OpenBLAS is not vendor's)."""
    import os
    import platform

    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    try:
        blas = _numpy_blas()
    except Exception:  # the header is informative only
        blas = "unknown"
    torch_blas = "unknown"
    try:
        import torch

        cfg = torch.__config__.show()
        torch_blas = "MKL" if "USE_MKL=ON" in cfg else ("OpenBLAS" if "OpenBLAS" in cfg else "?")
    except Exception:
        pass
    return f"host: {model}, {os.cpu_count()} CPUs; NumPy BLAS {blas}; torch BLAS {torch_blas}"


def _numpy_blas() -> str:
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info.get("user_api") == "blas" and "numpy" in (info.get("filepath") or ""):
            return f"{info['internal_api']} {info.get('version')} ({info.get('architecture')})"
    return "unknown"
