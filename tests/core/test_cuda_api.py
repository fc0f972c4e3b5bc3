"""ember.cuda and ember.backends: every function exists and behaves cleanly without CuPy."""

import importlib.util

import pytest

import ember
import ember.backends as backends

HAS_GPU = ember.cuda.is_available()
no_gpu = pytest.mark.skipif(HAS_GPU, reason="checks the behaviour without a GPU")

FUNCTIONS = [
    "is_available",
    "device_count",
    "synchronize",
    "manual_seed",
    "manual_seed_all",
    "memory_allocated",
    "max_memory_allocated",
    "memory_reserved",
    "reset_peak_memory_stats",
    "empty_cache",
    "current_device",
    "set_device",
    "get_device_name",
    "current_stream",
    "default_stream",
    "graph_pool_handle",
    "Stream",
    "Event",
    "stream",
    "CUDAGraph",
    "graph",
]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_exists_with_docstring(name):
    fn = getattr(ember.cuda, name)
    assert callable(fn) and fn.__doc__


@no_gpu
def test_queries_without_gpu_are_zero_or_noop():
    assert ember.cuda.device_count() == 0
    assert ember.cuda.memory_allocated() == 0
    assert ember.cuda.max_memory_allocated() == 0
    assert ember.cuda.memory_reserved() == 0
    assert ember.cuda.reset_peak_memory_stats() is None
    assert ember.cuda.empty_cache() is None
    assert ember.cuda.synchronize() is None
    assert ember.cuda.manual_seed(0) is None


@no_gpu
@pytest.mark.parametrize(
    "call",
    [
        lambda: ember.cuda.current_device(),
        lambda: ember.cuda.set_device(0),
        lambda: ember.cuda.get_device_name(),
        lambda: ember.cuda.get_device_name(0),
        lambda: ember.cuda.Stream(),
        lambda: ember.cuda.Event(enable_timing=True),
        lambda: ember.cuda.current_stream(),
        lambda: ember.cuda.default_stream(),
        lambda: ember.cuda.graph_pool_handle(),
        lambda: ember.cuda.CUDAGraph().capture_begin(),
        lambda: ember.cuda.graph(ember.cuda.CUDAGraph()),
    ],
)
def test_device_selection_without_gpu_raises_naming_cupy(call):
    with pytest.raises(RuntimeError, match="CuPy"):
        call()


@pytest.mark.skipif(not HAS_GPU, reason="needs a GPU")
def test_memory_stats_on_gpu():  # pragma: no cover - GPU machines only
    ember.cuda.empty_cache()
    ember.cuda.reset_peak_memory_stats()
    before = ember.cuda.memory_allocated()
    x = ember.ones(1024, 1024, device="cuda")
    assert ember.cuda.memory_allocated() >= before + 4 * 1024 * 1024
    del x
    assert ember.cuda.max_memory_allocated() >= before + 4 * 1024 * 1024
    assert isinstance(ember.cuda.get_device_name(), str)
    assert ember.cuda.current_device() == 0


def test_tf32_defaults_match_pytorch():
    assert backends.cuda.matmul.allow_tf32 is False
    assert backends.cudnn.allow_tf32 is True
    assert backends.cudnn.benchmark is False
    assert backends.cudnn.deterministic is False
    assert backends.get_float32_matmul_precision() == "highest"


def test_allow_tf32_and_matmul_precision_are_one_switch(monkeypatch):
    monkeypatch.delenv("CUPY_TF32", raising=False)
    try:
        backends.cuda.matmul.allow_tf32 = True
        assert backends.get_float32_matmul_precision() == "high"
        backends.set_float32_matmul_precision("highest")
        assert backends.cuda.matmul.allow_tf32 is False
        backends.set_float32_matmul_precision("medium")
        assert backends.cuda.matmul.allow_tf32 is True
        import os

        assert os.environ["CUPY_TF32"] == "1"  # read by CuPy for float32 GEMMs
    finally:
        backends.set_float32_matmul_precision("highest")
    with pytest.raises(RuntimeError, match="precision"):
        backends.set_float32_matmul_precision("low")


def test_cuda_backend_queries():
    assert backends.cuda.is_built() == (importlib.util.find_spec("cupy") is not None)
    available = backends.cudnn.is_available()
    assert isinstance(available, bool)
    assert (backends.cudnn.version() is None) == (not available)
