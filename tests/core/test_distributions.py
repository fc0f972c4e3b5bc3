"""ember.distributions: values against SciPy, gradients by gradcheck, sampling statistics,
shapes and argument checks against PyTorch's semantics."""

import math

import numpy as np
import pytest
from scipy import stats

import ember
from ember.autograd import gradcheck
from ember.distributions import (
    Bernoulli,
    Categorical,
    Distribution,
    Independent,
    Normal,
    constraints,
    kl_divergence,
)

F64 = ember.float64


def t64(x, rg=False):
    return ember.tensor(np.asarray(x, dtype=np.float64), dtype=F64, requires_grad=rg)


def close(a, b, **kw):
    np.testing.assert_allclose(np.asarray(a.detach()), b, **{"rtol": 1e-6, "atol": 1e-9, **kw})


# ---- Normal -------------------------------------------------------------------------------
def test_normal_values_match_scipy():
    loc, scale = np.array([0.0, 1.5, -2.0]), np.array([1.0, 0.5, 3.0])
    x = np.array([0.3, 1.0, 4.0])
    d = Normal(t64(loc), t64(scale))
    close(d.log_prob(t64(x)), stats.norm.logpdf(x, loc, scale))
    close(d.entropy(), stats.norm.entropy(loc, scale))
    close(d.cdf(t64(x)), stats.norm.cdf(x, loc, scale))
    close(d.icdf(t64([0.1, 0.5, 0.975])), stats.norm.ppf([0.1, 0.5, 0.975], loc, scale))
    close(d.mean, loc), close(d.mode, loc), close(d.stddev, scale), close(d.variance, scale**2)


def test_normal_gradcheck():
    loc, scale, x = t64([0.2, -1.0], True), t64([0.7, 1.3], True), t64([0.5, 0.1], True)
    assert gradcheck(lambda m, s, v: Normal(m, s).log_prob(v), (loc, scale, x))
    assert gradcheck(lambda m, s: Normal(m, s).entropy(), (loc, scale))
    assert gradcheck(lambda m, s, v: Normal(m, s).cdf(v), (loc, scale, x))
    p = t64([0.2, 0.9], True)
    assert gradcheck(lambda m, s, q: Normal(m, s).icdf(q), (loc, scale, p))


def test_normal_rsample_reparameterizes():
    loc, scale = t64([1.0, 2.0], True), t64([0.5, 3.0], True)
    ember.manual_seed(3)
    x = Normal(loc, scale).rsample((4,))
    ember.manual_seed(3)
    eps = ember.randn(4, 2, dtype=F64)
    close(x, (loc.detach() + eps * scale.detach()).numpy())
    x.sum().backward()
    close(loc.grad, [4.0, 4.0])
    close(scale.grad, eps.sum(0).numpy())
    assert Normal(loc, scale).sample().requires_grad is False


def test_normal_sample_statistics():
    ember.manual_seed(0)
    x = Normal(t64([1.0, -3.0]), t64([2.0, 0.5])).sample((20000,)).numpy()
    np.testing.assert_allclose(x.mean(0), [1.0, -3.0], atol=0.05)
    np.testing.assert_allclose(x.var(0), [4.0, 0.25], rtol=0.05)


def test_normal_numbers_and_broadcast():
    d = Normal(0.0, 1.0)
    assert d.batch_shape == () and d.loc.dtype == ember.get_default_dtype()
    d = Normal(ember.zeros(3, 1, dtype=F64), 2.0)
    assert d.scale.dtype == F64 and tuple(d.batch_shape) == (3, 1)
    assert tuple(d.log_prob(ember.zeros(4, dtype=F64)).shape) == (3, 4)


# ---- Categorical --------------------------------------------------------------------------
def test_categorical_probs_and_logits_agree():
    p = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]])
    a = Categorical(probs=t64(p * 3.0))  # unnormalized: divided by the sum
    b = Categorical(logits=t64(np.log(p) + 5.0))  # shifted: normalized by logsumexp
    for d in (a, b):
        close(d.probs, p)
        close(d.logits, np.log(p))
        v = ember.tensor([2, 0])
        close(d.log_prob(v), np.log(p[[0, 1], [2, 0]]))
        close(d.entropy(), [stats.entropy(row) for row in p])
        assert d.mode.tolist() == [2, 0]
        assert d.mean.isnan().all()


def test_categorical_gradcheck():
    logits = t64([[0.1, -0.3, 0.9], [1.0, 0.0, -1.0]], True)
    v = ember.tensor([2, 1])
    assert gradcheck(lambda l: Categorical(logits=l).log_prob(v), (logits,))
    assert gradcheck(lambda l: Categorical(logits=l).entropy(), (logits,))
    probs = t64([0.2, 0.3, 0.5], True)
    assert gradcheck(lambda p: Categorical(probs=p).log_prob(ember.tensor(1)), (probs,))
    assert gradcheck(lambda p: Categorical(probs=p).entropy(), (probs,))


def test_categorical_sample_frequencies():
    p = np.array([0.1, 0.6, 0.3])
    ember.manual_seed(1)
    s = Categorical(t64(p)).sample((20000,))
    assert s.dtype == ember.int64
    freq = np.bincount(s.numpy(), minlength=3) / 20000
    np.testing.assert_allclose(freq, p, atol=0.015)


def test_categorical_zero_probability_entropy_is_finite():
    d = Categorical(probs=t64([0.0, 0.5, 0.5]))
    close(d.entropy(), math.log(2))
    assert 0 not in d.sample((500,)).tolist()


def test_categorical_enumerate_support():
    d = Categorical(logits=ember.zeros(2, 3))
    assert d.enumerate_support().tolist() == [[0, 0], [1, 1], [2, 2]]
    assert tuple(d.enumerate_support(expand=False).shape) == (3, 1)


# ---- Bernoulli ----------------------------------------------------------------------------
def test_bernoulli_values_match_scipy():
    p = np.array([0.1, 0.5, 0.8])
    x = np.array([1.0, 0.0, 1.0])
    for d in (Bernoulli(probs=t64(p)), Bernoulli(logits=t64(np.log(p / (1 - p))))):
        close(d.log_prob(t64(x)), stats.bernoulli.logpmf(x, p))
        close(d.entropy(), stats.bernoulli.entropy(p))
        close(d.mean, p), close(d.variance, p * (1 - p))
    assert Bernoulli(t64([0.2, 0.5, 0.9])).mode.tolist()[0::2] == [0.0, 1.0]
    assert math.isnan(Bernoulli(t64([0.5])).mode.item())


def test_bernoulli_log_prob_stable_for_large_logits():
    d = Bernoulli(logits=t64([200.0, -200.0]))
    close(d.log_prob(t64([0.0, 1.0])), [-200.0, -200.0])
    close(d.log_prob(t64([1.0, 0.0])), [0.0, 0.0])


def test_bernoulli_gradcheck():
    logits = t64([0.3, -2.0, 4.0], True)
    x = t64([1.0, 0.0, 1.0])
    assert gradcheck(lambda l: Bernoulli(logits=l).log_prob(x), (logits,))
    assert gradcheck(lambda l: Bernoulli(logits=l).entropy(), (logits,))
    probs = t64([0.3, 0.6, 0.9], True)
    assert gradcheck(lambda p: Bernoulli(probs=p).log_prob(x), (probs,))


def test_bernoulli_sample_statistics():
    ember.manual_seed(2)
    x = Bernoulli(t64([0.2, 0.7])).sample((20000,)).numpy()
    assert set(np.unique(x)) <= {0.0, 1.0}
    np.testing.assert_allclose(x.mean(0), [0.2, 0.7], atol=0.015)


# ---- Independent --------------------------------------------------------------------------
def test_independent_sums_over_reinterpreted_dims():
    loc, scale = np.zeros((3, 2, 4)), np.full((3, 2, 4), 2.0)
    base = Normal(t64(loc), t64(scale))
    d = Independent(base, 2)
    assert tuple(d.batch_shape) == (3,) and tuple(d.event_shape) == (2, 4)
    x = np.linspace(-1, 1, 24).reshape(3, 2, 4)
    close(d.log_prob(t64(x)), stats.norm.logpdf(x, loc, scale).sum((1, 2)))
    close(d.entropy(), stats.norm.entropy(loc, scale).sum((1, 2)))
    assert d.has_rsample and tuple(d.rsample((5,)).shape) == (5, 3, 2, 4)
    assert repr(d.support) == "IndependentConstraint(Real(), 2)"


def test_independent_gradcheck():
    loc, scale = t64([[0.1, 0.2], [0.3, 0.4]], True), t64([[1.0, 2.0], [0.5, 1.5]], True)
    x = t64([[0.0, 1.0], [-1.0, 0.5]])
    assert gradcheck(lambda m, s: Independent(Normal(m, s), 1).log_prob(x), (loc, scale))


def test_independent_too_many_dims():
    msg = (
        r"Expected reinterpreted_batch_ndims <= len\(base_distribution.batch_shape\), actual 1 vs 0"
    )
    with pytest.raises(ValueError, match=msg):
        Independent(Normal(0.0, 1.0), 1)


# ---- KL -----------------------------------------------------------------------------------
def test_kl_closed_forms():
    close(kl_divergence(Normal(t64(0.0), t64(1.0)), Normal(t64(1.0), t64(2.0))),
          math.log(2) + (1 + 1) / 8 - 0.5)  # fmt: skip
    p, q = np.array([0.2, 0.8]), np.array([0.5, 0.5])
    close(kl_divergence(Categorical(t64(p)), Categorical(t64(q))), stats.entropy(p, q))
    close(kl_divergence(Bernoulli(t64(0.2)), Bernoulli(t64(0.5))), stats.entropy(p, q))
    a = Independent(Normal(t64([0.0, 1.0]), t64([1.0, 1.0])), 1)
    b = Independent(Normal(t64([0.0, 0.0]), t64([1.0, 1.0])), 1)
    close(kl_divergence(a, b), 0.5)
    with pytest.raises(NotImplementedError):
        kl_divergence(Normal(0.0, 1.0), Bernoulli(0.5))


def test_kl_gradcheck():
    m, s = t64([0.3, -0.2], True), t64([1.2, 0.4], True)
    assert gradcheck(lambda m, s: kl_divergence(Normal(m, s), Normal(0.0, 1.0)), (m, s))


# ---- checks and shapes --------------------------------------------------------------------
def test_validation_errors():
    with pytest.raises(
        ValueError, match=r"Expected parameter scale .* GreaterThan\(lower_bound=0.0\)"
    ):
        Normal(0.0, -1.0)
    Normal(0.0, -1.0, validate_args=False)
    with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified"):
        Categorical()
    with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified"):
        Bernoulli(probs=0.5, logits=0.0)
    with pytest.raises(ValueError, match="at least one-dimensional"):
        Categorical(ember.tensor(1.0))
    with pytest.raises(ValueError, match=r"Expected parameter probs .* Interval"):
        Bernoulli(1.5)
    with pytest.raises(ValueError, match=r"within the support \(Boolean\(\)\)"):
        Bernoulli(0.5).log_prob(ember.tensor(0.5))
    with pytest.raises(ValueError, match=r"IntegerInterval\(lower_bound=0, upper_bound=2\)"):
        Categorical(logits=ember.zeros(3)).log_prob(ember.tensor(3))
    with pytest.raises(ValueError, match="must be a Tensor"):
        Normal(0.0, 1.0).log_prob(1.0)
    with pytest.raises(ValueError, match="not broadcastable"):
        Normal(ember.zeros(3), 1.0).log_prob(ember.zeros(2))


def test_default_validate_args_switch():
    Distribution.set_default_validate_args(False)
    try:
        Normal(0.0, -1.0)
    finally:
        Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        Normal(0.0, -1.0)


def test_repr_and_constraint_names():
    assert repr(Normal(0.0, 1.0)) == "Normal(loc: 0.0, scale: 1.0)"
    assert repr(Categorical(logits=ember.zeros(3))).startswith("Categorical(logits: ")
    assert repr(constraints.positive) == "GreaterThan(lower_bound=0.0)"
    assert repr(Categorical(logits=ember.zeros(3)).support) == (
        "IntegerInterval(lower_bound=0, upper_bound=2)"
    )


def test_expand():
    d = Normal(ember.zeros(2), ember.ones(2)).expand((3, 2))
    assert tuple(d.batch_shape) == (3, 2) and tuple(d.sample((4,)).shape) == (4, 3, 2)
    c = Categorical(logits=ember.zeros(3)).expand((5,))
    assert tuple(c.sample((2,)).shape) == (2, 5)
    b = Bernoulli(ember.tensor([0.3])).expand((4, 1))
    assert tuple(b.log_prob(ember.ones(4, 1)).shape) == (4, 1)


def test_sampling_repeatable_under_manual_seed():
    ds = [
        Normal(ember.zeros(3), ember.ones(3)),
        Categorical(logits=ember.zeros(2, 4)),
        Bernoulli(ember.full((3,), 0.5)),
    ]
    for d in ds:
        ember.manual_seed(11)
        a = d.sample((5,))
        ember.manual_seed(11)
        b = d.sample((5,))
        assert ember.equal(a, b)
        assert not ember.equal(a, d.sample((5,)))


SHAPE_CASES = [
    ("Normal", lambda m: m.Normal(m.zeros(2, 3), m.ones(3)), (4,)),
    ("Normal0", lambda m: m.Normal(0.0, 1.0), (2, 5)),
    ("Categorical", lambda m: m.Categorical(logits=m.zeros(2, 3, 5)), (4,)),
    ("Categorical1", lambda m: m.Categorical(probs=m.ones(4)), ()),
    ("Bernoulli", lambda m: m.Bernoulli(logits=m.zeros(3)), (2, 2)),
    ("Independent", lambda m: m.Independent(m.Normal(m.zeros(2, 3, 4), m.ones(4)), 2), (5,)),
]


@pytest.mark.parametrize("name,make,sample_shape", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_shapes_match_torch(name, make, sample_shape):
    torch = pytest.importorskip("torch")

    class NS:  # the few names the cases need, from one library
        def __init__(self, lib, dist):
            self.zeros, self.ones = lib.zeros, lib.ones
            for n in ("Normal", "Categorical", "Bernoulli", "Independent"):
                setattr(self, n, getattr(dist, n))

    e = make(NS(ember, ember.distributions))
    t = make(NS(torch, torch.distributions))
    assert tuple(e.batch_shape) == tuple(t.batch_shape)
    assert tuple(e.event_shape) == tuple(t.event_shape)
    es, ts = e.sample(sample_shape), t.sample(sample_shape)
    assert tuple(es.shape) == tuple(ts.shape)
    assert tuple(e.log_prob(es).shape) == tuple(t.log_prob(ts).shape)
    assert tuple(e.entropy().shape) == tuple(t.entropy().shape)
    assert tuple(e.mean.shape) == tuple(t.mean.shape)


def test_values_match_torch():
    torch = pytest.importorskip("torch")
    td = torch.distributions
    logits = np.array([[0.5, -1.0, 2.0], [0.0, 0.1, -0.3]])
    e, t = Categorical(logits=t64(logits)), td.Categorical(logits=torch.tensor(logits))
    close(e.entropy(), t.entropy().numpy())
    ref = td.kl_divergence(t, td.Categorical(torch.ones(3, dtype=torch.float64)))
    close(kl_divergence(e, Categorical(t64(np.ones(3)))), ref.numpy())
    bl = np.array([-3.0, 0.0, 5.0])
    e, t = Bernoulli(logits=t64(bl)), td.Bernoulli(logits=torch.tensor(bl))
    close(e.entropy(), t.entropy().numpy())
    ref = td.kl_divergence(t, td.Bernoulli(torch.full((3,), 0.3, dtype=torch.float64)))
    close(kl_divergence(e, Bernoulli(t64([0.3, 0.3, 0.3]))), ref.numpy())
