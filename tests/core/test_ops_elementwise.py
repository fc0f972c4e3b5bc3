"""Elementwise ops through the op harness: arithmetic with broadcasting and scalars, unary math,
clamp/where/maximum/minimum, comparisons and logical ops."""

import math

import numpy as np
import pytest
from harness import OpCase, const, distinct, index, mask, op_tests, pos, randn, uniform

import ember

_erf = np.vectorize(math.erf)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _unary(name, method, ref, arg=None, **kw):
    arg = arg or randn(3, 4)
    return OpCase(name, lambda m, x: getattr(x, method)(), ref, (arg,), **kw)


def _func(name, fname, ref, arg=None, **kw):
    arg = arg or randn(3, 4)
    return OpCase(name, lambda m, x: getattr(m, fname)(x), ref, (arg,), **kw)


ROUNDABLE = const(
    [[-2.3, -1.6, -0.4, 0.2], [0.7, 1.4, 2.6, 3.2], [-3.7, 4.1, -0.8, 1.9]], diff=True
)

UNARY = [
    _unary("neg", "neg", np.negative),
    _unary("abs", "abs", np.abs, distinct(3, 4)),
    _unary("exp", "exp", np.exp),
    _unary("log", "log", np.log, pos(3, 4)),
    _unary("log1p", "log1p", np.log1p, pos(3, 4, lo=-0.5, hi=2.0)),
    _unary("expm1", "expm1", np.expm1),
    _unary("sqrt", "sqrt", np.sqrt, pos(3, 4)),
    _unary("rsqrt", "rsqrt", lambda x: 1 / np.sqrt(x), pos(3, 4)),
    _unary("sin", "sin", np.sin),
    _unary("cos", "cos", np.cos),
    _unary("tanh", "tanh", np.tanh),
    _unary("sigmoid", "sigmoid", _sigmoid),
    _unary("sigmoid_large", "sigmoid", _sigmoid, uniform(2, 5, lo=-40, hi=40), tol=10),
    _unary("relu", "relu", lambda x: np.maximum(x, 0), distinct(3, 4)),
    _unary("erf", "erf", _erf),
    _unary("sign", "sign", np.sign, distinct(3, 4)),
    _unary("floor", "floor", np.floor, ROUNDABLE),
    _unary("ceil", "ceil", np.ceil, ROUNDABLE),
    _unary("round", "round", np.round, ROUNDABLE),
    _unary("trunc", "trunc", np.trunc, ROUNDABLE),
    _unary("square", "square", np.square),
    _unary("reciprocal", "reciprocal", lambda x: 1 / x, distinct(3, 4, gap=0.5)),
    _func("f_exp", "exp", np.exp),
    _func("f_log", "log", np.log, pos(2, 3)),
    _func("f_sqrt", "sqrt", np.sqrt, pos(2, 3)),
    _func("f_tanh", "tanh", np.tanh),
    _func("f_sigmoid", "sigmoid", _sigmoid),
    _func("f_relu", "relu", lambda x: np.maximum(x, 0), distinct(2, 3)),
    _func("f_abs", "abs", np.abs, distinct(2, 3)),
    _func("f_neg", "neg", np.negative),
    _func("f_sin", "sin", np.sin),
    _func("f_cos", "cos", np.cos),
    _func("f_log1p", "log1p", np.log1p, pos(2, 3)),
    _func("f_expm1", "expm1", np.expm1),
    _func("f_rsqrt", "rsqrt", lambda x: 1 / np.sqrt(x), pos(2, 3)),
    _func("f_sign", "sign", np.sign, distinct(2, 3)),
    _func("f_floor", "floor", np.floor, ROUNDABLE),
    _func("f_ceil", "ceil", np.ceil, ROUNDABLE),
    _func("f_round", "round", np.round, ROUNDABLE),
    _func("f_trunc", "trunc", np.trunc, ROUNDABLE),
    _func("f_square", "square", np.square),
    _func("f_reciprocal", "reciprocal", lambda x: 1 / x, distinct(2, 3, gap=0.5)),
    _func("f_erf", "erf", _erf),
    OpCase(
        "round_half_even",
        lambda m, x: m.round(x),
        np.round,
        (const([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], diff=True),),
        grad=False,
    ),
    OpCase(
        "round_decimals",
        lambda m, x: m.round(x, decimals=2),
        lambda x: np.round(x, 2),
        (const([1.23456, -2.34567, 0.00499, 10.987], diff=True),),
        grad=False,
        low_precision=False,
    ),
]

BINARY = [
    OpCase("add", lambda m, x, y: x + y, np.add, ((3, 4), (3, 4))),
    OpCase("add_bcast_row", lambda m, x, y: x + y, np.add, ((3, 4), (4,))),
    OpCase("add_bcast_both", lambda m, x, y: x + y, np.add, ((2, 1, 4), (3, 1))),
    OpCase("add_0dim", lambda m, x, y: x + y, np.add, ((3, 4), ())),
    OpCase(
        "add_alpha",
        lambda m, x, y: m.add(x, y, alpha=2.5),
        lambda x, y: x + 2.5 * y,
        ((3, 4), (4,)),
    ),
    OpCase("add_scalar", lambda m, x: x + 2.5, lambda x: x + 2.5, ((3, 4),)),
    OpCase("radd_scalar", lambda m, x: 3 + x, lambda x: 3 + x, ((3, 4),)),
    OpCase("sub", lambda m, x, y: x - y, np.subtract, ((3, 4), (3, 1))),
    OpCase(
        "sub_alpha",
        lambda m, x, y: m.sub(x, y, alpha=0.5),
        lambda x, y: x - 0.5 * y,
        ((3, 4), (3, 4)),
    ),
    OpCase("rsub_scalar", lambda m, x: 2.5 - x, lambda x: 2.5 - x, ((3, 4),)),
    OpCase("sub_scalar_alpha", lambda m, x: x.sub(1, alpha=2), lambda x: x - 2, ((3, 4),)),
    OpCase("add_scalar_alpha", lambda m, x: m.add(x, 0.5, alpha=3), lambda x: x + 1.5, ((3, 4),)),
    OpCase("mul", lambda m, x, y: x * y, np.multiply, ((3, 4), (3, 4))),
    OpCase("mul_bcast", lambda m, x, y: m.mul(x, y), np.multiply, ((2, 3, 1), (1, 4))),
    OpCase("mul_self", lambda m, x: x * x, lambda x: x * x, ((3, 4),)),
    OpCase("mul_scalar", lambda m, x: x * -1.5, lambda x: x * -1.5, ((3, 4),)),
    OpCase("div", lambda m, x, y: x / y, np.divide, ((3, 4), pos(3, 4))),
    OpCase("div_bcast", lambda m, x, y: m.div(x, y), np.divide, ((2, 3), pos(3))),
    OpCase("div_0dim", lambda m, x, y: x / y, np.divide, ((2, 3), pos())),
    OpCase("rdiv_scalar", lambda m, x: 3.0 / x, lambda x: 3.0 / x, (pos(3, 4),)),
    OpCase("div_scalar", lambda m, x: x / 4, lambda x: x / 4, ((3, 4),)),
    OpCase(
        "div_floor",
        lambda m, x, y: m.div(x, y, rounding_mode="floor"),
        lambda x, y: np.floor(x / y),
        (uniform(3, 4, lo=-5, hi=5), pos(3, 4)),
        grad=False,
    ),
    OpCase(
        "div_trunc",
        lambda m, x, y: m.div(x, y, rounding_mode="trunc"),
        lambda x, y: np.trunc(x / y),
        (uniform(3, 4, lo=-5, hi=5), pos(3, 4)),
        grad=False,
    ),
    OpCase(
        "floordiv_op",
        lambda m, x, y: x // y,
        lambda x, y: np.floor(x / y),
        (uniform(3, 4, lo=-5, hi=5), pos(3, 4)),
        grad=False,
    ),
    OpCase(
        "remainder_op",
        lambda m, x, y: x % y,
        np.mod,
        (const([[-3.7, 2.2, 5.1], [-0.3, 4.6, -2.9]], diff=True), const([1.5, 2.0, -1.25], True)),
        low_precision=False,
    ),
    OpCase("pow_int2", lambda m, x: x**2, lambda x: x**2, ((3, 4),)),
    OpCase("pow_int3", lambda m, x: x**3, lambda x: x**3, ((3, 4),)),
    OpCase("pow_float", lambda m, x: x**2.5, lambda x: x**2.5, (pos(3, 4),)),
    OpCase("pow_neg", lambda m, x: x**-1.5, lambda x: x**-1.5, (pos(3, 4),)),
    OpCase("pow_zero", lambda m, x: x**0, lambda x: x**0, ((3, 4),)),
    OpCase("pow_tensor", lambda m, x, y: x**y, np.power, (pos(3, 4), (3, 4))),
    OpCase("pow_tensor_bcast", lambda m, x, y: m.pow(x, y), np.power, (pos(3, 4), (4,))),
    OpCase("rpow_scalar", lambda m, x: 2.0**x, lambda x: 2.0**x, ((3, 4),)),
    OpCase("pow_func_scalar", lambda m, x: m.pow(x, 3), lambda x: x**3, ((3, 4),)),
    OpCase("maximum", lambda m, x, y: m.maximum(x, y), np.maximum, (distinct(3, 4), (3, 4))),
    OpCase("minimum", lambda m, x, y: m.minimum(x, y), np.minimum, (distinct(3, 4), (3, 4))),
    OpCase("maximum_bcast", lambda m, x, y: x.maximum(y), np.maximum, (distinct(3, 4), (4,))),
    OpCase("minimum_bcast", lambda m, x, y: x.minimum(y), np.minimum, (distinct(3, 4), (3, 1))),
]

_CL = distinct(3, 4)
CLAMP = [
    OpCase("clamp_both", lambda m, x: x.clamp(-0.6, 0.4), lambda x: np.clip(x, -0.6, 0.4), (_CL,)),
    OpCase("clamp_min", lambda m, x: m.clamp(x, min=-0.1), lambda x: np.maximum(x, -0.1), (_CL,)),
    OpCase("clamp_max", lambda m, x: m.clamp(x, max=0.1), lambda x: np.minimum(x, 0.1), (_CL,)),
    OpCase("clip", lambda m, x: m.clip(x, -0.6, 0.4), lambda x: np.clip(x, -0.6, 0.4), (_CL,)),
    OpCase(
        "clamp_tensor_bounds",
        lambda m, x, lo, hi: m.clamp(x, lo, hi),
        lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
        (distinct(3, 4, gap=0.3), const([-1.05, -0.4, 0.05, -2.02]), const(1.03)),
    ),
    OpCase(
        "where",
        lambda m, c, x, y: m.where(c, x, y),
        np.where,
        (mask(3, 4), (3, 4), (3, 4)),
    ),
    OpCase(
        "where_bcast",
        lambda m, c, x, y: m.where(c, x, y),
        np.where,
        (mask(3, 1), (1, 4), (3, 4)),
    ),
    OpCase(
        "where_scalar_other",
        lambda m, c, x: m.where(c, x, 0.5),
        lambda c, x: np.where(c, x, 0.5),
        (mask(3, 4), (3, 4)),
    ),
    OpCase(
        "where_method",
        lambda m, c, x, y: x.where(c, y),
        np.where,
        (mask(3, 4), (3, 4), (4,)),
    ),
]


def _cmp(name, op, ref):
    return [
        OpCase(f"{name}_tensor", lambda m, x, y: op(x, y), ref, ((3, 4), (4,)), grad=False),
        OpCase(
            f"{name}_scalar",
            lambda m, x: op(x, 0.25),
            lambda x: ref(x, 0.25),
            ((3, 4),),
            grad=False,
        ),
    ]


_NONFINITE = const([[1.0, np.nan, -np.inf], [np.inf, -2.0, 0.0]])

COMPARE = [
    *_cmp("eq", lambda a, b: a == b, np.equal),
    *_cmp("ne", lambda a, b: a != b, np.not_equal),
    *_cmp("lt", lambda a, b: a < b, np.less),
    *_cmp("le", lambda a, b: a <= b, np.less_equal),
    *_cmp("gt", lambda a, b: a > b, np.greater),
    *_cmp("ge", lambda a, b: a >= b, np.greater_equal),
    OpCase(
        "eq_func",
        lambda m, x, y: m.eq(x, y),
        np.equal,
        (const([1.0, 2.0, 3.0]), const([1.0, 0.0, 3.0])),
        grad=False,
    ),
    OpCase(
        "ne_func",
        lambda m, x, y: m.ne(x, y),
        np.not_equal,
        (const([1.0, 2.0, 3.0]), const([1.0, 0.0, 3.0])),
        grad=False,
    ),
    OpCase("lt_func", lambda m, x, y: m.lt(x, y), np.less, ((3,), (3,)), grad=False),
    OpCase("le_func", lambda m, x, y: m.le(x, y), np.less_equal, ((3,), (3,)), grad=False),
    OpCase("gt_func", lambda m, x, y: m.gt(x, y), np.greater, ((3,), (3,)), grad=False),
    OpCase("ge_func", lambda m, x, y: m.ge(x, y), np.greater_equal, ((3,), (3,)), grad=False),
    OpCase("isnan", lambda m, x: m.isnan(x), np.isnan, (_NONFINITE,), grad=False),
    OpCase("isinf", lambda m, x: m.isinf(x), np.isinf, (_NONFINITE,), grad=False),
    OpCase("isfinite", lambda m, x: m.isfinite(x), np.isfinite, (_NONFINITE,), grad=False),
    OpCase(
        "isclose",
        lambda m, x, y: m.isclose(x, y, rtol=1e-3, atol=1e-3),
        lambda x, y: np.isclose(x, y, rtol=1e-3, atol=1e-3),
        (const([1.0, 2.0, 3.0, 4.0]), const([1.0001, 2.1, 3.0, -4.0])),
        grad=False,
    ),
    OpCase(
        "logical_and",
        lambda m, a, b: m.logical_and(a, b),
        np.logical_and,
        (mask(3, 4), mask(3, 4)),
        grad=False,
    ),
    OpCase(
        "logical_or",
        lambda m, a, b: m.logical_or(a, b),
        np.logical_or,
        (mask(3, 4), mask(4)),
        grad=False,
    ),
    OpCase(
        "logical_xor",
        lambda m, a, b: m.logical_xor(a, b),
        np.logical_xor,
        (mask(3, 4), mask(3, 4)),
        grad=False,
    ),
    OpCase("logical_not", lambda m, a: m.logical_not(a), np.logical_not, (mask(3, 4),), grad=False),
    OpCase("and_op", lambda m, a, b: a & b, np.logical_and, (mask(3, 4), mask(3, 4)), grad=False),
    OpCase("or_op", lambda m, a, b: a | b, np.logical_or, (mask(3, 4), mask(3, 4)), grad=False),
    OpCase("xor_op", lambda m, a, b: a ^ b, np.logical_xor, (mask(3, 4), mask(3, 4)), grad=False),
    OpCase("invert_op", lambda m, a: ~a, np.logical_not, (mask(3, 4),), grad=False),
    OpCase(
        "bitwise_and_int",
        lambda m, a, b: a & b,
        np.bitwise_and,
        (index((3, 4), 16), index((4,), 16)),
        grad=False,
    ),
    OpCase(
        "bitwise_or_int",
        lambda m, a, b: a | b,
        np.bitwise_or,
        (index((3, 4), 16), index((3, 4), 16)),
        grad=False,
    ),
    OpCase(
        "bitwise_xor_int",
        lambda m, a, b: a.bitwise_xor(b),
        np.bitwise_xor,
        (index((3, 4), 16), index((3, 4), 16)),
        grad=False,
    ),
    OpCase(
        "bitwise_and_scalar", lambda m, a: a & 6, lambda a: a & 6, (index((3, 4), 16),), grad=False
    ),
    OpCase("invert_int", lambda m, a: ~a, np.invert, (index((3, 4), 16, low=-8),), grad=False),
]


def _ip(name, method, ref, *inputs, args=()):
    """An in-place method on a clone of the first input (a leaf may not be modified)."""
    return OpCase(
        f"inplace_{name}",
        lambda m, x, *rest: getattr(x.clone(), method)(*rest, *args),
        ref,
        inputs,
    )


INPLACE = [
    _ip("add", "add_", np.add, (3, 4), (4,)),
    _ip("sub_scalar", "sub_", lambda x: x - 1.5, (3, 4), args=(1.5,)),
    _ip("mul", "mul_", np.multiply, (3, 4), (3, 1)),
    _ip("div", "div_", np.divide, (3, 4), pos(4)),
    _ip("pow", "pow_", lambda x: x**2, (3, 4), args=(2,)),
    _ip("exp", "exp_", np.exp, (3, 4)),
    _ip("log", "log_", np.log, pos(3, 4)),
    _ip("sqrt", "sqrt_", np.sqrt, pos(3, 4)),
    _ip("sigmoid", "sigmoid_", _sigmoid, (3, 4)),
    _ip("tanh", "tanh_", np.tanh, (3, 4)),
    _ip("relu", "relu_", lambda x: np.maximum(x, 0), distinct(3, 4)),
    _ip("clamp", "clamp_", lambda x: np.clip(x, -0.5, 0.5), distinct(3, 4), args=(-0.5, 0.5)),
    _ip("neg", "neg_", np.negative, (3, 4)),
    _ip("abs", "abs_", np.abs, distinct(3, 4)),
    _ip(
        "masked_fill",
        "masked_fill_",
        lambda x, k: np.where(k, 0.5, x),
        (3, 4),
        mask(3, 4),
        args=(0.5,),
    ),
    OpCase(
        "inplace_chain",
        lambda m, x, y: x.clone().mul_(y).add_(1.0).exp_(),
        lambda x, y: np.exp(x * y + 1.0),
        ((3, 4), (3, 4)),
    ),
    OpCase("inplace_iadd", lambda m, x, y: _iadd(x.clone(), y), np.add, ((3, 4), (4,))),
]


def _iadd(a, b):
    a += b
    return a


CASES = UNARY + BINARY + CLAMP + COMPARE + INPLACE

test_forward, test_low_precision, test_gradcheck, test_gradgradcheck, test_cuda = op_tests(CASES)


# ---- semantics the table cannot express -------------------------------------------------


def test_maximum_ties_split_gradient():
    torch = pytest.importorskip("torch")
    a = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = ember.tensor([1.0, 0.0, 3.0], requires_grad=True)
    ember.maximum(a, b).sum().backward()
    ta = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    tb = torch.tensor([1.0, 0.0, 3.0], requires_grad=True)
    torch.maximum(ta, tb).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy())
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy())


def test_maximum_ties_split_gradient_values():
    a = ember.tensor([1.0, 2.0], requires_grad=True)
    ember.minimum(a, ember.tensor([1.0, 5.0])).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.5, 1.0])


def test_clamp_gradient_at_boundary_flows():
    # PyTorch passes the gradient through where input == min or == max
    x = ember.tensor([-1.0, 0.0, 1.0, 2.0], requires_grad=True)
    x.clamp(0.0, 1.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 1.0, 1.0, 0.0])


def test_relu_gradient_at_zero_is_zero():
    x = ember.tensor([-1.0, 0.0, 1.0], requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 1.0])


def test_abs_gradient_at_zero_is_zero():
    x = ember.tensor([-1.0, 0.0, 1.0], requires_grad=True)
    x.abs().sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [-1.0, 0.0, 1.0])


def test_pow_zero_base_tensor_exponent_gradient():
    # d/dy x**y at x == 0 is 0 (PyTorch masks the log), and d/dx 0**2 = 0
    x = ember.tensor([0.0, 2.0], requires_grad=True)
    y = ember.tensor([2.0, 3.0], requires_grad=True)
    (x**y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 12.0])
    np.testing.assert_allclose(y.grad.numpy(), [0.0, 8.0 * np.log(2.0)])


def test_sqrt_of_zero_forward_and_inf_gradient():
    x = ember.tensor([0.0, 4.0], requires_grad=True)
    y = x.sqrt()
    y.sum().backward()
    assert y.tolist() == [0.0, 2.0]
    assert np.isinf(x.grad.numpy()[0]) and x.grad.numpy()[1] == 0.25


def test_where_requires_bool_condition():
    with pytest.raises(RuntimeError, match="where"):
        ember.where(ember.tensor([1, 0]), ember.ones(2), ember.zeros(2))


def test_binary_shape_mismatch_names_op_and_shapes():
    with pytest.raises(RuntimeError, match=r"add.*\[2, 3\].*\[4\]"):
        ember.ones(2, 3) + ember.ones(4)
    with pytest.raises(RuntimeError, match="mul"):
        ember.ones(2, 3) * ember.ones(3, 2)


def test_clamp_needs_a_bound():
    with pytest.raises(RuntimeError, match="clamp"):
        ember.ones(2).clamp()


def test_neg_bool_raises():
    with pytest.raises(RuntimeError, match="bool"):
        -ember.tensor([True, False])


def test_int_pow_negative_raises():
    with pytest.raises(RuntimeError, match="negative"):
        ember.tensor([1, 2]) ** -1


def test_int_unary_float_math_promotes():
    x = ember.tensor([1, 4, 9])
    assert x.sqrt().dtype == ember.float32
    np.testing.assert_allclose(x.sqrt().numpy(), [1, 2, 3])
    assert x.exp().dtype == ember.float32
    assert x.abs().dtype == ember.int64
    assert x.floor().dtype == ember.int64
