"""In-place arithmetic with a Python number (``add_``, ``sub_``, ``mul_``, ``+=``, ``-=``,
``*=``): one ufunc into the tensor's memory when no graph is recorded (ops/inplace.py
``scalar_inplace``); everything else takes the general in-place path. References are float64
NumPy rounded once to the tensor's dtype (a single IEEE operation rounds correctly), and the
out-of-place op for the cases that must behave as before."""

import numpy as np
import pytest

import ember
from ember import _methods

R = np.random.default_rng(21)
OPS = {
    "add_": lambda a, s: a + s,
    "sub_": lambda a, s: a - s,
    "mul_": lambda a, s: a * s,
    "__iadd__": lambda a, s: a + s,
    "__isub__": lambda a, s: a - s,
    "__imul__": lambda a, s: a * s,
}


@pytest.fixture
def no_general_path(monkeypatch):
    """Fail if the general in-place path runs (the fast path must take these cases)."""

    def refuse(*a, **k):
        raise AssertionError("the general in-place path ran")

    monkeypatch.setattr(_methods, "apply_inplace", refuse)


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_scalar_in_place_matches_float64_reference(name, dtype, no_general_path):
    a = R.standard_normal((3, 5)).astype(dtype)
    s = 0.1  # not exact in binary: the number rounds to the tensor's dtype first
    t = ember.tensor(a)
    v0 = t._version
    out = getattr(t, name)(s)
    assert out is t and t._version == v0 + 1
    want = OPS[name](a.astype(np.float64), np.float64(np.dtype(dtype).type(s))).astype(dtype)
    np.testing.assert_array_equal(t.numpy(), want)


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_int_scalar_in_place(name, dtype, no_general_path):
    a = R.integers(-1000, 1000, (4, 3)).astype(dtype)
    t = ember.tensor(a)
    getattr(t, name)(7)
    np.testing.assert_array_equal(t.numpy(), OPS[name](a.astype(np.int64), 7).astype(dtype))
    assert t.dtype == getattr(ember, dtype)


def test_views_write_through_and_share_the_version(no_general_path):
    base = ember.zeros(4, 4)
    row = base[1]
    row.add_(2.0)
    want = np.zeros((4, 4), np.float32)
    want[1] = 2.0
    np.testing.assert_array_equal(base.numpy(), want)
    assert base._version == row._version == 1


def test_leaf_under_no_grad(no_general_path):
    w = ember.ones(3, requires_grad=True)
    with ember.no_grad():
        w.mul_(3)
    assert w.grad_fn is None and w.requires_grad
    np.testing.assert_array_equal(w.detach().numpy(), [3.0, 3.0, 3.0])


def test_batch_norm_counts_batches():
    bn = ember.nn.BatchNorm2d(2)
    for _ in range(3):
        bn(ember.randn(4, 2, 3, 3))
    assert bn.num_batches_tracked.item() == 3 and bn.num_batches_tracked.dtype == ember.int64


def test_cases_left_to_the_general_path():
    w = ember.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w.add_(1.0)
    y = w * 2  # a non-leaf: the in-place op is recorded
    y.add_(1.0)
    assert y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0, 2.0])
    i8 = ember.tensor(np.array([100, -100], np.int8))
    i8.add_(1000)  # PyTorch wraps a number beyond int8, as the out-of-place op does
    np.testing.assert_array_equal(
        i8.numpy(), (ember.tensor(np.array([100, -100], np.int8)) + 1000).numpy()
    )
    i64 = ember.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        i64.add_(0.5)
    for dt in (ember.float16, ember.bfloat16):
        a = ember.tensor([1.0, 2.5], dtype=dt)
        want = (a + 0.1).float().numpy()
        a.add_(0.1)
        np.testing.assert_array_equal(a.float().numpy(), want)
    a = ember.ones(3)
    a.add_(2.0, alpha=3)
    np.testing.assert_array_equal(a.numpy(), [7.0, 7.0, 7.0])
    b = ember.ones(1).expand(3)
    with pytest.raises(RuntimeError, match="single memory location"):
        b.add_(1.0)


@pytest.mark.parametrize("name", ["uniform_", "normal_"])
def test_in_place_samplers_follow_pytorchs_autograd_rules(name):
    """Refused on a leaf that requires grad (PyTorch's message), allowed under no_grad; on a
    non-leaf in a graph the overwritten values pass no gradient back."""
    leaf = ember.zeros(50, requires_grad=True)
    with pytest.raises(RuntimeError, match=f"{name}: a leaf Variable that requires grad"):
        getattr(leaf, name)()
    assert leaf.detach().numpy().tolist() == [0.0] * 50  # untouched
    with ember.no_grad():
        getattr(leaf, name)(2.0, 2.5)  # U(2, 2.5) or N(2, 2.5^2): nonzero, surely
    assert np.all(leaf.detach().numpy() != 0.0) and leaf.requires_grad
    y = leaf * 3
    getattr(y, name)()
    y.sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), np.zeros(50))


def test_in_place_samplers_name_bad_parameters():
    t = ember.zeros(3)
    with pytest.raises(RuntimeError, match=r"uniform_: .*from=2.0 > to=1.0"):
        t.uniform_(2.0, 1.0)
    with pytest.raises(RuntimeError, match=r"normal_: expects std >= 0.0, but found std -1.0"):
        t.normal_(0.0, -1.0)
    assert t.numpy().tolist() == [0.0, 0.0, 0.0]
