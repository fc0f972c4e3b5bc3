"""Stacked products through OpenBLAS's batched GEMM (kernels/cpu/gemm_batch.py) against
float64 NumPy products, for every operand layout it takes, and the cases it hands back to
NumPy (None), which ``ember.matmul`` then computes."""

import numpy as np
import pytest

import ember
from ember.kernels.cpu import gemm_batch

R = np.random.default_rng(7)
HAS_BATCH = gemm_batch._function(np.dtype(np.float32)) is not None
needs_batch = pytest.mark.skipif(not HAS_BATCH, reason="this NumPy's BLAS has no batched GEMM")


def _stack(shape, dtype, transposed=False):
    """Random ``shape`` array; ``transposed``: stored with its last two axes swapped."""
    if transposed:
        base = R.standard_normal(shape[:-2] + (shape[-1], shape[-2])).astype(dtype)
        return base.swapaxes(-1, -2)
    return R.standard_normal(shape).astype(dtype)


def _heads(b, s, h, d, dtype):
    """(B, H, S, D) heads split from a (B, S, H, D) buffer: batch dims share no one stride."""
    return R.standard_normal((b, s, h, d)).astype(dtype).transpose(0, 2, 1, 3)


LAYOUTS = {  # every product has m * n * k >= 2**20 (gemm_batch._MIN_MNK)
    "contiguous": lambda dt: (_stack((3, 128, 64), dt), _stack((3, 64, 128), dt)),
    "a transposed": lambda dt: (_stack((3, 128, 64), dt, True), _stack((3, 64, 128), dt)),
    "b transposed": lambda dt: (_stack((2, 2, 64, 128), dt), _stack((2, 2, 128, 128), dt, True)),
    "both transposed": lambda dt: (_stack((3, 128, 64), dt, True), _stack((3, 64, 128), dt, True)),
    "heads, q @ k^T": lambda dt: (
        _heads(2, 128, 3, 64, dt),
        _heads(2, 128, 3, 64, dt).swapaxes(-1, -2),
    ),
    "heads, p @ v": lambda dt: (_stack((2, 3, 128, 128), dt), _heads(2, 128, 3, 64, dt)),
    "5-D": lambda dt: (_stack((2, 2, 2, 128, 64), dt), _stack((2, 2, 2, 64, 128), dt)),
}


@needs_batch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_batched_product_matches_float64(layout, dtype):
    a, b = LAYOUTS[layout](dtype)
    out = gemm_batch.matmul(a, b)
    assert out is not None and out.dtype == dtype and out.flags.c_contiguous
    want = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol)


DECLINED = {
    "small products": (R.standard_normal((6, 100, 100)), R.standard_normal((6, 100, 100))),
    "2-D": (R.standard_normal((5, 7)), R.standard_normal((7, 4))),
    "broadcast batch": (R.standard_normal((3, 128, 64)), R.standard_normal((1, 64, 128))),
    "mixed dtypes": (_stack((3, 128, 64), np.float32), _stack((3, 64, 128), np.float64)),
    "integers": (R.integers(0, 5, (3, 128, 64)), R.integers(0, 5, (3, 64, 128))),
    "single product": (R.standard_normal((1, 128, 64)), R.standard_normal((1, 64, 128))),
    "vector rows": (R.standard_normal((3, 1, 2**20)), R.standard_normal((3, 2**20, 2))),
    "no unit stride": (R.standard_normal((3, 128, 128))[..., ::2], R.standard_normal((3, 64, 128))),
    "empty": (np.zeros((6, 5, 0)), np.zeros((6, 0, 4))),
    "reversed batch": (R.standard_normal((3, 128, 64))[::-1], R.standard_normal((3, 64, 128))),
}


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_what_it_cannot_describe_goes_back_to_numpy(case):
    a, b = DECLINED[case]
    assert gemm_batch.matmul(a, b) is None
    got = ember.matmul(ember.tensor(a), ember.tensor(b)).numpy()  # NumPy computes it
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-6)


@needs_batch
def test_attention_products_and_their_gradients_go_through_it(monkeypatch):
    """Scaled dot-product attention's four backward and two forward products are batched
    calls (heads split from one buffer included), and the gradients match float64."""
    calls = []
    real = gemm_batch._call
    monkeypatch.setattr(gemm_batch, "_call", lambda *a: calls.append(a[-1]) or real(*a))
    qkv = R.standard_normal((2, 128, 3, 2, 64))  # (B, S, 3, H, D): 128x64x128 products
    t = ember.tensor(qkv.astype(np.float32), requires_grad=True)
    q, k, v = (t[:, :, i].transpose(1, 2) for i in range(3))  # (B, H, S, D) views
    y = ember.nn.functional.scaled_dot_product_attention(q, k, v)
    y.sum().backward()
    assert len(calls) >= 6
    q64, k64, v64 = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    s = q64 @ k64.swapaxes(-1, -2) / np.sqrt(64)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(y.detach().numpy(), p @ v64, rtol=1e-4, atol=1e-5)
    gv = p.swapaxes(-1, -2) @ np.ones_like(v64)
    np.testing.assert_allclose(
        t.grad.numpy()[:, :, 2], gv.transpose(0, 2, 1, 3), rtol=1e-4, atol=1e-5
    )


@needs_batch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("out_layout", ["contiguous", "heads"])
def test_out_and_alpha_write_the_scaled_product_into_a_given_layout(dtype, out_layout):
    a = _heads(2, 128, 3, 64, dtype)  # (2, 3, 128, 64)
    b = _stack((2, 3, 64, 128), dtype, True)
    if out_layout == "heads":
        buf = np.full((2, 128, 3, 128), np.nan, dtype)
        out = buf.transpose(0, 2, 1, 3)  # (B, H, L, N) view: no one batch stride
    else:
        out = np.full((2, 3, 128, 128), np.nan, dtype)
    got = gemm_batch.matmul(a, b, out=out, alpha=0.125)
    assert got is out
    want = 0.125 * (a.astype(np.float64) @ b.astype(np.float64))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol)


@needs_batch
def test_an_out_it_cannot_describe_is_declined_untouched():
    a, b = _stack((3, 128, 64), np.float32), _stack((3, 64, 128), np.float32)
    for out in (
        np.zeros((3, 128, 128), np.float64),  # dtype
        np.zeros((3, 128, 256), np.float32)[..., ::2],  # no unit stride along rows
        np.zeros((3, 128, 129), np.float32),  # shape
    ):
        before = out.copy()
        assert gemm_batch.matmul(a, b, out=out) is None
        np.testing.assert_array_equal(out, before)
