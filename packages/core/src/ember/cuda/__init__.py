"""``ember.cuda``: GPU queries, streams and events (streams.py) and CUDA graphs (graphs.py).
CuPy is imported only when asked; without it, no GPU."""

from __future__ import annotations

import sys


def _cupy():
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def is_available() -> bool:
    """True when CuPy is installed and sees at least one NVIDIA GPU."""
    return device_count() > 0


def device_count() -> int:
    """Number of visible GPUs (0 without CuPy)."""
    cp = _cupy()
    if cp is None:
        return 0
    try:
        return int(cp.cuda.runtime.getDeviceCount())
    except Exception:  # noqa: BLE001 - no driver means no devices
        return 0


def synchronize(device=None) -> None:
    """Wait for all queued GPU work to finish."""
    cp = _cupy()
    if cp is not None and is_available():
        cp.cuda.Device().synchronize()


def manual_seed(seed: int) -> None:
    """Seed the GPU random generator."""
    cp = _cupy()
    if cp is not None and is_available():
        cp.random.seed(int(seed) & 0xFFFFFFFF)


manual_seed_all = manual_seed


_NO_CUDA = (
    "ember was not given CUDA: install CuPy (pip install 'ember[cuda]') on a machine with an "
    "NVIDIA GPU"
)
_PEAK = {}  # device index -> highest memory_allocated seen since the last reset


def _require():
    """CuPy, or a RuntimeError naming it when CuPy or a GPU is missing."""
    cp = _cupy()
    if cp is None or device_count() == 0:
        raise RuntimeError(_NO_CUDA)
    return cp


def _index(device) -> int:
    """A device argument (None, int, "cuda:1", ember.device) as a GPU index."""
    if device is None:
        return current_device()
    if isinstance(device, int):
        return device
    from ..backend.device import to_device

    d = to_device(device)
    if d.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {d}")
    return current_device() if d.index is None else d.index


def current_device() -> int:
    """Index of the selected GPU; raises RuntimeError without CuPy or a GPU."""
    return int(_require().cuda.runtime.getDevice())


def set_device(device) -> None:
    """Select the GPU that new CUDA work runs on; raises RuntimeError without CuPy or a GPU."""
    cp = _require()
    cp.cuda.runtime.setDevice(_index(device))


def get_device_name(device=None) -> str:
    """The GPU's marketing name, e.g. ``"NVIDIA H200"``."""
    cp = _require()
    name = cp.cuda.runtime.getDeviceProperties(_index(device))["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def memory_allocated(device=None) -> int:
    """Bytes held by live CUDA tensors (CuPy's default memory pool); 0 without CuPy.

    >>> import ember
    >>> ember.cuda.memory_allocated() >= 0
    True
    """
    cp = _cupy()
    if cp is None or device_count() == 0:
        return 0
    idx = _index(device)
    with cp.cuda.Device(idx):
        used = int(cp.get_default_memory_pool().used_bytes())
    if used > _PEAK.get(idx, 0):
        _PEAK[idx] = used
    return used


def max_memory_allocated(device=None) -> int:
    """The highest ``memory_allocated`` seen since the last ``reset_peak_memory_stats``.

    CuPy's pool is polled, not hooked: the peak is the largest value seen by a call to this
    function or to ``memory_allocated``, so a spike between two calls is missed. 0 without CuPy.
    """
    used = memory_allocated(device)
    if _cupy() is None or device_count() == 0:
        return 0
    return max(_PEAK.get(_index(device), 0), used)


def memory_reserved(device=None) -> int:
    """Bytes CuPy's pool holds from the driver (used and cached); 0 without CuPy."""
    cp = _cupy()
    if cp is None or device_count() == 0:
        return 0
    with cp.cuda.Device(_index(device)):
        return int(cp.get_default_memory_pool().total_bytes())


def reset_peak_memory_stats(device=None) -> None:
    """Start peak tracking afresh from the current allocation; a no-op without CuPy."""
    cp = _cupy()
    if cp is None or device_count() == 0:
        return
    idx = _index(device)
    _PEAK[idx] = 0
    memory_allocated(idx)


def empty_cache() -> None:
    """Give cached, unused GPU blocks back to the driver; a no-op without CuPy."""
    cp = _cupy()
    if cp is None or device_count() == 0:
        return
    graphs = sys.modules.get("ember.kernels.cuda.cudnn_graphs")
    if graphs is not None:  # cuDNN's cached workspaces go back too
        graphs.release_workspaces()
    cp.get_default_memory_pool().free_all_blocks()
    cp.get_default_pinned_memory_pool().free_all_blocks()


from .graphs import CUDAGraph, graph, graph_pool_handle  # noqa: E402
from .streams import Event, Stream, current_stream, default_stream, stream  # noqa: E402
