"""CUDA graphs: capture a sequence of CUDA work once and replay it with one launch
(``ember.cuda.CUDAGraph``, ``ember.cuda.graph``, ``ember.cuda.graph_pool_handle``, as in
PyTorch), on CuPy's stream capture.

A replay runs the captured kernels on the captured memory: inputs are copied into the tensors
the capture read (``static_x.copy_(batch)``), outputs are read from the tensors it wrote.
Memory allocated while capturing comes from a pool of the graph's own (``pool()``), which
nothing outside a capture allocates from, so no other tensor lands in memory a replay writes.

What a captured region must not do, as in PyTorch: wait for the GPU (``.item()``, ``bool()``
of a CUDA tensor, ``.cpu()``), copy from host memory, or depend on values only known when it
runs. ember's optimizers upload a table of parameter addresses the first time they see a set
of addresses: run a step before capturing, and keep gradients in place
(``zero_grad(set_to_none=False)``), so a captured step finds its table already on the GPU.

Differences from PyTorch: capture runs in CUDA's *relaxed* mode by default
(``capture_error_mode="relaxed"``), because CuPy's pool calls ``cudaMalloc`` while capturing,
which the stricter modes forbid.
"""

from __future__ import annotations

import gc

_MODES = ("global", "thread_local", "relaxed")


def _cupy():
    from . import _require

    return _require()


class _GraphPool:
    """The memory pool a graph allocates from while capturing (shareable between graphs
    captured and replayed in the same order, as PyTorch allows)."""

    def __init__(self):
        self._pool = _cupy().cuda.MemoryPool()

    def used_bytes(self) -> int:
        """Bytes of the pool that captured tensors hold."""
        return int(self._pool.used_bytes())

    def total_bytes(self) -> int:
        """Bytes the pool holds from the driver."""
        return int(self._pool.total_bytes())


def graph_pool_handle() -> _GraphPool:
    """A new memory pool to pass as ``pool=`` to several captures that should share memory."""
    return _GraphPool()


def _mode(cp, capture_error_mode: str):
    if capture_error_mode not in _MODES:
        raise ValueError(
            f"CUDAGraph.capture_begin: capture_error_mode must be one of {_MODES}, got "
            f"{capture_error_mode!r}"
        )
    names = {
        "global": "streamCaptureModeGlobal",
        "thread_local": "streamCaptureModeThreadLocal",
        "relaxed": "streamCaptureModeRelaxed",
    }
    return getattr(cp.cuda.runtime, names[capture_error_mode])


class CUDAGraph:
    """One captured CUDA graph: ``capture_begin()`` ... ``capture_end()`` on a non-default
    stream (or ``with ember.cuda.graph(g):``), then ``replay()`` as often as needed."""

    def __init__(self):
        self._graph = None
        self._pool = None
        self._stream = None
        self._allocator = None

    def capture_begin(self, pool=None, capture_error_mode: str = "relaxed") -> None:
        """Start capturing the work queued on the current stream (not the default stream);
        allocations come from ``pool`` (a new private pool when None)."""
        cp = _cupy()
        if self._stream is not None:
            raise RuntimeError("CUDAGraph.capture_begin: this graph is already capturing")
        mode = _mode(cp, capture_error_mode)
        s = cp.cuda.get_current_stream()
        if int(s.ptr) in (0, 1):  # the legacy default stream, by its two handles
            raise RuntimeError(
                "CUDAGraph.capture_begin: the current stream is the default stream, which "
                "cannot be captured; use `with ember.cuda.graph(g):` (a side stream) or "
                "`with ember.cuda.stream(ember.cuda.Stream()):`"
            )
        self._pool = graph_pool_handle() if pool is None else pool
        self._allocator = cp.cuda.using_allocator(self._pool._pool.malloc)
        self._allocator.__enter__()
        try:
            s.begin_capture(mode)
        except BaseException:
            self._allocator.__exit__(None, None, None)
            self._allocator = None
            raise
        self._stream = s

    def capture_end(self) -> None:
        """Stop capturing; the graph is ready to ``replay``."""
        if self._stream is None:
            raise RuntimeError("CUDAGraph.capture_end: capture_begin was not called")
        s, self._stream = self._stream, None
        try:
            self._graph = s.end_capture()
        finally:
            self._allocator.__exit__(None, None, None)
            self._allocator = None

    def replay(self) -> None:
        """Run the captured work again, on the current stream."""
        if self._graph is None:
            raise RuntimeError("CUDAGraph.replay: nothing has been captured")
        cp = _cupy()
        self._graph.launch(cp.cuda.get_current_stream())

    def reset(self) -> None:
        """Forget the captured graph and its pool (tensors captured from it stay valid while
        referenced; the pool's memory returns when they are gone)."""
        self._graph = None
        self._pool = None

    def pool(self):
        """The graph's memory pool, to share with another capture (``pool=g.pool()``)."""
        return self._pool


class graph:  # noqa: N801 - PyTorch's name for this context manager
    """``with ember.cuda.graph(g):`` captures the block's CUDA work into the CUDAGraph ``g``,
    on ``stream`` (a side stream when None), after synchronizing the GPU and collecting
    garbage so that freed memory is not captured as live."""

    _side_streams: dict = {}  # GPU index -> its side stream for captures, made on first use

    def __init__(self, cuda_graph, pool=None, stream=None, capture_error_mode: str = "relaxed"):
        from . import current_device
        from .streams import Stream

        if stream is None:
            index = current_device()
            stream = graph._side_streams.get(index)
            if stream is None:
                stream = graph._side_streams[index] = Stream(index)
        self.cuda_graph = cuda_graph
        self.pool = pool
        self.capture_stream = stream
        self.capture_error_mode = capture_error_mode
        self._ctx = None

    def __enter__(self):
        from . import synchronize
        from .streams import stream

        synchronize()
        gc.collect()
        self._ctx = stream(self.capture_stream)
        self._ctx.__enter__()
        try:
            self.cuda_graph.capture_begin(self.pool, self.capture_error_mode)
        except BaseException:
            self._ctx.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind, value, tb) -> None:
        try:
            if kind is None:
                self.cuda_graph.capture_end()
            else:  # the block failed: end the capture, and let the block's error through
                try:
                    self.cuda_graph.capture_end()
                except Exception:  # noqa: BLE001, S110 - the block's own error matters more
                    pass
        finally:
            self._ctx.__exit__(kind, value, tb)
