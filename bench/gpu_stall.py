"""Where does a training step of ember's ResNet-50 (bf16 autocast) lose time on a GPU?

bench/gpu.py measured on an H100 (run 8): ember's channels-last step takes 50.8 ms while one
step's host time, begun on an idle GPU, is 41.6 ms and the GPU is busy 34.6 ms of it: the
host is blocked ~9 ms a step somewhere, or the GPU waits on something that is neither a
kernel nor the host. This script finds which, for ember alone (no PyTorch model runs):

1. step time back to back, with Python's garbage collector on and off;
2. one step under ``cupyx.allow_synchronize(False)`` (a CuPy-side synchronization raises,
   with its traceback);
3. the host time of every op (forward ``apply`` and backward node) in back-to-back steps
   against steps begun on an idle GPU: an op whose host time grows when the GPU is busy is
   where the host waits (a synchronization, or a full launch queue);
4. a timeline from CUDA events recorded after every op: how long the GPU sat idle waiting for
   the host, and how far it ran behind;
5. with ``--kernels``, the GPU kernels of one step (PyTorch's profiler, CUPTI).

    python bench/gpu_stall.py [--nchw] [--kernels] [--steps 6]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections import Counter, defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _build(nchw: bool, batch: int, device: str):
    import ember
    from ember_vision.models import resnet50

    ember.backends.cuda.matmul.allow_tf32 = True
    ember.backends.cudnn.allow_tf32 = True
    model = resnet50().to(device)
    r = np.random.default_rng(0)
    x = ember.tensor(r.standard_normal((batch, 3, 224, 224)).astype(np.float32)).to(device)
    y = ember.tensor(r.integers(0, 1000, batch)).to(device)
    if not nchw:
        model = model.to(memory_format=ember.channels_last)
        x = x.to(memory_format=ember.channels_last)
    opt = ember.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = ember.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with ember.autocast(device, dtype=ember.bfloat16):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    return step


class _Probe:
    """Times every forward op and backward node (host seconds by name), and optionally records
    a CUDA event after each with its host time."""

    def __init__(self, events: bool):
        self.host = defaultdict(float)
        self.calls = defaultdict(int)
        self.marks = [] if events else None  # (name, host start, host end, event)
        self.depth = 0  # ops run inside other ops (a backward's own ops) count once in total
        self.total = 0.0

    def enter(self):
        self.depth += 1
        return time.perf_counter()

    def note(self, name, t0):
        t1 = time.perf_counter()
        self.depth -= 1
        if not self.depth:
            self.total += t1 - t0
        self.host[name] += t1 - t0
        self.calls[name] += 1
        if self.marks is not None:
            import cupy

            ev = cupy.cuda.Event()
            ev.record()
            self.marks.append((name, t0, t1, ev))


def _install(probe_box: list):
    """Wrap Primitive.apply, Function.apply, the engine's node runner and the optimizer step
    so that the probe in ``probe_box[0]`` (None: off) sees them."""
    from ember.autograd import engine, function
    from ember.optim import SGD

    def wrap_apply(klass):
        orig = klass.__dict__["apply"].__func__

        def apply(cls, *args, **kw):
            p = probe_box[0]
            if p is None:
                return orig(cls, *args, **kw)
            t0 = p.enter()
            out = orig(cls, *args, **kw)
            p.note(cls.__name__, t0)
            return out

        klass.apply = classmethod(apply)

    wrap_apply(function.Primitive)
    wrap_apply(function.Function)
    run_node = engine._run_node

    def timed_run_node(node, grads, create):
        p = probe_box[0]
        if p is None:
            return run_node(node, grads, create)
        t0 = p.enter()
        out = run_node(node, grads, create)
        p.note(type(node).__name__ + "/bwd", t0)
        return out

    engine._run_node = timed_run_node
    orig_step = SGD.step

    def step(self, *a, **kw):
        p = probe_box[0]
        t0 = p.enter() if p is not None else 0.0
        out = orig_step(self, *a, **kw)
        if p is not None:
            p.note("SGD.step", t0)
        return out

    SGD.step = step


CUDA = {"on": True}  # False: a CPU smoke test of this script (no events, no sync check)


def _sync():
    import ember

    if CUDA["on"]:
        ember.cuda.synchronize()


def _loop(step, n):
    _sync()
    t0 = time.perf_counter()
    host = 0.0
    for _ in range(n):
        h = time.perf_counter()
        step()
        host += time.perf_counter() - h
    _sync()
    return (time.perf_counter() - t0) / n * 1e3, host / n * 1e3


def _per_op(step, box, n, alone: bool):
    probe = box[0] = _Probe(events=False)
    _sync()
    for _ in range(n):
        step()
        if alone:
            _sync()
    _sync()
    box[0] = None
    return probe


def _timeline(step, box, n):
    """GPU idle time and lag per step from events recorded after every op."""
    import cupy

    probe = box[0] = _Probe(events=True)
    _sync()
    start = cupy.cuda.Event()
    start.record()
    t_start = time.perf_counter()
    for _ in range(n):
        step()
    _sync()
    box[0] = None
    lo, hi, lag_max, prev_done = 0.0, 0.0, 0.0, 0.0
    idle_by = defaultdict(float)
    for name, t0, t1, ev in probe.marks:
        done = cupy.cuda.get_elapsed_time(start, ev) / 1e3  # seconds since start, GPU clock
        # the GPU idled if the op's launches came after it had finished the last op: they
        # came between the op's host start (t0) and end (t1), so the idle time lies between
        lo += max(0.0, t0 - t_start - prev_done)
        gap = max(0.0, t1 - t_start - prev_done)
        hi += gap
        idle_by[name] += gap
        lag_max = max(lag_max, done - (t1 - t_start))
        prev_done = max(prev_done, done)
    return lo / n * 1e3, hi / n * 1e3, lag_max * 1e3, idle_by


def _sync_check(step):
    import cupyx

    try:
        with cupyx.allow_synchronize(False):
            step()
        return "no CuPy-side synchronization in a step"
    except Exception:  # noqa: BLE001
        import traceback

        tb = traceback.format_exc().strip().splitlines()
        return "SYNCHRONIZES:\n    " + "\n    ".join(tb[-12:])


def _gc_report(step, n):
    """Time Python's garbage collector over ``n`` back-to-back steps (per generation), then
    list what one step leaves in reference cycles (freed only by the collector: a CuPy
    array in a cycle holds its GPU memory until a full collection)."""
    spent, count, found, t0 = defaultdict(float), defaultdict(int), defaultdict(int), [0.0]

    def cb(phase, info):
        if phase == "start":
            t0[0] = time.perf_counter()
        else:
            g = info["generation"]
            spent[g] += time.perf_counter() - t0[0]
            count[g] += 1
            found[g] += info["collected"]

    gc.callbacks.append(cb)
    try:
        ms, _ = _loop(step, n)
    finally:
        gc.callbacks.remove(cb)
    print(
        f"  gc over {n} steps ({ms:.1f} ms each): "
        + "; ".join(
            f"gen{g} x{count[g]} {spent[g] * 1e3:.1f} ms freed {found[g]}" for g in sorted(count)
        )
    )
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        step()
        _sync()
        n_found = gc.collect()
        kinds = Counter(type(o).__name__ for o in gc.garbage)
        arrays = [o for o in gc.garbage if type(o).__module__.startswith("cupy")]
        nbytes = sum(getattr(a, "nbytes", 0) for a in arrays)
        print(
            f"  one step leaves {n_found} objects in cycles ({len(arrays)} CuPy objects, "
            f"{nbytes / 2**20:.1f} MiB): {kinds.most_common(14)}"
        )
        funcs = [o for o in gc.garbage if type(o).__name__ == "function"][:6]
        print("  functions among them: " + ", ".join(f.__qualname__ for f in funcs))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def _torch_first(batch):
    """Train PyTorch's ResNet-50 (bf16 channels-last) for a few steps in this process, as
    bench/gpu.py's child does before timing ember, and release its cached memory."""
    import torch
    import torchvision

    torch.backends.cudnn.benchmark = True
    m = torchvision.models.resnet50().cuda().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, 224, 224, device="cuda").to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device="cuda")
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    for _ in range(5):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    del m, x, y, opt, loss
    gc.collect()
    torch.cuda.empty_cache()


def _kernels(step):
    from torch.profiler import ProfilerActivity, profile

    _sync()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        _sync()
    ev = prof.key_averages()

    def busy(e):
        return getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)

    print(f"  GPU busy {sum(busy(e) for e in ev) / 1e3:.1f} ms; top kernels:")
    for e in sorted(ev, key=busy, reverse=True)[:16]:
        print(f"   {busy(e) / 1e3:8.2f} ms  x{e.count:<5d} {e.key[:100]}")


def main(argv=None):
    """Run the diagnosis and print it (one section per finding)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nchw", action="store_true", help="ember's model in NCHW, not channels last")
    ap.add_argument("--kernels", action="store_true", help="also profile one step's kernels")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cuda", help="cpu: smoke test only")
    ap.add_argument("--gc", action="store_true", help="time the garbage collector, list cycles")
    ap.add_argument("--torch-first", action="store_true", help="train PyTorch's model first")
    args = ap.parse_args(argv)
    CUDA["on"] = args.device == "cuda"
    n = args.steps
    label = "NCHW" if args.nchw else "channels-last"
    if args.torch_first:
        _torch_first(args.batch)
        label += ", after PyTorch's model"
    step = _build(args.nchw, args.batch, args.device)
    box = [None]
    _install(box)
    for _ in range(3):
        step()
    if args.gc:
        print(f"[stall {label}]")
        _gc_report(step, n)
        return
    ms, host = _loop(step, n)
    gc.disable()
    ms_nogc, host_nogc = _loop(step, n)
    gc.enable()
    from gpu import host_calibration

    print(
        f"[stall {label}] step {ms:.1f} ms (host {host:.1f}); gc off: {ms_nogc:.1f} (host "
        f"{host_nogc:.1f}); host calibration {host_calibration():.2f} ms"
    )
    if CUDA["on"]:
        print(f"  sync check: {_sync_check(step)}")
    loop = _per_op(step, box, n, alone=False)
    alone = _per_op(step, box, n, alone=True)
    tot_l, tot_a = loop.total / n * 1e3, alone.total / n * 1e3
    print(f"  host in timed ops per step: back to back {tot_l:.1f} ms, on an idle GPU {tot_a:.1f}")
    rows = sorted(loop.host, key=lambda k: loop.host[k] - alone.host.get(k, 0.0), reverse=True)
    print("  ops whose host time grows when the GPU is busy (ms per step: loop, alone, calls):")
    for k in rows[:12]:
        print(
            f"   {loop.host[k] / n * 1e3:7.2f} {alone.host.get(k, 0.0) / n * 1e3:7.2f} "
            f"{loop.calls[k] // n:5d}  {k}"
        )
    if not CUDA["on"]:
        return
    lo, hi, lag, idle_by = _timeline(step, box, n)
    top = sorted(idle_by.items(), key=lambda kv: -kv[1])[:8]
    print(
        f"  events: GPU idle waiting for the host {lo:.1f}-{hi:.1f} ms per step, max lag "
        f"{lag:.1f} ms; idle before: " + ", ".join(f"{k} {v / n * 1e3:.2f}" for k, v in top)
    )
    from ember.kernels.cuda import cudnn_graphs

    print(f"  cuDNN graphs run directly / through execute(): {cudnn_graphs.STATS}")
    if args.kernels:
        _kernels(step)


if __name__ == "__main__":
    main()
