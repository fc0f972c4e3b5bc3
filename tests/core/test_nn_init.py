"""nn.init: distributions (mean, std, bounds within statistical tolerance), fans, gains,
in-place semantics (no graph, version bump) and reproducibility with ember's generator."""

import math

import numpy as np
import pytest

import ember
import ember.nn as nn
from ember.nn import init


def npy(t):
    return t.detach().numpy().astype(np.float64)


def big(*shape):
    return ember.empty(*shape)


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", True)


def test_fan_in_and_fan_out():
    assert init._calculate_fan_in_and_fan_out(big(5, 3)) == (3, 5)
    assert init._calculate_fan_in_and_fan_out(big(16, 8, 3, 3)) == (72, 144)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(big(4))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(big(3, 3), mode="fan_avg")


def _check_uniform(x, lo, hi):
    n = x.size
    assert x.min() >= lo and x.max() <= hi
    assert abs(x.mean() - (lo + hi) / 2) < 5 * (hi - lo) / math.sqrt(12 * n)
    assert abs(x.std() - (hi - lo) / math.sqrt(12)) < 0.02 * (hi - lo)


def _check_normal(x, mean, std):
    n = x.size
    assert abs(x.mean() - mean) < 5 * std / math.sqrt(n)
    assert abs(x.std() - std) < 0.02 * std


def test_uniform_and_normal():
    _check_uniform(npy(init.uniform_(big(300, 200), -2.0, 3.0)), -2.0, 3.0)
    _check_normal(npy(init.normal_(big(300, 200), 1.5, 0.3)), 1.5, 0.3)


def test_kaiming_and_xavier_distributions():
    w = npy(init.kaiming_uniform_(big(256, 400), a=math.sqrt(5)))
    bound = math.sqrt(6 / ((1 + 5) * 400))
    _check_uniform(w, -bound, bound)
    w = npy(init.kaiming_normal_(big(256, 400), mode="fan_out", nonlinearity="relu"))
    _check_normal(w, 0.0, math.sqrt(2) / math.sqrt(256))
    w = npy(init.xavier_uniform_(big(300, 100), gain=2.0))
    a = 2.0 * math.sqrt(6 / 400)
    _check_uniform(w, -a, a)
    w = npy(init.xavier_normal_(big(300, 100)))
    _check_normal(w, 0.0, math.sqrt(2 / 400))


def test_trunc_normal():
    x = npy(init.trunc_normal_(big(400, 300), mean=0.5, std=1.0, a=-1.0, b=2.0))
    assert x.min() >= -1.0 and x.max() <= 2.0
    from scipy.stats import truncnorm

    ref = truncnorm(-1.5, 1.5, loc=0.5, scale=1.0)
    assert abs(x.mean() - ref.mean()) < 0.01 and abs(x.std() - ref.std()) < 0.01


def test_orthogonal():
    for shape in ((6, 4), (4, 6), (3, 2, 2, 2)):
        w = npy(init.orthogonal_(big(*shape), gain=2.0)).reshape(shape[0], -1)
        rows, cols = w.shape
        gram = w.T @ w if rows >= cols else w @ w.T
        np.testing.assert_allclose(gram, 4.0 * np.eye(min(rows, cols)), atol=1e-5)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(big(3))


def test_constant_eye_dirac_and_friends():
    assert npy(init.constant_(big(2, 3), 0.25)).tolist() == [[0.25] * 3] * 2
    assert npy(init.ones_(big(2))).tolist() == [1.0, 1.0]
    assert npy(init.zeros_(big(2))).tolist() == [0.0, 0.0]
    np.testing.assert_array_equal(npy(init.eye_(big(2, 3))), np.eye(2, 3))
    with pytest.raises(ValueError, match="2 dimensions"):
        init.eye_(big(2, 2, 2))
    w = init.dirac_(big(4, 4, 3, 3))
    x = ember.randn(1, 4, 5, 5)
    y = nn.functional.conv2d(x, w, padding=1)
    np.testing.assert_allclose(npy(y), npy(x), atol=1e-6)
    s = npy(init.sparse_(big(10, 50), sparsity=0.3))
    assert ((s == 0).sum(0) >= 3).all()


def test_init_is_in_place_outside_the_graph():
    p = nn.Parameter(ember.zeros(3, 4))
    v = p._version
    out = init.kaiming_uniform_(p)
    assert out is p and p.grad_fn is None and p.requires_grad and p.is_leaf
    assert p._version == v + 1
    init.zeros_(p)
    assert p._version == v + 2
    h = ember.zeros(2, dtype=ember.float64)
    init.normal_(h)
    assert h.dtype == ember.float64


def test_reproducible_with_seed_and_generator():
    ember.manual_seed(42)
    a = npy(init.normal_(big(5)))
    ember.manual_seed(42)
    b = npy(init.normal_(big(5)))
    np.testing.assert_array_equal(a, b)
    g1, g2 = ember.Generator().manual_seed(7), ember.Generator().manual_seed(7)
    np.testing.assert_array_equal(
        npy(init.uniform_(big(4), generator=g1)), npy(init.uniform_(big(4), generator=g2))
    )
    ember.manual_seed(3)
    l1 = nn.Linear(4, 4)
    ember.manual_seed(3)
    l2 = nn.Linear(4, 4)
    assert ember.equal(l1.weight, l2.weight) and ember.equal(l1.bias, l2.bias)


def test_default_layer_init_matches_pytorch_distribution():
    w = npy(nn.Linear(500, 300).weight)
    bound = 1 / math.sqrt(500)  # kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), ...)
    _check_uniform(w, -bound, bound)
    b = npy(nn.Linear(500, 3000).bias)
    _check_uniform(b, -bound, bound)
    bl = npy(nn.Bilinear(20, 30, 400).weight)
    _check_uniform(bl, -1 / math.sqrt(20), 1 / math.sqrt(20))


def test_zero_element_tensor_warns():
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_uniform_(ember.empty(0, 3))
