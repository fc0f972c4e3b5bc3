"""The backward engine: tensor hooks (leaf and non-leaf), retain_grad, node hooks,
next_functions, several roots, long chains and freeing saved tensors."""

import gc
import weakref

import numpy as np
import pytest

import ember

# ---- tensor hooks ---------------------------------------------------------------------------


def test_leaf_hook_modifies_gradient_and_can_be_removed():
    x = ember.ones(3, requires_grad=True)
    handle = x.register_hook(lambda g: g * 2)
    (x * 3).sum().backward()
    assert x.grad.tolist() == [6.0] * 3
    handle.remove()
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0] * 3
    handle.remove()  # removing twice is harmless


def test_leaf_hook_runs_once_on_the_summed_gradient():
    calls = []
    x = ember.ones(2, requires_grad=True)
    x.register_hook(lambda g: calls.append(g.tolist()))
    (x * 2 + x * 3).sum().backward()
    assert calls == [[5.0, 5.0]]
    assert x.grad.tolist() == [5.0, 5.0]


def test_leaf_hook_replacing_gradient_replaces_the_sum():
    x = ember.ones(2, requires_grad=True)
    x.register_hook(lambda g: g * 0 + 1)
    (x * 2 + x * 3).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    (g,) = ember.autograd.grad((x * 2 + x * 3).sum(), x)
    assert g.tolist() == [1.0, 1.0]  # hooks apply to captured gradients too, as in PyTorch


def test_hooks_run_in_registration_order_and_chain():
    order = []
    x = ember.ones(1, requires_grad=True)
    x.register_hook(lambda g: order.append("a"))
    x.register_hook(lambda g: order.append("b") or g * 2)
    x.register_hook(lambda g: order.append(g.item()))
    (x * 1).sum().backward()
    assert order == ["a", "b", 2.0] and x.grad.item() == 2.0


def test_non_leaf_hook_modifies_upstream_gradient():
    x = ember.ones(2, requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g + 1)
    (y * y).sum().backward()  # dL/dy = 2y = 4, hook: 5, dL/dx = 10
    assert x.grad.tolist() == [10.0, 10.0]


def test_non_leaf_hook_removed():
    x = ember.ones(2, requires_grad=True)
    y = x * 3
    h = y.register_hook(lambda g: g * 10)
    h.remove()
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_hook_as_context_manager_handle():
    x = ember.ones(2, requires_grad=True)
    with x.register_hook(lambda g: g * 4):
        (x * 1).sum().backward()
    (x * 1).sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]


def test_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        ember.ones(2).register_hook(lambda g: g)


def test_hooks_match_torch():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (ember, torch):
        x = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        y = x.sin() * 2
        y.register_hook(lambda g: g * g)
        z = y.exp()
        z.register_hook(lambda g: g - 1)
        w = x.register_hook(lambda g: g / 2)
        (z * y).sum().backward()
        w.remove()
        results.append(x.grad.detach().numpy().copy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5)


# ---- retain_grad ----------------------------------------------------------------------------


def test_retain_grad_on_non_leaf():
    x = ember.ones(2, requires_grad=True)
    y = x * 2
    assert not y.retains_grad
    y.retain_grad()
    (y * y).sum().backward()
    assert y.retains_grad and y.grad.tolist() == [4.0, 4.0]
    assert not y.grad.requires_grad


def test_non_leaf_grad_is_none_without_retain_grad():
    x = ember.ones(2, requires_grad=True)
    y = x * 2
    y.sum().backward()
    assert y.grad is None and x.grad is not None


def test_retain_grad_accumulates_across_backward_calls():
    x = ember.ones(2, requires_grad=True)
    y = x * 2
    y.retain_grad()
    (y * y).sum().backward(retain_graph=True)
    (y * y).sum().backward()
    assert y.grad.tolist() == [8.0, 8.0]


def test_retain_grad_sees_hook_modified_gradient():
    x = ember.ones(2, requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g + 1)
    y.retain_grad()
    (y * y).sum().backward()
    assert y.grad.tolist() == [5.0, 5.0]


def test_retain_grad_on_leaf_is_a_no_op():
    x = ember.ones(2, requires_grad=True)
    x.retain_grad()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_retain_grad_with_create_graph_keeps_graph():
    x = ember.tensor([2.0], requires_grad=True)
    y = x * x
    y.retain_grad()
    (y * y).sum().backward(create_graph=True)
    assert y.grad.requires_grad  # 2y, differentiable w.r.t. x


# ---- graph structure --------------------------------------------------------------------


def test_grad_fn_names_and_next_functions():
    x = ember.ones(2, requires_grad=True)
    c = ember.ones(2)
    y = x * c
    assert y.grad_fn.name() == "MulBackward0"
    (leaf, nr), (none, _) = y.grad_fn.next_functions
    assert leaf.name() == "AccumulateGrad" and leaf.variable is x and nr == 0
    assert none is None
    z = y.exp()
    assert z.grad_fn.next_functions[0][0] is y.grad_fn
    assert "grad_fn=<ExpBackward0>" in repr(z)


def test_leaf_and_requires_grad_propagation():
    x = ember.ones(2, requires_grad=True)
    c = ember.ones(2)
    assert x.is_leaf and c.is_leaf
    y = x + c
    assert y.requires_grad and not y.is_leaf
    assert not (c * 2).requires_grad
    assert y.detach().is_leaf


def test_node_post_hook_sees_gradients():
    seen = {}
    x = ember.ones(2, requires_grad=True)
    y = x * 3
    y.grad_fn.register_hook(lambda gin, gout: seen.update(gin=gin, gout=gout))
    y.sum().backward()
    assert seen["gin"][0].tolist() == [3.0, 3.0]
    assert seen["gout"][0].tolist() == [1.0, 1.0]


def test_backward_from_several_roots():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    a, b = (x * 2).sum(), (x * x).sum()
    ember.autograd.backward([a, b])
    assert x.grad.tolist() == [4.0, 6.0]


def test_long_chain_does_not_recurse():
    x = ember.ones(1, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad.item() == 1.0


def test_saved_tensors_are_freed_after_backward():
    x = ember.ones(1000, requires_grad=True)
    y = x.exp()
    ref = weakref.ref(y.grad_fn)
    y.sum().backward()
    assert y.grad_fn._saved is None
    del y
    gc.collect()
    assert ref() is None


def test_saved_tensors_kept_with_retain_graph():
    x = ember.ones(3, requires_grad=True)
    y = x.exp()
    y.sum().backward(retain_graph=True)
    assert y.grad_fn._saved is not None
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.e * np.ones(3), rtol=1e-6)


def test_unused_branch_gradients_do_not_flow():
    x = ember.ones(2, requires_grad=True)
    y = ember.ones(2, requires_grad=True)
    _ = y * 5  # a branch that is not part of the loss
    (x * 2).sum().backward()
    assert y.grad is None and x.grad.tolist() == [2.0, 2.0]


def test_gradient_dtype_follows_leaf_dtype():
    x = ember.ones(2, dtype=ember.float64, requires_grad=True)
    (x.float() * 2).sum().backward()
    assert x.grad.dtype == ember.float64 and x.grad.tolist() == [2.0, 2.0]
    h = ember.ones(2, dtype=ember.float16, requires_grad=True)
    (h.float() * 3).sum().backward()
    assert h.grad.dtype == ember.float16


_KEPT = np.arange(6, dtype=np.float32)  # memory that outlives the backward pass


class _GradFrom(ember.autograd.Function):
    """Identity whose backward hands back a (2, 3) view chosen by ``make``."""

    @staticmethod
    def forward(ctx, x, make):
        ctx.make = make
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return ember.from_numpy(ctx.make()), None


def test_gradient_that_views_memory_held_elsewhere_is_copied():
    x = ember.zeros(2, 3, requires_grad=True)
    _GradFrom.apply(x, lambda: _KEPT.reshape(2, 3)).sum().backward()
    assert not np.shares_memory(x.grad.numpy(), _KEPT)
    _KEPT[0] = 100.0  # the stored gradient does not follow
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(6).reshape(2, 3))
    _KEPT[0] = 0.0


def test_gradient_that_is_the_only_view_of_a_fresh_array_is_kept_without_a_copy():
    """A reshaped temporary (as a convolution's weight gradient is) goes into .grad as it is;
    nothing else can reach its memory, so a copy would only cost time."""
    x = ember.zeros(2, 3, requires_grad=True)
    _GradFrom.apply(x, lambda: np.arange(6, dtype=np.float32).reshape(2, 3)).sum().backward()
    assert x.grad.numpy().base is not None  # still the view: no copy was made
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(6).reshape(2, 3))
    x.grad.add_(1.0)  # writable, as a stored gradient must be
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(1, 7).reshape(2, 3))


def test_gradient_view_that_something_else_also_holds_is_copied():
    """A backward that hands out a view it also keeps (here in a list) gets a copy into
    .grad: accumulating into it later must not change what it kept."""
    kept = []

    def make():
        kept.append(np.arange(6, dtype=np.float32).reshape(2, 3))
        return kept[-1]

    x = ember.zeros(2, 3, requires_grad=True)
    _GradFrom.apply(x, make).sum().backward()
    assert not np.shares_memory(x.grad.numpy(), kept[0])
    x.grad.add_(1.0)
    np.testing.assert_array_equal(kept[0], np.arange(6).reshape(2, 3))


def test_gradient_viewing_part_of_a_fresh_array_is_copied():
    """A view of only part of its base would keep the whole base alive: copied."""
    x = ember.zeros(2, 3, requires_grad=True)
    _GradFrom.apply(x, lambda: np.arange(12, dtype=np.float32)[:6].reshape(2, 3)).sum().backward()
    assert x.grad.numpy().base is None
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(6).reshape(2, 3))
