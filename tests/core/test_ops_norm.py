"""Fused normalization ops through the op harness (softmax, log_softmax, layer_norm), plus
dropout's statistics."""

import numpy as np
import pytest
from harness import OpCase, op_tests, uniform

import ember


def _softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _log_softmax(x, axis):
    s = x - x.max(axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis, keepdims=True))


def _layer_norm(x, k, w=None, b=None, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    mu = x.mean(axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axes, keepdims=True)
    out = (x - mu) / np.sqrt(var + eps)
    if w is not None:
        out = out * w
    if b is not None:
        out = out + b
    return out


_X = (2, 3, 4)

SOFTMAX = [
    OpCase("softmax_last", lambda m, x: m.softmax(x, -1), lambda x: _softmax(x, -1), (_X,)),
    OpCase("softmax_dim0", lambda m, x: x.softmax(0), lambda x: _softmax(x, 0), (_X,)),
    OpCase("softmax_F", lambda m, x: m.F.softmax(x, dim=1), lambda x: _softmax(x, 1), (_X,)),
    OpCase("softmax_1d", lambda m, x: m.softmax(x, 0), lambda x: _softmax(x, 0), ((5,),)),
    OpCase(
        "softmax_large",
        lambda m, x: m.softmax(x, -1),
        lambda x: _softmax(x, -1),
        (uniform(2, 4, lo=-300, hi=300),),
        low_precision=False,
        grad=False,
    ),
    OpCase(
        "softmax_dtype",
        lambda m, x: m.softmax(x, -1, dtype=m.float64),
        lambda x: _softmax(x, -1),
        ((2, 3),),
        check_dtype=False,
    ),
    OpCase(
        "log_softmax_last", lambda m, x: m.log_softmax(x, -1), lambda x: _log_softmax(x, -1), (_X,)
    ),
    OpCase("log_softmax_dim1", lambda m, x: x.log_softmax(1), lambda x: _log_softmax(x, 1), (_X,)),
    OpCase(
        "log_softmax_F", lambda m, x: m.F.log_softmax(x, 0), lambda x: _log_softmax(x, 0), (_X,)
    ),
    OpCase(
        "log_softmax_large",
        lambda m, x: m.log_softmax(x, -1),
        lambda x: _log_softmax(x, -1),
        (uniform(2, 4, lo=-300, hi=300),),
        low_precision=False,
    ),
]

LAYER_NORM = [
    OpCase(
        "layer_norm",
        lambda m, x: m.F.layer_norm(x, (4,)),
        lambda x: _layer_norm(x, 1),
        (_X,),
        tol=3,
    ),
    OpCase(
        "layer_norm_affine",
        lambda m, x, w, b: m.F.layer_norm(x, (4,), w, b),
        lambda x, w, b: _layer_norm(x, 1, w, b),
        (_X, (4,), (4,)),
        tol=3,
    ),
    OpCase(
        "layer_norm_2d_shape",
        lambda m, x, w, b: m.F.layer_norm(x, (3, 4), w, b),
        lambda x, w, b: _layer_norm(x, 2, w, b),
        (_X, (3, 4), (3, 4)),
        tol=3,
    ),
    OpCase(
        "layer_norm_weight_only",
        lambda m, x, w: m.F.layer_norm(x, [4], w),
        lambda x, w: _layer_norm(x, 1, w),
        (_X, (4,)),
        tol=3,
    ),
    OpCase(
        "layer_norm_eps",
        lambda m, x: m.F.layer_norm(x, (4,), eps=0.1),
        lambda x: _layer_norm(x, 1, eps=0.1),
        (_X,),
        tol=3,
    ),
    OpCase(
        "layer_norm_int_shape",
        lambda m, x: m.F.layer_norm(x, 4),
        lambda x: _layer_norm(x, 1),
        ((3, 4),),
        tol=3,
        torch=False,
    ),
]

CASES = SOFTMAX + LAYER_NORM

test_forward, test_low_precision, test_gradcheck, test_gradgradcheck, test_cuda = op_tests(CASES)


# ---- softmax / layer_norm semantics ----------------------------------------------------


def test_softmax_int_input_raises():
    with pytest.raises(RuntimeError, match="softmax"):
        ember.softmax(ember.tensor([1, 2]), 0)


def test_softmax_rows_sum_to_one_with_inf():
    x = ember.tensor([[0.0, float("-inf"), 1.0]])
    y = ember.softmax(x, -1)
    assert y[0, 1].item() == 0.0
    np.testing.assert_allclose(y.sum(-1).numpy(), [1.0], rtol=1e-6)


def test_layer_norm_shape_mismatch_raises():
    with pytest.raises(RuntimeError, match=r"layer_norm.*normalized_shape"):
        ember.ops.layer_norm(ember.zeros(2, 3), (4,))


# ---- dropout -----------------------------------------------------------------------------


def test_dropout_statistics():
    x = ember.ones(200, 250)
    p = 0.3
    y = ember.ops.dropout(x, p)
    kept = (y != 0).float().mean().item()
    assert abs(kept - (1 - p)) < 0.01  # 50000 draws: std of the kept fraction is about 0.002
    np.testing.assert_allclose(y[y != 0].numpy(), 1 / (1 - p), rtol=1e-6)
    assert abs(y.mean().item() - 1.0) < 0.02


def test_dropout_gradient_uses_the_same_mask():
    x = ember.ones(50, 40, requires_grad=True)
    y = ember.ops.dropout(x, 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())


def test_dropout_eval_and_edge_probabilities():
    x = ember.randn(4, 5)
    assert ember.ops.dropout(x, 0.5, training=False) is x
    assert ember.equal(ember.ops.dropout(x, 0.0), x)
    assert (ember.ops.dropout(x, 1.0) == 0).all()
    with pytest.raises(ValueError, match="dropout probability"):
        ember.ops.dropout(x, 1.5)


def test_dropout_is_reproducible_under_manual_seed():
    ember.manual_seed(3)
    a = ember.ops.dropout(ember.ones(10, 10), 0.5)
    ember.manual_seed(3)
    b = ember.ops.dropout(ember.ones(10, 10), 0.5)
    assert ember.equal(a, b)


def test_dropout_keeps_dtype():
    for d in (ember.float16, ember.float32, ember.float64):
        assert ember.ops.dropout(ember.ones(3, dtype=d), 0.5).dtype == d
