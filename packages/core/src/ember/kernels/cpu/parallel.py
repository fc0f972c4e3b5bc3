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
    """Call ``kernel(out[a:b], *(x[a:b] for x in inputs))`` over row blocks of the flattened
    leading dimensions, in parallel for large C-contiguous arrays; returns ``out``.

    Every array must have ``out``'s shape and be C-contiguous (so that blocks are views)."""
    if (
        out.size < MIN_ELEMENTS
        or _WORKERS == 1
        or not all(a.flags.c_contiguous and a.shape == out.shape for a in (out, *inputs))
    ):
        kernel(out, *inputs)
        return out
    rows = out.shape[0] if out.ndim else 1
    if rows < _WORKERS:
        flat = [a.reshape(-1) for a in (out, *inputs)]
        rows, arrays = flat[0].shape[0], flat
    else:
        arrays = (out, *inputs)
    parts = blocks(rows, _WORKERS)
    futures = [_executor().submit(kernel, *(a[lo:hi] for a in arrays)) for lo, hi in parts[1:]]
    lo, hi = parts[0]
    kernel(*(a[lo:hi] for a in arrays))  # the calling thread takes the first block
    for f in futures:
        f.result()
    return out
