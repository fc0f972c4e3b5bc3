"""Learning-rate schedulers: sequences against hand-written closed forms, state_dict round
trips, errors and warnings; and, when torch is installed, against torch's schedulers."""

import math
import warnings

import numpy as np
import pytest

import ember
from ember.optim import SGD, Adam
from ember.optim import lr_scheduler as lrs

N = 40


def _opt(lrs0=(0.1,), cls=SGD, **kw):
    groups = [{"params": [ember.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs0]
    return cls(groups, **kw)


def _history(sched, opt, n=N, group=0):
    """The lr each of the first n epochs runs with (read before each scheduler step)."""
    out = []
    for _ in range(n):
        out.append(opt.param_groups[group]["lr"])
        assert sched.get_last_lr()[group] == opt.param_groups[group]["lr"]
        opt.step()
        sched.step()
    return out


def _close(got, expect):
    np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-15)


# ---- closed forms -------------------------------------------------------------------------


def test_step_lr():
    opt = _opt()
    got = _history(lrs.StepLR(opt, step_size=4, gamma=0.5), opt)
    _close(got, [0.1 * 0.5 ** (e // 4) for e in range(N)])


def test_multistep_lr_with_repeated_milestone():
    opt = _opt()
    got = _history(lrs.MultiStepLR(opt, milestones=[5, 12, 12, 30], gamma=0.1), opt)
    _close(got, [0.1 * 0.1 ** sum(e >= m for m in [5, 12, 12, 30]) for e in range(N)])


def test_exponential_lr():
    opt = _opt()
    _close(_history(lrs.ExponentialLR(opt, gamma=0.9), opt), [0.1 * 0.9**e for e in range(N)])


@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_cosine_annealing_periodic(eta_min):
    opt = _opt()
    got = _history(lrs.CosineAnnealingLR(opt, T_max=10, eta_min=eta_min), opt)
    expect = [eta_min + (0.1 - eta_min) * (1 + math.cos(math.pi * e / 10)) / 2 for e in range(N)]
    np.testing.assert_allclose(got, expect, rtol=1e-9, atol=1e-12)


def test_linear_lr():
    opt = _opt()
    got = _history(lrs.LinearLR(opt, start_factor=0.25, end_factor=0.75, total_iters=8), opt)
    _close(got, [0.1 * (0.25 + 0.5 * min(e, 8) / 8) for e in range(N)])


def test_constant_and_polynomial_lr():
    opt = _opt()
    got = _history(lrs.ConstantLR(opt, factor=0.5, total_iters=3), opt)
    _close(got, [0.05] * 3 + [0.1] * (N - 3))
    opt = _opt()
    got = _history(lrs.PolynomialLR(opt, total_iters=10, power=2.0), opt)
    _close(got, [0.1 * (1 - min(e, 10) / 10) ** 2 for e in range(N)])


def test_lambda_lr_per_group_and_multiplicative():
    opt = _opt((0.1, 1.0))
    sched = lrs.LambdaLR(opt, [lambda e: 1 / (1 + e), lambda e: 0.5**e])
    _close(_history(sched, opt, 12), [0.1 / (1 + e) for e in range(12)])
    _close(_history(sched, opt, 5, group=1), [0.5**e for e in range(12, 17)])
    opt = _opt()
    got = _history(lrs.MultiplicativeLR(opt, lambda e: 0.8), opt)
    _close(got, [0.1 * 0.8**e for e in range(N)])


def _one_cycle_expected(total, max_lr, pct, div, final_div, anneal, three_phase=False):
    lo, hi = max_lr / div, max_lr
    end = lo / final_div
    up = pct * total - 1

    def cos(a, b, t):
        return b + (a - b) * (1 + math.cos(math.pi * t)) / 2

    def lin(a, b, t):
        return a + (b - a) * t

    f = cos if anneal == "cos" else lin
    out = []
    for s in range(total):
        if s <= up:
            out.append(f(lo, hi, s / up))
        elif three_phase and s <= 2 * up:
            out.append(f(hi, lo, (s - up) / up))
        else:
            start = 2 * up if three_phase else up
            out.append(f(lo if three_phase else hi, end, (s - start) / (total - 1 - start)))
    return out


@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle(anneal, three_phase):
    opt = _opt()
    sched = lrs.OneCycleLR(
        opt,
        max_lr=1.0,
        total_steps=50,
        pct_start=0.2,
        anneal_strategy=anneal,
        div_factor=20.0,
        final_div_factor=50.0,
        three_phase=three_phase,
    )
    got = _history(sched, opt, 50)
    np.testing.assert_allclose(
        got, _one_cycle_expected(50, 1.0, 0.2, 20.0, 50.0, anneal, three_phase), rtol=1e-12
    )
    with pytest.raises(ValueError, match="Tried to step 51 times"):
        sched.step()


def test_one_cycle_momentum_and_beta1():
    opt = _opt(momentum=0.9)
    sched = lrs.OneCycleLR(opt, max_lr=1.0, epochs=2, steps_per_epoch=10, anneal_strategy="linear")
    seen = []
    for _ in range(20):
        seen.append(opt.param_groups[0]["momentum"])
        opt.step()
        if len(seen) < 20:
            sched.step()
    assert seen[0] == 0.95 and min(seen) == pytest.approx(0.85)
    assert seen[-1] == pytest.approx(0.95)
    opt = _opt(cls=Adam, betas=(0.9, 0.99))
    lrs.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    assert opt.param_groups[0]["betas"] == (0.95, 0.99)
    with pytest.raises(ValueError, match="must support momentum"):
        lrs.OneCycleLR(_opt(cls=ember.optim.Adagrad), max_lr=1.0, total_steps=10)


def test_sequential_lr():
    opt = _opt()
    warm = lrs.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=4)
    decay = lrs.ExponentialLR(opt, gamma=0.5)
    got = _history(lrs.SequentialLR(opt, [warm, decay], milestones=[4]), opt, 10)
    expect = [0.1 * (0.1 + 0.9 * e / 4) for e in range(4)] + [0.1 * 0.5**k for k in range(6)]
    _close(got, expect)


def test_chained_scheduler_multiplies():
    opt = _opt()
    chain = lrs.ChainedScheduler([lrs.ExponentialLR(opt, 0.9), lrs.StepLR(opt, 3, gamma=0.5)])
    _close(_history(chain, opt, 12), [0.1 * 0.9**e * 0.5 ** (e // 3) for e in range(12)])


def test_reduce_lr_on_plateau():
    opt = _opt((1.0, 0.5))
    sched = lrs.ReduceLROnPlateau(opt, patience=2, factor=0.5, cooldown=1, min_lr=[0.2, 0.3])
    metrics = [5, 4, 4, 4, 4, 4, 4, 4, 4, 4]
    lr_after = []
    for m in metrics:
        sched.step(m)
        lr_after.append(sched.get_last_lr())
    # bad epochs: 1, 2, 3 (> patience: reduce at epoch 5), cooldown 1 epoch, then 1, 2, 3 ...
    assert [x[0] for x in lr_after] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert [x[1] for x in lr_after] == [0.5] * 4 + [0.3] * 6
    sched = lrs.ReduceLROnPlateau(_opt(), mode="max", threshold=0.1, threshold_mode="abs")
    sched.step(1.0)
    sched.step(1.05)
    assert sched.best == 1.0 and sched.num_bad_epochs == 1
    sched.step(ember.tensor(1.2))
    assert sched.best == pytest.approx(1.2) and sched.num_bad_epochs == 0


# ---- state, errors, warnings --------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda o: lrs.StepLR(o, 3),
        lambda o: lrs.CosineAnnealingLR(o, 7),
        lambda o: lrs.OneCycleLR(o, 1.0, total_steps=N + 1),
        lambda o: lrs.SequentialLR(o, [lrs.ConstantLR(o), lrs.ExponentialLR(o, 0.9)], [5]),
        lambda o: lrs.LambdaLR(o, lambda e: 1 / (e + 1)),
        lambda o: lrs.MultiStepLR(o, [4, 9]),
    ],
)
def test_scheduler_state_dict_resume(make):
    opt = _opt(momentum=0.9)
    sched = make(opt)
    full = _history(sched, opt, N)
    opt = _opt(momentum=0.9)
    sched = make(opt)
    head = _history(sched, opt, 15)
    sd, opt_sd = sched.state_dict(), opt.state_dict()
    assert "optimizer" not in sd
    opt2 = _opt(momentum=0.9)
    sched2 = make(opt2)
    sched2.load_state_dict(sd)
    opt2.load_state_dict(opt_sd)
    _close(head + _history(sched2, opt2, N - 15), full)


def test_lambda_state_dict_skips_functions_keeps_callable_objects():
    class Decay:
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, epoch):
            return self.rate**epoch

    opt = _opt((0.1, 0.2))
    sched = lrs.LambdaLR(opt, [lambda e: 1.0, Decay(0.5)])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [None, {"rate": 0.5}]
    other = lrs.LambdaLR(_opt((0.1, 0.2)), [lambda e: 1.0, Decay(0.9)])
    other.load_state_dict(sd)
    assert other.lr_lambdas[1].rate == 0.5 and "lr_lambdas" in sd


def test_initial_lr_and_base_lrs():
    opt = _opt((0.1, 0.3))
    sched = lrs.ExponentialLR(opt, 0.5)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.3]
    assert sched.base_lrs == [0.1, 0.3] and sched.last_epoch == 0
    with pytest.raises(KeyError, match="initial_lr"):
        lrs.StepLR(_opt(), 3, last_epoch=5)


def test_errors():
    opt = _opt()
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        lrs.StepLR([], 3)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        lrs.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas, but got 2"):
        lrs.LambdaLR(opt, [lambda e: 1, lambda e: 1])
    with pytest.raises(ValueError, match="Factor should be < 1.0."):
        lrs.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode avg is unknown!"):
        lrs.ReduceLROnPlateau(opt, mode="avg")
    with pytest.raises(ValueError, match="You must define either total_steps OR"):
        lrs.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="Expected positive integer total_steps"):
        lrs.OneCycleLR(opt, max_lr=1.0, total_steps=0)
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        lrs.OneCycleLR(opt, max_lr=[1.0, 2.0], total_steps=5)
    with pytest.raises(ValueError, match="anneal_strategy must be one of"):
        lrs.OneCycleLR(opt, max_lr=1.0, total_steps=5, anneal_strategy="exp")
    with pytest.raises(ValueError, match="number of milestones to be equal to 0"):
        lrs.SequentialLR(opt, [lrs.StepLR(opt, 2), lrs.StepLR(opt, 3)], milestones=[])
    with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
        lrs.SequentialLR(opt, [lrs.ReduceLROnPlateau(opt)], milestones=[])
    with pytest.raises(ValueError, match="belong to the same optimizer"):
        lrs.ChainedScheduler([lrs.StepLR(opt, 2), lrs.StepLR(_opt(), 2)])


def test_warnings():
    opt = _opt()
    sched = lrs.StepLR(opt, 2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    opt = _opt()
    sched = lrs.StepLR(opt, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
        sched.step()


def test_tensor_lr_is_filled_in_place():
    lr = ember.tensor(0.1)
    opt = SGD([ember.zeros(1, requires_grad=True)], lr=lr)
    sched = lrs.ExponentialLR(opt, 0.5)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(0.05)
    assert isinstance(sched.get_last_lr()[0], ember.Tensor)
    assert sched.get_last_lr()[0] is not lr


# ---- against torch ------------------------------------------------------------------------


def _both(make, n=35, **opt_kw):
    torch = pytest.importorskip("torch")
    seqs = []
    for mod, tmod in ((ember, lrs), (torch, torch.optim.lr_scheduler)):
        ps = [mod.zeros(1, requires_grad=True) for _ in range(2)]
        opt = mod.optim.SGD(
            [{"params": [ps[0]], "lr": 0.1}, {"params": [ps[1]], "lr": 0.4}], **opt_kw
        )
        sched = make(tmod, opt)
        seq = []
        for _ in range(n):
            seq.append([g["lr"] for g in opt.param_groups])
            opt.step()
            sched.step()
        seqs.append(seq)
    return seqs


@pytest.mark.parametrize(
    "make",
    [
        lambda m, o: m.StepLR(o, 5, 0.7),
        lambda m, o: m.MultiStepLR(o, [2, 9, 9, 21]),
        lambda m, o: m.ExponentialLR(o, 0.95),
        lambda m, o: m.CosineAnnealingLR(o, 8, 0.002),
        lambda m, o: m.LinearLR(o, 0.3, 0.8, 12),
        lambda m, o: m.LambdaLR(o, lambda e: 1 / math.sqrt(e + 1)),
        lambda m, o: m.OneCycleLR(o, [1.0, 0.5], total_steps=36, three_phase=True),
        lambda m, o: m.OneCycleLR(o, 1.0, epochs=4, steps_per_epoch=9, anneal_strategy="linear"),
        lambda m, o: m.SequentialLR(o, [m.LinearLR(o, 0.1), m.CosineAnnealingLR(o, 10)], [5]),
    ],
)
def test_matches_torch(make):
    ours, theirs = _both(make, momentum=0.9)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
