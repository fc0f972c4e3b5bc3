"""CUDA max pooling and channels-last (NHWC) storage through ember's own kernels: max pooling
against loops in float64 and against the CPU, batch norm, ReLU, sums, casts and the
multi-tensor SGD on channels-last arrays (results and output layouts), and a small conv net
whose channels-last training step matches the C-contiguous one with every fused path taken."""

import ml_dtypes
import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import nn

pytestmark = pytest.mark.gpu

R = np.random.default_rng(11)


def cp():
    import cupy

    return cupy


def nhwc(a):
    """A CuPy (N, C, H, W) array stored channels last."""
    return cp().ascontiguousarray(cp().asarray(a).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def is_cl(a) -> bool:
    return a.transpose(0, 2, 3, 1).flags.c_contiguous and not a.flags.c_contiguous


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


POOLS = [  # kernel, stride, padding, dilation, ceil_mode, (H, W)
    ((3, 3), (2, 2), (1, 1), (1, 1), False, (15, 14)),
    ((2, 2), (2, 2), (0, 0), (1, 1), False, (8, 10)),
    ((2, 3), (1, 2), (1, 0), (2, 1), True, (9, 11)),
]


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("case", POOLS, ids=lambda c: f"k{c[0]}s{c[1]}p{c[2]}d{c[3]}")
def test_max_pool_on_cuda_matches_cpu_in_one_launch(layout, dtype, case, monkeypatch):
    from ember.kernels.cpu import pool as composite

    k, s, p, d, ceil_mode, hw = case
    xn = R.standard_normal((2, 5, *hw)).astype(np.float32)
    xn[0, 1, 2, 3] = xn[0, 1, 2, 4]  # a tie inside one window: the first position wins
    xn = xn.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float32)
    gn = R.standard_normal(1).item()  # a scale, so the gradient is not all ones
    cpu = ember.tensor(xn.astype(np.float64), requires_grad=True)
    y_cpu = F.max_pool2d(cpu, k, s, p, d, ceil_mode)
    (y_cpu * y_cpu * gn).sum().backward()

    def no_composite(*a, **kw):
        raise AssertionError("the composite max pool ran on CUDA")

    monkeypatch.setattr(composite, "max_pool", no_composite)
    x = ember.tensor(xn, device="cuda")
    if layout == "nhwc":
        x = x.contiguous(memory_format=ember.channels_last)
    x.requires_grad_(True)
    y = F.max_pool2d(x, k, s, p, d, ceil_mode)
    assert tuple(y.shape) == tuple(y_cpu.shape)
    assert is_cl(y._data) == (layout == "nhwc")
    yv = y.detach().cpu().float().numpy()
    np.testing.assert_array_equal(yv, y_cpu.detach().numpy().astype(np.float32))
    (y.float() * y.float() * gn).sum().backward()
    assert is_cl(x.grad._data) == (layout == "nhwc")
    tol = 1e-2 if dtype == "bfloat16" else 1e-6
    assert rel(x.grad.cpu().float().numpy(), cpu.grad.numpy()) < tol


def test_max_pool_double_backward_on_cuda_matches_cpu():
    xn = R.standard_normal((2, 3, 9, 9))
    out = []
    for device in ("cpu", "cuda"):
        x = ember.tensor(xn, device=device, requires_grad=True)
        y = F.max_pool2d(x, 3, 2, 1)
        (gx,) = ember.autograd.grad((y * y).sum(), x, create_graph=True)
        (gx * gx).sum().backward()
        out.append((gx.detach().cpu().numpy(), x.grad.cpu().numpy()))
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_batch_norm_kernels_on_channels_last_arrays(dtype):
    """Statistics, output and gradients against float64; C = 40 takes the four-channels-per-
    thread normalizing pass (float16 through its PTX conversions)."""
    from ember.kernels.cuda import batchnorm

    npd = {"bfloat16": ml_dtypes.bfloat16, "float16": np.float16}.get(dtype, np.float32)
    shape = (6, 40, 7, 9)  # C over one 32-channel tile
    x64 = (R.standard_normal(shape) * 2 + 50).astype(npd).astype(np.float64)
    g64 = R.standard_normal(shape).astype(npd).astype(np.float64)
    w64, b64 = R.standard_normal(40), R.standard_normal(40)
    x, g = nhwc(x64.astype(npd)), nhwc(g64.astype(npd))
    w, b = cp().asarray(w64.astype(np.float32)), cp().asarray(b64.astype(np.float32))
    y, mean, var, rstd = batchnorm.batch_norm_train(x, w, b, 1e-5)
    assert is_cl(y)
    ax, cs = (0, 2, 3), (1, 40, 1, 1)
    mu, v = x64.mean(ax), x64.var(ax)
    xhat = (x64 - mu.reshape(cs)) / np.sqrt(v.reshape(cs) + 1e-5)
    tol = {"bfloat16": 1e-2, "float16": 2e-3}.get(dtype, 1e-5)
    assert rel(cp().asnumpy(mean), mu) < 1e-5 and rel(cp().asnumpy(var), v) < 1e-4
    assert rel(cp().asnumpy(y).astype(np.float64), xhat * w64.reshape(cs) + b64.reshape(cs)) < tol
    gx, gw, gb = batchnorm.batch_norm_train_grad(g, x, mean, rstd, w, True, True, True)
    assert is_cl(gx)
    gh = g64 * w64.reshape(cs)
    ref = (gh - gh.mean(ax, keepdims=True) - xhat * (gh * xhat).mean(ax, keepdims=True)) / np.sqrt(
        v.reshape(cs) + 1e-5
    )
    assert rel(cp().asnumpy(gx).astype(np.float64), ref) < 2 * tol
    assert rel(cp().asnumpy(gw), (g64 * xhat).sum(ax)) < 1e-4
    assert rel(cp().asnumpy(gb), g64.sum(ax)) < 1e-4


def test_elementwise_kernels_keep_the_channels_last_layout():
    from ember.kernels.cuda import compile as cc
    from ember.kernels.cuda import elementwise as ew

    an = R.standard_normal((4, 12, 5, 6)).astype(np.float32)
    bn = R.standard_normal((4, 12, 5, 6)).astype(np.float32)
    a, b = nhwc(an), nhwc(bn)
    assert cc.usable_dense(a, b) and not cc.usable_dense(a, cp().asarray(bn))
    checks = [
        (ew.relu(a), np.maximum(an, 0)),
        (ew.relu_grad(b, ew.relu(a)), np.where(an > 0, bn, 0)),
        (ew.add(a, b), an + bn),
        (ew.gelu(a, "tanh"), None),
        (ew.cast(a, ml_dtypes.bfloat16), an.astype(ml_dtypes.bfloat16).astype(np.float32)),
    ]
    for got, want in checks:
        assert is_cl(got)
        if want is not None:
            np.testing.assert_array_equal(cp().asnumpy(got).astype(np.float32), want)


def test_multi_tensor_sgd_on_channels_last_weights(monkeypatch):
    from ember.kernels.cuda import optim as cuda_optim

    calls = []
    real = cuda_optim.sgd
    monkeypatch.setattr(cuda_optim, "sgd", lambda *a, **k: (calls.append(1), real(*a, **k)))
    wn, gn = R.standard_normal((8, 4, 3, 3)), R.standard_normal((8, 4, 3, 3))
    results = []
    for device, fmt in (("cpu", ember.contiguous_format), ("cuda", ember.channels_last)):
        w = ember.tensor(wn, dtype=ember.float32, device=device, requires_grad=True)
        w = w.detach().contiguous(memory_format=fmt).requires_grad_(True)
        opt = ember.optim.SGD([w], lr=0.1, momentum=0.9)
        for _ in range(2):
            w.grad = ember.tensor(gn, dtype=ember.float32, device=device)  # a C-contiguous grad
            opt.step()
        results.append(w.detach().cpu().numpy())
    assert len(calls) == 2
    assert rel(results[1], results[0]) < 1e-6


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.c2, self.b2 = nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.pool, self.fc = nn.MaxPool2d(3, 2, 1), nn.Linear(16, 10)

    def forward(self, x):
        h = self.pool(F.relu(self.b1(self.c1(x)), inplace=True))
        h = F.relu(self.b2(self.c2(h)) + h)
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


def _step(fmt):
    ember.manual_seed(3)
    model = Block().to("cuda").to(memory_format=fmt)
    xn = np.random.default_rng(8).standard_normal((4, 3, 16, 16))  # one input for both runs
    x = ember.tensor(xn, dtype=ember.float32, device="cuda")
    x = x.contiguous(memory_format=fmt)
    y = ember.tensor(np.arange(4) % 10, device="cuda")
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return loss.item(), [p.grad.cpu().numpy() for p in model.parameters()]


def test_conv_net_trains_channels_last_like_nchw_with_fused_kernels(monkeypatch):
    from ember.kernels.cuda import batchnorm, elementwise, pool

    layouts = []
    for mod, name in ((batchnorm, "batch_norm_train"), (pool, "max_pool"), (elementwise, "relu")):
        real = getattr(mod, name)
        monkeypatch.setattr(
            mod, name, lambda a, *r, _f=real, **k: (layouts.append(is_cl(a)), _f(a, *r, **k))[1]
        )
    loss_c, grads_c = _step(ember.contiguous_format)
    assert layouts and not any(layouts)
    layouts.clear()
    loss_l, grads_l = _step(ember.channels_last)
    assert len(layouts) >= 5 and all(layouts)  # every fused call saw NHWC memory
    assert abs(loss_l - loss_c) < 1e-5 * max(1.0, abs(loss_c))
    for a, b in zip(grads_l, grads_c):
        assert rel(a, b) < 1e-4


@pytest.mark.parametrize("fmt", ["contiguous_format", "channels_last"])
def test_batch_norm_running_statistics_update_in_the_statistics_launch(fmt, monkeypatch):
    """Training-mode BatchNorm2d on CUDA: running mean and variance as on the CPU after two
    steps, updated by the statistics kernel itself (no separate launch), versions bumped."""
    from ember.kernels.cuda import batchnorm

    monkeypatch.setattr(
        batchnorm, "update_running", lambda *a, **k: pytest.fail("a separate running update")
    )
    xn = np.random.default_rng(9).standard_normal((4, 6, 5, 5)) * 3 + 2
    out = []
    for device in ("cpu", "cuda"):
        bn = nn.BatchNorm2d(6, momentum=0.3).to(device)
        x = ember.tensor(xn, dtype=ember.float32, device=device)
        x = x.contiguous(memory_format=getattr(ember, fmt))
        before = bn.running_mean._version
        for _ in range(2):
            bn(x)
        assert bn.running_mean._version == before + 2
        assert bn.num_batches_tracked.item() == 2  # add_(1) in place: one launch on CUDA
        out.append([bn.running_mean.cpu().numpy(), bn.running_var.cpu().numpy()])
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
