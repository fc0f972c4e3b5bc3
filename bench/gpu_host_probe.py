"""Why does the host time of one training step move between windows of the same process?

An H100 call (bench/gpu_notes.md, run 12) timed ember's ResNet-50 bf16 step in three windows
of one process at 44.2, 71.8 and 73.3 ms, and the pure-Python calibration of bench/gpu.py
went from 4.2 ms to 6.6 ms between child processes of the same call, while PyTorch's step
(mostly C++) stayed at 34.8 ms. This script prints, window by window in the order they ran,
what the process asked of the machine: step and host milliseconds, CPU time in user and
kernel mode, minor page faults, voluntary and involuntary context switches and garbage
collections per step, then the calibration workload timed right after the window. Many
faults and much kernel time per step point at memory handed back to the OS and faulted in
again (malloc trimming, Python's arenas); involuntary switches at a CPU shared with others;
a calibration that slows along with the step at the machine itself.

    python bench/gpu_host_probe.py --lib ember|torch [--windows 8] [--iters 10] [--nchw]

Run it under different allocator settings (``MALLOC_TRIM_THRESHOLD_``, ``PYTHONMALLOC``) and
``--freeze`` (``gc.freeze()`` after warm-up) to see which, if any, removes the drift.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _torch_step(batch: int):
    """PyTorch's ResNet-50 bf16 channels-last step (gradients set to None, as bench/gpu.py)."""
    import torch
    from gpu_graph_probe import torch_resnet50_step

    step, _, _ = torch_resnet50_step(batch, set_to_none=True)
    return step, torch.cuda.synchronize


def _ember_step(batch: int, nchw: bool, device: str):
    from gpu_stall import _build

    import ember

    sync = ember.cuda.synchronize if device == "cuda" else lambda: None
    return _build(nchw, batch, device), sync


def _usage():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return np.array([u.ru_utime, u.ru_stime, u.ru_minflt, u.ru_nvcsw, u.ru_nivcsw], float)


def _gc_count() -> int:
    return sum(s["collections"] for s in gc.get_stats())


def _cpu_mhz() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")]
        return f"{min(mhz):.0f}-{max(mhz):.0f}"
    except (OSError, ValueError, IndexError):
        return "?"


def main(argv=None):
    """Warm up, then print one line per window (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", choices=("ember", "torch"), default="ember")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--nchw", action="store_true")
    ap.add_argument("--device", default="cuda", help="cuda (cpu: smoke test, ember only)")
    ap.add_argument("--freeze", action="store_true", help="gc.freeze() after warm-up")
    args = ap.parse_args(argv)
    from gpu import host_calibration

    tag = " ".join(
        f"{k}={os.environ[k]}" for k in sorted(os.environ) if k.startswith(("MALLOC_", "PYTHONM"))
    )
    print(f"[host probe {args.lib}{' freeze' if args.freeze else ''}] {tag or 'default env'}")
    print(f"  cpus {len(os.sched_getaffinity(0))}, load {open('/proc/loadavg').read().split()[:3]}")
    print(f"  calibration before the model: {host_calibration():.2f} ms")
    if args.lib == "torch":
        step, sync = _torch_step(args.batch)
    else:
        step, sync = _ember_step(args.batch, args.nchw, args.device)
    for _ in range(5):
        step()
    sync()
    if args.freeze:
        gc.collect()
        gc.freeze()
    print("  window  step ms  host ms  user ms  sys ms  faults  vol  invol  gcs  calib ms  MHz")
    for w in range(args.windows):
        u0, g0 = _usage(), _gc_count()
        host, t0 = 0.0, time.perf_counter()
        for _ in range(args.iters):
            h = time.perf_counter()
            step()
            host += time.perf_counter() - h
        sync()
        wall = (time.perf_counter() - t0) / args.iters
        d = (_usage() - u0) / args.iters
        gcs = (_gc_count() - g0) / args.iters
        cal = host_calibration(3)
        print(
            f"  {w:6d} {wall * 1e3:8.1f} {host / args.iters * 1e3:8.1f} {d[0] * 1e3:8.1f} "
            f"{d[1] * 1e3:7.1f} {d[2]:7.0f} {d[3]:4.0f} {d[4]:6.1f} {gcs:4.1f} {cal:9.2f}  "
            f"{_cpu_mhz()}",
            flush=True,
        )


if __name__ == "__main__":
    main()
