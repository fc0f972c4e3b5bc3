"""Training-mode batch norm (the fused ``BatchNormTrain`` primitive) through the op harness:
forward against a NumPy reference, gradcheck and gradgradcheck in float64, and PyTorch parity
of values, gradients and running statistics."""

import numpy as np
import pytest
from harness import OpCase, check_torch, op_tests, params, pos

import ember
from ember.nn import functional as F


def _bn_ref(x, w=None, b=None, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mu = x.mean(axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axes, keepdims=True)
    out = (x - mu) / np.sqrt(var + eps)
    if w is not None:
        out = out * w.reshape(shape)
    if b is not None:
        out = out + b.reshape(shape)
    return out


def _bn(m, x, w=None, b=None, eps=1e-5):
    return m.nn.functional.batch_norm(x, None, None, w, b, True, 0.1, eps)


CASES = [
    OpCase("bn2d_affine", _bn, _bn_ref, ((3, 4, 5, 5), pos(4), (4,))),
    OpCase("bn2d_plain", _bn, _bn_ref, ((2, 3, 4, 3),)),
    OpCase("bn2d_weight_only", _bn, _bn_ref, ((2, 3, 3, 3), (3,))),
    OpCase(
        "bn2d_bias_only",
        lambda m, x, b: _bn(m, x, None, b),
        lambda x, b: _bn_ref(x, None, b),
        ((2, 3, 3, 3), (3,)),
    ),
    OpCase("bn1d_2d_input", _bn, _bn_ref, ((6, 5), (5,), (5,))),
    OpCase("bn1d_3d_input", _bn, _bn_ref, ((4, 3, 7), (3,), (3,))),
    OpCase("bn3d", _bn, _bn_ref, ((2, 3, 2, 3, 2), (3,), (3,))),
    OpCase(
        "bn2d_eps",
        lambda m, x, w, b: _bn(m, x, w, b, 0.1),
        lambda x, w, b: _bn_ref(x, w, b, 0.1),
        ((2, 3, 4, 4), (3,), (3,)),
    ),
]

test_forward, test_low_precision, test_gradcheck, test_gradgradcheck, test_cuda = op_tests(CASES)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", params(CASES))
def test_matches_torch(case, dtype):
    pytest.importorskip("torch")
    check_torch(case, dtype)


def test_batch_norm_is_one_node():
    x = ember.randn(2, 3, 4, 4, requires_grad=True)
    out = F.batch_norm(x, None, None, ember.ones(3), ember.zeros(3), True)
    assert type(out.grad_fn).__name__ == "BatchNormTrain"


def test_large_mean_keeps_precision():
    # the centred input is formed before any product, so a large offset costs no digits
    r = np.random.default_rng(0)
    x = (r.standard_normal((8, 4, 6, 6)) + 1000.0).astype(np.float32)
    g = r.standard_normal(x.shape).astype(np.float32)
    xe = ember.tensor(x, requires_grad=True)
    F.batch_norm(xe, None, None, training=True).backward(ember.tensor(g))
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(
        F.batch_norm(ember.tensor(x), None, None, training=True).numpy(),
        _bn_ref(x64),
        rtol=1e-3,
        atol=1e-3,
    )
    xt = ember.tensor(x64, requires_grad=True)
    F.batch_norm(xt, None, None, training=True).backward(ember.tensor(g.astype(np.float64)))
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-3, atol=1e-3)


def test_backward_after_inplace_change_raises():
    x = ember.randn(4, 3, 2, 2, requires_grad=True)
    y = x * 1.0
    out = F.batch_norm(y, None, None, training=True)
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_module_running_stats_match_torch(momentum):
    torch = pytest.importorskip("torch")
    r = np.random.default_rng(0)
    em = ember.nn.BatchNorm2d(4, momentum=momentum)
    tm = torch.nn.BatchNorm2d(4, momentum=momentum)
    for _ in range(3):
        x = (r.standard_normal((5, 4, 3, 3)) * 2 + 1).astype(np.float32)
        g = r.standard_normal(x.shape).astype(np.float32)
        xe, xt = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ye, yt = em(xe), tm(xt)
        np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), atol=1e-5)
        ye.backward(ember.tensor(g))
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(em.weight.grad.numpy(), tm.weight.grad.numpy(), atol=1e-4)
        np.testing.assert_allclose(em.bias.grad.numpy(), tm.bias.grad.numpy(), atol=1e-4)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(
            em.get_buffer(name).numpy(), getattr(tm, name).numpy(), rtol=1e-5, atol=1e-6
        )


def test_no_grad_training_still_updates_running_stats():
    bn = ember.nn.BatchNorm2d(3)
    x = ember.randn(4, 3, 5, 5) * 3 + 2
    with ember.no_grad():
        bn(x)
    mu = x.numpy().mean((0, 2, 3))
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mu, rtol=1e-5, atol=1e-6)
