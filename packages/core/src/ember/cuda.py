"""``ember.cuda``: GPU queries. CuPy is imported only when asked; without it, no GPU."""

from __future__ import annotations


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
