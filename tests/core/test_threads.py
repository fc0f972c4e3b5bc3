"""ember.set_num_threads / get_num_threads: both the BLAS pool and ember's own pool follow."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import ember
from ember.kernels.cpu import parallel


def _blas_threads():
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_set_num_threads_limits_blas_and_own_pool():
    before = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        assert ember.get_num_threads() == 1
        assert _blas_threads() == {1}
        x = np.arange(1 << 18, dtype=np.float32)
        out = parallel.run_rows(lambda o, a: np.multiply(a, 2, out=o), np.empty_like(x), x)
        np.testing.assert_array_equal(out, x * 2)
        ember.set_num_threads(2)
        assert ember.get_num_threads() == 2
        assert _blas_threads() == {2}
        out = parallel.run_rows(lambda o, a: np.multiply(a, 3, out=o), np.empty_like(x), x)
        np.testing.assert_array_equal(out, x * 3)
    finally:
        ember.set_num_threads(before)


def test_set_num_threads_rejects_nonpositive():
    with pytest.raises(ValueError, match="set_num_threads"):
        ember.set_num_threads(0)
