"""Indexing through the op harness: basic, advanced and boolean getitem, setitem (functional
form), gather/scatter/scatter_add, index_select, masked ops, take_along_dim, topk/sort/argsort,
unique and nonzero."""

import numpy as np
import pytest
from harness import Arg, OpCase, const, distinct, index, mask, op_tests, perm_index

import ember

_X = (3, 4, 5)


def _col_perm(rows, n, cols):
    """(rows, cols) int64 indices below n, distinct within each column (scatter without
    duplicate targets, so the result is deterministic)."""
    return Arg(
        lambda r: np.stack([r.permutation(n)[:rows] for _ in range(cols)], 1).astype(np.int64),
        diff=False,
    )


def _set(key):
    def fn(m, x, v):
        y = x.clone()
        y[key] = v
        return y

    return fn


def _np_set(key):
    def ref(x, v):
        y = x.copy()
        y[key] = v
        return y

    return ref


def _set_t(m, x, i, v):
    y = x.clone()
    y[i] = v
    return y


def _np_set_t(x, i, v):
    y = x.copy()
    y[i] = v
    return y


def _gather(x, dim, idx):
    return np.take_along_axis(x, idx, dim)


def _scatter(x, dim, idx, src, add=False):
    out = x.copy()
    for pos in np.ndindex(*idx.shape):
        tgt = list(pos)
        tgt[dim] = idx[pos]
        if add:
            out[tuple(tgt)] += src[pos]
        else:
            out[tuple(tgt)] = src[pos] if np.ndim(src) else src
    return out


def _topk(x, k, dim=-1, largest=True):
    order = np.argsort(-x if largest else x, axis=dim, kind="stable")
    idx = np.take(order, range(k), axis=dim).astype(np.int64)
    return np.take_along_axis(x, idx, dim), idx


def _sort(x, dim=-1, descending=False):
    idx = np.argsort(-x if descending else x, axis=dim, kind="stable").astype(np.int64)
    return np.take_along_axis(x, idx, dim), idx


GETITEM = [
    OpCase("get_int", lambda m, x: x[1], lambda x: x[1], (_X,)),
    OpCase("get_neg_int", lambda m, x: x[-1, -2], lambda x: x[-1, -2], (_X,)),
    OpCase("get_scalar", lambda m, x: x[0, 1, 2], lambda x: x[0, 1, 2], (_X,)),
    OpCase("get_slice", lambda m, x: x[1:3], lambda x: x[1:3], (_X,)),
    OpCase("get_step", lambda m, x: x[:, ::2, 1::3], lambda x: x[:, ::2, 1::3], (_X,)),
    OpCase("get_ellipsis", lambda m, x: x[..., 1], lambda x: x[..., 1], (_X,)),
    OpCase("get_none", lambda m, x: x[None, 1, :, None], lambda x: x[None, 1, :, None], (_X,)),
    OpCase("get_neg_slice", lambda m, x: x[-2:, :-1], lambda x: x[-2:, :-1], (_X,)),
    OpCase("get_tensor_idx", lambda m, x, i: x[i], lambda x, i: x[i], (_X, index((4,), 3))),
    OpCase(
        "get_tensor_idx_dups",
        lambda m, x, i: x[i],
        lambda x, i: x[i],
        ((4, 2), const([0, 2, 0, 0, 3])),
    ),
    OpCase("get_list_idx", lambda m, x: x[[0, 2]], lambda x: x[[0, 2]], (_X,)),
    OpCase("get_2d_idx", lambda m, x, i: x[i], lambda x, i: x[i], (_X, index((2, 3), 3))),
    OpCase("get_idx_dim1", lambda m, x, i: x[:, i], lambda x, i: x[:, i], (_X, index((3,), 4))),
    OpCase(
        "get_two_idx",
        lambda m, x, i, j: x[i, j],
        lambda x, i, j: x[i, j],
        (_X, index((4,), 3), index((4,), 4)),
    ),
    OpCase(
        "get_two_idx_bcast",
        lambda m, x, i, j: x[i, :, j],
        lambda x, i, j: x[i, :, j],
        (_X, index((2, 1), 3), index((3,), 5)),
    ),
    OpCase("get_slice_and_idx", lambda m, x: x[1:, [0, 3]], lambda x: x[1:, [0, 3]], (_X,)),
    OpCase("get_int_and_idx", lambda m, x, i: x[1, i], lambda x, i: x[1, i], (_X, index((2,), 4))),
    OpCase("get_mask", lambda m, x, k: x[k], lambda x, k: x[k], (_X, mask(3, 4, 5))),
    OpCase("get_mask_leading", lambda m, x, k: x[k], lambda x, k: x[k], (_X, mask(3, 4))),
    OpCase("get_mask_dim1", lambda m, x, k: x[:, k], lambda x, k: x[:, k], (_X, mask(4))),
    OpCase("get_cmp_mask", lambda m, x: x[x > 0], lambda x: x[x > 0], (_X,)),
    # PyTorch applies ints before advanced indices (NumPy would move the list's dim first)
    OpCase("get_int_slice_list", lambda m, x: x[0, :, [1, 2]], lambda x: x[0][:, [1, 2]], (_X,)),
    OpCase("get_list_slice_int", lambda m, x: x[[0, 2], :, 1], lambda x: x[:, :, 1][[0, 2]], (_X,)),
    OpCase(
        "get_int_none_tensor",
        lambda m, x, i: x[1, None, :, i],
        lambda x, i: x[1][None][:, :, i],
        (_X, index((2, 2), 5)),
    ),
    OpCase("get_empty_list", lambda m, x: x[[]], lambda x: x[np.zeros(0, np.int64)], (_X,)),
]

SETITEM = [
    OpCase("set_int", _set(1), _np_set(1), (_X, (4, 5))),
    OpCase(
        "set_slice_bcast",
        _set((slice(None), slice(1, 3))),
        _np_set((slice(None), slice(1, 3))),
        (_X, (5,)),
    ),
    OpCase(
        "set_scalar_value",
        lambda m, x: _set((0, 1))(m, x, 2.5),
        lambda x: _np_set((0, 1))(x, 2.5),
        (_X,),
    ),
    OpCase("set_ellipsis", _set((Ellipsis, 0)), _np_set((Ellipsis, 0)), (_X, (3, 4))),
    OpCase("set_tensor_idx", _set_t, _np_set_t, (_X, perm_index(3, 2), (2, 4, 5))),
    OpCase("set_tensor_idx_bcast", _set_t, _np_set_t, (_X, perm_index(3, 2), (5,))),
    OpCase(
        "set_mask_scalar",
        lambda m, x, k: _set_t(m, x, k, 0.0),
        lambda x, k: _np_set_t(x, k, 0.0),
        (_X, mask(3, 4, 5)),
    ),
    OpCase("set_mask_leading_bcast", _set_t, _np_set_t, (_X, mask(3, 4), (5,))),
    OpCase(
        "set_mask_values",
        lambda m, x, v: _set_t(m, x, x > 0, v[x > 0]),
        lambda x, v: _np_set_t(x, x > 0, v[x > 0]),
        ((3, 4), (3, 4)),
    ),
    OpCase(
        "set_two_idx",
        lambda m, x, v: _set_t(m, x, ([0, 2], [1, 3]), v),
        lambda x, v: _np_set_t(x, ([0, 2], [1, 3]), v),
        (_X, (2, 5)),
    ),
]

SELECT = [
    OpCase(
        "gather_dim0",
        lambda m, x, i: x.gather(0, i),
        lambda x, i: _gather(x, 0, i),
        ((4, 3), index((2, 3), 4)),
    ),
    OpCase(
        "gather_dim1",
        lambda m, x, i: m.gather(x, 1, i),
        lambda x, i: _gather(x, 1, i),
        ((3, 4), index((3, 5), 4)),
    ),
    OpCase(
        "gather_neg_3d",
        lambda m, x, i: x.gather(-1, i),
        lambda x, i: _gather(x, -1, i),
        (_X, index((3, 4, 2), 5)),
    ),
    OpCase(
        "gather_smaller_index",
        lambda m, x, i: x.gather(1, i),
        lambda x, i: _gather(x[:2], 1, i),
        ((3, 4), index((2, 2), 4)),
    ),
    OpCase(
        "scatter_src",
        lambda m, x, i, s: x.scatter(0, i, s),
        lambda x, i, s: _scatter(x, 0, i, s),
        ((4, 3), _col_perm(2, 4, 3), (2, 3)),
    ),
    OpCase(
        "scatter_dim1",
        lambda m, x, i, s: m.scatter(x, 1, i, s),
        lambda x, i, s: _scatter(x, 1, i.T.copy().T, s),
        ((3, 4), Arg(lambda r: np.stack([r.permutation(4)[:2] for _ in range(3)]), False), (3, 2)),
    ),
    OpCase(
        "scatter_value",
        lambda m, x, i: x.scatter(0, i, 1.5),
        lambda x, i: _scatter(x, 0, i, 1.5),
        ((4, 3), _col_perm(2, 4, 3)),
    ),
    OpCase(
        "scatter_add",
        lambda m, x, i, s: x.scatter_add(0, i, s),
        lambda x, i, s: _scatter(x, 0, i, s, add=True),
        ((4, 3), index((5, 3), 4), (5, 3)),
    ),
    OpCase(
        "scatter_add_func",
        lambda m, x, i, s: m.scatter_add(x, 1, i, s),
        lambda x, i, s: _scatter(x, 1, i, s, add=True),
        ((2, 4), index((2, 6), 4), (2, 6)),
    ),
    OpCase(
        "index_select",
        lambda m, x, i: x.index_select(1, i),
        lambda x, i: np.take(x, i, 1),
        (_X, index((6,), 4)),
    ),
    OpCase(
        "index_select_func",
        lambda m, x, i: m.index_select(x, 0, i),
        lambda x, i: np.take(x, i, 0),
        (_X, index((2,), 3)),
    ),
    OpCase(
        "masked_fill",
        lambda m, x, k: x.masked_fill(k, -1.0),
        lambda x, k: np.where(k, -1.0, x),
        (_X, mask(3, 4, 5)),
    ),
    OpCase(
        "masked_fill_bcast",
        lambda m, x, k: m.masked_fill(x, k, 2.0),
        lambda x, k: np.where(k, 2.0, x),
        (_X, mask(4, 1)),
    ),
    OpCase(
        "masked_fill_tensor_value",
        lambda m, x, k, v: x.masked_fill(k, v),
        lambda x, k, v: np.where(k, v, x),
        (_X, mask(5), ()),
    ),
    OpCase(
        "masked_select", lambda m, x, k: x.masked_select(k), lambda x, k: x[k], (_X, mask(3, 4, 5))
    ),
    OpCase(
        "masked_select_bcast",
        lambda m, x, k: m.masked_select(x, k),
        lambda x, k: np.broadcast_to(x, (3, 4, 5))[np.broadcast_to(k, (3, 4, 5))],
        ((4, 5), mask(3, 1, 5)),
    ),
    OpCase(
        "take_along_dim",
        lambda m, x, i: m.take_along_dim(x, i, 1),
        lambda x, i: np.take_along_axis(x, i, 1),
        ((3, 4), index((3, 2), 4)),
    ),
    OpCase(
        "take_along_dim_bcast",
        lambda m, x, i: x.take_along_dim(i, dim=-1),
        lambda x, i: np.take_along_axis(x, np.broadcast_to(i, (3, 4, 2)), -1),
        (_X[:2] + (5,), index((1, 4, 2), 5)),
    ),
    OpCase(
        "take_along_dim_flat",
        lambda m, x, i: m.take_along_dim(x, i),
        lambda x, i: x.reshape(-1)[i],
        ((3, 4), index((5,), 12)),
    ),
]

_D = distinct(3, 5)
ORDER = [
    OpCase("topk", lambda m, x: x.topk(2), lambda x: _topk(x, 2), (_D,)),
    OpCase(
        "topk_smallest_dim0",
        lambda m, x: m.topk(x, 2, dim=0, largest=False),
        lambda x: _topk(x, 2, 0, largest=False),
        (_D,),
    ),
    OpCase("topk_values", lambda m, x: x.topk(3, 1).values, lambda x: _topk(x, 3, 1)[0], (_D,)),
    OpCase("sort", lambda m, x: x.sort(), lambda x: _sort(x), (_D,)),
    OpCase(
        "sort_desc_dim0",
        lambda m, x: m.sort(x, 0, descending=True),
        lambda x: _sort(x, 0, True),
        (_D,),
    ),
    OpCase(
        "sort_stable_ties",
        lambda m, x: m.sort(x, stable=True),
        lambda x: _sort(x),
        (const([[3.0, 1.0, 3.0, 1.0, 2.0]], diff=True),),
        grad=False,
    ),
    OpCase("argsort", lambda m, x: x.argsort(), lambda x: _sort(x)[1], (_D,), grad=False),
    OpCase(
        "argsort_desc",
        lambda m, x: m.argsort(x, dim=0, descending=True),
        lambda x: _sort(x, 0, True)[1],
        (_D,),
        grad=False,
    ),
    OpCase(
        "unique",
        lambda m, x: m.unique(x),
        np.unique,
        (const([[3.0, 1.0, 2.0], [1.0, 3.0, 5.0]], diff=True),),
        grad=False,
    ),
    OpCase(
        "unique_inverse_counts",
        lambda m, x: x.unique(return_inverse=True, return_counts=True),
        lambda x: tuple(np.unique(x, return_inverse=True, return_counts=True)),
        (const([[3.0, 1.0, 2.0], [1.0, 3.0, 5.0]], diff=True),),
        grad=False,
    ),
    OpCase(
        "unique_int", lambda m, x: m.unique(x), np.unique, (const([4, 1, 4, 0, 1]),), grad=False
    ),
    OpCase(
        "nonzero",
        lambda m, x: x.nonzero(),
        lambda x: np.argwhere(x).astype(np.int64),
        (const([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]], diff=True),),
        grad=False,
    ),
    OpCase(
        "nonzero_tuple",
        lambda m, x: m.nonzero(x, as_tuple=True),
        lambda x: tuple(i.astype(np.int64) for i in np.nonzero(x)),
        (const([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]], diff=True),),
        grad=False,
    ),
    OpCase(
        "nonzero_bool",
        lambda m, x: m.nonzero(x),
        lambda x: np.argwhere(x).astype(np.int64),
        (mask(2, 3, 2),),
        grad=False,
    ),
    OpCase(
        "argwhere",
        lambda m, x: m.argwhere(x),
        lambda x: np.argwhere(x).astype(np.int64),
        (mask(4, 3),),
        grad=False,
    ),
    OpCase(
        "where_one_arg",
        lambda m, x: m.where(x),
        lambda x: tuple(i.astype(np.int64) for i in np.nonzero(x)),
        (mask(3, 4),),
        grad=False,
    ),
]

CASES = GETITEM + SETITEM + SELECT + ORDER

test_forward, test_low_precision, test_gradcheck, test_gradgradcheck, test_cuda = op_tests(CASES)


# ---- semantics the table cannot express -------------------------------------------------


def test_setitem_in_place_bumps_version_and_shares_views():
    x = ember.zeros(3, 4)
    v = x[1]
    x[1] = 5.0
    assert v.tolist() == [5.0] * 4
    assert x._version == 1
    x[x > 1] = ember.tensor(2.0)
    assert x.sum().item() == 8.0


def test_setitem_bool_mask_with_tensor_values():
    x = ember.arange(6.0).reshape(2, 3)
    x[x > 2] = ember.tensor([10.0, 20.0, 30.0])
    assert x.tolist() == [[0.0, 1.0, 2.0], [10.0, 20.0, 30.0]]


def test_setitem_broadcast_value():
    x = ember.zeros(2, 3)
    x[:] = ember.tensor([1.0, 2.0, 3.0])
    assert x.tolist() == [[1.0, 2.0, 3.0]] * 2


def test_setitem_records_gradient_for_value():
    x = ember.zeros(2, 3)
    v = ember.ones(3, requires_grad=True)
    x[0] = v * 2
    assert x.requires_grad
    x.sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), [2.0, 2.0, 2.0])


def test_setitem_on_leaf_requiring_grad_raises():
    x = ember.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x[0] = 1.0


def test_advanced_index_duplicates_accumulate_gradient():
    x = ember.zeros(3, requires_grad=True)
    x[ember.tensor([0, 0, 2, 0])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


def test_index_out_of_range_raises_index_error():
    with pytest.raises(IndexError):
        ember.zeros(3)[3]
    with pytest.raises(IndexError):
        ember.zeros(3)[ember.tensor([0, 5])]


def test_float_index_raises():
    with pytest.raises(IndexError, match="tensors used as indices"):
        ember.zeros(3)[ember.tensor([0.0])]


def test_gather_index_rank_mismatch_raises():
    with pytest.raises(RuntimeError, match="gather"):
        ember.zeros(3, 4).gather(1, ember.tensor([0, 1]))


def test_topk_k_out_of_range_raises():
    with pytest.raises(RuntimeError, match="topk"):
        ember.zeros(3).topk(4)


def test_masked_fill_inplace_and_mask_dtype():
    x = ember.zeros(2, 2)
    x.masked_fill_(ember.tensor([[True, False], [False, True]]), 1.0)
    assert x.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(RuntimeError, match="mask"):
        x.masked_fill(ember.tensor([[1, 0], [0, 1]]), 1.0)


def test_scatter_inplace_methods():
    x = ember.zeros(2, 3)
    x.scatter_(1, ember.tensor([[0], [2]]), ember.ones(2, 1))
    assert x.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    x.scatter_add_(1, ember.tensor([[0, 0]]), ember.ones(1, 2))
    assert x.tolist() == [[3.0, 0.0, 0.0], [0.0, 0.0, 1.0]]


def test_sort_and_topk_named_fields():
    r = ember.tensor([3.0, 1.0, 2.0]).sort()
    assert r.values.tolist() == [1.0, 2.0, 3.0] and r.indices.tolist() == [1, 2, 0]
    r = ember.tensor([3.0, 1.0, 2.0]).topk(1)
    assert r.values.tolist() == [3.0] and r.indices.tolist() == [0]


def test_nonzero_of_all_zero_has_shape_0_by_ndim():
    assert ember.zeros(2, 3).nonzero().shape == (0, 2)
    assert ember.zeros(4).nonzero().shape == (0, 1)
