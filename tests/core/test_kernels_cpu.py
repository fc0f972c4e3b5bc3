"""The CPU fast paths against float64 references: GELU's normal CDF, the blocked row-wise
softmax and layer norm, and run_rows' blocking (sizes that do not divide the block size)."""

import numpy as np
import pytest
from scipy.special import ndtr

from ember.kernels.cpu import parallel, rowwise, special


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def workers(request):
    before = parallel._WORKERS
    parallel.set_workers(request.param)
    yield request.param
    parallel.set_workers(before)


def test_run_rows_covers_every_row_once(workers):
    n = parallel.CHUNK * 3 + 17  # uneven blocks and a short last chunk
    x = np.arange(n, dtype=np.float32)
    calls = []

    def kernel(out, a):
        calls.append(a.shape[0])
        np.multiply(a, 2, out=out)

    out = parallel.run_rows(kernel, np.full(n, np.nan, np.float32), x)
    np.testing.assert_array_equal(out, x * 2)
    assert sum(calls) == n and max(calls) <= parallel.CHUNK


def test_gelu_kernels_match_float64(workers):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 70000)) * 4).astype(np.float32)
    x[0, :5] = [0.0, -0.0, 30.0, -30.0, 1e-30]
    x64 = x.astype(np.float64)
    cdf64 = ndtr(x64)
    y, none = special.gelu_forward(x)
    assert none is None
    # A&S 7.1.26 in float32: Phi within ~1e-7, so x * Phi within |x| * 4e-7
    err = np.abs(y - x64 * cdf64) / np.maximum(np.abs(x64), 1e-30)
    assert err.max() < 4e-7
    y2, deriv = special.gelu_forward(x, with_grad=True)
    np.testing.assert_array_equal(y2, y)
    want_d = cdf64 + x64 * np.exp(-0.5 * x64 * x64) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(deriv, want_d, rtol=0, atol=1e-6)
    g = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(special.gelu_backward(g, deriv), g * want_d, rtol=1e-5, atol=1e-6)


def test_softmax_rows_match_float64(workers):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 50, 50)).astype(np.float32) * 5
    bias = np.where(np.tril(np.ones((50, 50), bool)), 0.0, -np.inf).astype(np.float32)
    z = x.astype(np.float64) + bias
    want = np.exp(z - z.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    y = rowwise.softmax_last(x, bias)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-7)
    g = rng.standard_normal(x.shape).astype(np.float32)
    want_g = want * (g - (g * want).sum(-1, keepdims=True))
    np.testing.assert_allclose(rowwise.softmax_last_grad(g, y), want_g, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("offset", [0.0, -100.0, 300.0])
def test_softmax_rows_unshifted_underflow_and_shifted(offset):
    """Inputs below 60 skip the max subtraction; rows whose exponentials underflow (all near
    -100) and inputs above 60 take the shifted path: all match float64."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((64, 33)) * 3).astype(np.float32)
    x[:5] += np.float32(offset)  # some rows far off, the rest ordinary
    z = x.astype(np.float64)
    want = np.exp(z - z.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    y = rowwise.softmax_last(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, want, rtol=2e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_softmax_rows_shift_where_exp_would_overflow(dtype):
    """20 is below the float32 no-shift bound but exp(20) overflows float16: half precision
    always subtracts the row max."""
    x = np.array([[20.0, 19.0, 0.0], [1.0, 2.0, 3.0]], dtype)
    z = x.astype(np.float64)
    want = np.exp(z - z.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    y = rowwise.softmax_last(x)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, want, rtol=2e-3 if dtype == np.float16 else 2e-6, atol=1e-6)


def test_layer_norm_rows_match_float64(workers):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((600, 2, 128)) * 3 + 1).astype(np.float32)
    w = rng.standard_normal(128).astype(np.float32)
    b = rng.standard_normal(128).astype(np.float32)
    x64 = x.astype(np.float64)
    mu = x64.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    xhat = (x64 - mu) * rstd
    out, got_xhat, got_rstd = rowwise.layer_norm(x, w, b, 1, 1e-5)
    np.testing.assert_allclose(out, xhat * w + b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_xhat, xhat, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_rstd, rstd, rtol=1e-5)
    g = rng.standard_normal(x.shape).astype(np.float32)
    gh = g * w
    want = rstd * (gh - gh.mean(-1, keepdims=True) - xhat * (gh * xhat).mean(-1, keepdims=True))
    got = rowwise.layer_norm_grad_x(g, w, got_xhat, got_rstd, 1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _conv_input_grad_ref(g, w, x_shape, padding):
    """Stride-1 input gradient by direct summation in float64: every output position sends
    g * w back to the inputs its window covered."""
    n, c, h, wd = x_shape
    o, _, kh, kw = w.shape
    ph, pw = padding
    dx = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    oh, ow = g.shape[2:]
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i : i + oh, j : j + ow] += np.einsum("nohw,oc->nchw", g, w[:, :, i, j])
    return dx[:, :, ph : ph + h, pw : pw + wd]


@pytest.mark.parametrize(
    "x_shape,o,k,padding",
    [
        ((2, 3, 6, 5), 4, (3, 3), (1, 1)),
        ((1, 2, 7, 7), 3, (5, 3), (2, 0)),
        ((3, 4, 4, 6), 2, (1, 1), (1, 2)),
    ],
)
def test_conv_input_grad_grid_and_col2im_match_float64(x_shape, o, k, padding):
    from ember.kernels.cpu import conv

    rng = np.random.default_rng(3)
    w = rng.standard_normal((o, x_shape[1], *k))
    oh = x_shape[2] + 2 * padding[0] - k[0] + 1
    ow = x_shape[3] + 2 * padding[1] - k[1] + 1
    g = rng.standard_normal((x_shape[0], o, oh, ow))
    ref = _conv_input_grad_ref(g, w, x_shape, padding)
    grid = conv._input_grad_on_grid(g, w, x_shape, padding)
    scatter = conv._input_grad_col2im(g, w, x_shape, (1, 1), padding, (1, 1), 1)
    np.testing.assert_allclose(grid, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scatter, ref, rtol=1e-12, atol=1e-12)
    assert grid.flags.c_contiguous and grid.shape == x_shape


def test_conv_grid_rule_prefers_col2im_for_tiny_maps_and_wide_layers():
    from ember.kernels.cpu import conv

    assert conv._grid_pays(64, (32, 64, 8, 8), (1, 1), (32, 64, 8, 8))
    assert not conv._grid_pays(512, (32, 512, 1, 1), (1, 1), (32, 512, 1, 1))


def test_pointwise_conv_kernels_match_einsum_float64():
    """1x1 convolutions on maps of >= 128 positions take per-sample products: forward, input
    gradient and weight gradient against einsum in float64."""
    from ember.kernels.cpu import conv

    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5, 12, 12))
    w = rng.standard_normal((4, 5, 1, 1))
    g = rng.standard_normal((3, 4, 12, 12))
    one, zero = (1, 1), (0, 0)
    assert conv._pointwise(x, w.shape, one, zero, 1)
    y, cols = conv.conv2d(x, w, one, zero, one, 1)
    assert cols is None and y.flags.c_contiguous
    np.testing.assert_allclose(y, np.einsum("nchw,oc->nohw", x, w[:, :, 0, 0]), rtol=1e-12)
    gx = conv.conv2d_input_grad(g, w, x.shape, one, zero, one, 1)
    np.testing.assert_allclose(gx, np.einsum("nohw,oc->nchw", g, w[:, :, 0, 0]), rtol=1e-12)
    gw = conv.conv2d_weight_grad(x, g, w.shape, one, zero, one, 1)
    np.testing.assert_allclose(gw[:, :, 0, 0], np.einsum("nohw,nchw->oc", g, x), rtol=1e-12)
    assert not conv._pointwise(x[:, :, :8, :8], w.shape, one, zero, 1)  # 64 positions


def test_per_sample_conv_matches_batch_path_and_float64_reference():
    """Maps of >= 512 output positions run one window matrix per sample (always without a
    weight gradient to feed, from 2048 positions with one): same results as the batch path."""
    from ember.kernels.cpu import conv

    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 24, 24))
    w = rng.standard_normal((5, 4, 3, 3))
    one = (1, 1)
    assert conv._large_maps(x, w.shape, one, one, one, 1)
    assert not conv._large_maps(x, w.shape, one, one, one, 1, conv._TRAIN_POSITIONS)
    y_sample, cols_none = conv.conv2d(x, w, one, one, one, 1, keep_cols=False)
    y_batch, cols = conv.conv2d(x, w, one, one, one, 1, keep_cols=True)
    assert cols_none is None and cols is not None
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros((2, 5, 24, 24))
    for i in range(3):
        for j in range(3):
            ref += np.einsum("nchw,oc->nohw", xp[:, :, i : i + 24, j : j + 24], w[:, :, i, j])
    np.testing.assert_allclose(y_sample, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y_batch, ref, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(ref.shape)
    gw_sample = conv.conv2d_weight_grad(x, g, w.shape, one, one, one, 1, None)
    gw_batch = conv.conv2d_weight_grad(x, g, w.shape, one, one, one, 1, cols)
    gw_ref = np.zeros(w.shape)
    for i in range(3):
        for j in range(3):
            gw_ref[:, :, i, j] = np.einsum("nohw,nchw->oc", g, xp[:, :, i : i + 24, j : j + 24])
    np.testing.assert_allclose(gw_sample, gw_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw_batch, gw_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_2x2_matches_general_kernel_with_ties(dtype):
    """Small integers make many windows hold their maximum twice or more: the 2x2 kernel's
    argmax must be the general kernel's first maximum in row-major order, every time."""
    from ember.kernels.cpu import pool, pool2x2

    rng = np.random.default_rng(8)
    x = rng.integers(-1, 3, (3, 4, 6, 8)).astype(dtype)
    cfg = ((2, 2), (2, 2), (0, 0), (1, 1))
    assert pool2x2.applies(x, *cfg, False)
    vals, idx = pool2x2.max_pool_2x2(x)
    ref_vals, padded = pool.max_pool(x, *cfg, False)
    np.testing.assert_array_equal(vals, ref_vals)
    np.testing.assert_array_equal(idx, pool.max_pool_indices(padded, ref_vals, *cfg[:2], cfg[3]))
    g = rng.standard_normal(vals.shape).astype(dtype)
    np.testing.assert_array_equal(
        pool2x2.scatter_2x2(g, idx), pool.scatter_first_max(g, padded, ref_vals, x.shape, *cfg)
    )
    x[0, 0, 0, 0] = np.nan  # NaN windows go back to the general rule
    assert pool2x2.max_pool_2x2(x)[1] is None


def test_scratch_buffers_are_reused_per_thread_and_not_shared():
    import threading

    a1, b1 = parallel.scratch(np.float32, 1000)
    a2, _ = parallel.scratch(np.float32, 500)
    assert a1.shape == (1000,) and a2.shape == (500,) and b1.dtype == np.float32
    assert np.shares_memory(a1, a2) and not np.shares_memory(a1, b1)  # reused, two buffers
    other = []
    t = threading.Thread(target=lambda: other.extend(parallel.scratch(np.float32, 1000)))
    t.start()
    t.join()
    assert not any(np.shares_memory(a1, o) for o in other)  # another thread's own buffers
