"""CUDA streams and events, named and behaving as PyTorch's ``torch.cuda.Stream``, ``Event``,
``stream``, ``current_stream`` and ``default_stream``, on CuPy's.

Every CUDA op in ember (CuPy's kernels, ember's own, cuBLAS and cuDNN calls) is queued on CuPy's
current stream, so ``with ember.cuda.stream(s):`` moves all of them onto ``s``. CuPy's memory
pool keeps a block freed on one stream for that stream, which is what PyTorch's
``record_stream`` is for; ember has no ``record_stream``.
"""

from __future__ import annotations


def _cuda():
    from . import _index, _require

    return _require(), _index


class Stream:
    """A CUDA stream on one GPU (``device``: None for the current one, an index or
    ``"cuda:N"``). ``priority`` below 0 asks for a higher priority, as in PyTorch, where
    CuPy's streams take one; it is a scheduling hint, and CuPy versions without stream
    priorities give a stream of the normal priority."""

    def __init__(self, device=None, priority: int = 0):
        cp, index = _cuda()
        self._index = index(device)
        with cp.cuda.Device(self._index):
            try:
                kw = {"priority": int(priority)} if priority else {}
                self._s = cp.cuda.Stream(non_blocking=False, **kw)
            except TypeError:  # this CuPy's Stream takes no priority
                self._s = cp.cuda.Stream(non_blocking=False)

    @classmethod
    def _wrap(cls, cupy_stream, index: int) -> Stream:
        s = cls.__new__(cls)
        s._s, s._index = cupy_stream, index
        return s

    @property
    def device(self):
        """The GPU the stream belongs to, as an ``ember.device``."""
        from ..backend.device import to_device

        return to_device(f"cuda:{self._index}")

    @property
    def cuda_stream(self) -> int:
        """The raw ``cudaStream_t`` value (0 for the legacy default stream)."""
        return int(self._s.ptr)

    def synchronize(self) -> None:
        """Wait until all work queued on this stream has finished."""
        self._s.synchronize()

    def query(self) -> bool:
        """True when all work queued on this stream has finished."""
        return bool(self._s.done)

    def wait_event(self, event: Event) -> None:
        """Make work queued on this stream from now on wait for ``event``."""
        self._s.wait_event(event._e)

    def wait_stream(self, stream: Stream) -> None:
        """Make work queued on this stream from now on wait for what ``stream`` has queued."""
        self.wait_event(stream.record_event())

    def record_event(self, event: Event | None = None) -> Event:
        """Record ``event`` (a new one when None) on this stream and return it."""
        event = Event() if event is None else event
        event.record(self)
        return event

    def __eq__(self, other) -> bool:
        return isinstance(other, Stream) and (self._index, self.cuda_stream) == (
            other._index,
            other.cuda_stream,
        )

    def __hash__(self) -> int:
        return hash((self._index, self.cuda_stream))

    def __repr__(self) -> str:
        return f"<ember.cuda.Stream device=cuda:{self._index} cuda_stream={self.cuda_stream:#x}>"


class Event:
    """A CUDA event: a marker in a stream's queue to wait on or to time
    (``enable_timing=True``, then ``start.elapsed_time(end)`` in milliseconds)."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess=False):
        cp, _ = _cuda()
        self.enable_timing = bool(enable_timing)
        self._e = cp.cuda.Event(
            block=bool(blocking), disable_timing=not enable_timing, interprocess=bool(interprocess)
        )

    def record(self, stream: Stream | None = None) -> None:
        """Record the event on ``stream`` (the current stream when None)."""
        self._e.record(None if stream is None else stream._s)

    def wait(self, stream: Stream | None = None) -> None:
        """Make ``stream`` (the current stream when None) wait for this event."""
        (current_stream() if stream is None else stream).wait_event(self)

    def query(self) -> bool:
        """True when the work before the recorded event has finished."""
        return bool(self._e.done)

    def synchronize(self) -> None:
        """Wait until the work before the recorded event has finished."""
        self._e.synchronize()

    def elapsed_time(self, end_event: Event) -> float:
        """Milliseconds between this event and ``end_event``, both recorded and created with
        ``enable_timing=True``."""
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError(
                "Event.elapsed_time: both events must be created with enable_timing=True"
            )
        cp, _ = _cuda()
        return float(cp.cuda.get_elapsed_time(self._e, end_event._e))

    def __repr__(self) -> str:
        return f"<ember.cuda.Event enable_timing={self.enable_timing}>"


def current_stream(device=None) -> Stream:
    """The stream ember's CUDA ops are queued on now, for ``device`` (the current GPU when
    None)."""
    cp, index = _cuda()
    idx = index(device)
    with cp.cuda.Device(idx):
        return Stream._wrap(cp.cuda.get_current_stream(), idx)


def default_stream(device=None) -> Stream:
    """The legacy default stream of ``device`` (the current GPU when None)."""
    cp, index = _cuda()
    return Stream._wrap(cp.cuda.Stream.null, index(device))


class stream:  # noqa: N801 - PyTorch's name for this context manager
    """``with ember.cuda.stream(s):`` queues the block's CUDA work on ``s`` (None: no change)
    and restores the previous stream after it."""

    def __init__(self, stream: Stream | None):
        self.stream = stream
        self._active = None

    def __enter__(self):
        if self.stream is not None:
            self._active = self.stream._s
            self._active.__enter__()
        return self.stream

    def __exit__(self, *exc) -> None:
        if self._active is not None:
            active, self._active = self._active, None
            active.__exit__(*exc)
