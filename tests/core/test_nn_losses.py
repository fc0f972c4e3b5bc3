"""Losses: every loss and reduction against a NumPy float64 reference, finite-difference
gradients, PyTorch parity (functional and module forms) and argument errors."""

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember.autograd import gradcheck, gradgradcheck

RNG = np.random.default_rng(3)


def t64(x, grad=True):
    return ember.tensor(np.asarray(x, np.float64), requires_grad=grad)


def npy(t):
    return t.detach().numpy()


def reduce(loss, reduction):
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


def log_softmax(x, axis=1):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


REDUCTIONS = ["none", "mean", "sum"]


# ---- NumPy references for the elementwise losses -----------------------------------------


def np_smooth_l1(x, y, beta):
    d = np.abs(x - y)
    return np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)


def np_huber(x, y, delta):
    d = np.abs(x - y)
    return np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))


def np_bce(p, y, w=None):
    loss = -(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log1p(-p), -100))
    return loss if w is None else loss * w


def np_bce_logits(x, y, pw=None):
    lw = 1 if pw is None else 1 + (pw - 1) * y
    return (1 - y) * x + lw * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))


ELEMENTWISE = [
    ("mse", lambda x, y, r: F.mse_loss(x, y, reduction=r), lambda x, y: (x - y) ** 2),
    ("l1", lambda x, y, r: F.l1_loss(x, y, reduction=r), lambda x, y: np.abs(x - y)),
    ("smooth_l1", lambda x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.5),
     lambda x, y: np_smooth_l1(x, y, 0.5)),
    ("huber", lambda x, y, r: F.huber_loss(x, y, reduction=r, delta=0.7),
     lambda x, y: np_huber(x, y, 0.7)),
    ("bce_logits", lambda x, y, r: F.binary_cross_entropy_with_logits(x, y, reduction=r),
     np_bce_logits),
    ("soft_margin", lambda x, y, r: F.soft_margin_loss(x, _sign_t(y), reduction=r),
     lambda x, y: np.log1p(np.exp(-np.where(y > 0.5, 1.0, -1.0) * x))),
]  # fmt: skip


def _sign_t(y):
    return ember.where(y > 0.5, 1.0, -1.0)


@pytest.mark.parametrize("name,fn,ref", ELEMENTWISE, ids=[c[0] for c in ELEMENTWISE])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_elementwise_losses_numpy(name, fn, ref, reduction):
    x = RNG.standard_normal((3, 4)) * 2
    y = RNG.random((3, 4))
    out = fn(t64(x), t64(y, False), reduction)
    np.testing.assert_allclose(npy(out), reduce(ref(x, y), reduction), rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda a: fn(a, t64(y, False), reduction), (t64(x),))


def test_regression_losses_grad_wrt_target():
    x, y = t64(RNG.standard_normal(5)), t64(RNG.standard_normal(5))
    for fn in (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss):
        assert gradcheck(fn, (x, y))


def test_legacy_size_average_and_reduce():
    x, y = t64([1.0, 2.0], False), t64([0.0, 0.0], False)
    assert F.mse_loss(x, y, size_average=False).item() == 5.0
    assert F.mse_loss(x, y, reduce=False).tolist() == [1.0, 4.0]
    assert nn.MSELoss(size_average=False).reduction == "sum"
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        F.mse_loss(x, y, reduction="avg")


def test_size_mismatch_warns():
    with pytest.warns(UserWarning, match="target size"):
        F.mse_loss(ember.zeros(3, 1), ember.zeros(3))


# ---- classification ----------------------------------------------------------------------


def np_nll(logp, target, weight=None, ignore_index=-100, reduction="mean"):
    n = logp.shape[0]
    c = logp.shape[1]
    lp = np.moveaxis(logp, 1, -1).reshape(-1, c)
    t = target.reshape(-1)
    keep = t != ignore_index
    safe = np.where(keep, t, 0)
    w = (np.ones(c) if weight is None else weight)[safe] * keep
    loss = -lp[np.arange(t.size), safe] * w
    if reduction == "none":
        return loss.reshape((n,) + target.shape[1:])
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum()


def np_cross_entropy(x, t, weight=None, ignore_index=-100, reduction="mean", ls=0.0):
    lp = log_softmax(x)
    c = x.shape[1]
    nll = np_nll(lp, t, weight, ignore_index, reduction)
    if ls == 0:
        return nll
    w = np.ones(c) if weight is None else weight
    wshape = (1, c) + (1,) * (x.ndim - 2)
    smooth = -(lp * w.reshape(wshape)).sum(1)
    keep = t != ignore_index
    smooth = np.where(keep, smooth, 0.0)
    if reduction == "mean":
        smooth = smooth.sum() / (w[np.where(keep, t, 0)] * keep).sum()
    elif reduction == "sum":
        smooth = smooth.sum()
    return (1 - ls) * nll + ls / c * smooth


CE_CASES = [
    {},
    {"weight": True},
    {"ignore_index": 1},
    {"weight": True, "ignore_index": 2},
    {"ls": 0.1},
    {"ls": 0.2, "weight": True, "ignore_index": 0},
]


@pytest.mark.parametrize("case", CE_CASES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2, 3)])
def test_cross_entropy_numpy(case, reduction, shape):
    x = RNG.standard_normal(shape)
    t = RNG.integers(0, shape[1], size=(shape[0],) + shape[2:])
    t.reshape(-1)[0] = case.get("ignore_index", 0) if "ignore_index" in case else t.reshape(-1)[0]
    w = RNG.random(shape[1]) + 0.5 if case.get("weight") else None
    kw = {"reduction": reduction, "label_smoothing": case.get("ls", 0.0)}
    if "ignore_index" in case:
        kw["ignore_index"] = case["ignore_index"]
    ew = None if w is None else ember.tensor(w)
    out = F.cross_entropy(t64(x), ember.tensor(t), weight=ew, **kw)
    ref = np_cross_entropy(x, t, w, case.get("ignore_index", -100), reduction, case.get("ls", 0))
    np.testing.assert_allclose(npy(out), ref, rtol=1e-10, atol=1e-12)
    if shape == (5, 4):
        assert gradcheck(lambda a: F.cross_entropy(a, ember.tensor(t), weight=ew, **kw), (t64(x),))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_one_node_case(reduction):
    """(N, C) logits with in-range class ids run as one node; its values, gradient and
    second derivative match NumPy float64 and the log_softmax + nll_loss composition."""
    x = RNG.standard_normal((6, 5))
    t = RNG.integers(0, 5, 6)
    a = t64(x)
    out = F.cross_entropy(a, ember.tensor(t), reduction=reduction)
    assert type(out.grad_fn).__name__ == "_CrossEntropyIndices"
    np.testing.assert_allclose(npy(out), np_cross_entropy(x, t, reduction=reduction), rtol=1e-12)
    out.backward()
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(6), t] -= 1
    np.testing.assert_allclose(npy(a.grad), p / (6 if reduction == "mean" else 1), rtol=1e-10)
    b = t64(x)
    F.nll_loss(F.log_softmax(b, 1), ember.tensor(t), reduction=reduction).backward()
    np.testing.assert_allclose(npy(a.grad), npy(b.grad), rtol=1e-12, atol=1e-15)
    fn = lambda v: F.cross_entropy(v, ember.tensor(t), reduction=reduction)  # noqa: E731
    assert gradcheck(fn, (t64(x),))
    assert gradgradcheck(fn, (t64(x),))


def test_cross_entropy_probability_targets():
    x = RNG.standard_normal((4, 5))
    p = RNG.random((4, 5))
    p /= p.sum(1, keepdims=True)
    w = RNG.random(5) + 0.5
    for reduction in REDUCTIONS:
        for ls in (0.0, 0.3):
            q = p * (1 - ls) + ls / 5
            ref = reduce(-(log_softmax(x) * q * w).sum(1), reduction)
            out = F.cross_entropy(t64(x), t64(p, False), ember.tensor(w), reduction=reduction,
                                  label_smoothing=ls)  # fmt: skip
            np.testing.assert_allclose(npy(out), ref, rtol=1e-10)
    assert gradcheck(lambda a, b: F.cross_entropy(a, b), (t64(x), t64(p)))


def test_cross_entropy_unbatched_and_errors():
    x = RNG.standard_normal(4)
    out = F.cross_entropy(t64(x), ember.tensor(2))
    np.testing.assert_allclose(out.item(), -log_softmax(x[None])[0, 2])
    with pytest.raises(ValueError, match="batch_size"):
        F.cross_entropy(ember.zeros(3, 4), ember.tensor([0, 1]))
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(ember.zeros(2, 4), ember.tensor([0, 4]))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(ember.zeros(2, 4), ember.tensor([0, 1]), label_smoothing=1.5)
    assert F.cross_entropy(ember.zeros(2, 4), ember.tensor([-100, -100])).isnan().item()


def test_nll_loss_weighted_mean_numpy():
    logp = log_softmax(RNG.standard_normal((6, 3)))
    t = np.array([0, 1, 2, 2, 1, 0])
    w = np.array([0.2, 1.0, 3.0])
    out = F.nll_loss(t64(logp), ember.tensor(t), ember.tensor(w))
    ref = -(logp[np.arange(6), t] * w[t]).sum() / w[t].sum()
    np.testing.assert_allclose(out.item(), ref, rtol=1e-12)
    with pytest.raises(RuntimeError, match="weight tensor should be defined"):
        F.nll_loss(t64(logp), ember.tensor(t), ember.ones(4))
    with pytest.raises(RuntimeError, match="integer dtype"):
        F.nll_loss(t64(logp), ember.zeros(6))


def test_binary_cross_entropy_numpy_and_clamp():
    p = RNG.random((4, 3)) * 0.98 + 0.01
    y = (RNG.random((4, 3)) > 0.5).astype(np.float64)
    w = RNG.random((4, 3))
    for reduction in REDUCTIONS:
        out = F.binary_cross_entropy(t64(p), t64(y, False), ember.tensor(w), reduction=reduction)
        np.testing.assert_allclose(npy(out), reduce(np_bce(p, y, w), reduction), rtol=1e-12)
    assert gradcheck(lambda a, b: F.binary_cross_entropy(a, b), (t64(p), t64(RNG.random((4, 3)))))
    edge = ember.tensor([0.0, 1.0, 0.0, 1.0], requires_grad=True)
    tgt = ember.tensor([1.0, 0.0, 0.0, 1.0])
    loss = F.binary_cross_entropy(edge, tgt, reduction="none")
    assert loss.tolist() == [100.0, 100.0, 0.0, 0.0]  # log clamped at -100, as PyTorch
    loss.sum().backward()
    assert np.isfinite(npy(edge.grad)).all()
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(ember.tensor([1.5]), ember.tensor([1.0]))
    with pytest.raises(ValueError, match="target size"):
        F.binary_cross_entropy(ember.tensor([0.5]), ember.tensor([1.0, 0.0]))


def test_bce_with_logits_pos_weight_and_extremes():
    x = RNG.standard_normal((5, 3)) * 3
    y = RNG.random((5, 3))
    pw = RNG.random(3) * 3
    w = RNG.random((5, 3))
    out = F.binary_cross_entropy_with_logits(t64(x), t64(y, False), ember.tensor(w),
                                             pos_weight=ember.tensor(pw))  # fmt: skip
    np.testing.assert_allclose(out.item(), (np_bce_logits(x, y, pw) * w).mean(), rtol=1e-12)
    fn = lambda a: F.binary_cross_entropy_with_logits(a, t64(y, False), pos_weight=ember.tensor(pw))  # noqa: E731
    assert gradcheck(fn, (t64(x),))
    big = ember.tensor([-1000.0, 1000.0, 0.0], requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(big, ember.tensor([1.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(npy(loss), [1000.0, 1000.0, np.log(2)], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(npy(big.grad), [-1.0, 1.0, -0.5])


def test_kl_div_numpy():
    logq = log_softmax(RNG.standard_normal((3, 4)))
    p = np.exp(log_softmax(RNG.standard_normal((3, 4))))
    p[0, 0] = 0.0  # 0 * log 0 = 0
    pointwise = np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0) - p * logq
    for reduction in ("none", "sum", "batchmean"):
        out = F.kl_div(t64(logq), t64(p, False), reduction=reduction)
        ref = pointwise.sum() / 3 if reduction == "batchmean" else reduce(pointwise, reduction)
        np.testing.assert_allclose(npy(out), ref, rtol=1e-12, atol=1e-14)
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(t64(logq), t64(p, False))
    logp = np.log(np.exp(log_softmax(RNG.standard_normal((3, 4)))))
    out = F.kl_div(t64(logq), t64(logp, False), reduction="sum", log_target=True)
    np.testing.assert_allclose(out.item(), (np.exp(logp) * (logp - logq)).sum(), rtol=1e-12)
    assert gradcheck(lambda a, b: F.kl_div(a, b, reduction="batchmean", log_target=True),
                     (t64(logq), t64(logp)))  # fmt: skip


# ---- PyTorch parity ----------------------------------------------------------------------


def _pair(torch, x, grad=True, dtype=np.float32):
    x = np.asarray(x)
    if x.dtype.kind == "f":
        x = x.astype(dtype)
        return ember.tensor(x, requires_grad=grad), torch.tensor(x, requires_grad=grad)
    return ember.tensor(x), torch.tensor(x)


_NO_TARGET_GRAD = ("SoftMarginLoss", "HingeEmbeddingLoss", "MarginRankingLoss",
                   "CosineEmbeddingLoss", "CrossEntropyLoss", "NLLLoss")  # fmt: skip


def _check(torch, emod, tmod, *args):
    last = len(args) - 1
    skip = type(emod).__name__ in _NO_TARGET_GRAD
    pairs = [_pair(torch, a, grad=not (skip and i == last)) for i, a in enumerate(args)]
    out = emod(*[p[0] for p in pairs])
    ref = tmod(*[p[1] for p in pairs])
    np.testing.assert_allclose(npy(out), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    if ref.requires_grad:
        g = np.ones(ref.shape, np.float32)
        out.backward(ember.tensor(g))
        ref.backward(torch.tensor(g))
        for a, b in pairs:
            if b.grad is not None:
                np.testing.assert_allclose(npy(a.grad), b.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_loss_modules_parity():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    x, y = RNG.standard_normal((4, 5)), RNG.standard_normal((4, 5))
    p, b = RNG.random((4, 5)) * 0.9 + 0.05, (RNG.random((4, 5)) > 0.5) * 1.0
    t, w = RNG.integers(0, 5, 4), (RNG.random(5) + 0.5).astype(np.float32)
    sgn = np.where(RNG.random(4) > 0.5, 1.0, -1.0)
    for r in REDUCTIONS:
        cases = [
            (nn.MSELoss(reduction=r), tnn.MSELoss(reduction=r), x, y),
            (nn.L1Loss(reduction=r), tnn.L1Loss(reduction=r), x, y),
            (nn.SmoothL1Loss(reduction=r, beta=0.3), tnn.SmoothL1Loss(reduction=r, beta=0.3), x, y),
            (nn.HuberLoss(reduction=r, delta=0.4), tnn.HuberLoss(reduction=r, delta=0.4), x, y),
            (nn.BCELoss(reduction=r), tnn.BCELoss(reduction=r), p, b),
            (nn.BCEWithLogitsLoss(reduction=r, pos_weight=ember.tensor(w)),
             tnn.BCEWithLogitsLoss(reduction=r, pos_weight=torch.tensor(w)), x, b),
            (nn.CrossEntropyLoss(weight=ember.tensor(w), reduction=r, label_smoothing=0.1),
             tnn.CrossEntropyLoss(weight=torch.tensor(w), reduction=r, label_smoothing=0.1), x, t),
            (nn.NLLLoss(reduction=r, ignore_index=2), tnn.NLLLoss(reduction=r, ignore_index=2),
             x, t),
            (nn.KLDivLoss(reduction=r if r != "mean" else "batchmean", log_target=True),
             tnn.KLDivLoss(reduction=r if r != "mean" else "batchmean", log_target=True), x, y),
            (nn.MarginRankingLoss(0.2, reduction=r), tnn.MarginRankingLoss(0.2, reduction=r),
             x[:, 0], y[:, 0], sgn),
            (nn.HingeEmbeddingLoss(reduction=r), tnn.HingeEmbeddingLoss(reduction=r), x,
             np.where(b > 0, 1.0, -1.0)),
            (nn.SoftMarginLoss(reduction=r), tnn.SoftMarginLoss(reduction=r), x,
             np.where(b > 0, 1.0, -1.0)),
            (nn.CosineEmbeddingLoss(0.1, reduction=r), tnn.CosineEmbeddingLoss(0.1, reduction=r),
             x, y, sgn),
            (nn.TripletMarginLoss(swap=True, reduction=r),
             tnn.TripletMarginLoss(swap=True, reduction=r), x, y, x[::-1].copy()),
            (nn.PoissonNLLLoss(reduction=r), tnn.PoissonNLLLoss(reduction=r), x, np.abs(y)),
            (nn.PoissonNLLLoss(log_input=False, full=True, reduction=r),
             tnn.PoissonNLLLoss(log_input=False, full=True, reduction=r), p, np.abs(y) * 3),
            (nn.GaussianNLLLoss(reduction=r), tnn.GaussianNLLLoss(reduction=r), x, y, p),
            (nn.MultiLabelSoftMarginLoss(reduction=r), tnn.MultiLabelSoftMarginLoss(reduction=r),
             x, b),
        ]  # fmt: skip
        for emod, tmod, *args in cases:
            _check(torch, emod, tmod, *args)


def test_cross_entropy_kdim_parity():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((2, 5, 3, 4))
    t = RNG.integers(0, 5, (2, 3, 4))
    t[0, 0, 0] = -100
    for ls in (0.0, 0.25):
        _check(torch, nn.CrossEntropyLoss(label_smoothing=ls),
               torch.nn.CrossEntropyLoss(label_smoothing=ls), x, t)  # fmt: skip


def test_loss_module_buffers_and_repr():
    m = nn.CrossEntropyLoss(weight=ember.ones(3))
    assert list(m.state_dict()) == ["weight"]
    assert repr(m) == "CrossEntropyLoss()"
    assert list(nn.BCEWithLogitsLoss(pos_weight=ember.ones(2)).state_dict()) == ["pos_weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []
