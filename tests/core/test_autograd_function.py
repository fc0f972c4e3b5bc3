"""Custom autograd Functions: save_for_backward, needs_input_grad, mark_non_differentiable,
multiple outputs, materialized gradients, mark_dirty and double backward."""

import pytest

import ember
from ember.autograd import Function

# ---- custom Function ----------------------------------------------------------------------


class _MulAdd(Function):
    """(x * y * k, x + y, indices) with saved tensors, a non-tensor argument and an int output."""

    seen = {}

    @staticmethod
    def forward(ctx, x, y, k):
        _MulAdd.seen["forward"] = ctx.needs_input_grad
        ctx.save_for_backward(x, y)
        ctx.k = k
        idx = ember.tensor([0, 1])
        ctx.mark_non_differentiable(idx)
        return x * y * k, x + y, idx

    @staticmethod
    def backward(ctx, g_prod, g_sum, g_idx):
        _MulAdd.seen["backward"] = ctx.needs_input_grad
        _MulAdd.seen["g_sum"] = g_sum
        x, y = ctx.saved_tensors
        gx = g_prod * y * ctx.k + g_sum if ctx.needs_input_grad[0] else None
        gy = g_prod * x * ctx.k + g_sum if ctx.needs_input_grad[1] else None
        return gx, gy, None


def test_custom_function_saved_tensors_and_needs_input_grad():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = ember.tensor([3.0, 4.0])
    p, s, idx = _MulAdd.apply(x, y, 2.0)
    assert p.grad_fn is s.grad_fn and p.grad_fn.name() == "_MulAddBackward"
    assert not idx.requires_grad and idx.dtype == ember.int64
    p.sum().backward()
    assert x.grad.tolist() == [6.0, 8.0]
    assert _MulAdd.seen["forward"] == (True, False, False)
    assert _MulAdd.seen["backward"] == (True, False, False)
    # the unused output's gradient arrives materialized as zeros
    assert _MulAdd.seen["g_sum"].tolist() == [0.0, 0.0]


def test_custom_function_multiple_outputs_both_used():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = ember.tensor([3.0, 4.0], requires_grad=True)
    p, s, _ = _MulAdd.apply(x, y, 1.0)
    (p + s * 10).sum().backward()
    assert x.grad.tolist() == [13.0, 14.0] and y.grad.tolist() == [11.0, 12.0]


def test_custom_function_without_materialized_grads_gets_none():
    class Two(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            assert g2 is None
            return g1 * 2

    x = ember.ones(2, requires_grad=True)
    a, _ = Two.apply(x)
    a.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_custom_function_double_backward():
    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x**2 * g

    x = ember.randn(3, dtype=ember.float64, requires_grad=True)
    assert ember.autograd.gradcheck(Cube.apply, (x,))
    assert ember.autograd.gradgradcheck(Cube.apply, (x,))


def test_custom_function_returning_input_gets_new_node():
    class Ident(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 5

    x = ember.ones(2, requires_grad=True)
    y = Ident.apply(x)
    assert y is not x and y.grad_fn is not None and x.is_leaf
    y.sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]


def test_custom_function_mark_dirty_rebases_input():
    class AddOne(Function):
        @staticmethod
        def forward(ctx, x):
            x._data += 1
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = ember.ones(2, requires_grad=True)
    z = x.clone()
    r = AddOne.apply(z)
    assert r is z and z._version == 1 and z.grad_fn.name() == "AddOneBackward"
    z.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    with pytest.raises(RuntimeError, match="leaf Variable"):
        AddOne.apply(ember.ones(2, requires_grad=True))


def test_custom_function_no_record_without_grad():
    x = ember.ones(2)
    p, _, _ = _MulAdd.apply(x, x, 1.0)
    assert p.grad_fn is None and not p.requires_grad
    assert _MulAdd.seen["forward"] == (False, False, False)
    with ember.no_grad():
        p, _, _ = _MulAdd.apply(ember.ones(2, requires_grad=True), x, 1.0)
    assert not p.requires_grad


def test_legacy_function_instance_raises():
    with pytest.raises(RuntimeError, match="Legacy autograd function"):
        _MulAdd(1)
