"""Tensor basics: creation functions, conversion to and from NumPy and Python, memory sharing,
indexing with assignment, in-place ops, repr, and the errors PyTorch raises."""

import copy

import numpy as np
import pytest

import ember

# ---- creation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data,dtype",
    [
        ([1, 2], ember.int64),
        ([1.0, 2], ember.float32),
        ([True, False], ember.bool),
        ([1, True], ember.int64),
        (3, ember.int64),
        (3.5, ember.float32),
        (True, ember.bool),
        ([], ember.float32),
        ([[1, 2], [3, 4.5]], ember.float32),
        ((1, 2), ember.int64),
        (np.array([1, 2], dtype=np.int32), ember.int32),
        (np.array([1.0]), ember.float64),
        (np.array([1.0], dtype=np.float16), ember.float16),
        (np.array([1], dtype=np.uint8), ember.uint8),
        (np.float32(2.0), ember.float32),
        (np.array([True]), ember.bool),
    ],
)
def test_tensor_dtype_inference(data, dtype):
    assert ember.tensor(data).dtype == dtype


def test_tensor_from_list_of_tensors():
    t = ember.tensor([ember.tensor(1.0), ember.tensor(2.0)])
    assert t.tolist() == [1.0, 2.0] and t.dtype == ember.float32


def test_tensor_copies_its_input():
    a = np.arange(3.0)
    t = ember.tensor(a)
    a[0] = 9
    assert t[0].item() == 0.0
    u = ember.tensor(t)
    t.add_(1)
    assert u[0].item() == 0.0


def test_tensor_explicit_dtype_and_requires_grad():
    t = ember.tensor([1, 2], dtype=ember.float64, requires_grad=True)
    assert t.dtype == ember.float64 and t.requires_grad and t.is_leaf
    with pytest.raises(RuntimeError, match="floating point"):
        ember.tensor([1, 2], requires_grad=True)


def test_bad_data_raises_type_error():
    with pytest.raises(TypeError):
        ember.tensor(["a", "b"])
    with pytest.raises(TypeError):
        ember.tensor([1 + 2j])


def test_filled_creation_functions():
    assert ember.zeros(2, 3).shape == (2, 3) and ember.zeros(2, 3).dtype == ember.float32
    assert ember.zeros((2, 3)).shape == (2, 3) and ember.ones([4]).tolist() == [1.0] * 4
    assert ember.zeros(2, dtype=ember.int32).dtype == ember.int32
    assert ember.empty(2, 2).shape == (2, 2)
    assert ember.full((2,), 3).dtype == ember.int64
    assert ember.full((2,), 3.0).tolist() == [3.0, 3.0]
    assert ember.full((2,), True).dtype == ember.bool
    assert ember.eye(2, 3).tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert ember.eye(2).shape == (2, 2)
    assert ember.zeros(0).shape == (0,)
    with pytest.raises(RuntimeError, match="negative dimension"):
        ember.zeros(-1)


def test_like_functions_keep_shape_and_dtype():
    x = ember.tensor([[1, 2]], dtype=ember.int32)
    for fn in (ember.zeros_like, ember.ones_like, ember.empty_like):
        y = fn(x)
        assert y.shape == x.shape and y.dtype == ember.int32 and not y.requires_grad
    assert ember.ones_like(x, dtype=ember.float64).dtype == ember.float64
    assert ember.full_like(x, 2.7).tolist() == [[2, 2]]
    assert ember.zeros_like(ember.ones(2, requires_grad=True)).requires_grad is False
    assert ember.rand_like(ember.ones(2, 2)).shape == (2, 2)
    assert ember.randn_like(ember.ones(3, dtype=ember.float64)).dtype == ember.float64


def test_ranges():
    assert ember.arange(5).tolist() == [0, 1, 2, 3, 4] and ember.arange(5).dtype == ember.int64
    assert ember.arange(1, 2, 0.25).tolist() == [1.0, 1.25, 1.5, 1.75]
    assert ember.arange(5.0).dtype == ember.float32
    assert ember.arange(5, 0, -2).tolist() == [5, 3, 1]
    assert ember.arange(3, dtype=ember.float64).dtype == ember.float64
    np.testing.assert_allclose(ember.linspace(0, 1, 5).numpy(), [0, 0.25, 0.5, 0.75, 1])
    assert ember.linspace(0, 1, 5).dtype == ember.float32
    np.testing.assert_allclose(ember.logspace(0, 2, 3).numpy(), [1, 10, 100])


def test_random_creation_ranges_and_dtypes():
    r = ember.rand(1000)
    assert r.dtype == ember.float32 and 0 <= r.min().item() and r.max().item() < 1
    n = ember.randn(4000, dtype=ember.float64)
    assert abs(n.mean().item()) < 0.1 and abs(n.std().item() - 1) < 0.1
    i = ember.randint(2, 5, (100,))
    assert i.dtype == ember.int64 and set(i.tolist()) <= {2, 3, 4}
    assert ember.randint(3, (2, 2)).shape == (2, 2)
    assert sorted(ember.randperm(6).tolist()) == list(range(6))


def test_manual_seed_makes_draws_repeatable():
    ember.manual_seed(123)
    a = ember.randn(5)
    ember.manual_seed(123)
    b = ember.randn(5)
    assert ember.equal(a, b)
    g = ember.Generator().manual_seed(7)
    c = ember.rand(3, generator=g)
    g.manual_seed(7)
    assert ember.equal(c, ember.rand(3, generator=g))


# ---- NumPy and Python interop ------------------------------------------------------------


def test_from_numpy_shares_memory_both_ways():
    a = np.arange(4.0)
    t = ember.from_numpy(a)
    a[0] = 9
    assert t[0].item() == 9.0
    t.add_(1)
    assert a.tolist() == [10.0, 2.0, 3.0, 4.0]
    assert t.dtype == ember.float64
    with pytest.raises(TypeError):
        ember.from_numpy([1, 2])


def test_numpy_and_array_share_memory():
    t = ember.zeros(3)
    n = t.numpy()
    n[1] = 5
    assert t.tolist() == [0.0, 5.0, 0.0]
    assert np.shares_memory(np.asarray(t), n)
    assert np.array(t, dtype=np.float64).dtype == np.float64


def test_as_tensor_shares_numpy_memory_and_tensor_identity():
    a = np.zeros(3)
    t = ember.as_tensor(a)
    a[0] = 1
    assert t[0].item() == 1.0
    x = ember.ones(2)
    assert ember.as_tensor(x) is x
    assert ember.as_tensor([1, 2]).dtype == ember.int64


def test_numpy_of_tensor_requiring_grad_raises():
    x = ember.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0, 1.0]


def test_item_and_tolist():
    assert ember.tensor(2.5).item() == 2.5
    assert isinstance(ember.tensor(2).item(), int)
    assert isinstance(ember.tensor(True).item(), bool)
    assert ember.tensor([[7]]).item() == 7
    assert ember.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert ember.tensor(1.5).tolist() == 1.5
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        ember.tensor([1, 2]).item()


def test_python_number_protocols():
    assert bool(ember.tensor([1])) and not bool(ember.tensor(0.0))
    assert int(ember.tensor(3.7)) == 3 and float(ember.tensor(2)) == 2.0
    assert [10, 20, 30][ember.tensor(2)] == 30
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(ember.tensor([1, 2]))
    with pytest.raises(TypeError):
        [1, 2][ember.tensor(1.0)]
    assert len(ember.zeros(3, 2)) == 3
    assert [r.shape for r in ember.zeros(2, 3)] == [(3,), (3,)]
    with pytest.raises(TypeError):
        len(ember.tensor(1.0))


def test_deepcopy_and_pickle_round_trip():
    import pickle

    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = copy.deepcopy(x)
    assert y.requires_grad and ember.equal(x.detach(), y.detach())
    y.data.add_(1)
    assert x.tolist() == [1.0, 2.0]
    z = pickle.loads(pickle.dumps(x))
    assert z.tolist() == [1.0, 2.0] and z.requires_grad
    with pytest.raises(RuntimeError, match="deepcopy"):
        copy.deepcopy(x * 2)


# ---- views and copies -------------------------------------------------------------------


def test_views_share_memory_copies_do_not():
    x = ember.arange(12.0).reshape(3, 4)
    for v in (
        x.view(4, 3),
        x.reshape(12),
        x.transpose(0, 1),
        x[:, None].expand(3, 2, 4),
        x[1],
        x[:, 1:3],
    ):
        assert np.shares_memory(v.numpy(), x.numpy())
    for c in (x[[0, 2]], x[x > 3], x.flip(0), x.clone()):
        assert not np.shares_memory(c.numpy(), x.numpy())


def test_writes_through_a_view_are_seen_by_the_base():
    x = ember.zeros(2, 3)
    x[0].fill_(1.0)
    x.t()[2].add_(5.0)
    assert x.tolist() == [[1.0, 1.0, 6.0], [0.0, 0.0, 5.0]]


def test_data_attribute_is_untracked_alias():
    x = ember.ones(2, requires_grad=True)
    x.data.mul_(3)
    assert x.tolist() == [3.0, 3.0] and x.is_leaf and x.requires_grad
    x.data = ember.zeros(2)
    assert x.tolist() == [0.0, 0.0]


def test_contiguity_and_strides():
    x = ember.zeros(2, 3)
    assert x.stride() == (3, 1) and x.is_contiguous()
    assert not x.t().is_contiguous() and x.t().contiguous().is_contiguous()
    assert x.element_size() == 4 and ember.zeros(1, dtype=ember.int64).element_size() == 8


# ---- indexing assignment and in-place ops -------------------------------------------------


def test_setitem_variants():
    x = ember.zeros(3, 4)
    x[0] = 1.0
    x[:, 1] = ember.tensor([5.0, 6.0, 7.0])
    x[x > 6] = -1.0
    x[ember.tensor([2]), ember.tensor([3])] = 9.0
    x[1:, 2:] = ember.tensor([[2.0, 3.0]])
    assert x.tolist() == [
        [1.0, 5.0, 1.0, 1.0],
        [0.0, 6.0, 2.0, 3.0],
        [0.0, -1.0, 2.0, 3.0],
    ]


def test_setitem_casts_value_to_tensor_dtype():
    x = ember.zeros(3, dtype=ember.int64)
    x[0] = 2.7
    x[1:] = ember.tensor([1.9, -1.9])
    assert x.tolist() == [2, 1, -1] and x.dtype == ember.int64


@pytest.mark.parametrize(
    "op,args,expect",
    [
        ("add_", (2.0,), [3.0, 4.0]),
        ("sub_", (1.0,), [0.0, 1.0]),
        ("mul_", (3.0,), [3.0, 6.0]),
        ("div_", (2.0,), [0.5, 1.0]),
        ("pow_", (2.0,), [1.0, 4.0]),
        ("clamp_", (1.5, 1.8), [1.5, 1.8]),
        ("neg_", (), [-1.0, -2.0]),
        ("fill_", (7.0,), [7.0, 7.0]),
        ("zero_", (), [0.0, 0.0]),
        ("sqrt_", (), [1.0, 2.0**0.5]),
        ("exp_", (), [np.e, np.e**2]),
        ("relu_", (), [1.0, 2.0]),
    ],
)
def test_inplace_ops_return_self_and_bump_version(op, args, expect):
    x = ember.tensor([1.0, 2.0])
    out = getattr(x, op)(*args)
    assert out is x and x._version == 1
    np.testing.assert_allclose(x.numpy(), expect, rtol=1e-6)


def test_augmented_assignment_is_in_place():
    x = ember.ones(2)
    alias = x
    x += 1
    x *= 3
    x -= 1
    x /= 5
    assert alias is x and x.tolist() == [1.0, 1.0] and x._version == 4


def test_inplace_broadcasts_other_but_not_self():
    x = ember.zeros(2, 3)
    x.add_(ember.tensor([1.0, 2.0, 3.0]))
    assert x.tolist() == [[1.0, 2.0, 3.0]] * 2
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        ember.zeros(3).add_(ember.zeros(2, 3))


def test_inplace_int_with_float_result_raises():
    with pytest.raises(RuntimeError, match="can't be cast"):
        ember.tensor([1, 2]).add_(0.5)


def test_copy_casts_and_broadcasts():
    x = ember.zeros(2, 2, dtype=ember.float64)
    x.copy_(ember.tensor([1, 2]))
    assert x.tolist() == [[1.0, 2.0], [1.0, 2.0]] and x.dtype == ember.float64


# ---- repr -------------------------------------------------------------------------------


_REPR_CASES = [
    lambda m: m.tensor([1.0, 2.0, 3.0]),
    lambda m: m.tensor([[1.5, -2.0], [3.25, 4.0]]),
    lambda m: m.tensor([1, 2, 3]),
    lambda m: m.tensor([[1, -20], [300, 4]]),
    lambda m: m.tensor([True, False]),
    lambda m: m.tensor(3.0),
    lambda m: m.tensor(-0.5),
    lambda m: m.tensor([1.0, 2.0], dtype=m.float64),
    lambda m: m.tensor([1, 2], dtype=m.int32),
    lambda m: m.tensor([0.1, 0.25], dtype=m.float16),
    lambda m: m.tensor([1e-5, 1.0]),
    lambda m: m.tensor([1e10, 1.0]),
    lambda m: m.tensor([0.001, 10.0]),
    lambda m: m.tensor([float("nan"), float("inf"), 1.5]),
    lambda m: m.tensor([1.0, 2.0], requires_grad=True),
    lambda m: m.zeros(2, 0),
    lambda m: m.zeros(0),
    lambda m: m.arange(30.0),
    lambda m: m.arange(24.0).reshape(2, 3, 4) / 7,
]


@pytest.mark.parametrize("make", _REPR_CASES)
def test_repr_matches_torch(make):
    torch = pytest.importorskip("torch")
    assert repr(make(ember)) == repr(make(torch)).replace("torch.", "ember.")


def test_repr_shows_grad_fn_and_dtype():
    x = ember.ones(2, requires_grad=True)
    assert repr(x * 2) == "tensor([2., 2.], grad_fn=<MulBackward0>)"
    assert repr(ember.tensor([1.0], dtype=ember.bfloat16)) == ("tensor([1.], dtype=ember.bfloat16)")
    assert repr(ember.float32) == "ember.float32"


# ---- errors ------------------------------------------------------------------------------


def test_shape_errors_name_op_and_shapes():
    with pytest.raises(RuntimeError, match=r"add.*\[2, 3\].*\[2\]"):
        ember.ones(2, 3) + ember.ones(2)
    with pytest.raises(RuntimeError, match=r"matmul.*2x3 and 2x3"):
        ember.ones(2, 3) @ ember.ones(2, 3)
    with pytest.raises(RuntimeError, match=r"Sizes of tensors must match.*Expected size 3"):
        ember.cat([ember.ones(2, 3), ember.ones(2, 4)])


def test_device_errors():
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        ember.device("tpu")
    with pytest.raises(TypeError):
        ember.device(1.5)
    assert ember.device("cuda:1").index == 1 and str(ember.device("cuda:1")) == "cuda:1"
    assert ember.device("cpu") == "cpu" and ember.ones(1).device == ember.device("cpu")
    assert repr(ember.device("cuda", 0)) == "device(type='cuda', index=0)"


@pytest.mark.skipif(ember.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_raises_runtime_error():
    with pytest.raises(RuntimeError):
        ember.ones(2, device="cuda")
    with pytest.raises(RuntimeError):
        ember.ones(2).cuda()


def test_dtype_errors():
    with pytest.raises(RuntimeError, match="mean"):
        ember.tensor([1, 2]).mean()
    with pytest.raises(TypeError):
        ember.zeros(2, dtype="complex64")
    with pytest.raises(RuntimeError, match="type"):
        ember.ops.linear(ember.ones(2, 3), ember.ones(4, 3, dtype=ember.float64))


@pytest.mark.gpu
def test_cuda_round_trip():
    x = ember.arange(6.0).reshape(2, 3)
    y = x.cuda()
    assert y.is_cuda and y.device == ember.device("cuda:0")
    assert ember.equal(y.cpu(), x)
    z = (y * 2 + 1).sum(0)
    assert z.device.type == "cuda" and z.cpu().tolist() == [8.0, 12.0, 16.0]
    with pytest.raises(RuntimeError, match="same device"):
        x + y


@pytest.mark.parametrize(
    "fn,exc",
    [
        (lambda: ember.ones(1, 2).expand(3, 2).add_(1), RuntimeError),
        (lambda: ember.ones(1, 2).expand(3, 2).__setitem__(0, 1.0), RuntimeError),
        (lambda: ember.ones(2).__setitem__(slice(None), ember.ones(3)), RuntimeError),
        (lambda: ember.ones(2, 3).narrow(1, 2, 2), RuntimeError),
        (lambda: ember.ones(2, 3).gather(1, ember.tensor([[5]])), RuntimeError),
        (lambda: ember.zeros(2, 3).scatter(1, ember.tensor([[5]]), 1.0), RuntimeError),
        (lambda: ember.ones(2, 3).index_select(1, ember.tensor([7])), RuntimeError),
        (lambda: ember.ones(3)[ember.tensor([5])], IndexError),
        (lambda: ember.ones(2, 3).masked_select(ember.ones(3, 3).bool()), RuntimeError),
        (lambda: ember.cat([]), ValueError),
        (lambda: ember.einsum("ij,jk->ik", ember.ones(2, 3), ember.ones(4, 2)), RuntimeError),
        (lambda: ember.ones(2).pow(ember.ones(3)), RuntimeError),
        (lambda: ember.ones(2) < ember.ones(3), RuntimeError),
        (lambda: ember.ones(2, 3).sum(2), IndexError),
        (lambda: ember.ones(2, 3).view(4), RuntimeError),
        (lambda: ember.ones(2).item(), RuntimeError),
    ],
)
def test_error_types_match_torch(fn, exc):
    with pytest.raises(exc):
        fn()
