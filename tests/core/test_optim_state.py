"""Optimizer bookkeeping: param groups, state_dict round trips, zero_grad, errors, repr."""

import copy
import warnings

import numpy as np
import pytest

import ember
from ember.optim import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

CONFIGS = [
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (SGD, {"lr": 0.1, "momentum": 0.5, "dampening": 0.2}),
    (Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    (AdamW, {"lr": 0.01, "betas": (0.8, 0.95)}),
    (RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.3}),
    (Adagrad, {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
]


def _params(seed=0, dtype=ember.float64):
    rng = np.random.default_rng(seed)
    return [
        ember.tensor(rng.standard_normal(s), dtype=dtype, requires_grad=True)
        for s in [(3, 2), (4,)]
    ]


def _grad_seq(n, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in [(3, 2), (4,)]] for _ in range(n)]


def _steps(opt, params, grads):
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = ember.tensor(g, dtype=p.dtype)
        opt.step()


def _groups(params, kw):
    return [{"params": [params[0]]}, {"params": [params[1]], "lr": kw["lr"] / 2}]


@pytest.mark.parametrize("cls,kw", CONFIGS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_resume_from_state_dict_equals_uninterrupted_run(cls, kw):
    grads = _grad_seq(9)
    ref = _params()
    ref_opt = cls(_groups(ref, kw), **kw)
    _steps(ref_opt, ref, grads)

    first = _params()
    opt = cls(_groups(first, kw), **kw)
    _steps(opt, first, grads[:4])
    saved = copy.deepcopy(opt.state_dict())
    resumed = [ember.tensor(p.detach().numpy().copy(), requires_grad=True) for p in first]
    fresh = cls(_groups(resumed, {"lr": 123.0}), **{**kw, "lr": 123.0})
    fresh.load_state_dict(saved)
    assert [g["lr"] for g in fresh.param_groups] == [kw["lr"], kw["lr"] / 2]
    assert fresh.param_groups[0]["params"][0] is resumed[0]
    _steps(fresh, resumed, grads[4:])
    for a, b in zip(resumed, ref):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_state_dict_layout():
    p, q = _params()
    opt = Adam([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=0.1)
    _steps(opt, [p, q], _grad_seq(2))
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert sorted(sd["state"]) == [0, 1]
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.5
    st = sd["state"][1]
    assert set(st) == {"step", "exp_avg", "exp_avg_sq"}
    assert all(isinstance(v, ember.Tensor) for v in st.values())
    assert st["step"].item() == 2.0
    assert opt.param_groups[0]["params"] == [p]  # packing never touches the live groups


def test_load_state_dict_copies_and_casts():
    src = _params(dtype=ember.float64)
    opt = Adam(src, lr=0.1)
    _steps(opt, src, _grad_seq(3))
    sd = opt.state_dict()
    dst = _params(dtype=ember.float32)
    opt2 = Adam(dst, lr=0.1)
    opt2.load_state_dict(sd)
    st = opt2.state[dst[0]]
    assert st["exp_avg"].dtype == ember.float32
    assert st["step"].dtype == sd["state"][0]["step"].dtype  # step keeps its dtype
    assert st["exp_avg"]._data is not sd["state"][0]["exp_avg"]._data
    before = sd["state"][0]["exp_avg"].numpy().copy()
    _steps(opt2, dst, _grad_seq(1))
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"].numpy(), before)


def test_load_state_dict_validates_groups():
    p, q = _params()
    opt = SGD([p, q], lr=0.1, momentum=0.9)
    two = SGD([{"params": [p]}, {"params": [q]}], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(two.state_dict())
    one = SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        opt.load_state_dict(one.state_dict())


def test_load_state_dict_fills_missing_hyperparameters_and_step():
    p = ember.zeros(2, requires_grad=True)
    opt = Adam([p], lr=0.1)
    sd = {
        "state": {0: {"step": 3, "exp_avg": ember.zeros(2), "exp_avg_sq": ember.ones(2)}},
        "param_groups": [{"lr": 0.2, "betas": (0.9, 0.999), "eps": 1e-8, "params": [0]}],
    }
    opt.load_state_dict(sd)
    group = opt.param_groups[0]
    assert group["lr"] == 0.2 and group["amsgrad"] is False and group["weight_decay"] == 0
    assert isinstance(opt.state[p]["step"], ember.Tensor) and opt.state[p]["step"].item() == 3
    p.grad = ember.ones(2)
    opt.step()
    assert opt.state[p]["step"].item() == 4


def test_named_parameters_keep_their_names():
    p, q = _params()
    opt = SGD([("w", p), ("b", q)], lr=0.1)
    assert opt.param_groups[0]["params"] == [p, q]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]
    with pytest.raises(ValueError, match="Some param names are missing"):
        SGD([("w", p), q], lr=0.1)
    with pytest.raises(ValueError, match="cannot add param group without names"):
        opt.add_param_group({"params": [ember.zeros(1, requires_grad=True)]})


def test_zero_grad():
    p, q = _params()
    opt = SGD([p, q], lr=0.1)
    p.grad, q.grad = ember.ones(3, 2, dtype=ember.float64), None
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and np.all(g.numpy() == 0) and q.grad is None
    assert not g.requires_grad
    opt.zero_grad()
    assert p.grad is None and q.grad is None


def test_zero_grad_after_backward_then_accumulate():
    w = ember.tensor([1.0, 2.0], requires_grad=True)
    opt = SGD([w], lr=0.1)
    (w * 3).sum().backward()
    opt.zero_grad(set_to_none=False)
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0])


def test_add_param_group():
    p, q = _params()
    opt = Adam([p], lr=0.1, betas=(0.5, 0.6))
    opt.add_param_group({"params": q, "lr": 0.01})
    g = opt.param_groups[1]
    assert g["params"] == [q] and g["lr"] == 0.01 and g["betas"] == (0.5, 0.6)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [p]})
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([p])
    with pytest.raises(TypeError, match="ordered collections"):
        opt.add_param_group({"params": {ember.zeros(1, requires_grad=True)}})


def test_adagrad_state_for_groups_added_later():
    p, q = _params()
    opt = Adagrad([p], lr=0.1, initial_accumulator_value=0.2)
    opt.add_param_group({"params": [q]})
    q.grad = ember.ones(4, dtype=ember.float64)
    opt.step()
    np.testing.assert_allclose(opt.state[q]["sum"].numpy(), 1.2)


def test_constructor_errors():
    p = ember.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts"):
        SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors, but one of the "):
        SGD([p, 3], lr=0.1)
    with pytest.raises(TypeError, match="params is int$"):
        SGD([3], lr=0.1)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one"):
        SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        SGD([p, p], lr=0.1)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: SGD(p, lr=-1.0), "Invalid learning rate: -1.0"),
        (lambda p: SGD(p, momentum=-0.5), "Invalid momentum value: -0.5"),
        (lambda p: SGD(p, weight_decay=-1e-4), "Invalid weight_decay value: -0.0001"),
        (lambda p: SGD(p, nesterov=True), "Nesterov momentum requires a momentum and zero damp"),
        (lambda p: SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
        (lambda p: Adam(p, lr=-0.1), "Invalid learning rate: -0.1"),
        (lambda p: Adam(p, eps=-1.0), "Invalid epsilon value: -1.0"),
        (lambda p: Adam(p, betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
        (lambda p: Adam(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
        (lambda p: Adam(p, weight_decay=-2.0), "Invalid weight_decay value: -2.0"),
        (lambda p: AdamW(p, lr=-1.0), "Invalid learning rate: -1.0"),
        (lambda p: RMSprop(p, alpha=-0.1), "Invalid alpha value: -0.1"),
        (lambda p: RMSprop(p, momentum=-0.1), "Invalid momentum value: -0.1"),
        (lambda p: RMSprop(p, eps=-0.1), "Invalid epsilon value: -0.1"),
        (lambda p: Adagrad(p, lr_decay=-0.1), "Invalid lr_decay value: -0.1"),
        (lambda p: Adagrad(p, initial_accumulator_value=-1.0), "Invalid initial_accumulator"),
        (lambda p: Adagrad(p, eps=-1.0), "Invalid epsilon value: -1.0"),
        (lambda p: Adam(p, lr=ember.zeros(2)), "Tensor lr must be 1-element"),
    ],
)
def test_bad_hyperparameters_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make([ember.zeros(2, requires_grad=True)])


def test_flag_errors():
    p = [ember.zeros(2, requires_grad=True)]
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        Adam(p, fused=True, foreach=True)
    with pytest.raises(NotImplementedError, match="differentiable"):
        SGD(p, differentiable=True)


def test_repr_lists_group_hyperparameters_sorted():
    opt = SGD([ember.zeros(2, requires_grad=True)], lr=0.5, momentum=0.9)
    expect = (
        "SGD (\nParameter Group 0\n    dampening: 0\n    differentiable: False\n"
        "    foreach: None\n    fused: None\n    lr: 0.5\n    maximize: False\n"
        "    momentum: 0.9\n    nesterov: False\n    weight_decay: 0\n)"
    )
    assert repr(opt) == expect


def test_custom_optimizer_subclass():
    class SignSGD(Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, {"lr": lr})

        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p._data -= group["lr"] * np.sign(p.grad._data)
            return None

    w = ember.tensor([1.0, -1.0], requires_grad=True)
    opt = SignSGD([w])
    w.grad = ember.tensor([3.0, -0.5])
    opt.step()
    np.testing.assert_allclose(w.detach().numpy(), [0.9, -0.9], rtol=1e-6)
    assert opt._opt_called
    with pytest.raises(NotImplementedError):
        Optimizer([w], {}).step()


def test_deepcopy_optimizer_keeps_state_mapping():
    p = ember.zeros(2, requires_grad=True)
    opt = Adam([p], lr=0.1)
    p.grad = ember.ones(2)
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clone = copy.deepcopy(opt)
    q = clone.param_groups[0]["params"][0]
    assert q is not p and clone.state[q]["step"].item() == 1.0
