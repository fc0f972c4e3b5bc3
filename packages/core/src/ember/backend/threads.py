"""How many CPU threads ember's kernels use: ``ember.set_num_threads`` / ``get_num_threads``.

Two pools do CPU work: the BLAS library behind NumPy's matrix products, and ember's own pool
for blocked elementwise kernels (kernels/cpu/parallel.py). Both follow this setting."""

from __future__ import annotations

from ..kernels.cpu import parallel

_blas_limit = None


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for matrix products and ember's parallel kernels (PyTorch's
    ``torch.set_num_threads``). One thread is often fastest for small models, or when other
    processes share the cores (multithreaded BLAS then stalls on busy cores).

    >>> import ember
    >>> ember.set_num_threads(1); ember.get_num_threads()
    1
    """
    global _blas_limit
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n}")
    from threadpoolctl import threadpool_limits

    if _blas_limit is not None:
        _blas_limit.restore_original_limits()
    _blas_limit = threadpool_limits(n, user_api="blas")
    parallel.set_workers(n)


def get_num_threads() -> int:
    """The number of threads ember's CPU kernels use."""
    return parallel._WORKERS
