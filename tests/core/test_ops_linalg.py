"""Matrix products through the op harness: matmul (every 1-D/2-D/batched combination and batch
broadcasting), mm/bmm/mv/dot/outer, einsum (incl. '...'), tensordot and the fused linear."""

import numpy as np
import pytest
from harness import OpCase, op_tests

import ember


def _mm(name, sa, sb, op=lambda m, a, b: a @ b, **kw):
    return OpCase(name, op, np.matmul, (sa, sb), **kw)


def _es(name, eq, *shapes, **kw):
    return OpCase(
        f"einsum_{name}",
        lambda m, *xs: m.einsum(eq, *xs),
        lambda *xs: np.einsum(eq, *xs),
        shapes,
        **kw,
    )


MATMUL = [
    _mm("matmul_1d_1d", (4,), (4,)),
    _mm("matmul_1d_2d", (3,), (3, 4)),
    _mm("matmul_2d_1d", (3, 4), (4,)),
    _mm("matmul_2d_2d", (2, 3), (3, 4)),
    _mm("matmul_3d_2d", (2, 3, 4), (4, 2)),
    _mm("matmul_2d_3d", (3, 4), (2, 4, 2)),
    _mm("matmul_1d_3d", (3,), (2, 3, 4)),
    _mm("matmul_3d_1d", (2, 3, 4), (4,)),
    _mm("matmul_bcast_batch", (2, 1, 3, 4), (3, 4, 2)),
    _mm("matmul_bcast_batch_both", (2, 1, 2, 3), (1, 3, 3, 2)),
    _mm("matmul_func", (2, 3), (3, 2), lambda m, a, b: m.matmul(a, b)),
    _mm("matmul_method", (2, 3, 4), (2, 4, 3), lambda m, a, b: a.matmul(b)),
    _mm("mm", (2, 3), (3, 4), lambda m, a, b: m.mm(a, b)),
    _mm("mm_method", (2, 3), (3, 4), lambda m, a, b: a.mm(b)),
    _mm("bmm", (2, 3, 4), (2, 4, 5), lambda m, a, b: m.bmm(a, b)),
    _mm("bmm_method", (3, 2, 2), (3, 2, 1), lambda m, a, b: a.bmm(b)),
    _mm("mv", (3, 4), (4,), lambda m, a, b: m.mv(a, b)),
    _mm("dot", (5,), (5,), lambda m, a, b: m.dot(a, b)),
    OpCase("outer", lambda m, a, b: m.outer(a, b), np.outer, ((3,), (4,))),
    OpCase("outer_method", lambda m, a, b: a.outer(b), np.outer, ((2,), (3,))),
    OpCase("rmatmul_self", lambda m, a: a @ a.mT, lambda a: a @ a.swapaxes(-1, -2), ((2, 3, 4),)),
]

EINSUM = [
    _es("mm", "ij,jk->ik", (2, 3), (3, 4)),
    _es("bmm", "bij,bjk->bik", (2, 2, 3), (2, 3, 2)),
    _es("dot", "i,i->", (4,), (4,)),
    _es("transpose", "ij->ji", (2, 3)),
    _es("sum_all", "ij->", (2, 3)),
    _es("sum_axis", "ijk->ik", (2, 3, 4)),
    _es("outer", "bi,bj->bij", (2, 3), (2, 4)),
    _es("implicit", "ij,jk", (2, 3), (3, 4)),
    _es("implicit_order", "ba,ca", (2, 3), (4, 3)),
    _es("ellipsis", "...ij,...jk->...ik", (2, 2, 3), (2, 3, 2)),
    _es("ellipsis_bcast", "...ij,jk->...ik", (2, 1, 2, 3), (3, 4)),
    _es("ellipsis_front", "i...->...i", (3, 2, 2)),
    _es("three_operands", "ij,jk,kl->il", (2, 3), (3, 4), (4, 2)),
    _es("bilinear", "bi,oij,bj->bo", (2, 3), (4, 3, 2), (2, 2)),
    _es("attention", "bhqd,bhkd->bhqk", (1, 2, 3, 4), (1, 2, 2, 4)),
    _es("spaces", "i j , j k -> i k", (2, 3), (3, 2)),
    _es("diag", "ii->i", (3, 3)),
    _es("trace", "ii->", (3, 3)),
    _es("batch_diag", "bii->bi", (2, 3, 3)),
    _es("diag_times", "ii,i->i", (3, 3), (3,)),
    OpCase(
        "einsum_list_operands",
        lambda m, a, b: m.einsum("ij,jk->ik", [a, b]),
        lambda a, b: a @ b,
        ((2, 3), (3, 2)),
    ),
]

OTHER = [
    OpCase(
        "tensordot_int",
        lambda m, a, b: m.tensordot(a, b, 2),
        lambda a, b: np.tensordot(a, b, 2),
        ((2, 3, 4), (3, 4, 2)),
    ),
    OpCase(
        "tensordot_default",
        lambda m, a, b: m.tensordot(a, b),
        lambda a, b: np.tensordot(a, b),
        ((2, 3, 4), (3, 4, 5)),
    ),
    OpCase(
        "tensordot_zero",
        lambda m, a, b: m.tensordot(a, b, 0),
        lambda a, b: np.tensordot(a, b, 0),
        ((2, 3), (2,)),
    ),
    OpCase(
        "tensordot_lists",
        lambda m, a, b: m.tensordot(a, b, dims=([1, 0], [0, 2])),
        lambda a, b: np.tensordot(a, b, ([1, 0], [0, 2])),
        ((2, 3, 4), (3, 5, 2)),
    ),
    OpCase(
        "linear",
        lambda m, x, w, b: m.F.linear(x, w, b),
        lambda x, w, b: x @ w.T + b,
        ((2, 3), (4, 3), (4,)),
    ),
    OpCase(
        "linear_no_bias", lambda m, x, w: m.F.linear(x, w), lambda x, w: x @ w.T, ((2, 3), (4, 3))
    ),
    OpCase(
        "linear_3d",
        lambda m, x, w, b: m.F.linear(x, w, b),
        lambda x, w, b: x @ w.T + b,
        ((2, 3, 3), (2, 3), (2,)),
    ),
    OpCase(
        "linear_1d_input",
        lambda m, x, w, b: m.F.linear(x, w, b),
        lambda x, w, b: w @ x + b,
        ((3,), (2, 3), (2,)),
    ),
]

CASES = MATMUL + EINSUM + OTHER

test_forward, test_low_precision, test_gradcheck, test_gradgradcheck, test_cuda = op_tests(CASES)


# ---- errors and semantics ---------------------------------------------------------------


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(RuntimeError, match=r"2x3 and 4x5"):
        ember.ones(2, 3) @ ember.ones(4, 5)


def test_matmul_0d_raises():
    with pytest.raises(RuntimeError, match="at least 1D"):
        ember.matmul(ember.tensor(2.0), ember.ones(2))


def test_bmm_requires_3d():
    with pytest.raises(RuntimeError, match="bmm"):
        ember.bmm(ember.ones(2, 3), ember.ones(3, 2))


def test_mm_requires_2d():
    with pytest.raises(RuntimeError, match="mm"):
        ember.mm(ember.ones(2, 3, 4), ember.ones(4, 2))


def test_dot_requires_1d():
    with pytest.raises(RuntimeError, match="1D"):
        ember.dot(ember.ones(2, 2), ember.ones(2))


def test_matmul_int_stays_int():
    a = ember.tensor([[1, 2], [3, 4]])
    assert (a @ a).dtype == ember.int64
    assert (a @ a).tolist() == [[7, 10], [15, 22]]


def test_einsum_operand_count_mismatch_raises():
    with pytest.raises(RuntimeError, match="einsum"):
        ember.einsum("ij,jk->ik", ember.ones(2, 2))


@pytest.mark.parametrize("eq", ["ii->i", "ii->", "iij->j"])
def test_einsum_repeated_subscript_gradient(eq):
    shape = (2, 2, 3) if "j" in eq else (3, 3)
    x = ember.randn(*shape, dtype=ember.float64, requires_grad=True)
    assert ember.autograd.gradcheck(lambda t: ember.einsum(eq, t), (x,))
