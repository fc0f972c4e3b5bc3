"""nn.functional: composed ops checked by finite differences (float64, first and second
order), attention and interpolation against NumPy and PyTorch, and the small helpers."""

import numpy as np
import pytest
from scipy.special import erf

import ember
import ember.nn.functional as F
from ember.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(7)


def d64(*shape, scale=1.0, shift=0.0):
    return ember.tensor(RNG.standard_normal(shape) * scale + shift, requires_grad=True)


def npy(t):
    return t.detach().numpy()


def _torch():
    return pytest.importorskip("torch")


def tt(x, torch, grad=False):
    return torch.tensor(npy(x) if isinstance(x, ember.Tensor) else x, requires_grad=grad)


# ---- activations -------------------------------------------------------------------------


ACTIVATIONS = [
    ("gelu", lambda x: F.gelu(x)),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")),
    ("silu", F.silu),
    ("softplus", lambda x: F.softplus(x, beta=1.5, threshold=3.0)),
    ("elu", lambda x: F.elu(x, 0.7)),
    ("selu", F.selu),
    ("celu", lambda x: F.celu(x, 1.3)),
    ("mish", F.mish),
    ("logsigmoid", F.logsigmoid),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.1)),
    ("hardswish", F.hardswish),
    ("softsign", F.softsign),
    ("glu", lambda x: F.glu(x, 1)),
]


@pytest.mark.parametrize("name,fn", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_gradcheck(name, fn):
    x = d64(3, 4, scale=2.0)
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


def test_gelu_numpy_and_exact_derivative():
    x = np.linspace(-5, 5, 41)
    t = ember.tensor(x, requires_grad=True)
    y = F.gelu(t)
    np.testing.assert_allclose(npy(y), 0.5 * x * (1 + erf(x / np.sqrt(2))), atol=1e-14)
    y.sum().backward()
    pdf = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(npy(t.grad), 0.5 * (1 + erf(x / np.sqrt(2))) + x * pdf, atol=1e-12)
    with pytest.raises(RuntimeError, match="approximate"):
        F.gelu(t, approximate="fast")


def test_softplus_and_bce_logits_gradient_at_zero():
    x = ember.tensor([0.0, 0.0], dtype=ember.float64, requires_grad=True)
    F.softplus(x).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [0.5, 0.5])
    x.grad = None
    F.logsigmoid(x).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [0.5, 0.5])


def test_activations_saturate_without_nan():
    x = ember.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], requires_grad=True)
    for fn in (F.softplus, F.logsigmoid, F.elu, F.mish, F.silu, F.gelu, F.celu):
        x.grad = None
        y = fn(x)
        y.sum().backward()
        assert np.isfinite(npy(y)).all() and np.isfinite(npy(x.grad)).all(), fn.__name__


def test_hardtanh_relu6_gradients_match_pytorch_at_edges():
    torch = _torch()
    x = np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 6.0, 7.0])
    for ef, tf in (
        (F.hardtanh, torch.nn.functional.hardtanh),
        (F.relu6, torch.nn.functional.relu6),
    ):
        a, b = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        ef(a).sum().backward()
        tf(b).sum().backward()
        np.testing.assert_array_equal(npy(a.grad), b.grad.numpy())


def test_inplace_functional_forms():
    x = ember.tensor([-1.0, 2.0])
    assert F.relu_(x) is x and x.tolist() == [0.0, 2.0]
    y = ember.tensor([-1.0, 2.0])
    assert F.leaky_relu(y, 0.5, inplace=True) is y and y.tolist() == [-0.5, 2.0]
    z = ember.tensor([-3.0, 3.0])
    F.hardtanh(z, inplace=True)
    assert z.tolist() == [-1.0, 1.0]


# ---- normalization -----------------------------------------------------------------------


def test_group_norm_gradcheck():
    x, w, b = d64(2, 4, 3), d64(4), d64(4)
    assert gradcheck(lambda x, w, b: F.group_norm(x, 2, w, b), (x, w, b))
    assert gradgradcheck(lambda x, w, b: F.group_norm(x, 2, w, b), (x, w, b), atol=1e-4)


def test_batch_norm_training_gradcheck_and_running_update():
    x, w, b = d64(4, 3, 2), d64(3), d64(3)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, True), (x, w, b))
    assert gradgradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, True), (x, w, b),
                         atol=1e-4)  # fmt: skip
    rm, rv = ember.zeros(3, dtype=ember.float64), ember.ones(3, dtype=ember.float64)
    F.batch_norm(x, rm, rv, training=True, momentum=0.5)
    xs = npy(x)
    np.testing.assert_allclose(npy(rm), 0.5 * xs.mean((0, 2)), atol=1e-12)
    np.testing.assert_allclose(npy(rv), 0.5 + 0.5 * xs.var((0, 2), ddof=1), atol=1e-12)
    assert not rm.requires_grad


def test_batch_norm_eval_gradcheck():
    x, w, b = d64(4, 3), d64(3), d64(3)
    rm = ember.tensor(RNG.standard_normal(3))
    rv = ember.tensor(RNG.random(3) + 0.5)
    fn = lambda x, w, b: F.batch_norm(x, rm, rv, w, b, False)  # noqa: E731
    assert gradcheck(fn, (x, w, b))
    ref = (npy(x) - npy(rm)) / np.sqrt(npy(rv) + 1e-5) * npy(w) + npy(b)
    np.testing.assert_allclose(npy(fn(x, w, b)), ref, atol=1e-12)


def test_layer_rms_instance_norm_gradcheck():
    x, w, b = d64(2, 3, 4), d64(4), d64(4)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (4,), w, b), (x, w, b))
    assert gradcheck(lambda x, w: F.rms_norm(x, (4,), w, 1e-6), (x, w))
    assert gradgradcheck(lambda x, w: F.rms_norm(x, (4,), w, 1e-6), (x, w), atol=1e-4)
    assert gradcheck(lambda x: F.instance_norm(x), (x,))


def test_norm_functional_parity():
    torch = _torch()
    tf = torch.nn.functional
    x = RNG.standard_normal((2, 6, 5)).astype(np.float32)
    w, b = RNG.standard_normal(6).astype(np.float32), RNG.standard_normal(6).astype(np.float32)
    e_args = [ember.tensor(a) for a in (x, w, b)]
    t_args = [torch.tensor(a) for a in (x, w, b)]
    np.testing.assert_allclose(
        npy(F.group_norm(e_args[0], 3, *e_args[1:])),
        tf.group_norm(t_args[0], 3, *t_args[1:]).numpy(), atol=1e-5,
    )  # fmt: skip
    np.testing.assert_allclose(
        npy(F.rms_norm(e_args[0], [5])), tf.rms_norm(t_args[0], [5]).numpy(), atol=1e-5
    )
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        F.group_norm(e_args[0], 4)
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.rms_norm(e_args[0], [6])


# ---- attention ---------------------------------------------------------------------------


def np_attention(q, k, v, mask=None, scale=None):
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    m = s.max(-1, keepdims=True)
    p = np.exp(s - m)
    return p / p.sum(-1, keepdims=True) @ v


def test_sdpa_numpy_reference_and_gradcheck():
    q, k, v = d64(2, 3, 4), d64(2, 5, 4), d64(2, 5, 3)
    mask = RNG.random((3, 5)) > 0.3
    mask[:, 0] = True
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=ember.tensor(mask))
    np.testing.assert_allclose(npy(out), np_attention(npy(q), npy(k), npy(v), mask), atol=1e-12)
    fmask = ember.tensor(RNG.standard_normal((3, 5)))
    for kw in ({}, {"attn_mask": ember.tensor(mask)}, {"attn_mask": fmask}, {"is_causal": True},
               {"scale": 0.3}):  # fmt: skip
        fn = lambda q, k, v, kw=kw: F.scaled_dot_product_attention(q, k, v, **kw)  # noqa: E731
        assert gradcheck(fn, (q, k, v))
    fn = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)  # noqa: E731
    assert gradgradcheck(fn, (q, k, v), atol=1e-4)


def test_sdpa_parity_with_pytorch():
    torch = _torch()
    tf = torch.nn.functional
    q = RNG.standard_normal((2, 4, 6, 8)).astype(np.float32)
    k = RNG.standard_normal((2, 4, 7, 8)).astype(np.float32)
    v = RNG.standard_normal((2, 4, 7, 5)).astype(np.float32)
    bmask = RNG.random((2, 1, 6, 7)) > 0.4
    bmask[0, 0, 2] = False  # a query that sees no key: zeros, not NaN
    fmask = RNG.standard_normal((6, 7)).astype(np.float32)
    fmask[3] = -np.inf
    for kw in ({}, {"is_causal": True}, {"scale": 0.5}):
        _check_sdpa(torch, tf, q, k, v, kw)
    _check_sdpa(torch, tf, q, k, v, {}, mask=bmask)
    _check_sdpa(torch, tf, q, k, v, {}, mask=fmask)
    kg, vg = k[:, :2], v[:, :2]  # grouped-query attention: 4 query heads, 2 kv heads
    _check_sdpa(torch, tf, q, kg, vg, {"enable_gqa": True})


def _check_sdpa(torch, tf, q, k, v, kw, mask=None):
    eq, ek, ev = (ember.tensor(a, requires_grad=True) for a in (q, k, v))
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    em = None if mask is None else ember.tensor(mask)
    tm = None if mask is None else torch.tensor(mask)
    out = F.scaled_dot_product_attention(eq, ek, ev, attn_mask=em, **kw)
    ref = tf.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, **kw)
    np.testing.assert_allclose(npy(out), ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = RNG.standard_normal(ref.shape).astype(np.float32)
    out.backward(ember.tensor(g))
    ref.backward(torch.tensor(g))
    for a, b in ((eq, tq), (ek, tk), (ev, tv)):
        assert np.isfinite(npy(a.grad)).all()
        np.testing.assert_allclose(npy(a.grad), b.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_sdpa_errors_and_dropout():
    q = ember.randn(2, 3, 4)
    with pytest.raises(RuntimeError, match="is_causal"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=ember.ones(3, 3).bool(), is_causal=True)
    with pytest.raises(RuntimeError, match="query"):
        F.scaled_dot_product_attention(q, ember.randn(2, 3, 5), q)
    out = F.scaled_dot_product_attention(q, q, q, dropout_p=1.0)
    assert float(out.abs().sum()) == 0.0


# ---- interpolate -------------------------------------------------------------------------


INTERP = [
    ((1, 2, 5, 7), {"scale_factor": 2}),
    ((1, 2, 5, 7), {"scale_factor": 1.7}),
    ((1, 2, 5, 7), {"size": (3, 4)}),
    ((1, 2, 5, 7), {"size": (8, 3), "mode": "nearest-exact"}),
    ((1, 2, 5, 7), {"scale_factor": 2, "mode": "bilinear"}),
    ((1, 2, 5, 7), {"scale_factor": 1.7, "mode": "bilinear", "align_corners": True}),
    ((1, 2, 5, 7), {"size": (3, 11), "mode": "bilinear", "align_corners": False}),
    ((1, 2, 5, 7), {"scale_factor": 0.6, "mode": "bilinear", "recompute_scale_factor": True}),
    ((2, 3, 6, 9), {"size": (3, 4), "mode": "area"}),
    ((2, 3, 9), {"scale_factor": 1.5, "mode": "linear"}),
    ((2, 3, 9), {"size": 4}),
    ((1, 1, 3, 4, 5), {"scale_factor": 2, "mode": "trilinear"}),
]


@pytest.mark.parametrize("shape,kw", INTERP)
def test_interpolate_parity(shape, kw):
    torch = _torch()
    x = RNG.standard_normal(shape).astype(np.float32)
    a, b = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = F.interpolate(a, **kw), torch.nn.functional.interpolate(b, **kw)
    np.testing.assert_allclose(npy(out), ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = RNG.standard_normal(ref.shape).astype(np.float32)
    out.backward(ember.tensor(g))
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(npy(a.grad), b.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_interpolate_bilinear_gradcheck_and_numpy():
    x = d64(1, 1, 3, 4)
    for ac in (True, False):
        fn = lambda x, ac=ac: F.interpolate(x, size=(5, 6), mode="bilinear", align_corners=ac)  # noqa: E731
        assert gradcheck(fn, (x,))
    a = ember.tensor(np.arange(4.0).reshape(1, 1, 1, 4))
    out = F.interpolate(a, size=(1, 7), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(npy(out).ravel(), np.linspace(0, 3, 7))


def test_interpolate_errors():
    x = ember.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=2, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(NotImplementedError, match="needs 3D input"):
        F.interpolate(x, scale_factor=2, mode="linear")


# ---- the rest ----------------------------------------------------------------------------


def test_embedding_functional_gradcheck():
    w = d64(5, 3)
    idx = ember.tensor([[0, 4, 4], [1, 0, 2]])
    assert gradcheck(lambda w: F.embedding(idx, w), (w,))
    # with padding_idx the padding row's gradient is zero by definition, not by calculus;
    # the defined gradient is still differentiated consistently
    assert gradgradcheck(lambda w: F.embedding(idx, w, padding_idx=4) ** 2, (w,))
    with pytest.raises(RuntimeError, match="indices"):
        F.embedding(ember.tensor([0.0]), w)


def test_bilinear_and_prelu_gradcheck():
    x1, x2, w, b = d64(3, 2), d64(3, 4), d64(5, 2, 4), d64(5)
    assert gradcheck(F.bilinear, (x1, x2, w, b))
    ref = np.einsum("ni,oij,nj->no", npy(x1), npy(w), npy(x2)) + npy(b)
    np.testing.assert_allclose(npy(F.bilinear(x1, x2, w, b)), ref, atol=1e-12)
    x, a = d64(2, 3, 4), ember.tensor(RNG.random(3) * 0.5, requires_grad=True)
    assert gradcheck(F.prelu, (x, a))


def test_normalize_cosine_pairwise():
    torch = _torch()
    tf = torch.nn.functional
    x = RNG.standard_normal((4, 5)).astype(np.float32)
    y = RNG.standard_normal((4, 5)).astype(np.float32)
    x[1] = 0  # a zero vector: finite output and gradient
    pairs = [
        (lambda a, b: F.normalize(a), lambda a, b: tf.normalize(a)),
        (lambda a, b: F.normalize(a, p=1.0, dim=0), lambda a, b: tf.normalize(a, p=1.0, dim=0)),
        (F.cosine_similarity, tf.cosine_similarity),
        (F.pairwise_distance, tf.pairwise_distance),
        (lambda a, b: F.pairwise_distance(a, b, p=1.0, keepdim=True),
         lambda a, b: tf.pairwise_distance(a, b, p=1.0, keepdim=True)),
    ]  # fmt: skip
    for ef, tf_ in pairs:
        ea, eb = ember.tensor(x, requires_grad=True), ember.tensor(y, requires_grad=True)
        ta, tb = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
        out, ref = ef(ea, eb), tf_(ta, tb)
        np.testing.assert_allclose(npy(out), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
        out.sum().backward()
        ref.sum().backward()
        np.testing.assert_allclose(npy(ea.grad), ta.grad.numpy(), rtol=1e-4, atol=1e-5)
    x64 = d64(3, 4)
    assert gradcheck(lambda t: F.normalize(t, dim=1), (x64,))
    assert gradcheck(lambda a, b: F.cosine_similarity(a, b), (x64, d64(3, 4)))


def test_feature_and_alpha_dropout():
    x = ember.ones(4, 6, 5)
    y = npy(F.dropout1d(x, 0.5))
    per = y.reshape(4, 6, -1)
    assert np.all((per == 0).all(-1) | (per == 2).all(-1))
    assert F.dropout2d(x, 0.5, training=False) is x
    with pytest.raises(RuntimeError, match="Expected 3D or 4D"):
        F.dropout2d(ember.ones(2, 2), 0.5)
    z = ember.tensor(RNG.standard_normal((200, 200)).astype(np.float32))
    out = npy(F.alpha_dropout(z, 0.2, training=True))
    assert abs(out.mean()) < 0.05 and abs(out.std() - 1) < 0.05
    w = ember.ones(3, 4)
    F.dropout(w, 0.5, inplace=True)
    assert set(np.unique(npy(w))) <= {0.0, 2.0}


def test_reexports_and_pad():
    x = ember.arange(6.0).reshape(1, 2, 3)
    assert F.pad(x, (1, 1)).shape == (1, 2, 5)
    assert F.one_hot(ember.tensor([0, 2]), 3).tolist() == [[1, 0, 0], [0, 0, 1]]
    assert F.softmax(x, -1).shape == (1, 2, 3)
    for name in F.__all__:
        assert callable(getattr(F, name)), name
        assert getattr(F, name).__doc__, name
