"""ember's CUDA C kernels without a GPU: the kernels that need no cooperation between threads
are compiled as C++ (a small shim stands in for CUDA's built-ins) and launched thread by
thread on the CPU, then compared with NumPy. This checks their arithmetic and indexing where
no GPU is lent; the @gpu tests run them for real. Skipped where no C++ compiler is installed."""

import ctypes
import shutil

import ml_dtypes
import numpy as np
import pytest
from cuda_emulation import F64, I32, I64, builder

from ember.kernels.cuda import batchnorm, elementwise, rowwise
from ember.kernels.cuda import optim as cuda_optim

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

SHIM = r"""
#include <cmath>
#include <cstring>
using namespace std;
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static
struct dim3_ { unsigned int x, y, z; };
static dim3_ blockIdx, threadIdx, blockDim, gridDim;
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned int i) { float f; memcpy(&f, &i, 4); return f; }
inline unsigned int __float_as_uint(float f) { unsigned int i; memcpy(&i, &f, 4); return i; }
template <typename V> inline V __shfl_xor_sync(unsigned, V v, int) { return v; }
inline void __syncthreads() {}
struct ushort4 { unsigned short x, y, z, w; };
struct float4 { float x, y, z, w; };
inline ushort4 make_ushort4(unsigned short a, unsigned short b, unsigned short c,
                            unsigned short d) { return {a, b, c, d}; }
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
"""
LAUNCH = r"""
extern "C" void set_dims(unsigned gx, unsigned gy, unsigned bx) {
  gridDim = {gx, gy, 1}; blockDim = {bx, 1, 1}; }
extern "C" void set_ids(unsigned bx, unsigned by, unsigned tx) {
  blockIdx = {bx, by, 0}; threadIdx = {tx, 0, 0}; }
"""


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return builder(tmp_path_factory.mktemp("kernels"), SHIM, LAUNCH)


def launch(lib, name, grid, block, args):
    gx, gy = grid if isinstance(grid, tuple) else (grid, 1)
    lib.set_dims(gx, gy, block)
    fn = getattr(lib, name)
    for by in range(gy):
        for bx in range(gx):
            for t in range(block):
                lib.set_ids(bx, by, t)
                fn(*args)


def ptr(a):
    return ctypes.c_void_p(a.ctypes.data)


R = np.random.default_rng(0)


def test_bfloat16_casts_round_to_nearest_even(build):
    """(float16 converts with PTX instructions, which only the GPU tests can run.)"""
    half = "bfloat16"
    lib = build(elementwise._SOURCE, half)
    x = (R.standard_normal(64) * 100).astype(np.float32)
    x[:3] = [np.inf, -0.0, 3.0e38]
    h = np.zeros(64, np.uint16)
    launch(lib, "f32_to_half", 2, 8, [ptr(x), ptr(h), I64(16)])
    want = x.astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(h, want.view(np.uint16))
    back = np.zeros(64, np.float32)
    launch(lib, "half_to_f32", 2, 8, [ptr(h), ptr(back), I64(16)])
    np.testing.assert_array_equal(back, want.astype(np.float32))


def test_sums_and_relu(build):
    a = (R.standard_normal(64) * 10).astype(ml_dtypes.bfloat16)
    b = R.standard_normal(64).astype(ml_dtypes.bfloat16)
    y = np.zeros(64, np.uint16)
    lib = build(elementwise._SOURCE, "bfloat16")
    launch(
        lib, "add4_half", 3, 4, [ptr(a.view(np.uint16)), ptr(b.view(np.uint16)), ptr(y), I64(16)]
    )
    want = (a.astype(np.float32) + b.astype(np.float32)).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(y, want.view(np.uint16))
    lib32 = build(elementwise._SOURCE, "float32")
    a32, b32 = R.standard_normal(64).astype(np.float32), R.standard_normal(64).astype(np.float32)
    y32 = np.zeros(64, np.float32)
    launch(lib32, "add4_f32", 3, 4, [ptr(a32), ptr(b32), ptr(y32), I64(16)])
    np.testing.assert_array_equal(y32, a32 + b32)
    x = R.standard_normal(50).astype(np.float32)
    x[3] = np.nan
    out = np.zeros(50, np.float32)
    launch(lib32, "relu_fwd", 2, 32, [ptr(x), ptr(out), I64(50)])
    np.testing.assert_array_equal(out, np.where(np.isnan(x) | (x > 0), x, 0))
    g, gx = R.standard_normal(50).astype(np.float32), np.zeros(50, np.float32)
    launch(lib32, "relu_bwd", 2, 32, [ptr(g), ptr(out), ptr(gx), I64(50)])
    np.testing.assert_array_equal(gx, np.where(out > 0, g, 0))


def test_batch_norm_per_channel_kernels(build):
    lib = build(batchnorm._SOURCE, "float32")
    c, n, length = 5, 3, 40
    rm, rv = R.standard_normal(c).astype(np.float32), R.random(c).astype(np.float32)
    mean, var = R.standard_normal(c).astype(np.float32), R.random(c).astype(np.float32)
    want_m, want_v = 0.9 * rm + 0.1 * mean, 0.9 * rv + 0.1 * var * 8 / 7
    launch(
        lib,
        "bn_running",
        1,
        128,
        [ptr(rm), ptr(rv), ptr(mean), ptr(var), I32(c), F64(0.1), F64(8 / 7)],
    )
    np.testing.assert_allclose(rm, want_m, rtol=1e-6)
    np.testing.assert_allclose(rv, want_v, rtol=1e-6)
    xa = R.standard_normal((n, c, length)).astype(np.float32)
    xb = R.standard_normal((n, c, length)).astype(np.float32)
    p, q, r = (R.standard_normal(c).astype(np.float32) for _ in range(3))
    want = xa * p[:, None] + xb * q[:, None] + r[:, None]
    planes = np.zeros_like(xa)
    args = [ptr(p), ptr(q), ptr(r)]
    launch(
        lib,
        "chan_affine_planes",
        n * c,
        64,
        [ptr(xa), ptr(xb), *args, ptr(planes), I32(c), I64(length)],
    )
    np.testing.assert_allclose(planes, want, rtol=1e-5, atol=1e-6)
    flat = np.zeros_like(xa)
    launch(
        lib,
        "chan_affine",
        2,
        64,
        [ptr(xa), ptr(xb), *args, ptr(flat), I64(xa.size), I32(c), I64(length)],
    )
    np.testing.assert_allclose(flat, want, rtol=1e-5, atol=1e-6)


def test_layer_norm_parameter_gradient_partial_sums(build):
    lib = build(rowwise._SOURCE, "float32")
    rows, n, chunk = 37, 20, 8
    parts = -(-rows // chunk)
    x = R.standard_normal((rows, n)).astype(np.float32)
    g = R.standard_normal((rows, n)).astype(np.float32)
    mean = x.mean(1).astype(np.float32)
    rstd = (1 / np.sqrt(x.var(1) + 1e-5)).astype(np.float32)
    pw, pb = np.zeros((parts, n), np.float32), np.zeros((parts, n), np.float32)
    args = [ptr(g), ptr(x), ptr(mean), ptr(rstd), ptr(pw), ptr(pb), I64(rows), I32(n), I32(chunk)]
    launch(lib, "layer_norm_bwd_wb", (1, parts), 32, args)
    out = np.zeros(n, np.float32)
    launch(lib, "sum_parts", 1, 32, [ptr(pw), ptr(out), I32(parts), I32(n)])
    xhat = (x - mean[:, None]) * rstd[:, None]
    np.testing.assert_allclose(out, (g * xhat).sum(0), rtol=1e-4, atol=1e-5)
    launch(lib, "sum_parts", 1, 32, [ptr(pb), ptr(out), I32(parts), I32(n)])
    np.testing.assert_allclose(out, g.sum(0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("decoupled", [False, True])
def test_multi_tensor_adam(build, decoupled):
    lib = build(cuda_optim._SOURCE, "float32")
    sizes = [5000, 300]
    ps = [R.standard_normal(s).astype(np.float32) for s in sizes]
    gs = [R.standard_normal(s).astype(np.float32) for s in sizes]
    ms = [R.standard_normal(s).astype(np.float32) * 0.1 for s in sizes]
    vs = [R.random(s).astype(np.float32) * 0.1 for s in sizes]
    lr, b1, b2, eps, wd, step = 1e-2, 0.9, 0.999, 1e-8, 0.1, 3
    want = []
    for p, g, m, v in zip(ps, gs, ms, vs):
        p2, g2 = (p * (1 - lr * wd), g) if decoupled else (p, g + wd * p)
        m2, v2 = m + (1 - b1) * (g2 - m), b2 * v + (1 - b2) * g2 * g2
        want.append(p2 - lr / (1 - b1**step) * m2 / (np.sqrt(v2) / np.sqrt(1 - b2**step) + eps))
    table = np.array([a.ctypes.data for grp in (ps, gs, ms, vs) for a in grp], np.uint64)
    counts = [-(-s // cuda_optim._CHUNK) for s in sizes]
    block_tensor = np.repeat(np.arange(2, dtype=np.int32), counts)
    block_start = np.concatenate([np.arange(c, dtype=np.int64) * cuda_optim._CHUNK for c in counts])
    sz = np.array(sizes, np.int64)
    hyper = [F64(lr), F64(b1), F64(b2), F64(eps), F64(wd)]
    bias = [F64(1 - b1**step), F64((1 - b2**step) ** 0.5)]
    args = [ptr(table), ptr(sz), ptr(block_tensor), ptr(block_start), I32(2), *hyper, *bias]
    launch(lib, "adam_mt", len(block_tensor), 16, [*args, I32(int(decoupled)), I32(0)])
    for p, w in zip(ps, want):
        np.testing.assert_allclose(p, w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_relu_four_values_per_thread(build, dtype):
    lib = build(elementwise._SOURCE, dtype)
    npd = np.float32 if dtype == "float32" else ml_dtypes.bfloat16
    x = R.standard_normal(64).astype(npd)
    x[[2, 9]] = [np.nan, -0.0]
    raw = (lambda a: a) if dtype == "float32" else (lambda a: a.view(np.uint16))
    suffix = "4_f32" if dtype == "float32" else "4_half"
    y = np.zeros_like(x)
    launch(lib, "relu_fwd" + suffix, 2, 8, [ptr(raw(x)), ptr(raw(y)), I64(16)])
    with np.errstate(invalid="ignore"):  # ml_dtypes warns on comparing NaN
        want = np.where(np.isnan(x) | (x > 0), x, np.zeros_like(x))
    np.testing.assert_array_equal(raw(y), raw(want))
    g, gx = R.standard_normal(64).astype(npd), np.zeros_like(x)
    launch(lib, "relu_bwd" + suffix, 2, 8, [ptr(raw(g)), ptr(raw(y)), ptr(raw(gx)), I64(16)])
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(raw(gx), raw(np.where(y > 0, g, np.zeros_like(g))))


def _pool_reference(x, k, s, p, d, oh, ow):
    """Window maxima and first-max positions, by loops over the window in float64."""
    n, c, h, w = x.shape
    vals = np.full((n, c, oh, ow), -np.inf)
    pos = np.zeros((n, c, oh, ow), np.int64)
    for i in range(oh):
        for j in range(ow):
            best, at = None, 0
            for ky in range(k[0]):
                for kx in range(k[1]):
                    r, q = i * s[0] - p[0] + ky * d[0], j * s[1] - p[1] + kx * d[1]
                    if 0 <= r < h and 0 <= q < w:
                        v = x[:, :, r, q]
                        take = v > best if best is not None else np.ones(v.shape, bool)
                        best = v.copy() if best is None else np.where(take, v, best)
                        at = np.where(take, ky * k[1] + kx, at)
            vals[:, :, i, j], pos[:, :, i, j] = best, at
    return vals, pos


def _pool_adjoint(g, pos, x_shape, k, s, p, d):
    gx = np.zeros(x_shape)
    n, c, oh, ow = g.shape
    for i in range(oh):
        for j in range(ow):
            ky, kx = pos[:, :, i, j] // k[1], pos[:, :, i, j] % k[1]
            r, q = i * s[0] - p[0] + ky * d[0], j * s[1] - p[1] + kx * d[1]
            for a in range(n):
                for b in range(c):
                    gx[a, b, r[a, b], q[a, b]] += g[a, b, i, j]
    return gx


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    "k,s,p,d,h,w",
    [((3, 3), (2, 2), (1, 1), (1, 1), 9, 8), ((2, 3), (1, 2), (1, 0), (2, 1), 7, 9)],
)
def test_max_pool_forward_and_gather_backward(build, channels_last, k, s, p, d, h, w):
    """ResNet's overlapping 3x3/2 window and a dilated, unevenly padded one, in both layouts;
    the kernels index memory, so channels-last arrays go in as NHWC buffers."""
    from ember.kernels.cpu.pool import pool_out
    from ember.kernels.cuda import pool

    lib = build(pool._SOURCE, "float32")
    n, c = 2, 3
    oh, ow = pool_out(h, k[0], s[0], p[0], d[0], False), pool_out(w, k[1], s[1], p[1], d[1], False)
    x = R.standard_normal((n, c, h, w)).astype(np.float32)
    x[0, 1, 2, 2] = x[0, 1, 2, 3]  # a tie: the first position wins
    to_mem = (
        (lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1)))
        if channels_last
        else (lambda a: np.ascontiguousarray(a))
    )
    from_mem = (lambda a: a.transpose(0, 3, 1, 2)) if channels_last else (lambda a: a)
    geom = [I32(v) for v in (n, c, h, w, oh, ow, *k, *s, *p, *d, int(channels_last))]
    xm = to_mem(x)
    y = np.full((n, oh, ow, c) if channels_last else (n, c, oh, ow), np.nan, np.float32)
    idx = np.full(y.shape, -7, np.int32)
    launch(lib, "maxpool_fwd", 2, 32, [ptr(xm), ptr(y), ptr(idx), *geom])
    want, pos = _pool_reference(x.astype(np.float64), k, s, p, d, oh, ow)
    np.testing.assert_array_equal(from_mem(y), want.astype(np.float32))
    np.testing.assert_array_equal(from_mem(idx), pos)
    g = R.standard_normal((n, c, oh, ow)).astype(np.float32)
    gx = np.full(xm.shape, np.nan, np.float32)
    launch(lib, "maxpool_bwd", 3, 32, [ptr(to_mem(g)), ptr(idx), ptr(gx), *geom])
    ref = _pool_adjoint(g.astype(np.float64), pos, x.shape, k, s, p, d)
    np.testing.assert_allclose(from_mem(gx), ref, rtol=1e-6, atol=1e-6)


def test_channels_last_batch_norm_affine_pass(build):
    """With a channel run length of 1 the flat affine kernel indexes an NHWC buffer."""
    lib = build(batchnorm._SOURCE, "float32")
    n, c, hw = 2, 5, 6
    xa = R.standard_normal((n, hw, c)).astype(np.float32)  # NHWC memory
    p, q, r = (R.standard_normal(c).astype(np.float32) for _ in range(3))
    out = np.zeros_like(xa)
    launch(
        lib,
        "chan_affine",
        2,
        16,
        [ptr(xa), None, ptr(p), ptr(q), ptr(r), ptr(out), I64(xa.size), I32(c), I64(1)],
    )
    np.testing.assert_allclose(out, xa * p + r, rtol=1e-6, atol=1e-6)
