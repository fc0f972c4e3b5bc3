"""Run one elementwise optimizer kernel over many parameters, fast on NumPy.

An update like Adam's is a dozen elementwise passes. Done on whole arrays, each pass streams
the parameter through main memory; done on cache-sized chunks, all passes reuse the same few
hundred kilobytes, and chunks of large parameters are shared among a few threads (NumPy
releases the GIL inside ufunc loops). Chunks only change where the work happens: every
element goes through exactly the same arithmetic, so results are bitwise identical.

CuPy arrays (and non-contiguous NumPy arrays) get one whole-array call instead.

A kernel is ``kernel(xp, arrays, scratch, *extra)``: ``arrays`` is a tuple of same-shaped
arrays, ``(param, grad, *state)``, where the parameter and state (``None`` for state the
options do not use) are updated in place and the gradient is only read; ``scratch`` is a list
of two same-shaped buffers it may overwrite, ``extra`` the per-parameter scalars.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..backend.device import array_module
from ..kernels.cpu.parallel import scratch

CHUNK_BYTES = 1 << 19  # per array: a kernel's handful of chunk-sized arrays stay in cache
PARALLEL_MIN = 1 << 20  # total chunked elements before a step is split among threads
N_SCRATCH = 2

_pool: list = [None]


def _threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 4))


def _executor(n: int) -> ThreadPoolExecutor:
    if _pool[0] is None:
        _pool[0] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="ember-optim")
    return _pool[0]


def _drop_pool() -> None:
    _pool[0] = None  # a forked child inherits no worker threads: start a fresh pool there


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_pool)


def _scratch(dtype, size: int, shape) -> list:
    """This thread's reusable scratch buffers, viewed with ``shape``."""
    return [b.reshape(shape) for b in scratch(dtype, size, N_SCRATCH)]


def _run_pieces(kernel, pieces) -> None:
    for arrays, extra in pieces:
        lead = arrays[0]
        kernel(np, arrays, _scratch(lead.dtype, lead.size, lead.shape), *extra)


def _chunkable(arrays):
    """``arrays`` ready for flat chunking (the gradient made contiguous if needed), or None."""
    lead, g = arrays[0], arrays[1]
    if type(lead) is not np.ndarray or not lead.flags.c_contiguous:
        return None
    if type(g) is np.ndarray and not g.flags.c_contiguous:
        arrays = (lead, np.ascontiguousarray(g), *arrays[2:])  # only read: a copy is safe
    if all(a is None or (a.flags.c_contiguous and a.dtype == lead.dtype) for a in arrays):
        return arrays
    return None


def _split(pieces, n: int) -> list:
    """Cut ``pieces`` into ``n`` runs of about equal element counts."""
    total = sum(p[0][0].size for p in pieces)
    runs, cur, acc = [], [], 0
    for piece in pieces:
        cur.append(piece)
        acc += piece[0][0].size
        if acc >= total * (len(runs) + 1) / n and len(runs) < n - 1:
            runs.append(cur)
            cur = []
    runs.append(cur)
    return [r for r in runs if r]


def foreach(kernel, items) -> None:
    """Apply ``kernel`` to every ``(arrays, extra)`` in ``items`` (see the module docstring)."""
    pieces, elements = [], 0
    for arrays, extra in items:
        ready = _chunkable(arrays)
        if ready is None:
            lead = arrays[0]
            xp = array_module(lead)
            kernel(xp, arrays, [xp.empty_like(lead) for _ in range(N_SCRATCH)], *extra)
            continue
        arrays = ready
        n, chunk = arrays[0].size, CHUNK_BYTES // arrays[0].itemsize
        if n <= chunk:
            pieces.append((arrays, extra))
            continue
        flat = [None if a is None else a.reshape(-1) for a in arrays]
        for i in range(0, n, chunk):
            pieces.append((tuple(None if a is None else a[i : i + chunk] for a in flat), extra))
        elements += n
    n_threads = _threads()
    repeated = len({id(arrays[0]) for arrays, _ in items}) != len(items)  # must run in order
    if elements < PARALLEL_MIN or n_threads == 1 or repeated:
        _run_pieces(kernel, pieces)
        return
    runs = _split(pieces, n_threads)
    pool = _executor(n_threads)
    futures = [pool.submit(_run_pieces, kernel, run) for run in runs[1:]]
    _run_pieces(kernel, runs[0])
    for f in futures:
        f.result()
