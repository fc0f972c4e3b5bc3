"""Can a whole ember training step be captured in a CUDA graph, and how fast does it replay?

An experiment on the lent GPU. Run 12 (bench/gpu_notes.md) stopped at the first cuBLAS call,
which CuPy's wrapper refuses during capture; ember's gemm now calls cuBLAS itself then.
ember's bf16 ResNet-50 step is host-bound (bench/gpu_notes.md: GPU busy ~30 ms, host 34-36
ms at the host's usual speed, and that speed moves up to 1.6x); a replayed graph issues the
step's ~600 launches with one call, so its time should fall to the GPU time. This script
captures one training step of ember's ResNet-50 (bf16 autocast, channels-last; SGD with
momentum) with ``ember.cuda.graph`` and reports, one line each:

1. the eager step time (median of three windows of back-to-back steps; gradients are zeroed
   in place rather than set to None, as a graph needs, so it is not bench/gpu.py's number);
2. whether capture through ``ember.cuda.graph`` works, or the first error it raises (what
   has to change in ember);
3. the replay time per step, and whether a replay trains: the parameters move, and the loss
   on the captured batch falls over replays as it does over eager steps;
4. PyTorch's eager and replayed step for the same model (``torch.cuda.graph``).

Known hazards a failure will point at: host-to-device copies inside a step (the optimizer's
pointer table is refused with an error while capturing; the warm-up steps cache it),
allocations while capturing (they come from a private CuPy pool kept with the graph, as
PyTorch's graphs keep theirs), and libraries that launch on another stream.

    python bench/gpu_graph_probe.py [--batch 128] [--replays 10] [--no-torch]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _build(batch: int):
    import ember
    from ember_vision.models import resnet50

    ember.backends.cuda.matmul.allow_tf32 = True
    ember.backends.cudnn.allow_tf32 = True
    model = resnet50().to("cuda").to(memory_format=ember.channels_last)
    r = np.random.default_rng(0)
    x = ember.tensor(r.standard_normal((batch, 3, 224, 224)).astype(np.float32)).to("cuda")
    x = x.to(memory_format=ember.channels_last)
    y = ember.tensor(r.integers(0, 1000, batch)).to("cuda")
    opt = ember.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = ember.nn.CrossEntropyLoss()
    box = {}

    def step():
        opt.zero_grad(set_to_none=False)  # gradients keep their buffers, as graphs need
        with ember.autocast("cuda", dtype=ember.bfloat16):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        box["loss"] = loss  # the captured loss tensor: its memory is rewritten by replays

    return step, model, box


def torch_resnet50_step(batch: int, set_to_none: bool = False):
    """PyTorch's ResNet-50 training step (bf16 autocast, channels-last, SGD with momentum) on
    random data: (step, model, box holding the last loss). Gradients stay in place unless
    ``set_to_none`` (a graph needs them in place)."""
    import torch
    import torchvision

    torch.backends.cudnn.benchmark = True
    model = torchvision.models.resnet50().cuda().to(memory_format=torch.channels_last)
    r = np.random.default_rng(0)
    x = torch.tensor(r.standard_normal((batch, 3, 224, 224)).astype(np.float32)).cuda()
    x = x.to(memory_format=torch.channels_last)
    y = torch.tensor(r.integers(0, 1000, batch)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    box = {}

    def step():
        opt.zero_grad(set_to_none=set_to_none)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        box["loss"] = loss

    return step, model, box


def _timed_ms(fn, sync, iters: int = 10) -> float:
    """Median of three windows of ``iters`` calls, in ms per call."""
    times = []
    for _ in range(3):
        sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / iters * 1e3)
    return sorted(times)[1]


def _warm_up(lib, step, steps: int = 4) -> None:
    """``steps`` steps on a side stream, as PyTorch advises before a capture; the same code
    for ember and PyTorch, whose ``cuda`` stream APIs are the same."""
    side = lib.cuda.Stream()
    side.wait_stream(lib.cuda.current_stream())
    with lib.cuda.stream(side):
        for _ in range(steps):
            step()
    lib.cuda.current_stream().wait_stream(side)


def _ember(args) -> None:
    import ember

    step, model, box = _build(args.batch)
    _warm_up(ember, step)
    eager = _timed_ms(step, ember.cuda.synchronize)
    print(f"[graph probe] ember eager step {eager:.1f} ms (gradients zeroed in place)", flush=True)
    first = float(box["loss"].item())
    g = ember.cuda.CUDAGraph()
    try:
        with ember.cuda.graph(g):
            step()
    except Exception as exc:  # noqa: BLE001 - the point is to learn what fails
        print(f"[graph probe] ember capture FAILED: {type(exc).__name__}: {str(exc)[:300]}")
        print("  " + "\n  ".join(traceback.format_exc().strip().splitlines()[-8:]))
        return
    print(f"[graph probe] ember captured one step; pool {g.pool().used_bytes() / 2**20:.0f} MiB")
    p0 = next(iter(model.parameters())).detach().cpu().numpy().copy()
    replay = _timed_ms(g.replay, ember.cuda.synchronize, args.replays)
    p1 = next(iter(model.parameters())).detach().cpu().numpy()
    last = float(box["loss"].item())
    print(
        f"[graph probe] ember replay {replay:.2f} ms per step; first parameter moved by up to "
        f"{float(np.abs(p1 - p0).max()):.3g}; loss on the batch {first:.4f} before, "
        f"{last:.4f} after {3 * args.replays} replays",
        flush=True,
    )


def _torch(args) -> None:
    import torch

    step, _, box = torch_resnet50_step(args.batch)
    _warm_up(torch, step)
    eager = _timed_ms(step, torch.cuda.synchronize)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        step()
    replay = _timed_ms(g.replay, torch.cuda.synchronize, args.replays)
    print(
        f"[graph probe] torch eager step {eager:.1f} ms, replay {replay:.2f} ms; loss "
        f"{float(box['loss'].item()):.4f}",
        flush=True,
    )


def main(argv=None):
    """ember's eager step, capture and replays, then PyTorch's for comparison; a line each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--replays", type=int, default=10)
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch's graph")
    args = ap.parse_args(argv)
    _ember(args)
    if not args.no_torch:
        import gc

        import ember

        gc.collect()
        ember.cuda.empty_cache()
        _torch(args)


if __name__ == "__main__":
    main()
