"""Shared helpers of the nn layer tests: float32 random inputs and a PyTorch parity check
that copies a torch module's state into an ember module and compares outputs and grads."""

import numpy as np
import pytest

import ember

RNG = np.random.default_rng(1234)


def randn(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def e(x, grad=False):
    return ember.tensor(x, requires_grad=grad)


def npy(t):
    return t.detach().numpy()


def _torch():
    return pytest.importorskip("torch")


def parity(emod, tmod, *xs, rtol=1e-5, atol=1e-5, train=True, grad_inputs=True):
    """Copy tmod's state into emod; compare outputs, input grads and parameter grads."""
    torch = _torch()
    emod.load_state_dict(
        {k: ember.tensor(v.detach().numpy()) for k, v in tmod.state_dict().items()}
    )
    emod.train(train)
    tmod.train(train)
    float_in = [x.dtype.kind == "f" and grad_inputs for x in xs]
    ex = [e(x, g) for x, g in zip(xs, float_in)]
    tx = [torch.tensor(x, requires_grad=g) for x, g in zip(xs, float_in)]
    out, tout = emod(*ex), tmod(*tx)
    np.testing.assert_allclose(npy(out), tout.detach().numpy(), rtol=rtol, atol=atol)
    if not tout.requires_grad:
        return out
    g = randn(*tout.shape)
    out.backward(e(g))
    tout.backward(torch.tensor(g))
    for a, b, f in zip(ex, tx, float_in):
        if f:
            np.testing.assert_allclose(npy(a.grad), b.grad.numpy(), rtol=rtol, atol=atol)
    tparams = dict(tmod.named_parameters())
    for name, p in emod.named_parameters():
        tg = tparams[name].grad
        if tg is None:
            assert p.grad is None or float(p.grad.abs().sum()) == 0, name
        else:
            np.testing.assert_allclose(npy(p.grad), tg.numpy(), rtol=rtol, atol=atol, err_msg=name)
    return out
