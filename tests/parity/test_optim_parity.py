"""ember.optim against torch.optim: identical float64 parameters and gradients, identical
results (to 1e-10) for every optimizer option and every scheduler's lr sequence."""

import itertools

import numpy as np
import pytest
import torch

import ember
from ember.optim import lr_scheduler as elrs

SHAPES = [(3, 4), (5,), ()]
STEPS = 10


def _grads(seed, steps=STEPS):
    """Per step, one float64 gradient per parameter; ``None`` for param 1 on some steps."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(steps):
        gs = [rng.standard_normal(s) for s in SHAPES]
        if k % 4 == 2:
            gs[1] = None  # a step where that parameter got no gradient
        out.append(gs)
    return out


def _run_pair(ember_cls, torch_cls, kwargs, seed=0, groups=None):
    """Run both optimizers for STEPS steps; return the two lists of parameters and both."""
    rng = np.random.default_rng(1000 + seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    ep = [ember.tensor(a, dtype=ember.float64, requires_grad=True) for a in init]
    tp = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in init]
    kwargs = {**kwargs, "foreach": False}  # torch's single-tensor path, ember's only path
    if groups is None:
        eo, to = ember_cls(ep, **kwargs), torch_cls(tp, **kwargs)
    else:
        eo = ember_cls([{"params": [ep[i] for i in ix], **o} for ix, o in groups], **kwargs)
        tp_groups = [{"params": [tp[i] for i in ix], **o} for ix, o in groups]
        to = torch_cls(tp_groups, **kwargs)
    for gs in _grads(seed):
        for e, t, g in zip(ep, tp, gs):
            e.grad = None if g is None else ember.tensor(g, dtype=ember.float64)
            t.grad = None if g is None else torch.tensor(g, dtype=torch.float64)
        eo.step()
        to.step()
    return ep, tp, eo, to


def _assert_same(ep, tp, eo, to):
    for e, t in zip(ep, tp):
        np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)
    es, ts = eo.state_dict(), to.state_dict()
    assert es["param_groups"] == ts["param_groups"]
    assert sorted(es["state"]) == sorted(ts["state"])
    for k, st in ts["state"].items():
        assert sorted(es["state"][k]) == sorted(st)
        for name, v in st.items():
            ev = es["state"][k][name]
            np.testing.assert_allclose(np.asarray(ev), v.numpy(), rtol=1e-10, atol=1e-12)


def _combos(**axes):
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*axes.values())]


SGD_CASES = [
    c
    for c in _combos(
        lr=[0.1],
        momentum=[0.0, 0.9],
        dampening=[0.0, 0.3],
        nesterov=[False, True],
        weight_decay=[0.0, 0.05],
        maximize=[False, True],
    )
    if not (c["nesterov"] and (c["momentum"] == 0 or c["dampening"] != 0))
]
ADAM_CASES = _combos(
    lr=[0.01],
    betas=[(0.9, 0.999), (0.5, 0.9)],
    eps=[1e-8, 1e-3],
    weight_decay=[0.0, 0.1],
    amsgrad=[False, True],
    maximize=[False, True],
)
RMSPROP_CASES = _combos(
    lr=[0.01],
    alpha=[0.99, 0.7],
    eps=[1e-8],
    weight_decay=[0.0, 0.1],
    momentum=[0.0, 0.8],
    centered=[False, True],
    maximize=[False, True],
)
ADAGRAD_CASES = _combos(
    lr=[0.1],
    lr_decay=[0.0, 0.05],
    weight_decay=[0.0, 0.1],
    initial_accumulator_value=[0.0, 0.5],
    eps=[1e-10, 1e-2],
    maximize=[False, True],
)


@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
def test_sgd(kw):
    _assert_same(*_run_pair(ember.optim.SGD, torch.optim.SGD, kw))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
def test_sgd_is_bitwise_torchs(kw, dtype):
    """ember's SGD rounds like torch's loop (one fused multiply-add per ``add(alpha=)``), so
    the parameters and buffers agree bit for bit, large parameters (threaded BLAS) included."""
    rng = np.random.default_rng(7)
    shapes = [(300, 70), (17,), ()]
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ep = [ember.tensor(a, requires_grad=True) for a in init]
    tp = [torch.tensor(a, requires_grad=True) for a in init]
    eo = ember.optim.SGD(ep, **kw)
    to = torch.optim.SGD(tp, **kw, foreach=False)
    for _ in range(6):
        for e, t in zip(ep, tp):
            g = rng.standard_normal(e.shape).astype(dtype)
            e.grad, t.grad = ember.tensor(g), torch.tensor(g)
        eo.step()
        to.step()
    for e, t in zip(ep, tp):
        np.testing.assert_array_equal(e.detach().numpy(), t.detach().numpy())
        if kw["momentum"]:
            np.testing.assert_array_equal(
                eo.state[e]["momentum_buffer"].numpy(), to.state[t]["momentum_buffer"].numpy()
            )


@pytest.mark.parametrize("kw", ADAM_CASES, ids=str)
def test_adam(kw):
    _assert_same(*_run_pair(ember.optim.Adam, torch.optim.Adam, kw))


@pytest.mark.parametrize("kw", ADAM_CASES, ids=str)
def test_adamw(kw):
    _assert_same(*_run_pair(ember.optim.AdamW, torch.optim.AdamW, kw))


def test_adamw_default_weight_decay():
    _assert_same(*_run_pair(ember.optim.AdamW, torch.optim.AdamW, {"lr": 0.05}))


@pytest.mark.parametrize("kw", RMSPROP_CASES, ids=str)
def test_rmsprop(kw):
    _assert_same(*_run_pair(ember.optim.RMSprop, torch.optim.RMSprop, kw))


@pytest.mark.parametrize("kw", ADAGRAD_CASES, ids=str)
def test_adagrad(kw):
    _assert_same(*_run_pair(ember.optim.Adagrad, torch.optim.Adagrad, kw))


@pytest.mark.parametrize(
    "ecls,tcls,kw,group_opts",
    [
        (ember.optim.SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, {"lr": 0.02}),
        (ember.optim.Adam, torch.optim.Adam, {"lr": 0.01}, {"betas": (0.8, 0.99)}),
        (ember.optim.AdamW, torch.optim.AdamW, {"lr": 0.01}, {"weight_decay": 0.3}),
        (ember.optim.RMSprop, torch.optim.RMSprop, {"centered": True}, {"momentum": 0.5}),
        (ember.optim.Adagrad, torch.optim.Adagrad, {"lr": 0.1}, {"lr_decay": 0.1}),
    ],
)
def test_param_groups(ecls, tcls, kw, group_opts):
    groups = [([0, 2], {}), ([1], group_opts)]
    _assert_same(*_run_pair(ecls, tcls, kw, groups=groups))


def test_default_hyperparameters_match():
    """Every optimizer's param group holds the same keys and defaults as PyTorch's."""
    pairs = [
        (ember.optim.SGD, torch.optim.SGD),
        (ember.optim.Adam, torch.optim.Adam),
        (ember.optim.AdamW, torch.optim.AdamW),
        (ember.optim.RMSprop, torch.optim.RMSprop),
        (ember.optim.Adagrad, torch.optim.Adagrad),
    ]
    for ecls, tcls in pairs:
        eg = ecls([ember.zeros(2, requires_grad=True)]).param_groups[0]
        tg = tcls([torch.zeros(2, requires_grad=True)]).param_groups[0]
        assert {k: v for k, v in eg.items() if k != "params"} == {
            k: v for k, v in tg.items() if k != "params"
        }


# ---- schedulers -------------------------------------------------------------------------


def _opt_pair(n_groups=2, cls="SGD", **kw):
    ep = [ember.zeros(2, requires_grad=True) for _ in range(n_groups)]
    tp = [torch.zeros(2, requires_grad=True) for _ in range(n_groups)]
    lrs = [0.1 * (i + 1) for i in range(n_groups)]
    eo = getattr(ember.optim, cls)([{"params": [p], "lr": lr} for p, lr in zip(ep, lrs)], **kw)
    to = getattr(torch.optim, cls)([{"params": [p], "lr": lr} for p, lr in zip(tp, lrs)], **kw)
    return eo, to


def _lr_sequences(make, n=40, cls="SGD", opt_kw=None, key="lr"):
    """Step both schedulers n times; return the two histories of every group's ``key``."""
    eo, to = _opt_pair(cls=cls, **(opt_kw or {}))
    es, ts = make(elrs, eo), make(torch.optim.lr_scheduler, to)
    eh, th = [], []
    for _ in range(n):
        eh.append([g[key] for g in eo.param_groups] + list(es.get_last_lr()))
        th.append([g[key] for g in to.param_groups] + list(ts.get_last_lr()))
        eo.step()
        to.step()
        es.step()
        ts.step()
    return eh, th


SCHEDULERS = {
    "step": lambda m, o: m.StepLR(o, step_size=7, gamma=0.3),
    "multistep": lambda m, o: m.MultiStepLR(o, milestones=[3, 8, 8, 20], gamma=0.5),
    "exponential": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, T_max=12, eta_min=0.001),
    "cosine_no_min": lambda m, o: m.CosineAnnealingLR(o, T_max=9),
    "linear": lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=11),
    "linear_default": lambda m, o: m.LinearLR(o),
    "constant": lambda m, o: m.ConstantLR(o, factor=0.4, total_iters=6),
    "polynomial": lambda m, o: m.PolynomialLR(o, total_iters=15, power=2.0),
    "lambda": lambda m, o: m.LambdaLR(o, lr_lambda=lambda e: 0.95**e + 0.01 * e),
    "lambda_list": lambda m, o: m.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.9**e]),
    "multiplicative": lambda m, o: m.MultiplicativeLR(o, lr_lambda=lambda e: 0.97),
    "onecycle_cos": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=41),
    "onecycle_linear": lambda m, o: m.OneCycleLR(
        o, max_lr=0.5, epochs=5, steps_per_epoch=9, anneal_strategy="linear", pct_start=0.25
    ),
    "onecycle_three": lambda m, o: m.OneCycleLR(
        o, max_lr=1.0, total_steps=45, three_phase=True, div_factor=10, final_div_factor=100
    ),
    "onecycle_no_momentum": lambda m, o: m.OneCycleLR(
        o, max_lr=1.0, total_steps=40, cycle_momentum=False
    ),
    "sequential": lambda m, o: m.SequentialLR(
        o,
        [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=20)],
        milestones=[5],
    ),
    "sequential3": lambda m, o: m.SequentialLR(
        o,
        [m.ConstantLR(o, factor=0.5, total_iters=3), m.ExponentialLR(o, 0.9), m.StepLR(o, 4)],
        milestones=[6, 17],
    ),
    "chained": lambda m, o: m.ChainedScheduler(
        [m.LinearLR(o, start_factor=0.5, total_iters=4), m.ExponentialLR(o, gamma=0.9)]
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_sequence(name):
    eh, th = _lr_sequences(SCHEDULERS[name], opt_kw={"momentum": 0.9})
    np.testing.assert_allclose(np.array(eh), np.array(th), rtol=1e-12, atol=1e-15)


def test_onecycle_cycles_momentum_and_betas():
    make = SCHEDULERS["onecycle_cos"]
    eh, th = _lr_sequences(make, opt_kw={"momentum": 0.9}, key="momentum")
    np.testing.assert_allclose(np.array(eh), np.array(th), rtol=1e-12)
    eh, th = _lr_sequences(make, cls="Adam", key="betas")
    np.testing.assert_allclose(
        np.array([r[:2] for r in eh]), np.array([r[:2] for r in th]), rtol=1e-12
    )


def test_reduce_lr_on_plateau():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.9] * 4
    for kw in (
        {"patience": 2},
        {"mode": "max", "patience": 1, "factor": 0.5, "cooldown": 2},
        {"threshold_mode": "abs", "threshold": 0.05, "patience": 0, "min_lr": [0.02, 0.05]},
        {"patience": 1, "factor": 0.5, "min_lr": 0.01, "eps": 1e-3},
    ):
        eo, to = _opt_pair()
        es = elrs.ReduceLROnPlateau(eo, **kw)
        ts = torch.optim.lr_scheduler.ReduceLROnPlateau(to, **kw)
        for m in metrics:
            es.step(m)
            ts.step(m)
            assert es.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)
            assert es.num_bad_epochs == ts.num_bad_epochs
            assert es.cooldown_counter == ts.cooldown_counter


def test_closed_form_with_epoch_argument():
    for name in ("step", "multistep", "exponential", "cosine", "linear", "polynomial"):
        eo, to = _opt_pair()
        es, ts = SCHEDULERS[name](elrs, eo), SCHEDULERS[name](torch.optim.lr_scheduler, to)
        for epoch in (3, 10, 7, 25):
            with pytest.warns(UserWarning):
                es.step(epoch)
            with pytest.warns(UserWarning):
                ts.step(epoch)
            assert es.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)


def test_scheduler_state_dict_keys_match():
    for name in ("step", "cosine", "onecycle_cos", "lambda"):
        eo, to = _opt_pair()
        es, ts = SCHEDULERS[name](elrs, eo), SCHEDULERS[name](torch.optim.lr_scheduler, to)
        esd, tsd = es.state_dict(), ts.state_dict()
        public = {k for k in tsd if not k.startswith("_")}
        assert public <= set(esd)
        for k in public:
            if k not in ("lr_lambdas", "milestones"):
                assert esd[k] == tsd[k], k
