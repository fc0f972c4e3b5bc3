"""Normalization layers (batch norm running statistics, train/eval), activations and the
small shape layers, against NumPy float64 references and PyTorch."""

import numpy as np
import pytest
from nn_parity import _torch, e, npy, parity, randn
from scipy.special import erf

import ember
import ember.nn as nn
import ember.nn.functional as F


def np_bn_train(x, w, b, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    x = x.astype(np.float64)
    mu, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w.reshape(shape) + b.reshape(shape)


# ---- normalization -----------------------------------------------------------------------


def test_batchnorm2d_training_and_running_stats_numpy():
    bn = nn.BatchNorm2d(3, momentum=0.2)
    with ember.no_grad():
        bn.weight.copy_(ember.tensor([1.0, 2.0, 0.5]))
        bn.bias.copy_(ember.tensor([0.0, -1.0, 3.0]))
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = randn(4, 3, 5, 6) * (step + 1) + step
        out = bn(e(x))
        ref = np_bn_train(x, npy(bn.weight), npy(bn.bias))
        np.testing.assert_allclose(npy(out), ref, rtol=1e-4, atol=1e-4)
        n = x.size // 3
        x64 = x.astype(np.float64)
        rm = 0.8 * rm + 0.2 * x64.mean((0, 2, 3))
        rv = 0.8 * rv + 0.2 * x64.var((0, 2, 3)) * n / (n - 1)  # unbiased, as PyTorch
        np.testing.assert_allclose(npy(bn.running_mean), rm, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(npy(bn.running_var), rv, rtol=1e-5, atol=1e-6)
    assert bn.num_batches_tracked.item() == 3
    bn.eval()
    x = randn(2, 3, 4, 4)
    shape = (1, 3, 1, 1)
    ref = (x - rm.reshape(shape)) / np.sqrt(rv.reshape(shape) + 1e-5)
    ref = ref * npy(bn.weight).reshape(shape) + npy(bn.bias).reshape(shape)
    np.testing.assert_allclose(npy(bn(e(x))), ref, rtol=1e-4, atol=1e-5)
    assert bn.num_batches_tracked.item() == 3  # eval does not count


def test_batchnorm_running_buffers_change_in_place_once_per_step():
    """The running statistics are updated in place (the buffers keep their memory) and each
    counts one in-place change, so autograd notices a saved buffer that changed (PyTorch's
    kernel leaves the counter alone; docs/differences.md)."""
    bn = nn.BatchNorm2d(3)
    mean, var = bn.running_mean.numpy(), bn.running_var.numpy()
    v_mean, v_var = bn.running_mean._version, bn.running_var._version
    bn(e(randn(4, 3, 5, 6)))
    assert (bn.running_mean._version, bn.running_var._version) == (v_mean + 1, v_var + 1)
    assert np.shares_memory(bn.running_mean.numpy(), mean)
    assert np.shares_memory(bn.running_var.numpy(), var)


def test_batchnorm_eval_runs_blocked_without_a_graph_and_as_ops_with_one(monkeypatch):
    """Inference batch norm goes through the blocked CPU kernel when nothing needs a graph,
    and through differentiable ops when the input requires grad; both give the float64
    reference."""
    from ember.kernels.cpu import batchnorm as kernels

    calls = []
    real = kernels.batch_norm_eval
    monkeypatch.setattr(kernels, "batch_norm_eval", lambda *a: calls.append(1) or real(*a))
    bn = nn.BatchNorm2d(4).eval()
    with ember.no_grad():
        bn.running_mean.copy_(ember.tensor([0.5, -1.0, 0.0, 2.0]))
        bn.running_var.copy_(ember.tensor([1.0, 0.25, 4.0, 0.5]))
        bn.weight.copy_(ember.tensor([1.0, 2.0, -1.0, 0.5]))
        bn.bias.copy_(ember.tensor([0.0, 1.0, 0.5, -2.0]))
    x = randn(3, 4, 5, 7)
    shape = (1, 4, 1, 1)
    scale = npy(bn.weight).astype(np.float64) / np.sqrt(npy(bn.running_var) + 1e-5)
    ref = (x - npy(bn.running_mean).reshape(shape)) * scale.reshape(shape)
    ref += npy(bn.bias).reshape(shape)
    with ember.no_grad():
        np.testing.assert_allclose(npy(bn(e(x))), ref, rtol=1e-5, atol=1e-5)
    assert calls == [1]
    xt = ember.tensor(x.astype(np.float32), requires_grad=True)
    out = bn(xt)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    np.testing.assert_allclose(
        xt.grad.numpy(), np.broadcast_to(scale.reshape(shape), x.shape), rtol=1e-5
    )
    assert calls == [1]  # the graph went through ops


def test_batchnorm_training_is_one_fused_node():
    bn = nn.BatchNorm2d(3)
    out = bn(e(randn(2, 3, 4, 4), True))
    assert type(out.grad_fn).__name__ == "BatchNormTrain"
    # its inputs are the data and the affine parameters, not a chain of small ops
    leaves = [f.variable for f, _ in out.grad_fn.next_functions if f is not None]
    assert any(v is bn.weight for v in leaves) and any(v is bn.bias for v in leaves)


def test_batchnorm_parity_train_eval_and_momentum_none():
    torch = _torch()
    for kw in ({}, {"momentum": None}, {"affine": False}, {"track_running_stats": False}):
        em, tm = nn.BatchNorm2d(4, **kw), torch.nn.BatchNorm2d(4, **kw)
        for _ in range(3):
            parity(em, tm, randn(3, 4, 5, 5) * 2 + 1, atol=1e-4)
            for name, buf in tm.named_buffers():
                np.testing.assert_allclose(
                    npy(em.get_buffer(name)), buf.numpy(), rtol=1e-5, atol=1e-6, err_msg=name
                )
        parity(em, tm, randn(3, 4, 5, 5), train=False, atol=1e-4)
    parity(nn.BatchNorm1d(5), torch.nn.BatchNorm1d(5), randn(8, 5), atol=1e-4)
    parity(nn.BatchNorm1d(5), torch.nn.BatchNorm1d(5), randn(4, 5, 7), atol=1e-4)
    parity(nn.BatchNorm2d(4, bias=False), torch.nn.BatchNorm2d(4, bias=False),
           randn(3, 4, 2, 2), atol=1e-4)  # fmt: skip


def test_batchnorm_errors():
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(ember.randn(2, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(ember.randn(1, 3))
    nn.BatchNorm1d(3).eval()(ember.randn(1, 3))  # fine in eval mode


def test_layer_group_rms_norm_numpy():
    x = randn(2, 6, 3, 4)
    ln = nn.LayerNorm((3, 4))
    x64 = x.astype(np.float64)
    mu, var = x64.mean((2, 3), keepdims=True), x64.var((2, 3), keepdims=True)
    np.testing.assert_allclose(npy(ln(e(x))), (x64 - mu) / np.sqrt(var + 1e-5), atol=1e-5)
    gn = nn.GroupNorm(3, 6)
    g = x64.reshape(2, 3, -1)
    ref = ((g - g.mean(2, keepdims=True)) / np.sqrt(g.var(2, keepdims=True) + 1e-5)).reshape(
        x.shape
    )
    np.testing.assert_allclose(npy(gn(e(x))), ref, atol=1e-5)
    rms = nn.RMSNorm(4, eps=1e-6)
    ref = x64 / np.sqrt((x64**2).mean(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(npy(rms(e(x))), ref, rtol=1e-5, atol=1e-6)


def test_norm_layers_parity():
    torch = _torch()
    x = randn(2, 6, 3, 4)
    parity(nn.LayerNorm(4), torch.nn.LayerNorm(4), x, atol=1e-4)
    parity(nn.LayerNorm((3, 4), bias=False), torch.nn.LayerNorm((3, 4), bias=False), x, atol=1e-4)
    parity(nn.GroupNorm(2, 6), torch.nn.GroupNorm(2, 6), x, atol=1e-4)
    parity(nn.GroupNorm(3, 6, affine=False), torch.nn.GroupNorm(3, 6, affine=False), x, atol=1e-4)
    parity(nn.RMSNorm(4), torch.nn.RMSNorm(4), x, atol=1e-4)
    parity(nn.RMSNorm((3, 4), eps=1e-3), torch.nn.RMSNorm((3, 4), eps=1e-3), x, atol=1e-4)
    kw = {"affine": True, "track_running_stats": True}
    em, tm = nn.InstanceNorm2d(6, **kw), torch.nn.InstanceNorm2d(6, **kw)
    parity(em, tm, x, atol=1e-4)
    np.testing.assert_allclose(npy(em.running_var), tm.running_var.numpy(), rtol=1e-5)
    parity(em, tm, x, train=False, atol=1e-4)
    parity(nn.InstanceNorm1d(6), torch.nn.InstanceNorm1d(6), randn(2, 6, 5), atol=1e-4)


def test_norm_layer_state_dict_keys():
    assert list(nn.BatchNorm2d(3).state_dict()) == [
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked",
    ]  # fmt: skip
    assert list(nn.BatchNorm1d(3, affine=False).state_dict()) == [
        "running_mean", "running_var", "num_batches_tracked",
    ]  # fmt: skip
    assert list(nn.LayerNorm(3).state_dict()) == ["weight", "bias"]
    assert list(nn.RMSNorm(3).state_dict()) == ["weight"]
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nn.GroupNorm(4, 6)


# ---- activations and small layers --------------------------------------------------------


ACTS = [
    ("ReLU", {}), ("ReLU", {"inplace": True}), ("LeakyReLU", {"negative_slope": 0.2}),
    ("GELU", {}), ("GELU", {"approximate": "tanh"}), ("SiLU", {}), ("Tanh", {}),
    ("Sigmoid", {}), ("Softmax", {"dim": 1}), ("LogSoftmax", {"dim": -1}), ("ELU", {}),
    ("ELU", {"alpha": 0.5}), ("Softplus", {}), ("Softplus", {"beta": 2.0, "threshold": 5.0}),
    ("Mish", {}), ("Hardtanh", {}), ("Hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    ("ReLU6", {}), ("SELU", {}), ("CELU", {"alpha": 2.0}), ("Hardsigmoid", {}),
    ("Hardswish", {}), ("LogSigmoid", {}), ("Softsign", {}), ("Tanhshrink", {}),
    ("Softmin", {"dim": 0}), ("GLU", {}), ("PReLU", {}), ("Threshold", {"threshold": 0.1,
    "value": -2.0}),
]  # fmt: skip


@pytest.mark.parametrize("name,kw", ACTS)
def test_activation_parity(name, kw):
    torch = _torch()
    x = randn(4, 6) * 4
    x[0, :3] = [0.0, 30.0, -30.0]  # kinks and saturation
    em, tm = getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw)
    if kw.get("inplace"):
        out = em(e(x))
        np.testing.assert_allclose(npy(out), tm(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)
        return
    parity(em, tm, x, rtol=1e-5, atol=1e-5)
    assert repr(em) == repr(tm)


def test_activation_numpy_references():
    x = np.linspace(-6, 6, 49).astype(np.float64)
    t = e(x)
    np.testing.assert_allclose(npy(nn.GELU()(t)), 0.5 * x * (1 + erf(x / np.sqrt(2))), atol=1e-12)
    tanh_ref = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(npy(nn.GELU("tanh")(t)), tanh_ref, atol=1e-12)
    np.testing.assert_allclose(npy(nn.SiLU()(t)), x / (1 + np.exp(-x)), atol=1e-12)
    np.testing.assert_allclose(npy(nn.Softplus()(t)), np.log1p(np.exp(x)), atol=1e-12)
    np.testing.assert_allclose(npy(nn.Mish()(t)), x * np.tanh(np.log1p(np.exp(x))), atol=1e-12)
    np.testing.assert_allclose(npy(nn.ELU()(t)), np.where(x > 0, x, np.expm1(x)), atol=1e-12)
    np.testing.assert_allclose(npy(nn.LeakyReLU(0.1)(t)), np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(npy(nn.Hardtanh()(t)), np.clip(x, -1, 1))


def test_inplace_activation_writes_input():
    x = ember.tensor([-1.0, 2.0])
    y = nn.ReLU(inplace=True)(x)
    assert y is x and x.tolist() == [0.0, 2.0]


def test_inplace_relu_on_the_cpu_writes_the_same_memory_and_differentiates():
    """relu_ on a contiguous float tensor runs in its own memory (no copy in or back), with
    or without a graph; the gradient is (x > 0), NaN stays NaN, and a later in-place write
    to the output is caught by the backward."""
    xn = np.array([[-1.0, 2.0, np.nan], [0.5, -3.0, 0.0]])
    x = ember.tensor(xn, requires_grad=True)
    y = x * 1.0
    memory, version = y.detach().numpy(), y._version
    out = F.relu(y, inplace=True)
    assert out is y and np.shares_memory(y.detach().numpy(), memory)
    assert y._version == version + 1
    np.testing.assert_array_equal(
        y.detach().numpy(), np.where(xn > 0, xn, np.where(xn != xn, xn, 0))
    )
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (xn > 0).astype(float))
    z = x * 1.0
    F.relu(z, inplace=True)
    z.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()
    w = ember.tensor(xn.T)  # an F-contiguous view: also in place, and right
    F.relu(w, inplace=True)
    np.testing.assert_array_equal(
        w.numpy(), np.where(xn.T > 0, xn.T, np.where(xn.T != xn.T, xn.T, 0))
    )
    v = ember.tensor(xn.copy())[:, ::2]  # strided: the generic path, same values
    F.relu(v, inplace=True)
    np.testing.assert_array_equal(v.numpy(), np.maximum(xn[:, ::2], 0))


def test_flatten_unflatten_and_shape_layers():
    x = ember.randn(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)
    assert nn.Unflatten(1, (3, 20))(nn.Flatten()(x)).shape == (2, 3, 20)
    assert nn.PixelShuffle(2)(ember.randn(1, 8, 3, 3)).shape == (1, 2, 6, 6)
    assert nn.PixelUnshuffle(2)(ember.randn(1, 2, 6, 6)).shape == (1, 8, 3, 3)
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"


def test_small_layers_parity():
    torch = _torch()
    x = randn(2, 8, 4, 6)
    cases = [
        (nn.PixelShuffle(2), torch.nn.PixelShuffle(2)),
        (nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2)),
        (nn.Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2)),
        (nn.Upsample(size=(5, 9), mode="bilinear"),
         torch.nn.Upsample(size=(5, 9), mode="bilinear")),
        (nn.UpsamplingBilinear2d(scale_factor=3), torch.nn.UpsamplingBilinear2d(scale_factor=3)),
        (nn.ZeroPad2d((1, 2, 0, 3)), torch.nn.ZeroPad2d((1, 2, 0, 3))),
        (nn.ConstantPad2d(1, 3.5), torch.nn.ConstantPad2d(1, 3.5)),
        (nn.ReflectionPad2d(2), torch.nn.ReflectionPad2d(2)),
        (nn.ReplicationPad2d((1, 0, 2, 1)), torch.nn.ReplicationPad2d((1, 0, 2, 1))),
        (nn.CircularPad2d(1), torch.nn.CircularPad2d(1)),
    ]  # fmt: skip
    for em, tm in cases:
        parity(em, tm, x)
        assert repr(em) == repr(tm)
    a, b = randn(5, 7), randn(5, 7)
    parity(nn.CosineSimilarity(), torch.nn.CosineSimilarity(), a, b)
    parity(nn.PairwiseDistance(), torch.nn.PairwiseDistance(), a, b)


def test_layer_norm_and_softmax_on_empty_batches():
    """Zero rows: empty outputs and gradients, zero weight gradients (as in PyTorch)."""
    x = ember.zeros(0, 8, requires_grad=True)
    ln = ember.nn.LayerNorm(8)
    ln(x).sum().backward()
    assert tuple(x.grad.shape) == (0, 8)
    assert ln.weight.grad.abs().sum().item() == 0.0
    s = ember.zeros(0, 5, requires_grad=True)
    y = ember.softmax(s, dim=-1)
    y.sum().backward()
    assert tuple(y.shape) == (0, 5) and tuple(s.grad.shape) == (0, 5)


def test_gelu_float32_first_and_second_order_grads_match_float64():
    """The float32 CPU path saves GELU's derivative in the forward and multiplies by it in the
    backward; with create_graph the backward is recorded from x instead. Both against float64."""
    rng = np.random.default_rng(3)
    x64 = rng.standard_normal((3, 50000)) * 3
    g64 = rng.standard_normal(x64.shape)
    x = ember.tensor(x64.astype(np.float32), requires_grad=True)
    y = nn.functional.gelu(x)
    cdf = 0.5 * (1 + erf(x64 / np.sqrt(2)))
    pdf = np.exp(-0.5 * x64 * x64) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(npy(y), x64 * cdf, rtol=1e-5, atol=1e-6)
    (gx,) = ember.autograd.grad(y, x, ember.tensor(g64.astype(np.float32)), create_graph=True)
    np.testing.assert_allclose(npy(gx), g64 * (cdf + x64 * pdf), rtol=1e-5, atol=1e-5)
    (ggx,) = ember.autograd.grad(gx.sum(), x)
    np.testing.assert_allclose(npy(ggx), g64 * pdf * (2 - x64 * x64), rtol=1e-4, atol=1e-5)
    y = nn.functional.gelu(x)  # first order only: the saved derivative
    y.backward(ember.tensor(g64.astype(np.float32)))
    np.testing.assert_allclose(npy(x.grad), g64 * (cdf + x64 * pdf), rtol=1e-5, atol=1e-5)
