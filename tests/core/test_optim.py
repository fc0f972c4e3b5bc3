"""ember.optim update rules against independent float64 NumPy implementations of the
documented algorithms, run over several steps with every option."""

import itertools

import numpy as np
import pytest

import ember
from ember.optim import SGD, Adagrad, Adam, AdamW, RMSprop

SHAPES = [(4, 3), (6,), ()]
STEPS = 6

# ---- references: one parameter array, one list of gradients, straight from the docs ------


def ref_sgd(p, grads, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False):
    b = None
    for g in grads:
        g = -g if maximize else g
        g = g + weight_decay * p
        if momentum != 0:
            b = g.copy() if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        p = p - lr * g
    return p


def ref_adam(
    p,
    grads,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0,
    amsgrad=False,
    maximize=False,
    decoupled=False,
):
    b1, b2 = betas
    m = v = vmax = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if decoupled:
            p = p - lr * weight_decay * p
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        if amsgrad:
            vmax = np.maximum(vmax, v)
            v_hat = vmax / (1 - b2**t)
        else:
            v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def ref_adamw(p, grads, weight_decay=1e-2, **kw):
    return ref_adam(p, grads, weight_decay=weight_decay, decoupled=True, **kw)


def ref_rmsprop(
    p,
    grads,
    lr=1e-2,
    alpha=0.99,
    eps=1e-8,
    weight_decay=0,
    momentum=0,
    centered=False,
    maximize=False,
):
    v = np.zeros_like(p)
    gavg = np.zeros_like(p)
    b = np.zeros_like(p)
    for g in grads:
        g = -g if maximize else g
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        if centered:
            gavg = alpha * gavg + (1 - alpha) * g
            denom = np.sqrt(v - gavg**2) + eps
        else:
            denom = np.sqrt(v) + eps
        if momentum > 0:
            b = momentum * b + g / denom
            p = p - lr * b
        else:
            p = p - lr * g / denom
    return p


def ref_adagrad(
    p, grads, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
    maximize=False,
):  # fmt: skip
    s = np.full_like(p, initial_accumulator_value)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        p = p - clr * g / (np.sqrt(s) + eps)
    return p


# ---- harness ------------------------------------------------------------------------------


def _data(seed=0, steps=STEPS):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    return init, grads


def _run_ember(cls, kw, init, grads, dtype=ember.float64):
    params = [ember.tensor(a, dtype=dtype, requires_grad=True) for a in init]
    opt = cls(params, **kw)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = ember.tensor(g, dtype=dtype)
        opt.step()
    return params, opt


def _check(cls, ref, kw, dtype=ember.float64, rtol=1e-12):
    init, grads = _data()
    params, _ = _run_ember(cls, kw, init, grads, dtype)
    for i, p in enumerate(params):
        expect = ref(init[i], [gs[i] for gs in grads], **kw)
        assert p.dtype == dtype
        np.testing.assert_allclose(p.detach().numpy(), expect, rtol=rtol, atol=rtol * 1e-2)


def _grid(**axes):
    return [dict(zip(axes, v)) for v in itertools.product(*axes.values())]


@pytest.mark.parametrize(
    "kw",
    [
        c
        for c in _grid(
            lr=[0.05],
            momentum=[0, 0.9],
            dampening=[0, 0.25],
            nesterov=[False, True],
            weight_decay=[0, 0.1],
            maximize=[False, True],
        )
        if not (c["nesterov"] and (c["momentum"] == 0 or c["dampening"] != 0))
    ],
    ids=str,
)
def test_sgd_matches_reference(kw):
    _check(SGD, ref_sgd, kw)


@pytest.mark.parametrize(
    "kw",
    _grid(
        lr=[0.01],
        betas=[(0.9, 0.999), (0.6, 0.8)],
        weight_decay=[0, 0.2],
        amsgrad=[False, True],
        maximize=[False, True],
        eps=[1e-8, 0.1],
    ),
    ids=str,
)
def test_adam_and_adamw_match_reference(kw):
    _check(Adam, ref_adam, kw)
    _check(AdamW, ref_adamw, kw)


def test_adamw_default_decay_is_1e_2():
    assert AdamW([ember.zeros(1, requires_grad=True)]).defaults["weight_decay"] == 1e-2
    _check(AdamW, ref_adamw, {"lr": 0.1})


@pytest.mark.parametrize(
    "kw",
    _grid(
        lr=[0.01],
        alpha=[0.99, 0.5],
        weight_decay=[0, 0.1],
        momentum=[0, 0.7],
        centered=[False, True],
        maximize=[False, True],
    ),
    ids=str,
)
def test_rmsprop_matches_reference(kw):
    _check(RMSprop, ref_rmsprop, kw)


@pytest.mark.parametrize(
    "kw",
    _grid(
        lr=[0.1],
        lr_decay=[0, 0.3],
        weight_decay=[0, 0.1],
        initial_accumulator_value=[0, 0.4],
        eps=[1e-10, 0.05],
        maximize=[False, True],
    ),
    ids=str,
)
def test_adagrad_matches_reference(kw):
    _check(Adagrad, ref_adagrad, kw)


@pytest.mark.parametrize(
    "cls,ref,kw",
    [
        (SGD, ref_sgd, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
        (Adam, ref_adam, {"lr": 0.01, "amsgrad": True}),
        (AdamW, ref_adamw, {"lr": 0.01}),
        (RMSprop, ref_rmsprop, {"centered": True, "momentum": 0.5}),
        (Adagrad, ref_adagrad, {"lr": 0.1, "lr_decay": 0.1}),
    ],
)
def test_float32_keeps_dtype_and_is_close(cls, ref, kw):
    _check(cls, ref, kw, dtype=ember.float32, rtol=2e-4)
    init, grads = _data()
    params, opt = _run_ember(cls, kw, init, grads, ember.float32)
    for p in params:
        for name, v in opt.state[p].items():
            assert v.dtype == (ember.float32 if name != "step" else ember.float32), name


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop, Adagrad])
def test_half_precision_params_step(cls):
    for dtype in (ember.float16, ember.bfloat16):
        p = ember.tensor([1.0, -2.0, 3.0], dtype=dtype, requires_grad=True)
        opt = cls([p], lr=0.1)
        p.grad = ember.tensor([0.5, 0.5, -0.5], dtype=dtype)
        opt.step()
        assert p.dtype == dtype
        got = p.detach().float().numpy()
        assert np.all(np.abs(got - [1.0, -2.0, 3.0]) > 0)


def test_training_a_quadratic_with_backward_converges():
    target = ember.tensor([1.0, -2.0, 0.5])
    for cls, kw in [
        (SGD, {"lr": 0.1, "momentum": 0.9}),
        (Adam, {"lr": 0.1}),
        (AdamW, {"lr": 0.1, "weight_decay": 0.0}),
        (RMSprop, {"lr": 0.01}),
        (Adagrad, {"lr": 0.5}),
    ]:
        w = ember.zeros(3, requires_grad=True)
        opt = cls([w], **kw)
        for _ in range(300):
            opt.zero_grad()
            loss = ((w - target) ** 2).sum()
            loss.backward()
            opt.step()
        np.testing.assert_allclose(w.detach().numpy(), target.numpy(), atol=5e-2)


def test_params_without_grad_are_skipped():
    a = ember.ones(3, requires_grad=True)
    b = ember.ones(3, requires_grad=True)
    opt = Adam([a, b], lr=0.1)
    a.grad = ember.ones(3)
    v_a, v_b = a._version, b._version
    opt.step()
    assert np.all(a.detach().numpy() < 1) and np.all(b.detach().numpy() == 1)
    assert b not in opt.state and set(opt.state[a]) == {"step", "exp_avg", "exp_avg_sq"}
    assert a._version == v_a + 1 and b._version == v_b


def test_step_is_a_float_tensor_and_counts():
    p = ember.zeros(2, requires_grad=True)
    for cls in (Adam, AdamW, RMSprop, Adagrad):
        opt = cls([p])
        for _ in range(3):
            p.grad = ember.ones(2)
            opt.step()
        step = opt.state[p]["step"]
        assert isinstance(step, ember.Tensor) and step.dim() == 0
        assert step.dtype == ember.float32 and step.item() == 3.0


def test_sgd_momentum_buffer_first_step_is_grad():
    p = ember.zeros(3, requires_grad=True)
    opt = SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    p.grad = ember.tensor([1.0, 2.0, 3.0])
    opt.step()
    np.testing.assert_array_equal(opt.state[p]["momentum_buffer"].numpy(), [1.0, 2.0, 3.0])
    assert SGD([p], lr=0.1).state_dict()["state"] == {}


def test_state_buffers_are_created_on_demand():
    p = ember.zeros(2, requires_grad=True)
    p.grad = ember.ones(2)
    opt = Adam([p], amsgrad=True)
    opt.step()
    assert set(opt.state[p]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    opt = RMSprop([p], momentum=0.5, centered=True)
    opt.step()
    assert set(opt.state[p]) == {"step", "square_avg", "momentum_buffer", "grad_avg"}
    opt = Adagrad([p], initial_accumulator_value=0.3)
    assert set(opt.state[p]) == {"step", "sum"}  # Adagrad builds its state up front
    np.testing.assert_array_equal(opt.state[p]["sum"].numpy(), np.float32([0.3, 0.3]))


def test_grad_is_not_modified_by_step():
    for cls, kw in [
        (SGD, {"weight_decay": 0.1, "maximize": True, "momentum": 0.9, "nesterov": True}),
        (Adam, {"weight_decay": 0.1, "maximize": True}),
        (RMSprop, {"weight_decay": 0.1, "maximize": True, "centered": True}),
        (Adagrad, {"weight_decay": 0.1, "maximize": True}),
    ]:
        p = ember.ones(3, requires_grad=True)
        p.grad = ember.tensor([0.1, 0.2, 0.3])
        opt = cls([p], **kw)
        opt.step()
        opt.step()
        np.testing.assert_array_equal(p.grad.numpy(), np.array([0.1, 0.2, 0.3], np.float32))


def test_closure_is_called_with_grad_enabled_and_loss_returned():
    w = ember.tensor([3.0], requires_grad=True)
    opt = SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with ember.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 9.0
    assert w.item() == pytest.approx(1.5)


def test_lr_may_be_changed_between_steps_through_param_groups():
    init, grads = _data()
    params = [ember.tensor(a, dtype=ember.float64, requires_grad=True) for a in init]
    opt = SGD(params, lr=0.1)
    expect = [a.copy() for a in init]
    for k, gs in enumerate(grads):
        opt.param_groups[0]["lr"] = 0.1 / (k + 1)
        for i, (p, g) in enumerate(zip(params, gs)):
            p.grad = ember.tensor(g, dtype=ember.float64)
            expect[i] = expect[i] - 0.1 / (k + 1) * g
        opt.step()
    for p, e in zip(params, expect):
        np.testing.assert_allclose(p.detach().numpy(), e, rtol=1e-12)


def test_tensor_lr_is_accepted():
    p = ember.ones(2, dtype=ember.float64, requires_grad=True)
    opt = Adam([p], lr=ember.tensor(0.1))
    p.grad = ember.ones(2, dtype=ember.float64)
    opt.step()
    np.testing.assert_allclose(p.detach().numpy(), [0.9, 0.9], rtol=1e-6)


@pytest.mark.parametrize(
    "cls,ref,kw",
    [
        (SGD, ref_sgd, {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
        (SGD, ref_sgd, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "maximize": True}),
        (Adam, ref_adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
        (AdamW, ref_adamw, {"lr": 0.01, "maximize": True}),
        (RMSprop, ref_rmsprop, {"centered": True, "momentum": 0.5, "weight_decay": 0.1}),
        (Adagrad, ref_adagrad, {"lr": 0.1, "lr_decay": 0.1, "weight_decay": 0.1}),
    ],
)
def test_chunked_and_threaded_path_matches_reference(cls, ref, kw, monkeypatch):
    """Tiny chunks and no size threshold force the cache-chunked, multi-threaded path."""
    from ember.optim import _foreach

    monkeypatch.setattr(_foreach, "CHUNK_BYTES", 40)  # 5 float64 elements per chunk
    monkeypatch.setattr(_foreach, "PARALLEL_MIN", 0)
    monkeypatch.setattr(_foreach, "_threads", lambda: 3)
    _check(cls, ref, kw)


def test_non_contiguous_parameter():
    base = np.random.default_rng(3).standard_normal((4, 5))
    p = ember.from_numpy(base.T.copy().T)  # Fortran-ordered storage: not C-contiguous
    assert not p.is_contiguous()
    p.requires_grad_()
    grads = [np.random.default_rng(k).standard_normal((4, 5)) for k in range(3)]
    opt = Adam([p], lr=0.1, amsgrad=True)
    for g in grads:
        p.grad = ember.tensor(g)
        opt.step()
    expect = ref_adam(base, grads, lr=0.1, amsgrad=True)
    np.testing.assert_allclose(p.detach().numpy(), expect, rtol=1e-12)


def test_non_contiguous_gradient_on_chunked_path(monkeypatch):
    from ember.optim import _foreach

    monkeypatch.setattr(_foreach, "CHUNK_BYTES", 48)
    monkeypatch.setattr(_foreach, "PARALLEL_MIN", 0)
    init = np.random.default_rng(4).standard_normal((5, 7))
    grads = [np.random.default_rng(k).standard_normal((7, 5)).T for k in range(3)]
    p = ember.tensor(init, requires_grad=True)
    opt = RMSprop([p], lr=0.1, momentum=0.5)
    for g in grads:
        p.grad = ember.from_numpy(g)  # a transposed view: not C-contiguous
        assert not p.grad.is_contiguous()
        opt.step()
    expect = ref_rmsprop(init, grads, lr=0.1, momentum=0.5)
    np.testing.assert_allclose(p.detach().numpy(), expect, rtol=1e-12)


def test_duplicate_parameter_is_updated_twice_in_order(monkeypatch):
    from ember.optim import _foreach

    monkeypatch.setattr(_foreach, "CHUNK_BYTES", 16)
    monkeypatch.setattr(_foreach, "PARALLEL_MIN", 0)
    p = ember.tensor(np.arange(12.0), requires_grad=True)
    with pytest.warns(UserWarning, match="duplicate"):
        opt = SGD([p, p], lr=0.5)
    p.grad = ember.ones(12, dtype=ember.float64)
    opt.step()
    np.testing.assert_array_equal(p.detach().numpy(), np.arange(12.0) - 1.0)
