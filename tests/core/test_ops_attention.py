"""Scaled dot-product attention through the op harness (on the CPU it is one node,
nn/_attention_cpu.py), plus what that node promises beyond values: the output laid out like
the query, dq/dk/dv in one buffer when q, k, v are pieces of one, and no concatenation in
``split``'s backward then."""

import numpy as np
import pytest
from harness import OpCase, const, op_tests

import ember
import ember.nn.functional as F
from ember.nn import _attention_cpu
from ember.ops import join

R = np.random.default_rng(11)


def _attention(q, k, v, bias=None, scale=None):
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if bias is not None:
        s = s + bias
    p = np.exp(s - s.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True) @ v


def _causal(l, s):
    return np.triu(np.full((l, s), -np.inf), 1)


def _sdpa(m):
    return m.nn.functional.scaled_dot_product_attention


_FMASK = R.standard_normal((5, 6))
_BMASK = R.random((5, 6)) > 0.4
_BMASK[:, 0] = True  # every query sees a key (rows with none take the composite path)

CASES = [
    OpCase(
        "sdpa_3d",
        lambda m, q, k, v: _sdpa(m)(q, k, v),
        _attention,
        ((2, 5, 4), (2, 6, 4), (2, 6, 3)),
        low_precision=True,
    ),
    OpCase(
        "sdpa_4d_causal",
        lambda m, q, k, v: _sdpa(m)(q, k, v, is_causal=True),
        lambda q, k, v: _attention(q, k, v, _causal(5, 6)),
        ((2, 2, 5, 4), (2, 2, 6, 4), (2, 2, 6, 4)),
    ),
    OpCase(
        "sdpa_float_mask_scale",
        lambda m, q, k, v, b: _sdpa(m)(q, k, v, attn_mask=b, scale=0.3),
        lambda q, k, v, b: _attention(q, k, v, b, 0.3),
        ((3, 5, 4), (3, 6, 4), (3, 6, 2), const(_FMASK)),
    ),
    OpCase(
        "sdpa_bool_mask",
        lambda m, q, k, v, b: _sdpa(m)(q, k, v, attn_mask=b),
        lambda q, k, v, b: _attention(q, k, v, np.where(b, 0.0, -np.inf)),
        ((2, 5, 4), (2, 6, 4), (2, 6, 4), const(_BMASK)),
    ),
]

test_forward, test_low_precision, test_gradcheck, test_gradgradcheck, test_cuda = op_tests(CASES)


def _heads(qkv, b, t, h, d):
    """q, k, v as (B, H, T, D) views of a (B, T, 3 * H * D) tensor, as a GPT block makes them."""
    q, k, v = qkv.split(h * d, dim=2)
    return [x.view(b, t, h, d).transpose(1, 2) for x in (q, k, v)]


@pytest.mark.parametrize("causal", [False, True])
def test_heads_split_from_one_projection_match_float64(monkeypatch, causal):
    b, t, h, d = 2, 64, 2, 32
    x64 = R.standard_normal((b, t, 3 * h * d))
    g64 = R.standard_normal((b, h, t, d))
    cats = []
    real = join.Cat.forward
    monkeypatch.setattr(join.Cat, "forward", lambda *a, **k: cats.append(1) or real(*a, **k))
    qkv = ember.tensor(x64.astype(np.float32), requires_grad=True)
    q, k, v = _heads(qkv, b, t, h, d)
    assert _attention_cpu.usable(q._data, k._data, v._data)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    # the output has the query's (B, T, H, D) layout, as PyTorch's CPU kernel gives it
    assert y.transpose(1, 2)._data.flags.c_contiguous
    merged = y.transpose(1, 2).reshape(b, t, h * d)
    assert np.shares_memory(merged._data, y._data)
    y.backward(ember.tensor(g64.astype(np.float32)))
    assert not cats  # dq, dk, dv were written into one buffer: split's backward copies nothing
    q64, k64, v64 = (a.reshape(b, t, h, d).transpose(0, 2, 1, 3) for a in np.split(x64, 3, 2))
    bias = _causal(t, t) if causal else None
    np.testing.assert_allclose(y.detach().numpy(), _attention(q64, k64, v64, bias), atol=2e-5)
    want = _numeric_grads(q64, k64, v64, g64, bias)
    got = qkv.grad.numpy().reshape(b, t, 3, h, d).transpose(2, 0, 3, 1, 4)
    for i in range(3):
        np.testing.assert_allclose(got[i], want[i], rtol=1e-4, atol=1e-4)


def _numeric_grads(q, k, v, g, bias):
    """dq, dk, dv of the attention in float64 from the closed form."""
    scale = 1 / np.sqrt(q.shape[-1])
    s = q @ np.swapaxes(k, -1, -2) * scale + (0 if bias is None else bias)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    dv = np.swapaxes(p, -1, -2) @ g
    dp = g @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True))
    return ds @ k * scale, np.swapaxes(ds, -1, -2) @ q * scale, dv


def test_one_tensor_as_query_key_and_value_gets_the_sum_of_its_three_gradients():
    """q, k and v alias each other here: the gradients must not share one buffer."""
    x64 = R.standard_normal((3, 8, 4))
    g64 = R.standard_normal((3, 8, 4))
    x = ember.tensor(x64, requires_grad=True)
    F.scaled_dot_product_attention(x, x, x).backward(ember.tensor(g64))
    dq, dk, dv = _numeric_grads(x64, x64, x64, g64, None)
    np.testing.assert_allclose(x.grad.numpy(), dq + dk + dv, rtol=1e-10, atol=1e-12)


def test_contiguous_inputs_give_a_contiguous_output_and_gradients():
    """Also the broadcast (stride-0) gradient ``y.sum().backward()`` sends, against float64."""
    arrays = [R.standard_normal((2, 3, 16, 8)) for _ in range(3)]
    q, k, v = (ember.tensor(a, requires_grad=True) for a in arrays)
    y = F.scaled_dot_product_attention(q, k, v)
    assert y._data.flags.c_contiguous
    y.sum().backward()
    assert all(t.grad._data.flags.c_contiguous for t in (q, k, v))
    want = _numeric_grads(*arrays, np.ones((2, 3, 16, 8)), None)
    for t, w in zip((q, k, v), want):
        np.testing.assert_allclose(t.grad.numpy(), w, rtol=1e-10, atol=1e-12)


def test_split_backward_joins_pieces_of_other_buffers_by_copying():
    """Pieces' no-copy join applies only to views that tile one buffer in order."""
    x = ember.randn(4, 6, requires_grad=True)
    a, b = x.split(3, dim=1)
    (a * 2 + b * 3).sum().backward()  # the gradients are separate arrays: concatenated
    want = np.concatenate([np.full((4, 3), 2.0), np.full((4, 3), 3.0)], 1)
    np.testing.assert_array_equal(x.grad.numpy(), want)
    buf = np.arange(24.0).reshape(4, 6).copy()  # owns its memory
    swapped = [buf[:, 3:], buf[:, :3]]  # one buffer, but in the wrong order
    assert join._whole(swapped, 1, [3, 3], False) is None
    whole = join._whole([buf[:, :3], buf[:, 3:]], 1, [3, 3], False)
    assert whole.base is buf and whole.shape == (4, 6)
    rows = [buf[i] for i in range(4)]  # unbind's pieces (squeezed) of the same buffer
    assert join._whole(rows, 0, [1, 1, 1, 1], True).base is buf
