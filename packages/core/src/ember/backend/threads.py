"""How many CPU threads ember's kernels use: ``ember.set_num_threads`` / ``get_num_threads``.

Two pools do CPU work: the BLAS library behind NumPy's matrix products, and ember's own pool
for blocked elementwise kernels (kernels/cpu/parallel.py). Both follow this setting."""

from __future__ import annotations

from ..kernels.cpu import parallel

_numpy_blas = []  # [list of threadpoolctl controllers], found once


def _numpy_blas_controllers() -> list:
    """The BLAS libraries NumPy computes with (not another framework's in the same process)."""
    if not _numpy_blas:
        from threadpoolctl import ThreadpoolController

        blas = ThreadpoolController().select(user_api="blas").lib_controllers
        own = [c for c in blas if "numpy" in c.filepath or "scipy_openblas" in c.filepath]
        _numpy_blas.append(own or blas)  # a NumPy linked to a system BLAS: every BLAS found
    return _numpy_blas[0]


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for matrix products and ember's parallel kernels (PyTorch's
    ``torch.set_num_threads``). One thread is often fastest for small models, or when other
    processes share the cores (multithreaded BLAS then stalls on busy cores). Only the BLAS
    that NumPy uses is changed: a PyTorch or other library in the same process keeps its own
    thread settings.

    >>> import ember
    >>> ember.set_num_threads(1); ember.get_num_threads()
    1
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n}")
    for controller in _numpy_blas_controllers():
        controller.set_num_threads(n)
    parallel.set_workers(n)


def get_num_threads() -> int:
    """The number of threads ember's CPU kernels use."""
    return parallel._WORKERS
