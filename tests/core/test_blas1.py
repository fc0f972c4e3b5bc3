"""kernels/cpu/blas1.py: axpy and scal in NumPy's own BLAS, or an honest refusal."""

import numpy as np
import pytest

from ember.kernels.cpu import blas1

pytestmark = pytest.mark.skipif(
    not blas1.usable(np.zeros(2, np.float32)), reason="NumPy is not linked to scipy-openblas"
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 16, 33, 1000, 70_001])
def test_axpy_is_one_fused_multiply_add(dtype, n):
    rng = np.random.default_rng(n)
    x, y = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    a = -0.01
    # y + a*x rounded once: exact in a wider type for float32; for float64 use the identity
    # that fma's error is below half an ulp of the result, i.e. at most the two-step error
    expect = y.astype(np.float64) + np.float64(dtype(a)) * x.astype(np.float64)
    out = y.copy()
    assert blas1.axpy(a, x, out)
    if dtype == np.float32:
        np.testing.assert_array_equal(out, expect.astype(np.float32))
    else:
        np.testing.assert_allclose(out, y + a * x, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scal_matches_numpy(dtype):
    x = np.random.default_rng(0).standard_normal(1001).astype(dtype)
    out = x.copy()
    assert blas1.scal(0.9, out)
    np.testing.assert_array_equal(out, x * dtype(0.9))


def test_refuses_what_blas_cannot_take():
    x = np.ones(8, np.float32)
    assert not blas1.axpy(1.0, x[::2], np.ones(4, np.float32))  # strided
    assert not blas1.axpy(1.0, x, np.ones(8, np.float64))  # mixed dtypes
    assert not blas1.axpy(1.0, x, x)  # aliased
    assert not blas1.scal(2.0, np.ones(4, np.float16))  # no half-precision BLAS
    assert not blas1.usable(x, x[:8])  # overlapping arrays
    np.testing.assert_array_equal(x, np.ones(8, np.float32))  # nothing was touched
