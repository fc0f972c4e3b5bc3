"""Reductions through the op harness: sum/mean/var/std/prod, max/min (values and indices),
amax/amin, argmax/argmin, logsumexp, norm, cumsum/cumprod, all/any/count_nonzero."""

import numpy as np
import pytest
from harness import OpCase, const, distinct, mask, op_tests, pos, uniform

import ember


def _lse(x, axis, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _vnorm(x, p, axis=None, keepdims=False):
    a = np.abs(x)
    if p == np.inf:
        return np.max(a, axis=axis, keepdims=keepdims)
    if p == -np.inf:
        return np.min(a, axis=axis, keepdims=keepdims)
    if p == 0:
        return np.sum(a != 0, axis=axis, keepdims=keepdims).astype(x.dtype)
    return np.sum(a**p, axis=axis, keepdims=keepdims) ** (1.0 / p)


def _argmax(x, axis=None, keepdims=False):
    return np.argmax(x, axis=axis, keepdims=keepdims).astype(np.int64)


def _argmin(x, axis=None, keepdims=False):
    return np.argmin(x, axis=axis, keepdims=keepdims).astype(np.int64)


_X = (2, 3, 4)
_D = distinct(2, 3, 4)
# ties along the last dim: amax/amin and the full max/min split their gradient evenly
_TIES = const([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, 0.5, 0.5], [-1.0, 2.0, -1.0, 2.0]], diff=True)

SUMS = [
    OpCase("sum_all", lambda m, x: x.sum(), np.sum, (_X,)),
    OpCase("sum_dim", lambda m, x: x.sum(1), lambda x: x.sum(1), (_X,)),
    OpCase(
        "sum_neg_keepdim",
        lambda m, x: m.sum(x, -1, keepdim=True),
        lambda x: x.sum(-1, keepdims=True),
        (_X,),
    ),
    OpCase("sum_dims", lambda m, x: x.sum((0, 2)), lambda x: x.sum((0, 2)), (_X,)),
    OpCase(
        "sum_dims_keepdim",
        lambda m, x: x.sum(dim=(-1, 0), keepdim=True),
        lambda x: x.sum((-1, 0), keepdims=True),
        (_X,),
    ),
    OpCase("sum_0dim", lambda m, x: x.sum(), np.sum, ((),)),
    OpCase("sum_0dim_dim0", lambda m, x: x.sum(0), lambda x: x, ((),)),
    OpCase("mean_0dim_neg_dim", lambda m, x: x.mean(-1, keepdim=True), lambda x: x, ((),)),
    OpCase("max_0dim_dim", lambda m, x: x.max(0), lambda x: (x, np.int64(0)), ((),)),
    OpCase("argmax_0dim_dim", lambda m, x: x.argmax(0), lambda x: np.int64(0), ((),), grad=False),
    OpCase("cumsum_0dim", lambda m, x: x.cumsum(0), lambda x: x, ((),)),
    OpCase("cumprod_0dim", lambda m, x: x.cumprod(-1), lambda x: x, ((),)),
    OpCase("mean_empty_dims", lambda m, x: x.mean(dim=[]), np.mean, (_X,)),
    OpCase("sum_empty_dims", lambda m, x: m.sum(x, dim=()), np.sum, (_X,)),
    OpCase("mean_all", lambda m, x: x.mean(), np.mean, (_X,)),
    OpCase("mean_dim", lambda m, x: m.mean(x, 0), lambda x: x.mean(0), (_X,)),
    OpCase(
        "mean_dims_keepdim",
        lambda m, x: x.mean((1, 2), keepdim=True),
        lambda x: x.mean((1, 2), keepdims=True),
        (_X,),
    ),
    OpCase("var_all", lambda m, x: x.var(), lambda x: np.var(x, ddof=1), (_X,)),
    OpCase("var_dim", lambda m, x: m.var(x, 1), lambda x: np.var(x, 1, ddof=1), (_X,)),
    OpCase("var_biased", lambda m, x: x.var(-1, unbiased=False), lambda x: np.var(x, -1), (_X,)),
    OpCase(
        "var_correction0_keepdim",
        lambda m, x: x.var((0, 1), correction=0, keepdim=True),
        lambda x: np.var(x, (0, 1), keepdims=True),
        (_X,),
    ),
    OpCase(
        "var_correction2",
        lambda m, x: x.var(2, correction=2),
        lambda x: np.var(x, 2, ddof=2),
        (_X,),
    ),
    OpCase("std_all", lambda m, x: x.std(), lambda x: np.std(x, ddof=1), (_X,)),
    OpCase(
        "std_dim",
        lambda m, x: m.std(x, 0, keepdim=True),
        lambda x: np.std(x, 0, ddof=1, keepdims=True),
        (_X,),
    ),
    OpCase("std_biased", lambda m, x: x.std(1, unbiased=False), lambda x: np.std(x, 1), (_X,)),
    OpCase(
        "var_mean",
        lambda m, x: m.var_mean(x, 1),
        lambda x: (np.var(x, 1, ddof=1), np.mean(x, 1)),
        (_X,),
    ),
    OpCase(
        "std_mean",
        lambda m, x: m.std_mean(x, -1, keepdim=True),
        lambda x: (np.std(x, -1, ddof=1, keepdims=True), np.mean(x, -1, keepdims=True)),
        (_X,),
    ),
    OpCase("prod_all", lambda m, x: x.prod(), np.prod, (uniform(2, 3, lo=0.5, hi=1.5),)),
    OpCase("prod_dim", lambda m, x: m.prod(x, 1), lambda x: np.prod(x, 1), (_X,)),
    OpCase(
        "prod_keepdim",
        lambda m, x: x.prod(-1, keepdim=True),
        lambda x: np.prod(x, -1, keepdims=True),
        (_X,),
    ),
    OpCase(
        "prod_one_zero",
        lambda m, x: x.prod(1),
        lambda x: np.prod(x, 1),
        (const([[1.5, 0.0, -2.0], [0.5, 2.0, 3.0]], diff=True),),
    ),
    OpCase(
        "prod_two_zeros",
        lambda m, x: x.prod(1),
        lambda x: np.prod(x, 1),
        (const([[0.0, 1.5, 0.0, 2.0], [1.0, -1.0, 2.0, 0.0]], diff=True),),
    ),
    OpCase(
        "prod_all_with_zero",
        lambda m, x: x.prod(),
        np.prod,
        (const([[1.5, 0.0], [-2.0, 3.0]], diff=True),),
    ),
    OpCase("cumsum", lambda m, x: x.cumsum(1), lambda x: np.cumsum(x, 1), (_X,)),
    OpCase("cumsum_neg", lambda m, x: m.cumsum(x, dim=-1), lambda x: np.cumsum(x, -1), (_X,)),
    OpCase("cumprod", lambda m, x: x.cumprod(2), lambda x: np.cumprod(x, 2), (_X,)),
    OpCase("cumprod_func", lambda m, x: m.cumprod(x, 0), lambda x: np.cumprod(x, 0), (pos(3, 2),)),
    OpCase(
        "cumprod_with_zero",
        lambda m, x: x.cumprod(1),
        lambda x: np.cumprod(x, 1),
        (const([[1.5, 0.0, -2.0, 3.0], [0.5, 2.0, 0.0, 0.0]], diff=True),),
    ),
    OpCase("logsumexp", lambda m, x: x.logsumexp(1), lambda x: _lse(x, 1), (_X,)),
    OpCase(
        "logsumexp_dims_keepdim",
        lambda m, x: m.logsumexp(x, (0, 2), keepdim=True),
        lambda x: _lse(x, (0, 2), True),
        (_X,),
    ),
    OpCase(
        "logsumexp_large",
        lambda m, x: x.logsumexp(-1),
        lambda x: _lse(x, -1),
        (uniform(2, 3, lo=500.0, hi=520.0),),
        low_precision=False,
    ),
]

EXTREMES = [
    OpCase("max_all", lambda m, x: x.max(), np.max, (_D,)),
    OpCase("min_all", lambda m, x: m.min(x), np.min, (_D,)),
    OpCase("max_dim", lambda m, x: x.max(1), lambda x: (x.max(1), _argmax(x, 1)), (_D,)),
    OpCase(
        "max_dim_keepdim",
        lambda m, x: m.max(x, -1, keepdim=True),
        lambda x: (x.max(-1, keepdims=True), _argmax(x, -1, True)),
        (_D,),
    ),
    OpCase("min_dim", lambda m, x: x.min(0), lambda x: (x.min(0), _argmin(x, 0)), (_D,)),
    OpCase(
        "min_dim_keepdim",
        lambda m, x: m.min(x, 2, True),
        lambda x: (x.min(2, keepdims=True), _argmin(x, 2, True)),
        (_D,),
    ),
    OpCase("max_dim_values", lambda m, x: x.max(dim=1).values, lambda x: x.max(1), (_D,)),
    OpCase(
        "min_dim_indices",
        lambda m, x: x.min(dim=1).indices,
        lambda x: _argmin(x, 1),
        (_D,),
        grad=False,
    ),
    OpCase("max_binary", lambda m, x, y: m.max(x, y), np.maximum, (_D, (3, 4))),
    OpCase("min_binary", lambda m, x, y: x.min(y), np.minimum, (_D, (4,))),
    OpCase("amax_all", lambda m, x: m.amax(x), np.max, (_D,)),
    OpCase("amax_dim", lambda m, x: x.amax(1), lambda x: x.max(1), (_D,)),
    OpCase(
        "amax_dims_keepdim",
        lambda m, x: x.amax((0, 2), keepdim=True),
        lambda x: x.max((0, 2), keepdims=True),
        (_D,),
    ),
    OpCase("amin_dim", lambda m, x: m.amin(x, -1), lambda x: x.min(-1), (_D,)),
    OpCase("amax_ties", lambda m, x: x.amax(1), lambda x: x.max(1), (_TIES,), grad=False),
    OpCase("amin_ties", lambda m, x: x.amin(-1), lambda x: x.min(-1), (_TIES,), grad=False),
    OpCase("max_all_ties", lambda m, x: x.max(), np.max, (_TIES,), grad=False),
    OpCase("argmax_all", lambda m, x: x.argmax(), _argmax, (_D,), grad=False),
    OpCase("argmax_dim", lambda m, x: m.argmax(x, 1), lambda x: _argmax(x, 1), (_D,), grad=False),
    OpCase(
        "argmax_keepdim",
        lambda m, x: x.argmax(-1, keepdim=True),
        lambda x: _argmax(x, -1, True),
        (_D,),
        grad=False,
    ),
    OpCase("argmin_all", lambda m, x: m.argmin(x), _argmin, (_D,), grad=False),
    OpCase("argmin_dim", lambda m, x: x.argmin(0), lambda x: _argmin(x, 0), (_D,), grad=False),
    OpCase(
        "argmax_ties_first", lambda m, x: x.argmax(1), lambda x: _argmax(x, 1), (_TIES,), grad=False
    ),
]

NORMS = [
    OpCase("norm_default", lambda m, x: x.norm(), lambda x: np.sqrt((x * x).sum()), (_X,)),
    OpCase("norm_fro", lambda m, x: m.norm(x, "fro"), lambda x: np.sqrt((x * x).sum()), ((3, 4),)),
    OpCase("norm_p1", lambda m, x: x.norm(1), lambda x: _vnorm(x, 1), (_D,)),
    OpCase("norm_p3_dim", lambda m, x: x.norm(3, dim=1), lambda x: _vnorm(x, 3, 1), (_D,)),
    OpCase(
        "norm_p2_dim_keepdim",
        lambda m, x: m.norm(x, 2, 2, True),
        lambda x: _vnorm(x, 2, 2, True),
        (_X,),
    ),
    OpCase("norm_inf", lambda m, x: x.norm(float("inf")), lambda x: _vnorm(x, np.inf), (_D,)),
    OpCase(
        "norm_neg_inf_dim",
        lambda m, x: x.norm(float("-inf"), dim=-1),
        lambda x: _vnorm(x, -np.inf, -1),
        (_D,),
    ),
    OpCase(
        "norm_p0",
        lambda m, x: x.norm(0),
        lambda x: _vnorm(x, 0),
        (const([[1.0, 0.0, 2.0], [0.0, 0.0, -3.0]], diff=True),),
        grad=False,
    ),
    OpCase(
        "norm_p_half", lambda m, x: x.norm(0.5, dim=0), lambda x: _vnorm(x, 0.5, 0), (pos(3, 2),)
    ),
]

BOOLS = [
    OpCase("all", lambda m, x: x.all(), np.all, (mask(3, 4, p=0.9),), grad=False),
    OpCase(
        "all_dim",
        lambda m, x: m.all(x, 1),
        lambda x: np.all(x, 1),
        (mask(3, 4, p=0.8),),
        grad=False,
    ),
    OpCase("any", lambda m, x: m.any(x), np.any, (mask(3, 4, p=0.1),), grad=False),
    OpCase(
        "any_dim_keepdim",
        lambda m, x: x.any(0, keepdim=True),
        lambda x: np.any(x, 0, keepdims=True),
        (mask(3, 4, p=0.3),),
        grad=False,
    ),
    OpCase(
        "all_float",
        lambda m, x: x.all(1),
        lambda x: np.all(x, 1),
        (const([[1.0, 0.0], [2.0, 3.0]]),),
        grad=False,
    ),
    OpCase(
        "count_nonzero",
        lambda m, x: m.count_nonzero(x),
        lambda x: np.int64(np.count_nonzero(x)),
        (const([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]),),
        grad=False,
    ),
    OpCase(
        "count_nonzero_dim",
        lambda m, x: x.count_nonzero(1),
        lambda x: np.count_nonzero(x, 1).astype(np.int64),
        (const([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]),),
        grad=False,
    ),
]

CASES = SUMS + EXTREMES + NORMS + BOOLS

test_forward, test_low_precision, test_gradcheck, test_gradgradcheck, test_cuda = op_tests(CASES)


# ---- semantics the table cannot express -------------------------------------------------


def test_amax_ties_share_gradient_evenly():
    x = ember.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    x.amax(1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_max_with_dim_sends_gradient_to_the_returned_index():
    x = ember.tensor([[1.0, 3.0, 3.0]], requires_grad=True)
    v, i = x.max(1)
    assert i.tolist() == [1]
    v.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.0, 1.0, 0.0]])


def test_max_full_reduction_ties_split_like_torch():
    torch = pytest.importorskip("torch")
    data = [[1.0, 3.0], [3.0, 0.0]]
    x = ember.tensor(data, requires_grad=True)
    t = torch.tensor(data, requires_grad=True)
    x.max().backward()
    t.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())


def test_norm_of_zero_vector_has_zero_gradient():
    x = ember.zeros(3, requires_grad=True)
    x.norm().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(3))


def test_sum_of_ints_is_int64_and_mean_of_ints_raises():
    x = ember.tensor([1, 2, 3], dtype=ember.int32)
    assert x.sum().dtype == ember.int64
    assert ember.tensor([True, True]).sum().item() == 2
    with pytest.raises(RuntimeError, match="mean"):
        x.mean()


def test_sum_dtype_argument():
    x = ember.tensor([1, 2, 3], dtype=ember.int8)
    assert x.sum(dtype=ember.float64).dtype == ember.float64
    assert ember.ones(2, 2).sum(0, dtype=ember.float64).dtype == ember.float64


def test_reduction_dim_out_of_range_raises_index_error():
    with pytest.raises(IndexError, match="Dimension out of range"):
        ember.ones(2, 3).sum(2)
    with pytest.raises(IndexError):
        ember.ones(2, 3).max(-3)


def test_max_of_empty_raises():
    with pytest.raises((RuntimeError, IndexError)):
        ember.ones(0).max()


def test_var_of_single_element_is_nan_like_torch():
    with np.errstate(all="ignore"):
        v = ember.ones(1).var()
    assert np.isnan(v.item())


def test_max_returns_named_tuple_fields():
    r = ember.tensor([[1.0, 5.0], [7.0, 2.0]]).max(1)
    assert r.values.tolist() == [5.0, 7.0] and r.indices.tolist() == [1, 0]
    r = ember.tensor([[1.0, 5.0], [7.0, 2.0]]).min(dim=0)
    assert r.values.tolist() == [1.0, 2.0] and r.indices.tolist() == [0, 1]


def test_cumsum_int_promotes_to_int64():
    assert ember.tensor([1, 2], dtype=ember.int32).cumsum(0).dtype == ember.int64
    assert ember.tensor([True, True]).cumsum(0).tolist() == [1, 2]


def test_prod_int_is_int64():
    out = ember.tensor([2, 3], dtype=ember.int32).prod()
    assert out.dtype == ember.int64 and out.item() == 6
