"""Linear, convolution, pooling, dropout and embedding layers: outputs and gradients against
NumPy float64 references and, where torch is installed, against PyTorch layers holding
identical weights; dropout train/eval; default initialisation."""

import math

import numpy as np
import pytest
from nn_parity import _torch, e, npy, parity, randn
from numpy.lib.stride_tricks import sliding_window_view as windows

import ember
import ember.nn as nn

RNG = np.random.default_rng(1234)


# ---- NumPy references --------------------------------------------------------------------


def np_conv2d(x, w, b=None, stride=1, pad=0, dil=1, groups=1):
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    eh, ew = dil * (kh - 1) + 1, dil * (kw - 1) + 1
    win = windows(x, (eh, ew), axis=(2, 3))[:, :, ::stride, ::stride, ::dil, ::dil]
    outs = []
    for g in range(groups):
        xs = win[:, g * cg : (g + 1) * cg]
        ws = w[g * (co // groups) : (g + 1) * (co // groups)].astype(np.float64)
        outs.append(np.einsum("nchwij,ocij->nohw", xs, ws))
    out = np.concatenate(outs, axis=1)
    return out if b is None else out + b.reshape(1, -1, 1, 1)


# ---- linear ------------------------------------------------------------------------------


def test_linear_numpy_reference_and_fused_node():
    m = nn.Linear(5, 3)
    x = randn(2, 4, 5)
    y = m(e(x, True))
    assert type(y.grad_fn).__name__ == "Linear"  # one fused node
    w, b = npy(m.weight).astype(np.float64), npy(m.bias)
    np.testing.assert_allclose(npy(y), x @ w.T + b, rtol=1e-5, atol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(npy(m.bias.grad), np.full(3, 8.0), rtol=1e-6)
    np.testing.assert_allclose(
        npy(m.weight.grad), np.tile(x.sum((0, 1)), (3, 1)), rtol=1e-5, atol=1e-5
    )
    assert nn.Linear(5, 3, bias=False).bias is None


def test_linear_bilinear_parity():
    torch = _torch()
    parity(nn.Linear(6, 4), torch.nn.Linear(6, 4), randn(3, 2, 6))
    parity(nn.Linear(6, 4, bias=False), torch.nn.Linear(6, 4, bias=False), randn(3, 6))
    parity(nn.Bilinear(3, 4, 5), torch.nn.Bilinear(3, 4, 5), randn(6, 3), randn(6, 4))
    x = randn(3)
    assert nn.Identity(1, a=2)(e(x)) is not None


# ---- convolution -------------------------------------------------------------------------


def test_conv2d_numpy_reference():
    for kw in (
        {"stride": 2, "padding": 1},
        {"dilation": 2, "padding": 2},
        {"groups": 2},
    ):
        m = nn.Conv2d(4, 6, 3, **kw)
        x = randn(2, 4, 7, 8)
        ref = np_conv2d(
            x, npy(m.weight), npy(m.bias), kw.get("stride", 1), kw.get("padding", 0),
            kw.get("dilation", 1), kw.get("groups", 1),
        )  # fmt: skip
        np.testing.assert_allclose(npy(m(e(x))), ref, rtol=1e-4, atol=1e-5)


def np_conv_transpose2d(x, w, b, stride, pad):
    n, c, h, wd = x.shape
    _, co, kh, kw = w.shape
    out = np.zeros((n, co, (h - 1) * stride + kh, (wd - 1) * stride + kw))
    for i in range(kh):  # scatter each kernel tap: the adjoint of a strided conv
        for j in range(kw):
            tap = np.einsum("nchw,co->nohw", x.astype(np.float64), w[:, :, i, j])
            out[:, :, i : i + stride * h : stride, j : j + stride * wd : stride] += tap
    out = out[:, :, pad : out.shape[2] - pad, pad : out.shape[3] - pad]
    return out + b.reshape(1, -1, 1, 1)


def test_conv1d_and_conv_transpose2d_numpy_reference():
    m = nn.Conv1d(3, 5, 3, stride=2, padding=1, dilation=2)
    x = randn(2, 3, 11)
    # the 2-D helper pads both dims equally: pad L by hand, keep H = 1
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1)))[:, :, None]
    ref = np_conv2d(xp, npy(m.weight)[:, :, None], npy(m.bias), 1, 0, 2)[..., ::2]
    np.testing.assert_allclose(npy(m(e(x))), ref[:, :, 0], rtol=1e-4, atol=1e-5)
    t = nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1)
    x = randn(2, 4, 5, 6)
    ref = np_conv_transpose2d(x, npy(t.weight), npy(t.bias), 2, 1)
    np.testing.assert_allclose(npy(t(e(x))), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kw",
    [
        {"stride": 2, "padding": 1},
        {"padding": "same", "dilation": 2},
        {"padding": "valid", "groups": 2},
        {"padding": 1, "padding_mode": "reflect"},
        {"padding": (1, 2), "padding_mode": "replicate"},
        {"padding": 1, "padding_mode": "circular", "bias": False},
    ],
)
def test_conv2d_parity(kw):
    torch = _torch()
    parity(nn.Conv2d(4, 6, 3, **kw), torch.nn.Conv2d(4, 6, 3, **kw), randn(2, 4, 7, 8), atol=1e-4)


def test_conv_same_even_kernel_and_conv1d_parity():
    torch = _torch()
    parity(
        nn.Conv2d(2, 3, 4, padding="same"), torch.nn.Conv2d(2, 3, 4, padding="same"),
        randn(1, 2, 6, 5), atol=1e-4,
    )  # fmt: skip
    for kw in ({"padding": "same", "dilation": 2}, {"stride": 2, "groups": 3}):
        parity(nn.Conv1d(3, 6, 3, **kw), torch.nn.Conv1d(3, 6, 3, **kw), randn(2, 3, 9), atol=1e-4)
    parity(nn.Conv1d(3, 6, 4, padding="same"), torch.nn.Conv1d(3, 6, 4, padding="same"),
           randn(3, 9), atol=1e-4)  # fmt: skip


def test_conv_transpose_parity():
    torch = _torch()
    kw = {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}
    parity(nn.ConvTranspose2d(4, 6, 3, **kw), torch.nn.ConvTranspose2d(4, 6, 3, **kw),
           randn(2, 4, 5, 4), atol=1e-4)  # fmt: skip
    parity(nn.ConvTranspose1d(4, 2, 3, stride=2), torch.nn.ConvTranspose1d(4, 2, 3, stride=2),
           randn(2, 4, 5), atol=1e-4)  # fmt: skip
    em, tm = nn.ConvTranspose2d(2, 3, 3, stride=2), torch.nn.ConvTranspose2d(2, 3, 3, stride=2)
    em.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = randn(1, 2, 4, 4)
    out = em(e(x), output_size=[10, 10])
    ref = tm(torch.tensor(x), output_size=[10, 10])
    np.testing.assert_allclose(npy(out), ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="output size"):
        em(e(x), output_size=[20, 20])


def test_conv_validation_errors():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 6, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="Invalid padding string"):
        nn.Conv2d(3, 6, 3, padding="full")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 6, 3, padding_mode="mirror")
    with pytest.raises(RuntimeError, match="channels"):
        nn.Conv2d(3, 6, 3)(ember.randn(1, 4, 5, 5))


def test_conv_default_init_bounds():
    m = nn.Conv2d(8, 16, 3)
    fan_in = 8 * 9
    bound = math.sqrt(6 / ((1 + 5) * fan_in))  # kaiming_uniform_ with a=sqrt(5)
    w = npy(m.weight)
    assert w.shape == (16, 8, 3, 3) and np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.9 * bound
    assert np.abs(npy(m.bias)).max() <= 1 / math.sqrt(fan_in)


# ---- pooling -----------------------------------------------------------------------------


def test_pooling_numpy_reference():
    x = randn(2, 3, 6, 8)
    mx = windows(x, (2, 2), axis=(2, 3))[:, :, ::2, ::2].max((-1, -2))
    np.testing.assert_allclose(npy(nn.MaxPool2d(2)(e(x))), mx)
    av = windows(x.astype(np.float64), (3, 3), axis=(2, 3))[:, :, ::1, ::1].mean((-1, -2))
    np.testing.assert_allclose(npy(nn.AvgPool2d(3, stride=1)(e(x))), av, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        npy(nn.AdaptiveAvgPool2d(1)(e(x))), x.mean((2, 3), keepdims=True), rtol=1e-5
    )


def test_pooling_parity():
    torch = _torch()
    x = randn(2, 3, 7, 9)
    cases = [
        (nn.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1)),
        (nn.MaxPool2d(2, ceil_mode=True), torch.nn.MaxPool2d(2, ceil_mode=True)),
        (nn.AvgPool2d(3, 2, 1, count_include_pad=False),
         torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
        (nn.AdaptiveAvgPool2d((3, 4)), torch.nn.AdaptiveAvgPool2d((3, 4))),
        (nn.AdaptiveAvgPool2d((None, 2)), torch.nn.AdaptiveAvgPool2d((None, 2))),
        (nn.AdaptiveMaxPool2d((3, 4)), torch.nn.AdaptiveMaxPool2d((3, 4))),
    ]  # fmt: skip
    for em, tm in cases:
        parity(em, tm, x)
    x1 = randn(2, 3, 11)
    for em, tm in [
        (nn.MaxPool1d(3, 2), torch.nn.MaxPool1d(3, 2)),
        (nn.AvgPool1d(2), torch.nn.AvgPool1d(2)),
        (nn.AdaptiveAvgPool1d(4), torch.nn.AdaptiveAvgPool1d(4)),
        (nn.AdaptiveMaxPool1d(4), torch.nn.AdaptiveMaxPool1d(4)),
    ]:
        parity(em, tm, x1)
    out, idx = nn.MaxPool2d(2, return_indices=True)(e(x))
    _, tidx = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


# ---- dropout -----------------------------------------------------------------------------


def test_dropout_train_and_eval():
    d = nn.Dropout(0.3)
    x = ember.ones(200, 100)
    y = d(x)
    kept = npy(y) != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(npy(y)[kept], 1 / 0.7, rtol=1e-6)
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)
    assert float(nn.Dropout(1.0)(x).abs().sum()) == 0.0
    xg = ember.ones(10, 10, requires_grad=True)
    out = nn.Dropout(0.5)(xg)
    out.sum().backward()
    np.testing.assert_array_equal(npy(xg.grad), npy(out))  # grad is the same mask * scale


def test_dropout2d_zeroes_whole_channels():
    d = nn.Dropout2d(0.5)
    y = npy(d(ember.ones(8, 16, 4, 4)))
    per_channel = y.reshape(8, 16, -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0 < (per_channel == 0).all(-1).mean() < 1
    d.eval()
    x = ember.ones(2, 3, 4, 4)
    assert d(x) is x


# ---- embedding ---------------------------------------------------------------------------


def test_embedding_padding_idx_lookup_and_grad():
    emb = nn.Embedding(6, 3, padding_idx=2)
    w = npy(emb.weight).copy()
    np.testing.assert_array_equal(w[2], 0)
    idx = np.array([[0, 2, 5], [2, 2, 1]])
    out = emb(ember.tensor(idx))
    np.testing.assert_array_equal(npy(out), w[idx])
    g = randn(2, 3, 3)
    out.backward(e(g))
    ref = np.zeros((6, 3), np.float64)
    np.add.at(ref, idx.reshape(-1), g.reshape(-1, 3))
    ref[2] = 0
    np.testing.assert_allclose(npy(emb.weight.grad), ref, rtol=1e-6, atol=1e-6)
    emb2 = nn.Embedding(6, 3, padding_idx=-1)
    assert emb2.padding_idx == 5
    with pytest.raises(IndexError, match="out of range"):
        emb(ember.tensor([6]))


def test_embedding_parity_and_from_pretrained():
    torch = _torch()
    idx = RNG.integers(0, 10, size=(4, 5))
    parity(nn.Embedding(10, 4, padding_idx=3), torch.nn.Embedding(10, 4, padding_idx=3), idx)
    kw = {"scale_grad_by_freq": True}
    parity(nn.Embedding(10, 4, **kw), torch.nn.Embedding(10, 4, **kw), idx)
    em, tm = nn.Embedding(10, 4, max_norm=1.0), torch.nn.Embedding(10, 4, max_norm=1.0)
    parity(em, tm, idx)
    np.testing.assert_allclose(npy(em.weight), tm.weight.detach().numpy(), rtol=1e-5, atol=1e-6)
    table = ember.randn(5, 2)
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(npy(frozen(ember.tensor([4]))), npy(table)[[4]])
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad


def test_embedding_init_is_standard_normal():
    w = npy(nn.Embedding(400, 50).weight)
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02
