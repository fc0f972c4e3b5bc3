"""ember's CUDA kernel wrappers (kernels/cuda: launch geometry, argument order, layouts,
allocation) run whole on the CPU under a stand-in ``cupy`` over NumPy whose kernels are the
CUDA sources compiled as C++ and launched with one OS thread per CUDA thread
(cuda_emulation.py). Results against float64 NumPy in both layouts; float16 is left to the
GPU tests (its conversions are PTX). Needs g++."""

import shutil
import sys
import types

import ml_dtypes
import numpy as np
import pytest
from cuda_emulation import FakeCupyArray, fake_cupy

from ember.kernels.cuda import compile as cc

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
R = np.random.default_rng(33)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return tmp_path_factory.mktemp("fake_cupy"), {}


@pytest.fixture
def cupy(compiled, monkeypatch):
    """The stand-in installed as ``cupy``, with ember's kernel caches emptied before and
    after (they must never hand these C++ kernels to a real GPU run)."""
    mod = fake_cupy(*compiled)
    monkeypatch.setitem(sys.modules, "cupy", mod)
    monkeypatch.setattr(cc, "_MODULES", {})
    monkeypatch.setattr(cc, "_FUNCTIONS", {})
    return mod


def dev(a, channels_last=False):
    """``a`` on the stand-in device, stored C-contiguous or channels last."""
    if channels_last:
        a = np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    else:
        a = np.ascontiguousarray(a)
    return a.view(FakeCupyArray)


def is_cl(a):
    return cc.storage_order(a) == (0, 2, 3, 1)


@pytest.mark.parametrize("c", [34, 36])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16])
def test_batch_norm_wrappers(cupy, channels_last, dtype, c, monkeypatch):
    from ember.kernels.cuda import batchnorm

    ran = []  # kernel names, to check which normalizing pass each case takes
    fn = batchnorm._fn
    monkeypatch.setattr(batchnorm, "_fn", lambda name, dt: ran.append(name) or fn(name, dt))
    shape = (2, c, 6, 6)  # 36 values per plane: the per-plane affine kernel in NCHW
    x64 = (R.standard_normal(shape) * 2 + 20).astype(dtype).astype(np.float64)
    g64 = R.standard_normal(shape).astype(dtype).astype(np.float64)
    w64, b64 = R.standard_normal(c), R.standard_normal(c)
    x, g = dev(x64.astype(dtype), channels_last), dev(g64.astype(dtype), channels_last)
    w, b = dev(w64.astype(np.float32)), dev(b64.astype(np.float32))
    rm, rv = dev(np.zeros(c, np.float32)), dev(np.ones(c, np.float32))
    y, mean, var, rstd = batchnorm.batch_norm_train(x, w, b, 1e-5, running=(rm, rv, 0.1, 72))
    assert is_cl(y) == channels_last
    ax, cs = (0, 2, 3), (1, c, 1, 1)
    mu, v = x64.mean(ax), x64.var(ax)
    xhat = (x64 - mu.reshape(cs)) / np.sqrt(v.reshape(cs) + 1e-5)
    tol = 2e-2 if dtype is ml_dtypes.bfloat16 else 1e-4
    np.testing.assert_allclose(
        np.asarray(y, np.float64), xhat * w64.reshape(cs) + b64.reshape(cs), rtol=tol, atol=tol
    )
    np.testing.assert_allclose(rm, 0.1 * mu, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * v * 72 / 71, rtol=1e-4)
    gx, gw, gb = batchnorm.batch_norm_train_grad(g, x, mean, rstd, w, True, True, True)
    assert is_cl(gx) == channels_last
    gh = g64 * w64.reshape(cs)
    ref = (gh - gh.mean(ax, keepdims=True) - xhat * (gh * xhat).mean(ax, keepdims=True)) / np.sqrt(
        v.reshape(cs) + 1e-5
    )
    np.testing.assert_allclose(np.asarray(gx, np.float64), ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(gw, (g64 * xhat).sum(ax), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(gb, g64.sum(ax), rtol=1e-4, atol=1e-4)
    # channels last with C % 4 == 0: four channels per thread, forward and backward
    cl4 = channels_last and c % 4 == 0
    used = [n for n in ran if n.startswith("chan_affine")]
    assert len(used) == 2 and all(("_cl4_" in n) == cl4 for n in used), used


@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pool_wrappers(cupy, channels_last):
    from ember.kernels.cpu.pool import pool_out
    from ember.kernels.cuda import pool

    xn = R.standard_normal((2, 3, 9, 8)).astype(np.float32)
    x = dev(xn, channels_last)
    assert pool.applies(x)
    k, s, p, d = (3, 3), (2, 2), (1, 1), (1, 1)
    oh, ow = pool_out(9, 3, 2, 1, 1, False), pool_out(8, 3, 2, 1, 1, False)
    y, idx = pool.max_pool(x, k, s, p, d, (oh, ow))
    assert is_cl(y) == channels_last and is_cl(idx) == channels_last
    padded = np.pad(xn, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    want = np.full((2, 3, oh, ow), -np.inf, np.float32)
    for i in range(3):
        for j in range(3):
            want = np.maximum(want, padded[:, :, i : i + 2 * oh : 2, j : j + 2 * ow : 2])
    np.testing.assert_array_equal(y, want)
    g = dev(R.standard_normal((2, 3, oh, ow)).astype(np.float32))  # C-contiguous gradient
    gx = pool.max_pool_grad(g, idx, x.shape, k, s, p, d)
    assert is_cl(gx) == channels_last
    np.testing.assert_allclose(np.asarray(gx).sum(), np.asarray(g).sum(), rtol=1e-5)
    taken = np.asarray(gx) != 0
    assert np.all(np.isin(xn[taken], want))  # the gradient lands on maxima only


@pytest.mark.parametrize("channels_last", [False, True])
def test_elementwise_wrappers(cupy, channels_last):
    from ember.kernels.cuda import elementwise as ew

    an = R.standard_normal((2, 8, 3, 4)).astype(np.float32)
    bn = R.standard_normal((2, 8, 3, 4)).astype(np.float32)
    a, b = dev(an, channels_last), dev(bn, channels_last)
    for got, want in (
        (ew.relu(a), np.maximum(an, 0)),
        (ew.relu_grad(b, ew.relu(a)), np.where(an > 0, bn, 0)),
        (ew.add(a, b), an + bn),
        (ew.cast(a, ml_dtypes.bfloat16), an.astype(ml_dtypes.bfloat16)),
    ):
        assert is_cl(got) == channels_last
        np.testing.assert_array_equal(np.asarray(got).astype(np.float32), want.astype(np.float32))
    y = ew.gelu(a, "none")
    from scipy.special import erf

    np.testing.assert_allclose(y, an * 0.5 * (1 + erf(an / np.sqrt(2))), rtol=1e-5, atol=1e-6)


def test_multi_tensor_sgd_over_mixed_layouts(cupy):
    """One launch updates a channels-last weight, a C-contiguous one and a vector, with their
    momentum buffers, from a pointer table built on the (stand-in) device."""
    from ember.kernels.cuda import optim as cuda_optim

    shapes = [((6, 4, 3, 3), True), ((5, 7), False), ((4500,), False)]  # 4500: two chunks
    p64 = [R.standard_normal(s) for s, _ in shapes]
    g64 = [R.standard_normal(s) for s, _ in shapes]
    b64 = [R.standard_normal(s) for s, _ in shapes]
    ps = [dev(p.astype(np.float32), cl) for p, (_, cl) in zip(p64, shapes)]
    gs = [dev(g.astype(np.float32), cl) for g, (_, cl) in zip(g64, shapes)]
    bs = [dev(b.astype(np.float32), cl) for b, (_, cl) in zip(b64, shapes)]
    assert cuda_optim.multi_usable(ps, gs, bs)
    kw = dict(lr=0.1, weight_decay=0.01, momentum=0.9, dampening=0.0, nesterov=True)
    cuda_optim.sgd(ps, gs, bs, maximize=False, first=False, **kw)
    for p, b, p0, g0, b0 in zip(ps, bs, p64, g64, b64):
        d = g0 + 0.01 * p0
        buf = 0.9 * b0 + d
        np.testing.assert_allclose(b, buf, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(p, p0 - 0.1 * (d + 0.9 * buf), rtol=1e-5, atol=1e-5)


def test_optimizer_pointer_tables_are_cached_by_address(cupy, monkeypatch):
    """The multi-tensor kernels' pointer table is uploaded once per set of addresses: the
    same arrays (gradients zeroed in place) reuse it, other arrays get their own."""
    from ember.kernels.cuda import optim as cuda_optim

    monkeypatch.setattr(cuda_optim, "_PTRS", {})
    uploads = []
    real = cupy.asarray
    monkeypatch.setattr(cupy, "asarray", lambda a, dtype=None: uploads.append(1) or real(a, dtype))
    groups = [[dev(np.ones(5, np.float32)), dev(np.ones(3, np.float32))] for _ in range(3)]
    t1 = cuda_optim._pointers(groups)
    t2 = cuda_optim._pointers(groups)
    assert t1 is t2 and len(uploads) == 1
    want = [a.data.ptr for grp in groups for a in grp]
    np.testing.assert_array_equal(np.asarray(t1), np.array(want, np.uint64))
    other = [grp[::-1] for grp in groups]  # the same arrays in another order: another table
    t3 = cuda_optim._pointers(other)
    assert t3 is not t1 and len(uploads) == 2
    np.testing.assert_array_equal(
        np.asarray(t3), np.array([a.data.ptr for grp in other for a in grp], np.uint64)
    )
    for i in range(cuda_optim._PTRS_KEPT + 2):  # bounded: the oldest tables go
        cuda_optim._pointers([[dev(np.ones(i + 1, np.float32))]])
    assert len(cuda_optim._PTRS) == cuda_optim._PTRS_KEPT


def test_optimizer_table_during_graph_capture_comes_from_the_cache_or_a_clear_error(
    cupy, monkeypatch
):
    """While the stream captures a CUDA graph a new table cannot be uploaded: a table cached
    by an earlier step is used, a missing one raises an error that says what to do."""
    import types

    from ember.kernels.cuda import optim as cuda_optim

    monkeypatch.setattr(cuda_optim, "_PTRS", {})
    groups = [[dev(np.ones(5, np.float32))] for _ in range(2)]
    warm = cuda_optim._pointers(groups)  # the step run before capturing
    capturing = types.SimpleNamespace(ptr=7, is_capturing=lambda: True)
    monkeypatch.setattr(cupy.cuda, "get_current_stream", lambda: capturing)
    assert cuda_optim._pointers(groups) is warm
    with pytest.raises(RuntimeError, match=r"optimizer step: .*set_to_none=False"):
        cuda_optim._pointers([[dev(np.ones(4, np.float32))] for _ in range(2)])


def test_row_kernel_wrappers(cupy):
    from ember.kernels.cuda import rowwise

    x64 = R.standard_normal((2, 3, 70)) * 3
    w64, b64 = R.standard_normal(70), R.standard_normal(70)
    x, w, b = (dev(a.astype(np.float32)) for a in (x64, w64, b64))
    bias = dev(np.where(R.random((3, 70)) < 0.2, -np.inf, 0.0).astype(np.float32))
    z = x64 + np.asarray(bias, np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    np.testing.assert_allclose(
        rowwise.softmax(x, bias), e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-7
    )
    y, mean, rstd = rowwise.layer_norm(x, w, b, 1e-5)
    mu, var = x64.mean(-1, keepdims=True), x64.var(-1, keepdims=True)
    xhat = (x64 - mu) / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(y, xhat * w64 + b64, rtol=1e-4, atol=1e-4)
    g64 = R.standard_normal((2, 3, 70))
    gx, gw, gb = rowwise.layer_norm_grad(
        dev(g64.astype(np.float32)), x, w, mean, rstd, True, True, True
    )
    np.testing.assert_allclose(gw, (g64 * xhat).sum((0, 1)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gb, g64.sum((0, 1)), rtol=1e-4, atol=1e-4)
    gh = g64 * w64
    ref = (gh - gh.mean(-1, keepdims=True) - xhat * (gh * xhat).mean(-1, keepdims=True)) / np.sqrt(
        var + 1e-5
    )
    np.testing.assert_allclose(gx, ref, rtol=1e-3, atol=1e-4)


def test_cudnn_workspaces_are_shared_per_stream_and_grow(cupy):
    from ember.kernels.cuda import cudnn_graphs as G

    G.release_workspaces()
    a = G._workspace((0, 7), 1000)
    assert G._workspace((0, 7), 400) == a  # reused on the same stream
    b = G._workspace((0, 7), 5000)
    assert G._WORKSPACES[(0, 7)].nbytes >= 5000 and G._workspace((0, 7), 10) == b
    assert G._workspace((0, 8), 10) != b  # another stream, its own buffer
    G.release_workspaces()
    assert not G._WORKSPACES


def test_cudnn_handle_follows_the_current_stream(cupy, monkeypatch):
    """The cuDNN handle is set to CuPy's current stream whenever that stream changes (a
    stale stream would run convolutions out of order with the rest), and only then; cuDNN
    data types come from the dtype, looked up once."""
    from ember.kernels.cuda import cudnn_graphs as G

    calls = []
    fake = types.SimpleNamespace(
        create_handle=lambda: "handle",
        set_stream=lambda handle, stream: calls.append((handle, stream)),
        data_type=types.SimpleNamespace(FLOAT="f", DOUBLE="d", HALF="h", BFLOAT16="b"),
    )
    monkeypatch.setattr(G, "cudnn", lambda: fake)
    monkeypatch.setattr(G, "_HANDLES", {})
    monkeypatch.setattr(G, "_ON_STREAM", {})
    monkeypatch.setattr(G, "_TYPES", {})
    current = types.SimpleNamespace(ptr=0)
    cupy.cuda.runtime = types.SimpleNamespace(getDevice=lambda: 0)
    cupy.cuda.get_current_stream = lambda: current
    assert G._current() == ("handle", (0, 0))
    G._current()
    assert calls == [("handle", 0)]  # unchanged stream: not set again
    current.ptr = 77
    assert G._current() == ("handle", (0, 77))
    current.ptr = 0
    G._current()
    assert calls == [("handle", 0), ("handle", 77), ("handle", 0)]
    want = {np.float32: "f", np.float64: "d", np.float16: "h", ml_dtypes.bfloat16: "b"}
    for dt, name in want.items():
        assert G.data_type(np.dtype(dt)) == name and G.data_type(np.dtype(dt)) == name
    assert G.data_type(np.dtype(np.int32)) is None
