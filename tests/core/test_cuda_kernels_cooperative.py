"""ember's CUDA kernels that need their threads to cooperate (block sums in shared memory,
``__syncthreads``, warp shuffles), run on the CPU (cuda_emulation.py): each CUDA thread of a
block is an OS thread, ``__syncthreads`` a barrier over the block, and ``__shfl_xor_sync`` an
exchange through one slot per thread between two barriers of the warp. Blocks run in turn.
This checks the reductions of batch norm (both layouts), softmax and layer norm against
float64 NumPy where no GPU is lent; the @gpu tests run them for real. Needs g++."""

import ctypes
import shutil

import numpy as np
import pytest
from cuda_emulation import COOP_LAUNCH, COOP_SHIM, F64, I32, I64, builder
from cuda_emulation import run_blocks as launch

from ember.kernels.cuda import batchnorm, rowwise

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

R = np.random.default_rng(21)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return builder(tmp_path_factory.mktemp("coop"), COOP_SHIM, COOP_LAUNCH)


def ptr(a):
    return ctypes.c_void_p(a.ctypes.data)


def _bn_reference(x, g, w, b, eps):
    ax, cs = (0, 2, 3), (1, x.shape[1], 1, 1)
    mu, var = x.mean(ax), x.var(ax)
    xhat = (x - mu.reshape(cs)) / np.sqrt(var.reshape(cs) + eps)
    y = xhat * w.reshape(cs) + b.reshape(cs)
    gh = g * w.reshape(cs)
    gx = (gh - gh.mean(ax, keepdims=True) - xhat * (gh * xhat).mean(ax, keepdims=True)) / np.sqrt(
        var.reshape(cs) + eps
    )
    return y, mu, var, gx, (g * xhat).sum(ax), g.sum(ax)


@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_norm_forward_and_backward_pipelines(build, channels_last):
    """The wrappers' launch sequence (sums -> per-channel -> affine, both ways) with a large
    mean (the shifted sums) and a channel count over one 32-channel tile."""
    lib = build(batchnorm._SOURCE, "float32")
    n, c, h, w = 3, 36, 5, 4
    x64 = R.standard_normal((n, c, h, w)) * 2 + 40
    g64 = R.standard_normal((n, c, h, w))
    w64, b64 = R.standard_normal(c), R.standard_normal(c)
    x, g = x64.astype(np.float32), g64.astype(np.float32)
    wf, bf = w64.astype(np.float32), b64.astype(np.float32)
    mem = (
        (lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1)))
        if channels_last
        else (np.ascontiguousarray)
    )
    back = (lambda a: a.transpose(0, 3, 1, 2)) if channels_last else (lambda a: a)
    xm, gm = mem(x), mem(g)
    m = n * h * w

    def sums(a, b, shift):
        if channels_last:
            parts, chunk = 4, -(-m // 4)
            s = np.zeros((2, parts, c), np.float32)
            args = [ptr(a), None if b is None else ptr(b), None if shift is None else ptr(shift)]
            args += [ptr(s[0]), ptr(s[1]), I64(m), I32(c), I64(chunk)]
            launch(lib, "chan_sums_cl", (-(-c // 32), parts), (32, 8), args)
        else:
            parts, chunk = 2, -(-(n * h * w) // 2)
            s = np.zeros((2, parts, c), np.float32)
            args = [ptr(a), None if b is None else ptr(b), None if shift is None else ptr(shift)]
            args += [ptr(s[0]), ptr(s[1]), I64(n), I32(c), I64(h * w), I64(chunk)]
            launch(lib, "chan_sums", (c, parts), 32, args)
        return s, parts

    def affine(a, b, p, q, r):
        out = np.zeros_like(a)
        length = 1 if channels_last else h * w
        args = [ptr(a), None if b is None else ptr(b), ptr(p), None if q is None else ptr(q)]
        args += [ptr(r), ptr(out), I64(a.size), I32(c), I64(length)]
        launch(lib, "chan_affine", 2, 64, args)
        return out

    s, parts = sums(xm, None, None)
    stats = np.zeros((5, c), np.float32)  # mean, var, rstd, scale, bias
    length = 1 if channels_last else h * w
    rm, rv = R.standard_normal(c).astype(np.float32), R.random(c).astype(np.float32)
    want_rm, want_rv = rm.astype(np.float64), rv.astype(np.float64)
    args = [ptr(xm), ptr(s[0]), ptr(s[1]), I32(parts), ptr(wf), ptr(bf)]
    args += [ptr(stats[i]) for i in range(5)] + [I32(c), I64(length), I64(m), F64(1e-5)]
    args += [ptr(rm), ptr(rv), F64(0.1), F64(m / (m - 1))]  # the running statistics, too
    launch(lib, "bn_stats", -(-c // 4), 128, args)
    y = back(affine(xm, None, stats[3], None, stats[4]))
    want_y, mu, var, want_gx, want_gw, want_gb = _bn_reference(x64, g64, w64, b64, 1e-5)
    np.testing.assert_allclose(stats[0], mu, rtol=1e-5)
    np.testing.assert_allclose(stats[1], var, rtol=1e-4)
    np.testing.assert_allclose(rm, 0.9 * want_rm + 0.1 * mu, rtol=1e-5)
    np.testing.assert_allclose(rv, 0.9 * want_rv + 0.1 * var * m / (m - 1), rtol=1e-4)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-4)

    s, parts = sums(gm, xm, stats[0])  # sum g, sum g * (x - mean)
    coeffs = np.zeros((5, c), np.float32)  # gw, gb, k1, k2, k3
    args = [ptr(s[0]), ptr(s[1]), I32(parts), ptr(stats[0]), ptr(stats[2]), ptr(wf)]
    args += [ptr(coeffs[i]) for i in range(5)] + [I32(c), I64(m)]
    launch(lib, "bn_grad_coeffs", -(-c // 4), 128, args)
    gx = back(affine(gm, xm, coeffs[2], coeffs[3], coeffs[4]))
    np.testing.assert_allclose(coeffs[0], want_gw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(coeffs[1], want_gb, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gx, want_gx, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("log", [0, 1])
def test_softmax_rows_with_a_repeating_bias(build, log):
    lib = build(rowwise._SOURCE, "float32")
    rows, n, brows = 6, 75, 3
    x = (R.standard_normal((rows, n)) * 3).astype(np.float32)
    bias = np.where(R.random((brows, n)) < 0.2, -np.inf, 0.0).astype(np.float32)
    bias[:, 0] = 0.0  # every row keeps one entry
    y = np.zeros_like(x)
    args = [ptr(x), ptr(bias), ptr(y), I64(rows), I32(n), I32(brows), I32(log)]
    launch(lib, "softmax_fwd", rows, 64, args)
    z = x.astype(np.float64) + np.tile(bias, (rows // brows, 1))
    e = np.exp(z - z.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    with np.errstate(divide="ignore"):  # log of the masked entries' zeros: -inf, as the kernel
        want = np.log(p) if log else p
    np.testing.assert_allclose(y, want.astype(np.float32), rtol=2e-5, atol=1e-6)
    g = R.standard_normal((rows, n)).astype(np.float32)
    gx = np.zeros_like(x)
    launch(lib, "softmax_bwd", rows, 64, [ptr(g), ptr(y), ptr(gx), I64(rows), I32(n), I32(log)])
    gd = g.astype(np.float64)
    ref = gd - p * gd.sum(1, keepdims=True) if log else p * (gd - (gd * p).sum(1, keepdims=True))
    np.testing.assert_allclose(gx, ref, rtol=1e-4, atol=1e-5)


def test_layer_norm_rows_forward_and_input_gradient(build):
    lib = build(rowwise._SOURCE, "float32")
    rows, n = 5, 97
    x = (R.standard_normal((rows, n)) * 2 + 30).astype(np.float32)
    w, b = R.standard_normal(n).astype(np.float32), R.standard_normal(n).astype(np.float32)
    y, mean, rstd = np.zeros_like(x), np.zeros(rows, np.float32), np.zeros(rows, np.float32)
    args = [ptr(x), ptr(w), ptr(b), ptr(y), ptr(mean), ptr(rstd), I64(rows), I32(n), F64(1e-5)]
    launch(lib, "layer_norm_fwd", rows, 64, args)
    xd = x.astype(np.float64)
    mu, var = xd.mean(1, keepdims=True), xd.var(1, keepdims=True)
    xhat = (xd - mu) / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(mean, mu[:, 0], rtol=1e-6)
    np.testing.assert_allclose(y, xhat * w + b, rtol=1e-4, atol=1e-4)
    g = R.standard_normal((rows, n)).astype(np.float32)
    gx = np.zeros_like(x)
    args = [ptr(g), ptr(x), ptr(w), ptr(mean), ptr(rstd), ptr(gx), I64(rows), I32(n)]
    launch(lib, "layer_norm_bwd_x", rows, 64, args)
    gh = g * w.astype(np.float64)
    ref = (gh - gh.mean(1, keepdims=True) - xhat * (gh * xhat).mean(1, keepdims=True)) / np.sqrt(
        var + 1e-5
    )
    np.testing.assert_allclose(gx, ref, rtol=1e-3, atol=1e-4)
