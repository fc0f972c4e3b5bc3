"""Can a whole ember training step be captured in a CUDA graph, and how fast does it replay?

An experiment on the lent GPU. Run 12 (bench/gpu_notes.md) stopped at the first cuBLAS call,
which CuPy's wrapper refuses during capture; ember's gemm now calls cuBLAS itself then.
ember's bf16 ResNet-50 step is host-bound (bench/gpu_notes.md: GPU busy ~30 ms, host 34-36
ms at the host's usual speed, and that speed moves up to 1.6x); a replayed graph issues the
step's ~600 launches with one call, so its time should fall to the GPU time. This script
captures one training step of ember's ResNet-50 (bf16 autocast, channels-last; SGD with
momentum) with CuPy's stream capture and reports, one line each:

1. the eager step time (median of three windows of back-to-back steps; gradients are zeroed
   in place rather than set to None, as a graph needs, so it is not bench/gpu.py's number);
2. whether capture works, or the first error it raises (what has to change in ember);
3. the replay time per step, and whether a replay trains: the parameters move, and the loss
   on the captured batch falls over replays as it does over eager steps.

Nothing here changes ember. Other known hazards a failure will point at: host-to-device copies
inside a step (the optimizer's pointer table, from pinned memory that the pool may reuse),
allocations while capturing (they come from a private CuPy pool kept with the graph, as
PyTorch's graphs keep theirs), and libraries that launch on another stream.

    python bench/gpu_graph_probe.py [--batch 128] [--replays 20]
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


def _eager_ms(step, iters: int = 10) -> float:
    import ember

    times = []
    for _ in range(3):
        ember.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        ember.cuda.synchronize()
        times.append((time.perf_counter() - t0) / iters * 1e3)
    return sorted(times)[1]


def main(argv=None):
    """Eager timing, capture, replay timing and a training check; one line each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--replays", type=int, default=20)
    args = ap.parse_args(argv)
    import cupy

    import ember

    step, model, box = _build(args.batch)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:  # warm up on the capture stream: graphs built, pool filled, grads allocated
        for _ in range(4):
            step()
        eager = _eager_ms(step)  # zero_grad to zeros (as the graph needs): not bench/gpu.py's
        print(f"[graph probe] eager step {eager:.1f} ms (gradients zeroed in place)", flush=True)
        first = float(box["loss"].item())
    pool = cupy.cuda.MemoryPool()  # nothing outside the graph reuses its memory
    try:
        with stream:
            # relaxed: a pool that must grow may still call cudaMalloc while capturing
            mode = getattr(cupy.cuda.runtime, "streamCaptureModeRelaxed", None)
            if mode is None:
                stream.begin_capture()
            else:
                stream.begin_capture(mode)
            try:  # the graph's buffers come from a pool of its own, kept with the graph
                with cupy.cuda.using_allocator(pool.malloc):
                    step()
            finally:
                graph = stream.end_capture()
    except Exception as exc:  # noqa: BLE001 - the point is to learn what fails
        print(f"[graph probe] capture FAILED: {type(exc).__name__}: {str(exc)[:300]}")
        print("  " + "\n  ".join(traceback.format_exc().strip().splitlines()[-8:]))
        return
    print("[graph probe] captured one training step", flush=True)
    p0 = next(iter(model.parameters())).detach().cpu().numpy().copy()
    stream.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.replays):
        graph.launch(stream)
    stream.synchronize()
    ms = (time.perf_counter() - t0) / args.replays * 1e3
    p1 = next(iter(model.parameters())).detach().cpu().numpy()
    last = float(box["loss"].item())
    moved = float(np.abs(p1 - p0).max())
    print(
        f"[graph probe] replay {ms:.2f} ms per step ({args.replays} replays); first parameter "
        f"moved by up to {moved:.3g}; loss on the batch {first:.4f} before, {last:.4f} after"
    )
    ember.cuda.synchronize()


if __name__ == "__main__":
    main()
