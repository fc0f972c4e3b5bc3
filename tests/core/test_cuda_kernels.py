"""The CUDA kernels (kernels/cuda) against float64 NumPy references: the fused row, GELU,
batch-norm and optimizer kernels in every float dtype, and the cuDNN graphs (convolution,
fused attention), including checks that the fast path really ran (no silent fallback)."""

import math

import ml_dtypes
import numpy as np
import pytest

import ember
import ember.nn.functional as F

pytestmark = pytest.mark.gpu

TOL = {"float64": 1e-12, "float32": 2e-6, "bfloat16": 1e-2, "float16": 2e-3}
DTYPES = {
    "float64": np.float64,
    "float32": np.float32,
    "bfloat16": ml_dtypes.bfloat16,
    "float16": np.float16,
}


def cp():
    import cupy

    return cupy


def dev(a, dtype="float32"):
    """A CuPy array of ``a`` rounded to ``dtype``, and the rounded values in float64."""
    r = np.asarray(a).astype(DTYPES[dtype])
    return cp().asarray(r), r.astype(np.float64)


def host(a):
    return cp().asnumpy(a).astype(np.float64)


def rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def softmax64(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("n", [1, 37, 1000, 5003])
def test_softmax_rows(dtype, n):
    from ember.kernels.cuda import rowwise

    r = np.random.default_rng(n)
    x, x64 = dev(r.standard_normal((6, n)) * 4, dtype)
    g, g64 = dev(r.standard_normal((6, n)), dtype)
    y = rowwise.softmax(x)
    ref = softmax64(x64)
    assert rel(host(y), ref) < TOL[dtype]
    gx = rowwise.softmax_grad(g, y)
    ref_g = ref * (g64 - (g64 * ref).sum(-1, keepdims=True))
    assert rel(host(gx), ref_g) < 4 * TOL[dtype]
    ly = rowwise.softmax(x, log=True)
    ref_l = x64 - x64.max(-1, keepdims=True)
    ref_l -= np.log(np.exp(ref_l).sum(-1, keepdims=True))
    assert rel(host(ly), ref_l) < TOL[dtype]
    lg = rowwise.softmax_grad(g, ly, log=True)
    ref_lg = g64 - np.exp(ref_l) * g64.sum(-1, keepdims=True)
    assert rel(host(lg), ref_lg) < 4 * TOL[dtype]


def test_softmax_causal_bias_repeats_over_rows():
    from ember.kernels.cuda import rowwise

    r = np.random.default_rng(3)
    x, x64 = dev(r.standard_normal((2, 3, 5, 5)))
    bias64 = np.triu(np.full((5, 5), -np.inf), 1)
    y = rowwise.softmax(x, cp().asarray(bias64.astype(np.float32)))
    assert rel(host(y), softmax64(x64 + bias64)) < TOL["float32"]
    assert float(np.abs(host(y)[..., 0, 1:]).max()) == 0.0


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("n", [8, 768, 3000])
def test_layer_norm_rows(dtype, n):
    from ember.kernels.cuda import rowwise

    r = np.random.default_rng(n)
    x, x64 = dev(r.standard_normal((33, n)) * 3 + 5, dtype)
    w, w64 = dev(r.standard_normal(n), dtype)
    b, b64 = dev(r.standard_normal(n), dtype)
    g, g64 = dev(r.standard_normal((33, n)), dtype)
    y, mean, rstd = rowwise.layer_norm(x, w, b, 1e-5)
    mu = x64.mean(-1, keepdims=True)
    rs = 1 / np.sqrt(((x64 - mu) ** 2).mean(-1, keepdims=True) + 1e-5)
    xhat = (x64 - mu) * rs
    assert rel(host(y), xhat * w64 + b64) < TOL[dtype]
    gx, gw, gb = rowwise.layer_norm_grad(g, x, w, mean, rstd, True, True, True)
    gh = g64 * w64
    ref_gx = rs * (gh - gh.mean(-1, keepdims=True) - xhat * (gh * xhat).mean(-1, keepdims=True))
    assert rel(host(gx), ref_gx) < 8 * TOL[dtype]
    assert rel(host(gw), (g64 * xhat).sum(0)) < 8 * TOL[dtype]
    assert rel(host(gb), g64.sum(0)) < 8 * TOL[dtype]


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(dtype, approximate):
    from scipy.special import erf

    from ember.kernels.cuda import elementwise

    r = np.random.default_rng(0)
    x, x64 = dev(r.standard_normal(10_001) * 3, dtype)
    g, g64 = dev(r.standard_normal(10_001), dtype)
    if approximate == "tanh":
        t = np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3))
        ref = 0.5 * x64 * (1 + t)
        dt = (1 - t * t) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x64**2)
        dref = 0.5 * (1 + t) + 0.5 * x64 * dt
    else:
        cdf = 0.5 * (1 + erf(x64 / math.sqrt(2)))
        ref = x64 * cdf
        dref = cdf + x64 * np.exp(-0.5 * x64**2) / math.sqrt(2 * math.pi)
    tol = max(TOL[dtype], 1e-6)
    assert rel(host(elementwise.gelu(x, approximate)), ref) < tol
    assert rel(host(elementwise.gelu_grad(g, x, approximate)), g64 * dref) < 2 * tol


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
@pytest.mark.parametrize("shape", [(8, 5, 7, 9), (64, 3), (2, 4, 3000)])
def test_batch_norm_train(dtype, shape):
    from ember.kernels.cuda import batchnorm

    r = np.random.default_rng(1)
    x, x64 = dev(r.standard_normal(shape) * 2 + 100, dtype)  # a large mean: shifted sums
    c = shape[1]
    w, w64 = dev(r.standard_normal(c), "float32")
    b, b64 = dev(r.standard_normal(c), "float32")
    g, g64 = dev(r.standard_normal(shape), dtype)
    y, mean, var, rstd = batchnorm.batch_norm_train(x, w, b, 1e-5)
    ax = (0,) + tuple(range(2, len(shape)))
    cs = (1, c) + (1,) * (len(shape) - 2)
    mu, v = x64.mean(ax), x64.var(ax)
    xhat = (x64 - mu.reshape(cs)) / np.sqrt(v.reshape(cs) + 1e-5)
    tol = max(TOL[dtype], 1e-5)
    assert rel(host(mean), mu) < tol and rel(host(var), v) < 20 * tol
    assert rel(host(y), xhat * w64.reshape(cs) + b64.reshape(cs)) < tol
    gx, gw, gb = batchnorm.batch_norm_train_grad(g, x, mean, rstd, w, True, True, True)
    assert gw.dtype == w.dtype and gb.dtype == w.dtype
    gh = g64 * w64.reshape(cs)
    ref = (gh - gh.mean(ax, keepdims=True) - xhat * (gh * xhat).mean(ax, keepdims=True)) / np.sqrt(
        v.reshape(cs) + 1e-5
    )
    assert rel(host(gx), ref) < 20 * tol
    assert rel(host(gw), (g64 * xhat).sum(ax)) < 20 * tol
    assert rel(host(gb), g64.sum(ax)) < 20 * tol


def _train(opt_cls, device, steps=3, in_place=False, **kw):
    r = np.random.default_rng(5)
    shapes = [(7, 5), (5,), (3000,), (2, 3, 4)]
    ps = [
        ember.tensor(r.standard_normal(s), dtype=ember.float32, requires_grad=True, device=device)
        for s in shapes
    ]
    opt = opt_cls(ps, **kw)
    for _ in range(steps):
        for p in ps:
            g = ember.tensor(r.standard_normal(tuple(p.shape)), dtype=ember.float32, device=device)
            if in_place and p.grad is not None:  # the same gradient arrays every step
                p.grad.copy_(g)
            else:
                p.grad = g
        opt.step()
    return [p.detach().cpu().numpy().astype(np.float64) for p in ps]


@pytest.mark.parametrize(
    "opt_cls,kw",
    [
        (ember.optim.Adam, {"lr": 1e-2, "weight_decay": 0.1}),
        (ember.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.1, "maximize": True}),
        (ember.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
        (ember.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
        (ember.optim.SGD, {"lr": 0.1}),
    ],
)
def test_multi_tensor_optimizers_match_cpu(opt_cls, kw, monkeypatch):
    from ember.kernels.cuda import optim as cuda_optim

    calls = []
    for name in ("adam", "sgd"):
        real = getattr(cuda_optim, name)
        monkeypatch.setattr(
            cuda_optim, name, lambda *a, _r=real, **k: (calls.append(1), _r(*a, **k))
        )
    cpu = _train(opt_cls, "cpu", **kw)
    gpu = _train(opt_cls, "cuda", **kw)
    assert len(calls) == 3  # one launch per step, not a CPU-style loop
    for a, b in zip(gpu, cpu):
        assert rel(a, b) < 1e-6


@pytest.mark.parametrize(
    "opt_cls,kw",
    [
        (ember.optim.Adam, {"lr": 1e-2}),
        (ember.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    ],
)
def test_multi_tensor_optimizers_with_gradients_kept_in_place(opt_cls, kw):
    """Gradients written into the same arrays each step: the pointer table cached by address
    (kernels/cuda/optim.py) is reused, and the steps still match the CPU's."""
    cpu = _train(opt_cls, "cpu", steps=4, in_place=True, **kw)
    gpu = _train(opt_cls, "cuda", steps=4, in_place=True, **kw)
    for a, b in zip(gpu, cpu):
        assert rel(a, b) < 1e-6


CONV_CASES = [  # (N, C, H, W), (K, C/g, R, S), stride, padding, dilation, groups
    ((4, 8, 13, 11), (16, 8, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((2, 6, 16, 16), (12, 3, 3, 3), (2, 2), (1, 1), (1, 1), 2),
    ((3, 4, 15, 17), (5, 4, 5, 3), (2, 1), (2, 0), (1, 2), 1),
    ((2, 16, 9, 9), (16, 1, 3, 3), (1, 1), (1, 1), (1, 1), 16),
    ((2, 32, 8, 8), (64, 32, 1, 1), (1, 1), (0, 0), (1, 1), 1),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}-{c[1]}-s{c[2]}-g{c[5]}")
def test_cudnn_conv_matches_cpu_and_ran(case):
    from ember.kernels.cuda import cudnn_graphs

    cudnn_graphs.clear()
    xs, ws, stride, padding, dilation, groups = case
    r = np.random.default_rng(7)
    xn, wn = r.standard_normal(xs).astype(np.float32), r.standard_normal(ws).astype(np.float32)
    outs = {}
    for d in ("cpu", "cuda"):
        x = ember.tensor(xn, device=d, requires_grad=True)
        w = ember.tensor(wn, device=d, requires_grad=True)
        y = F.conv2d(x, w, None, stride, padding, dilation, groups)
        gy = ember.tensor(
            np.random.default_rng(8).standard_normal(tuple(y.shape)).astype(np.float32), device=d
        )
        y.backward(gy)
        outs[d] = [t.detach().cpu().numpy().astype(np.float64) for t in (y, x.grad, w.grad)]
    for name, a, b in zip(("y", "dx", "dw"), outs["cuda"], outs["cpu"]):
        assert rel(a, b) < 1e-5, name
    assert not cudnn_graphs.refusals(), cudnn_graphs.refusals()


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_cudnn_conv_bfloat16(layout):
    from ember.kernels.cuda import conv, cudnn_graphs

    cudnn_graphs.clear()
    r = np.random.default_rng(9)
    x, x64 = dev(r.standard_normal((8, 32, 14, 14)), "bfloat16")
    w, w64 = dev(r.standard_normal((64, 32, 3, 3)) * 0.1, "bfloat16")
    if layout == "channels_last":
        x = cp().ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    y, _ = conv.conv2d(x, w, (1, 1), (1, 1), (1, 1), 1)
    assert (y.strides[1] == y.itemsize) == (layout == "channels_last")
    ref = ember.nn.functional.conv2d(ember.tensor(x64), ember.tensor(w64), padding=1).numpy()
    assert rel(host(y), ref) < 1e-2
    assert not cudnn_graphs.refusals(), cudnn_graphs.refusals()


def _attention64(q, k, v, causal, scale):
    s = q @ np.swapaxes(k, -1, -2) * scale
    if causal:
        s = s + np.triu(np.full(s.shape[-2:], -np.inf), 1)
    p = softmax64(s)
    return p @ v, p


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_cudnn_attention_forward_backward(causal, dtype):
    r = np.random.default_rng(11)
    b, h, s, d = 2, 3, 64, 32
    arrays = [r.standard_normal((b, s, h, d)).astype(DTYPES[dtype]) for _ in range(3)]
    q, k, v = (
        ember.tensor(a, device="cuda").transpose(1, 2).detach().requires_grad_() for a in arrays
    )
    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert type(out.grad_fn).__name__ == "_FusedAttention"  # cuDNN ran, not the composite
    q64, k64, v64 = (np.swapaxes(a.astype(np.float64), 1, 2) for a in arrays)
    ref, p = _attention64(q64, k64, v64, causal, 1 / math.sqrt(d))
    assert rel(out.detach().cpu().float().numpy(), ref) < 2e-2
    g64 = r.standard_normal(ref.shape)
    out.backward(ember.tensor(g64.astype(DTYPES[dtype]), device="cuda"))
    g64 = g64.astype(DTYPES[dtype]).astype(np.float64)
    dv = np.swapaxes(p, -1, -2) @ g64
    dp = g64 @ np.swapaxes(v64, -1, -2)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True))
    dq = ds @ k64 / math.sqrt(d)
    dk = np.swapaxes(ds, -1, -2) @ q64 / math.sqrt(d)
    for name, t, want in (("dq", q, dq), ("dk", k, dk), ("dv", v, dv)):
        assert rel(t.grad.cpu().float().numpy(), want) < 3e-2, name


def test_fused_paths_are_taken_for_model_ops(monkeypatch):
    """Softmax, layer norm, GELU and batch norm on CUDA go through the kernels above."""
    from ember.kernels.cuda import batchnorm, elementwise, rowwise

    seen = []
    for mod, names in (
        (rowwise, ("softmax", "layer_norm")),
        (elementwise, ("gelu",)),
        (batchnorm, ("batch_norm_train",)),
    ):
        for name in names:
            real = getattr(mod, name)
            monkeypatch.setattr(
                mod, name, lambda *a, _r=real, _n=name, **k: (seen.append(_n), _r(*a, **k))[1]
            )
    x = ember.randn(4, 8, 6, 6, device="cuda", requires_grad=True)
    y = F.batch_norm(x, None, None, training=True)
    z = F.gelu(F.layer_norm(y.reshape(4, -1), (288,)))
    F.softmax(z, dim=-1).sum().backward()
    assert sorted(set(seen)) == ["batch_norm_train", "gelu", "layer_norm", "softmax"]
    assert x.grad is not None and np.isfinite(x.grad.cpu().numpy()).all()


def test_bfloat16_scalar_ops_differentiate_on_cuda():
    """bfloat16 tensors take Python scalars as bfloat16; on CUDA the saved scalar must stay
    on the device for the backward (a mean's division once met a CPU scalar there)."""
    xn = np.random.default_rng(2).standard_normal((4, 6)).astype(ml_dtypes.bfloat16)
    x = ember.tensor(xn, device="cuda", requires_grad=True)
    ((x / 3.0) * 2.0).mean().backward()
    assert x.grad.device.type == "cuda"
    np.testing.assert_allclose(x.grad.cpu().float().numpy(), np.full((4, 6), 2 / 3 / 24), rtol=1e-2)


def test_relu_and_inplace_relu_on_cuda():
    from ember.kernels.cuda import elementwise

    r = np.random.default_rng(4)
    an = r.standard_normal((5, 7)).astype(np.float32)
    an[0, 0] = np.nan
    y = elementwise.relu(cp().asarray(an))
    np.testing.assert_array_equal(host(y), np.where(an > 0, an, np.where(np.isnan(an), an, 0)))
    an[0, 0] = 0.5
    a = ember.tensor(an, device="cuda", requires_grad=True)
    b = a * 1.0
    ptr = b._data.data.ptr
    c = F.relu(b, inplace=True)
    assert c is b and b._data.data.ptr == ptr  # written in place, no copy
    (c * c).sum().backward()
    np.testing.assert_allclose(a.grad.cpu().numpy(), np.where(an > 0, 2 * an, 0.0), rtol=1e-6)
    b2 = a * 1.0
    c2 = F.relu(b2, inplace=True)
    s = c2.sum()
    c2.mul_(2.0)  # the relu output the backward needs is gone
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        s.backward()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_on_cuda_matches_cpu_with_ignored_rows(reduction):
    r = np.random.default_rng(6)
    x = r.standard_normal((9, 11)).astype(np.float32)
    t = r.integers(0, 11, 9)
    t[[2, 5]] = -100
    out = {}
    for d in ("cpu", "cuda"):
        xt = ember.tensor(x, device=d, requires_grad=True)
        loss = F.cross_entropy(xt, ember.tensor(t, device=d), reduction=reduction)
        loss.backward()
        out[d] = (float(loss.item()), xt.grad.cpu().numpy())
    assert abs(out["cuda"][0] - out["cpu"][0]) < 1e-5 * max(1.0, abs(out["cpu"][0]))
    np.testing.assert_allclose(out["cuda"][1], out["cpu"][1], rtol=1e-5, atol=1e-7)
    bad = t.copy()
    bad[0] = 11  # out of range: NaN on CUDA (no host sync), where the CPU raises
    loss = F.cross_entropy(ember.tensor(x, device="cuda"), ember.tensor(bad, device="cuda"))
    assert np.isnan(loss.item())


def test_cudnn_graphs_run_through_the_direct_path():
    from ember.kernels.cuda import cudnn_graphs

    cudnn_graphs.clear()
    before = dict(cudnn_graphs.STATS)
    x = ember.randn(2, 4, 9, 9, device="cuda", requires_grad=True)
    w = ember.randn(6, 4, 3, 3, device="cuda", requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert cudnn_graphs.STATS["direct"] - before["direct"] == 3  # fprop, dgrad, wgrad
    assert cudnn_graphs.STATS["public"] == before["public"]
    assert not cudnn_graphs.refusals()


GEMM_LAYOUTS = [  # (a shape, b shape, transpose a's last two dims, transpose b's)
    ((7, 5), (5, 9), False, False),
    ((7, 5), (5, 9), True, True),
    ((3, 4, 7, 5), (5, 9), False, False),
    ((6, 7, 5), (6, 5, 9), False, True),
    ((1, 5), (5, 1), False, False),
]


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
@pytest.mark.parametrize("layout", GEMM_LAYOUTS, ids=str)
def test_direct_cublas_matmul(dtype, layout):
    from ember.kernels.cuda import gemm

    ash, bsh, ta, tb = layout
    r = np.random.default_rng(12)
    a, a64 = dev(r.standard_normal(ash[:-2] + (ash[-1], ash[-2]) if ta else ash), dtype)
    b, b64 = dev(r.standard_normal(bsh[:-2] + (bsh[-1], bsh[-2]) if tb else bsh), dtype)
    if ta:
        a, a64 = a.swapaxes(-1, -2), a64.swapaxes(-1, -2)
    if tb:
        b, b64 = b.swapaxes(-1, -2), b64.swapaxes(-1, -2)
    out = gemm.matmul(a, b)
    assert out is not None and out.dtype == a.dtype
    assert rel(host(out), a64 @ b64) < max(TOL[dtype], 1e-6) * 4


def test_direct_cublas_matmul_per_head_slices_and_tf32_switch():
    """Heads split from a (B, S, H, D) buffer go as one call per batch index; with
    ember.backends.cuda.matmul.allow_tf32 the error stays within TF32's 10 mantissa bits."""
    import ember.backends as backends
    from ember.kernels.cuda import gemm

    r = np.random.default_rng(13)
    q, q64 = dev(r.standard_normal((2, 16, 3, 32)))
    k, k64 = dev(r.standard_normal((2, 16, 3, 32)))
    qh, kh = q.transpose(0, 2, 1, 3), k.transpose(0, 2, 3, 1)  # (B,H,S,D), (B,H,D,S)
    want = q64.transpose(0, 2, 1, 3) @ k64.transpose(0, 2, 3, 1)
    assert rel(host(gemm.matmul(qh, kh)), want) < 1e-6
    backends.cuda.matmul.allow_tf32 = True
    try:
        err = rel(host(gemm.matmul(qh, kh)), want)
    finally:
        backends.cuda.matmul.allow_tf32 = False
    assert err < 2e-3  # within TF32's rounding (cuBLAS may still pick a full-float32 kernel)


@pytest.mark.parametrize("half", ["bfloat16", "float16"])
def test_vectorized_casts_round_to_nearest_even(half):
    from ember.kernels.cuda import elementwise

    x = np.random.default_rng(14).standard_normal(4096).astype(np.float32) * 100
    h = elementwise.cast(cp().asarray(x), DTYPES[half])
    np.testing.assert_array_equal(
        cp().asnumpy(h).view(np.uint16), x.astype(DTYPES[half]).view(np.uint16)
    )
    back = elementwise.cast(h, np.float32)
    np.testing.assert_array_equal(cp().asnumpy(back), x.astype(DTYPES[half]).astype(np.float32))
    assert elementwise.cast(cp().asarray(x[:7]), DTYPES[half]) is None  # not a multiple of 4


def test_embedding_on_cuda_marks_out_of_range_ids_with_nan_rows():
    w = ember.randn(10, 4, device="cuda", requires_grad=True)
    idx = ember.tensor(np.array([[1, 9], [10, -1]]), device="cuda")
    out = F.embedding(idx, w).detach().cpu().numpy()
    np.testing.assert_allclose(out[0], w.detach().cpu().numpy()[[1, 9]], rtol=1e-6)
    assert np.isnan(out[1]).all()  # no host check on CUDA: the rows say it instead
    good = ember.tensor(np.array([[1, 9], [3, 3]]), device="cuda")
    F.embedding(good, w).sum().backward()
    want = np.zeros((10, 4))
    want[[1, 9]] = 1
    want[3] = 2
    np.testing.assert_allclose(w.grad.cpu().numpy(), want)
