"""Run an elementwise NumPy kernel on row blocks in threads. NumPy's loops release the GIL, so
on a large array two blocks on two cores take about half the time; small arrays run inline."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# below this many elements the thread hand-off costs more than it saves (measured: ~30 us)
MIN_ELEMENTS = 1 << 17
_WORKERS = max(1, min(4, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="ember-cpu")
    return _pool


def blocks(n: int, parts: int):
    """``parts`` contiguous (start, stop) ranges covering ``range(n)``."""
    step = -(-n // parts)
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def run_rows(kernel, out: np.ndarray, *inputs: np.ndarray) -> np.ndarray:
    """Call ``kernel(out[a:b], *(x[a:b] for x in inputs))`` over blocks of the first axis, in
    parallel when ``out`` is large; returns ``out``.

    Every array must share ``out``'s first axis and be C-contiguous (blocks are then views);
    anything broadcast across rows (weights, masks) belongs in the kernel's closure."""
    arrays = (out, *inputs)
    rows = out.shape[0] if out.ndim else 0
    if (
        out.size < MIN_ELEMENTS
        or _WORKERS == 1
        or rows < _WORKERS
        or not all(a.ndim and a.shape[0] == rows and a.flags.c_contiguous for a in arrays)
    ):
        kernel(*arrays)
        return out
    parts = blocks(rows, _WORKERS)
    futures = [_executor().submit(kernel, *(a[lo:hi] for a in arrays)) for lo, hi in parts[1:]]
    lo, hi = parts[0]
    kernel(*(a[lo:hi] for a in arrays))  # the calling thread takes the first block
    for f in futures:
        f.result()
    return out
