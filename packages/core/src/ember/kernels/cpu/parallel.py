"""Run an elementwise NumPy kernel on row blocks in threads. NumPy's loops release the GIL, so
on a large array two blocks on two cores take about half the time; small arrays run inline."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# below this many elements the thread hand-off costs more than it saves (measured: ~30 us)
MIN_ELEMENTS = 1 << 17
CHUNK = 1 << 16  # elements per kernel call: a few such float32 temporaries fit in L2
_WORKERS = max(1, min(4, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None


_local = threading.local()


def scratch(dtype, size: int, count: int = 2) -> list:
    """``count`` flat work buffers of ``size`` elements of ``dtype``, private to the calling
    thread and reused from call to call (kernels on cache-sized blocks would otherwise
    allocate their temporaries once per block)."""
    dtype = np.dtype(dtype)
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    flat = bufs.get(dtype)
    if flat is None or len(flat) < count or flat[0].size < size:
        flat = bufs[dtype] = [np.empty(max(size, CHUNK), dtype) for _ in range(count)]
    return [b[:size] for b in flat[:count]]


def _forget_pool() -> None:
    # a forked child (a DataLoader worker) inherits the pool object but not its threads
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="ember-cpu")
    return _pool


def set_workers(n: int) -> None:
    """Use ``n`` threads (the calling thread included) for blocked kernels from now on."""
    global _WORKERS, _pool
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None
    _WORKERS = max(1, int(n))


def blocks(n: int, parts: int):
    """``parts`` contiguous (start, stop) ranges covering ``range(n)``."""
    step = -(-n // parts)
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def run_rows(kernel, out: np.ndarray, *inputs: np.ndarray, threads: bool = True) -> np.ndarray:
    """Call ``kernel(out[a:b], *(x[a:b] for x in inputs))`` over blocks of the first axis;
    returns ``out``.

    Blocks hold about ``CHUNK`` elements, so a kernel's chain of passes works on data that
    stays in cache (measured: half the time of whole-array passes for GELU's 15 passes over
    1M floats); large arrays are shared between threads. Every array must share ``out``'s
    first axis and be C-contiguous (blocks are then views); anything broadcast across rows
    (weights, masks) belongs in the kernel's closure. ``threads=False`` keeps every block on
    the calling thread, for kernels made of many short per-row passes, which spend so much of
    their time holding the GIL that a second thread slows them (layer norm on (1024, 256):
    397 us on one thread, 562 us on two)."""
    arrays = (out, *inputs)
    rows = out.shape[0] if out.ndim else 0
    if rows == 0 or not all(a.ndim and a.shape[0] == rows for a in arrays):
        kernel(*arrays)
        return out
    step = max(1, CHUNK // max(out.size // rows, 1))

    def work(lo, hi):
        for s in range(lo, hi, step):
            e = min(s + step, hi)
            kernel(*(a[s:e] for a in arrays))

    contiguous = all(a.flags.c_contiguous for a in arrays)
    if not threads or out.size < MIN_ELEMENTS or _WORKERS == 1 or rows < 2 * step or not contiguous:
        work(0, rows)
        return out
    parts = blocks(rows, _WORKERS)
    futures = [_executor().submit(work, lo, hi) for lo, hi in parts[1:]]
    work(*parts[0])  # the calling thread takes the first block
    for f in futures:
        f.result()
    return out
