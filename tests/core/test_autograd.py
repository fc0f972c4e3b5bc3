"""Autograd semantics: accumulation, retain_graph, higher-order gradients, autograd.grad,
grad modes, version counters and in-place rules, anomaly detection and gradcheck. (Hooks,
retain_grad and engine ordering: test_autograd_engine.py; custom Functions:
test_autograd_function.py.)"""

import numpy as np
import pytest

import ember
from ember.autograd import Function

# ---- accumulation and retain_graph --------------------------------------------------------


def test_grad_accumulates_across_backward_calls():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [4.0, 8.0]
    x.grad = None
    (3 * x).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_retained_graph_backward_twice_accumulates():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp().sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([1.0, 2.0]), rtol=1e-6)


def test_second_backward_without_retain_graph_raises():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()


def test_autograd_grad_frees_graph_too():
    x = ember.tensor(2.0, requires_grad=True)
    y = x.sin()
    ember.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match="second time"):
        ember.autograd.grad(y, x)


def test_grad_is_plain_tensor_not_aliasing_other_leaves():
    a = ember.ones(3, requires_grad=True)
    b = ember.ones(3, requires_grad=True)
    (a + b).sum().backward()
    assert a.grad.grad_fn is None and not a.grad.requires_grad
    a.grad.add_(1.0)
    assert b.grad.tolist() == [1.0, 1.0, 1.0]
    (a + b).sum().backward()
    assert a.grad.tolist() == [3.0] * 3 and b.grad.tolist() == [2.0] * 3


def test_grad_of_reshaped_leaf_is_its_own_memory():
    x = ember.ones(2, 3, requires_grad=True)
    g = ember.ones(6)
    x.reshape(6).backward(g)
    g.add_(5.0)
    assert x.grad.tolist() == [[1.0] * 3] * 2


def test_backward_of_non_scalar_needs_gradient():
    x = ember.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(ember.tensor([1.0, 2.0, 3.0]))
    assert x.grad.tolist() == [2.0, 4.0, 6.0]


def test_backward_gradient_shape_mismatch_raises():
    x = ember.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Mismatch in shape.*\[2\].*\[3\]"):
        (x * 2).backward(ember.ones(2))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ember.ones(2).sum().backward()


def test_backward_inputs_restricts_accumulation():
    a = ember.ones(2, requires_grad=True)
    b = ember.ones(2, requires_grad=True)
    (a * b * 3).sum().backward(inputs=[a])
    assert a.grad.tolist() == [3.0, 3.0] and b.grad is None


def test_diamond_graph_sums_paths():
    x = ember.tensor([3.0], requires_grad=True)
    u, v = x * 2, x * x
    (u * v + u).backward()  # d/dx (2x^3 + 2x) = 6x^2 + 2
    assert x.grad.tolist() == [56.0]


# ---- higher order ---------------------------------------------------------------------------


def test_third_derivative_of_x_to_the_fourth():
    x = ember.tensor(1.5, dtype=ember.float64, requires_grad=True)
    (g1,) = ember.autograd.grad(x**4, x, create_graph=True)
    (g2,) = ember.autograd.grad(g1, x, create_graph=True)
    (g3,) = ember.autograd.grad(g2, x)
    assert g1.item() == pytest.approx(4 * 1.5**3)
    assert g2.item() == pytest.approx(12 * 1.5**2)
    assert g3.item() == pytest.approx(24 * 1.5)
    assert g1.requires_grad and not g3.requires_grad


def test_backward_create_graph_makes_grad_differentiable():
    x = ember.tensor([2.0], requires_grad=True)
    (x**3).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad and g.tolist() == [12.0]
    (gg,) = ember.autograd.grad(g.sum(), x)
    assert gg.tolist() == [12.0]  # d/dx 3x^2 = 6x


def test_hessian_vector_product_matches_analytic():
    rs = np.random.default_rng(0)
    a = rs.standard_normal((3, 3))
    A = ember.tensor(a + a.T)
    x = ember.tensor(rs.standard_normal(3), requires_grad=True)
    v = ember.tensor(rs.standard_normal(3))
    f = 0.5 * (x @ (A @ x))
    (g,) = ember.autograd.grad(f, x, create_graph=True)
    (hv,) = ember.autograd.grad(g, x, grad_outputs=v)
    np.testing.assert_allclose(hv.numpy(), (a + a.T) @ v.numpy(), rtol=1e-10)


def test_double_backward_through_nonlinear_chain():
    x = ember.randn(4, dtype=ember.float64, requires_grad=True)
    f = lambda t: (t.tanh() * t.sigmoid() + t.exp().log1p()).sum()  # noqa: E731
    assert ember.autograd.gradgradcheck(f, (x,))


# ---- autograd.grad -------------------------------------------------------------------------


def test_grad_allow_unused():
    a = ember.tensor(1.0, requires_grad=True)
    b = ember.tensor(2.0, requires_grad=True)
    ga, gb = ember.autograd.grad(a * 3, [a, b], allow_unused=True)
    assert ga.item() == 3.0 and gb is None
    with pytest.raises(RuntimeError, match="appears to not have been used"):
        ember.autograd.grad(a * 3, [a, b])


def test_grad_materialize_grads():
    a = ember.tensor(1.0, requires_grad=True)
    b = ember.tensor([2.0, 3.0], requires_grad=True)
    _, gb = ember.autograd.grad(a * 3, [a, b], materialize_grads=True)
    assert gb.tolist() == [0.0, 0.0]


def test_grad_with_respect_to_non_leaf():
    a = ember.tensor(1.0, requires_grad=True)
    h = a * 2
    out = h**2
    gh, ga = ember.autograd.grad(out, [h, a])
    assert gh.item() == 4.0 and ga.item() == 8.0
    assert a.grad is None and h.grad is None


def test_grad_with_grad_outputs_and_several_outputs():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y1, y2 = x * 2, x * x
    (g,) = ember.autograd.grad([y1, y2], x, [ember.ones(2), ember.tensor([1.0, 10.0])])
    assert g.tolist() == [2.0 + 2.0, 2.0 + 40.0]


def test_grad_input_must_require_grad():
    x = ember.ones(2)
    with pytest.raises(RuntimeError, match="does not require grad"):
        ember.autograd.grad((x * 2).sum(), x)


def test_grad_does_not_touch_dot_grad():
    x = ember.ones(2, requires_grad=True)
    ember.autograd.grad((x * 2).sum(), x)
    assert x.grad is None


# ---- grad modes -----------------------------------------------------------------------------


def test_no_grad_context_and_decorators():
    x = ember.ones(2, requires_grad=True)
    with ember.no_grad():
        assert not (x * 2).requires_grad
        assert not ember.is_grad_enabled()
    assert ember.is_grad_enabled()

    @ember.no_grad()
    def f(t):
        return t * 2

    @ember.no_grad
    def g(t):
        return t * 2

    assert not f(x).requires_grad and not g(x).requires_grad
    assert g.__name__ == "g" and ember.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = ember.ones(2, requires_grad=True)

    @ember.enable_grad()
    def f(t):
        return t * 2

    with ember.no_grad():
        with ember.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
        assert f(x).requires_grad


def test_set_grad_enabled_as_function_context_and_decorator():
    x = ember.ones(2, requires_grad=True)
    ember.set_grad_enabled(False)
    try:
        assert not ember.is_grad_enabled() and not (x * 2).requires_grad
    finally:
        ember.set_grad_enabled(True)
    with ember.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert ember.is_grad_enabled()

    @ember.set_grad_enabled(False)
    def f(t):
        return t * 2

    assert not f(x).requires_grad and ember.is_grad_enabled()


def test_inference_mode_context_and_decorators():
    x = ember.ones(2, requires_grad=True)
    with ember.inference_mode():
        assert ember.is_inference_mode_enabled() and not (x * 2).requires_grad
    assert not ember.is_inference_mode_enabled()
    with ember.inference_mode(False):
        assert (x * 2).requires_grad

    @ember.inference_mode()
    def f(t):
        return t * 2

    @ember.inference_mode
    def g(t):
        return t * 2

    assert not f(x).requires_grad and not g(x).requires_grad
    assert ember.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError):
        with ember.no_grad():
            raise ValueError
    assert ember.is_grad_enabled()


# ---- version counters and in-place rules ----------------------------------------------------


def test_modified_saved_output_raises_with_versions():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    z = y * 2
    y.add_(1)
    with pytest.raises(
        RuntimeError, match=r"modified by an inplace operation.*version 1.*version 0"
    ):
        z.sum().backward()


def test_modified_saved_input_raises_naming_the_node():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y.sin()
    y.mul_(2)
    with pytest.raises(RuntimeError, match=r"SinBackward0.*is at version 1; expected version 0"):
        z.sum().backward()


def test_modified_view_of_saved_tensor_raises():
    x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = ember.ones(3)
    z = (x * w).sum()  # saves w
    w[0:1].mul_(3.0)  # an in-place change through a view bumps the shared counter
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.backward()


@pytest.mark.xfail(
    strict=True,
    reason="ember does not rebase a view's base (PyTorch's CopySlices): in-place ops on a "
    "view of a tensor that requires grad raise instead",
)
def test_inplace_on_view_of_non_leaf_flows_to_base():
    x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    y[0:1].mul_(3.0)
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 1.0, 1.0]


def test_inplace_on_leaf_requiring_grad_raises():
    x = ember.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.mul_(2)
    with ember.no_grad():
        x.add_(1)  # allowed: this is how optimizers update parameters
    assert x.tolist() == [2.0, 2.0] and x._version == 1


def test_inplace_on_non_leaf_records_graph():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.add_(1)
    y.mul_(3)
    y.exp_()
    y.sum().backward()  # d/dx exp(3 (2x + 1)) = 6 exp(3 (2x + 1))
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.exp([9.0, 15.0]), rtol=1e-5)
    assert y.grad_fn.name() == "ExpBackward0"


def test_inplace_then_use_of_saved_self_raises_like_torch():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.mul_(y)  # mul saved y at version 1, the in-place write makes it 2
    with pytest.raises(RuntimeError, match="version 1; expected version 0"):
        y.sum().backward()


def test_views_share_version_counter():
    a = ember.zeros(3)
    b = a[1:]
    c = a.view(3, 1)
    a.add_(1)
    assert a._version == b._version == c._version == 1
    b.mul_(2)
    assert a._version == 2 and a.tolist() == [1.0, 2.0, 2.0]


def test_detach_shares_memory_and_version():
    x = ember.ones(3, requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.numpy(), x.detach().numpy())
    d.zero_()
    assert x.tolist() == [0.0, 0.0, 0.0] and x._version == 1


def test_detach_in_place_makes_a_leaf():
    x = ember.ones(2, requires_grad=True)
    y = x * 2
    y.detach_()
    assert y.is_leaf and not y.requires_grad and y.grad_fn is None


def test_requires_grad_rules():
    with pytest.raises(RuntimeError, match="floating point"):
        ember.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        ember.zeros(2, dtype=ember.int64).requires_grad_()
    y = ember.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf variables"):
        y.requires_grad_(False)
    v = ember.autograd.Variable(ember.ones(2), requires_grad=True)
    assert isinstance(v, ember.Tensor) and v.requires_grad and v.is_leaf


# ---- anomaly detection and gradcheck --------------------------------------------------------


@pytest.mark.parametrize(
    "op,name", [(lambda t: t.sqrt(), "SqrtBackward0"), (lambda t: t.log(), "LogBackward0")]
)
def test_detect_anomaly_names_the_forward_op(op, name):
    x = ember.tensor([0.0, 1.0], requires_grad=True)
    with ember.autograd.detect_anomaly(), np.errstate(all="ignore"):
        y = (op(x) * 0).sum()
        with pytest.raises(RuntimeError, match=name) as info:
            y.backward()
    assert "test_autograd.py" in str(info.value)  # shows where the forward op was called
    assert not ember.autograd.is_anomaly_enabled()


def test_without_anomaly_detection_nan_propagates():
    x = ember.tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(all="ignore"):
        (x.sqrt() * 0).sum().backward()
    assert np.isnan(x.grad.numpy()[0])


def test_gradcheck_detects_wrong_backward():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3

    x = ember.randn(3, dtype=ember.float64, requires_grad=True)
    with pytest.raises(ember.autograd.GradcheckError, match="Jacobian mismatch"):
        ember.autograd.gradcheck(Wrong.apply, (x,))
    assert ember.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False) is False


def test_gradgradcheck_detects_wrong_double_backward():
    class Sq(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x.detach() * g  # detached: second derivative is lost

    x = ember.randn(3, dtype=ember.float64, requires_grad=True)
    assert ember.autograd.gradcheck(Sq.apply, (x,))
    assert not ember.autograd.gradgradcheck(Sq.apply, (x,), raise_exception=False)
