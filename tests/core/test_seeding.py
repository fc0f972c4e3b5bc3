"""ember.manual_seed and ember.Generator: every random source is repeatable, and an explicit
generator is a stream of its own."""

import pytest

import ember
import ember.nn.functional as F
from ember import nn
from ember.distributions import Bernoulli, Categorical, Normal

DRAWS = {
    "rand": lambda: ember.rand(6),
    "randn": lambda: ember.randn(2, 3),
    "randint": lambda: ember.randint(0, 1000, (6,)),
    "randperm": lambda: ember.randperm(20),
    "rand_like": lambda: ember.rand_like(ember.zeros(6)),
    "randn_like": lambda: ember.randn_like(ember.zeros(6)),
    "normal": lambda: ember.normal(ember.zeros(6), 1.0),
    "bernoulli": lambda: ember.bernoulli(ember.full((30,), 0.5)),
    "multinomial": lambda: ember.multinomial(ember.ones(10), 5),
    "Tensor.normal_": lambda: ember.empty(6).normal_(),
    "Tensor.uniform_": lambda: ember.empty(6).uniform_(),
    "dropout": lambda: F.dropout(ember.ones(40), 0.5),
    "dropout2d": lambda: F.dropout2d(ember.ones(2, 8, 2, 2), 0.5),
    "alpha_dropout": lambda: F.alpha_dropout(ember.ones(40), 0.5, training=True),
    "nn.Dropout": lambda: nn.Dropout(0.5)(ember.ones(40)),
    "init.uniform_": lambda: nn.init.uniform_(ember.empty(6)),
    "init.normal_": lambda: nn.init.normal_(ember.empty(6)),
    "init.trunc_normal_": lambda: nn.init.trunc_normal_(ember.empty(6)),
    "init.xavier_uniform_": lambda: nn.init.xavier_uniform_(ember.empty(3, 4)),
    "init.xavier_normal_": lambda: nn.init.xavier_normal_(ember.empty(3, 4)),
    "init.kaiming_uniform_": lambda: nn.init.kaiming_uniform_(ember.empty(3, 4)),
    "init.kaiming_normal_": lambda: nn.init.kaiming_normal_(ember.empty(3, 4)),
    "init.orthogonal_": lambda: nn.init.orthogonal_(ember.empty(4, 4)),
    "nn.Linear": lambda: nn.Linear(4, 3).weight.detach(),
    "nn.Conv2d": lambda: nn.Conv2d(2, 3, 3).weight.detach(),
    "nn.Embedding": lambda: nn.Embedding(5, 3).weight.detach(),
    "Normal.sample": lambda: Normal(ember.zeros(4), ember.ones(4)).sample((3,)),
    "Normal.rsample": lambda: Normal(ember.zeros(4), ember.ones(4)).rsample((3,)).detach(),
    "Categorical.sample": lambda: Categorical(logits=ember.zeros(3, 5)).sample((6,)),
    "Bernoulli.sample": lambda: Bernoulli(ember.full((10,), 0.5)).sample((4,)),
}


@pytest.mark.parametrize("name", list(DRAWS))
def test_manual_seed_repeats_and_advances(name):
    draw = DRAWS[name]
    ember.manual_seed(1234)
    a = draw()
    ember.manual_seed(1234)
    b = draw()
    assert ember.equal(a, b), f"{name} ignores ember.manual_seed"
    assert not ember.equal(a, draw()), f"{name} does not advance the default generator"


def test_different_seeds_give_different_streams():
    ember.manual_seed(1)
    a = ember.randn(8)
    ember.manual_seed(2)
    assert not ember.equal(a, ember.randn(8))


def test_manual_seed_returns_default_generator_and_initial_seed():
    g = ember.manual_seed(77)
    assert g is ember.default_generator
    assert ember.initial_seed() == 77 and g.initial_seed() == 77


GEN_DRAWS = {
    "rand": lambda g: ember.rand(6, generator=g),
    "randn": lambda g: ember.randn(6, generator=g),
    "randint": lambda g: ember.randint(0, 1000, (6,), generator=g),
    "randperm": lambda g: ember.randperm(20, generator=g),
    "normal": lambda g: ember.normal(ember.zeros(6), 1.0, generator=g),
    "bernoulli": lambda g: ember.bernoulli(ember.full((30,), 0.5), generator=g),
    "multinomial": lambda g: ember.multinomial(ember.ones(10), 5, generator=g),
    "Tensor.normal_": lambda g: ember.empty(6).normal_(generator=g),
    "init.uniform_": lambda g: nn.init.uniform_(ember.empty(6), generator=g),
    "init.kaiming_normal_": lambda g: nn.init.kaiming_normal_(ember.empty(3, 4), generator=g),
}


@pytest.mark.parametrize("name", list(GEN_DRAWS))
def test_explicit_generator_is_independent_of_default(name):
    draw = GEN_DRAWS[name]
    ember.manual_seed(0)
    expected_default = ember.randn(5)

    ember.manual_seed(0)
    a = draw(ember.Generator().manual_seed(42))
    assert ember.equal(ember.randn(5), expected_default), "generator= consumed the default stream"

    ember.manual_seed(999)  # reseeding the default does not touch an explicit generator
    b = draw(ember.Generator().manual_seed(42))
    assert ember.equal(a, b)


def test_two_generators_with_one_seed_agree():
    g1, g2 = ember.Generator().manual_seed(5), ember.Generator().manual_seed(5)
    assert ember.equal(ember.rand(10, generator=g1), ember.rand(10, generator=g2))
    assert not ember.equal(ember.rand(10, generator=g1), ember.rand(10, generator=g1))


def test_generator_state_round_trip():
    g = ember.Generator().manual_seed(3)
    ember.rand(4, generator=g)
    state = g.get_state()
    a = ember.randn(6, generator=g)
    g.set_state(state)
    assert ember.equal(ember.randn(6, generator=g), a)


def test_default_generator_state_round_trip():
    ember.manual_seed(8)
    state = ember.default_generator.get_state()
    a = (ember.rand(3), ember.randperm(7), Normal(0.0, 1.0).sample((4,)))
    ember.default_generator.set_state(state)
    b = (ember.rand(3), ember.randperm(7), Normal(0.0, 1.0).sample((4,)))
    assert all(ember.equal(x, y) for x, y in zip(a, b))


def test_state_is_a_snapshot_not_a_live_view():
    g = ember.Generator().manual_seed(0)
    state = g.get_state()
    ember.rand(100, generator=g)
    g.set_state(state)
    fresh = ember.Generator().manual_seed(0)
    assert ember.equal(ember.rand(3, generator=g), ember.rand(3, generator=fresh))


def test_generator_seed_and_initial_seed():
    g = ember.Generator()
    s = g.seed()
    assert g.initial_seed() == s
    a = ember.rand(3, generator=g)
    assert ember.equal(a, ember.rand(3, generator=ember.Generator().manual_seed(s)))


def test_module_init_is_repeatable_as_a_whole():
    def build():
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

    ember.manual_seed(21)
    a = build().state_dict()
    ember.manual_seed(21)
    b = build().state_dict()
    assert all(ember.equal(a[k], b[k]) for k in a)


def test_data_loader_shuffle_follows_seed_and_generator():
    from ember.data import DataLoader, TensorDataset

    ds = TensorDataset(ember.arange(32))

    def order(**kw):
        return [b[0].tolist() for b in DataLoader(ds, batch_size=8, shuffle=True, **kw)]

    ember.manual_seed(4)
    a = order()
    ember.manual_seed(4)
    assert order() == a
    g1, g2 = ember.Generator().manual_seed(9), ember.Generator().manual_seed(9)
    assert order(generator=g1) == order(generator=g2)
