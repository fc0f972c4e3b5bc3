"""ember.cuda's streams, events and CUDA graphs on a stand-in ``cupy`` that records what it is
asked: the order of stream switches, allocator switches and capture calls, and every error
path, without a GPU. The GPU tests (test_cuda_graphs.py) run the same API on a device."""

import sys
import types

import pytest

import ember


class _Stream:
    def __init__(self, book, ptr=None, non_blocking=False, priority=None):
        self.book, self.capturing, self.priority = book, False, priority
        self.ptr = ptr if ptr is not None else 0x1000 + len(book.streams)
        book.streams.append(self)

    def __enter__(self):
        self.book.current.append(self)
        self.book.log.append(("enter stream", self.ptr))
        return self

    def __exit__(self, *exc):
        self.book.current.pop()
        self.book.log.append(("leave stream", self.ptr))

    def begin_capture(self, mode):
        if self.book.fail_capture:
            raise RuntimeError("stand-in: capture refused")
        self.capturing = True
        self.book.log.append(("begin capture", self.ptr, mode))

    def end_capture(self):
        self.capturing = False
        self.book.log.append(("end capture", self.ptr))
        return types.SimpleNamespace(
            launch=lambda stream: self.book.log.append(("launch", stream.ptr))
        )

    def is_capturing(self):
        return self.capturing

    def wait_event(self, event):
        self.book.log.append(("wait", self.ptr, event.recorded_on))

    def synchronize(self):
        self.book.log.append(("sync stream", self.ptr))

    done = True


class _Event:
    def __init__(self, book, block=False, disable_timing=False, interprocess=False):
        self.book, self.timing, self.recorded_on = book, not disable_timing, None

    def record(self, stream=None):
        self.recorded_on = (stream or self.book.now()).ptr


def _stand_in():
    """A recording ``cupy`` with one GPU; returns (module, book)."""
    book = types.SimpleNamespace(log=[], streams=[], current=[], fail_capture=False)
    null = _Stream(book, ptr=0)
    book.now = lambda: book.current[-1] if book.current else null

    class Pool:
        def malloc(self, n):  # pragma: no cover - only its identity matters here
            raise AssertionError

        used_bytes = total_bytes = staticmethod(lambda: 0)

    class Allocating:
        def __init__(self, fn):
            self.fn = fn

        def __enter__(self):
            book.log.append(("allocator", self.fn.__self__))

        def __exit__(self, *exc):
            book.log.append(("allocator restored",))

    class Device:
        def __init__(self, index=0):
            pass

        __enter__ = __exit__ = lambda *a: None

        def synchronize(self):
            book.log.append(("sync device",))

    stream_cls = type("Stream", (), {"__new__": lambda cls, **kw: _Stream(book, **kw)})
    stream_cls.null = null
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDevice=lambda: 0,
        streamCaptureModeGlobal=0,
        streamCaptureModeThreadLocal=1,
        streamCaptureModeRelaxed=2,
    )
    cuda = types.SimpleNamespace(
        runtime=runtime,
        Device=Device,
        Stream=stream_cls,
        Event=lambda **kw: _Event(book, **kw),
        MemoryPool=Pool,
        using_allocator=Allocating,
        get_current_stream=book.now,
        get_elapsed_time=lambda a, b: 1.5,
    )
    return types.SimpleNamespace(cuda=cuda), book


@pytest.fixture
def book(monkeypatch):
    mod, book = _stand_in()
    monkeypatch.setitem(sys.modules, "cupy", mod)
    monkeypatch.setattr(ember.cuda.graph, "_side_streams", {})
    return book


def test_graph_context_captures_on_a_side_stream_into_a_private_pool(book):
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g) as ctx:
        side = book.now().ptr
        assert side != 0 and book.now().is_capturing()
    pool = g.pool()._pool
    assert book.log == [
        ("sync device",),
        ("enter stream", side),
        ("allocator", pool),
        ("begin capture", side, 2),  # relaxed: CuPy's pool may cudaMalloc while capturing
        ("end capture", side),
        ("allocator restored",),
        ("leave stream", side),
    ]
    assert ctx.capture_stream.cuda_stream == side and book.now().ptr == 0
    book.log.clear()
    g.replay()  # on the stream current at replay time
    assert book.log == [("launch", 0)]
    with ember.cuda.graph(ember.cuda.CUDAGraph(), pool=g.pool()):  # shared pool, same stream
        pass
    assert ("allocator", pool) in book.log and ("begin capture", side, 2) in book.log


def test_capture_on_the_default_stream_is_refused_before_anything_changes(book):
    with pytest.raises(RuntimeError, match="default stream"):
        ember.cuda.CUDAGraph().capture_begin()
    assert book.log == []


def test_capture_error_mode_is_checked(book):
    with ember.cuda.stream(ember.cuda.Stream()):
        with pytest.raises(ValueError, match="capture_error_mode"):
            ember.cuda.CUDAGraph().capture_begin(capture_error_mode="strict")
        ember.cuda.CUDAGraph().capture_begin(capture_error_mode="global")
    assert book.log[-2][0] == "begin capture" and book.log[-2][2] == 0


def test_a_refused_capture_restores_the_allocator_and_the_stream(book):
    book.fail_capture = True
    with pytest.raises(RuntimeError, match="capture refused"):
        with ember.cuda.graph(ember.cuda.CUDAGraph()):
            pass  # pragma: no cover - capture_begin fails first
    assert [e[0] for e in book.log][-2:] == ["allocator restored", "leave stream"]
    assert book.now().ptr == 0


def test_an_error_inside_the_captured_block_propagates_and_everything_is_restored(book):
    g = ember.cuda.CUDAGraph()
    with pytest.raises(KeyError, match="inside"):
        with ember.cuda.graph(g):
            raise KeyError("inside")
    assert [e[0] for e in book.log][-3:] == ["end capture", "allocator restored", "leave stream"]
    assert book.now().ptr == 0


def test_replay_and_end_without_capture_raise(book):
    g = ember.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="nothing has been captured"):
        g.replay()
    with pytest.raises(RuntimeError, match="capture_begin was not called"):
        g.capture_end()
    with ember.cuda.stream(ember.cuda.Stream()):
        g.capture_begin()
        with pytest.raises(RuntimeError, match="already capturing"):
            g.capture_begin()
        g.capture_end()
    assert [e[0] for e in book.log].count("begin capture") == 1


def test_streams_and_events(book):
    s = ember.cuda.Stream()
    assert ember.cuda.current_stream() == ember.cuda.default_stream()
    with ember.cuda.stream(s):
        assert ember.cuda.current_stream() == s
        with ember.cuda.stream(None):  # None changes nothing
            assert ember.cuda.current_stream() == s
    assert ember.cuda.current_stream().cuda_stream == 0
    other = ember.cuda.Stream()
    s.wait_stream(other)  # an event recorded on `other`, waited on by `s`
    assert book.log[-1] == ("wait", s.cuda_stream, other.cuda_stream)
    start, end = ember.cuda.Event(enable_timing=True), ember.cuda.Event(enable_timing=True)
    start.record()
    end.record(s)
    assert (start._e.recorded_on, end._e.recorded_on) == (0, s.cuda_stream)
    assert start.elapsed_time(end) == 1.5
    with pytest.raises(RuntimeError, match="enable_timing=True"):
        ember.cuda.Event().elapsed_time(end)
    assert s.query() and "cuda:0" in repr(s) and s.device == ember.device("cuda:0")
