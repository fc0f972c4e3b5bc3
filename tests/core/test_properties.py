"""Property tests against NumPy: broadcasting of binary ops over random shapes, PyTorch's type
promotion over every dtype pair and operand kind, and reductions over random dims."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ember

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)

# ---- broadcasting ------------------------------------------------------------------------

_BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
    "maximum": (ember.maximum, np.maximum),
    "pow": (lambda a, b: (a.abs() + 0.5) ** b, lambda a, b: (np.abs(a) + 0.5) ** b),
}


def _sum_to(g, shape):
    lead = g.ndim - len(shape)
    g = g.sum(tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axes, keepdims=True).reshape(shape)


@SETTINGS
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3),
    op=st.sampled_from(sorted(_BINARY)),
    data=st.data(),
)
def test_binary_broadcasting_matches_numpy(shapes, op, data):
    (sa, sb), out_shape = shapes.input_shapes, shapes.result_shape
    a = data.draw(hnp.arrays(np.float64, sa, elements=st.floats(-3, 3)), "a")
    b = data.draw(hnp.arrays(np.float64, sb, elements=st.floats(0.5, 3)), "b")
    fn, ref = _BINARY[op]
    ta = ember.tensor(a, requires_grad=True)
    tb = ember.tensor(b, requires_grad=True)
    out = fn(ta, tb)
    assert tuple(out.shape) == tuple(out_shape)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(out.detach().numpy(), ref(a, b), rtol=1e-12, atol=1e-12)
    out.sum().backward()
    assert ta.grad.shape == ta.shape and tb.grad.shape == tb.shape
    if op == "add":  # the gradient of a broadcast operand is the reduced ones
        np.testing.assert_array_equal(ta.grad.numpy(), _sum_to(np.ones(out_shape), sa))
        np.testing.assert_array_equal(tb.grad.numpy(), _sum_to(np.ones(out_shape), sb))


@SETTINGS
@given(
    sa=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
    sb=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
)
def test_incompatible_shapes_raise_runtime_error(sa, sb):
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        with pytest.raises(RuntimeError, match=r"must match the size"):
            ember.zeros(sa) + ember.zeros(sb)
    else:
        assert (ember.zeros(sa) + ember.zeros(sb)).shape == np.broadcast_shapes(sa, sb)


# ---- type promotion -----------------------------------------------------------------------

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64",
          "float16", "bfloat16", "float32", "float64"]  # fmt: skip
_CAT = {"bool": 0, **{d: 1 for d in DTYPES[1:6]}, **{d: 2 for d in DTYPES[6:]}}
_BITS = {"bool": 1, "uint8": 8, "int8": 8, "int16": 16, "int32": 32, "int64": 64,
         "float16": 16, "bfloat16": 16, "float32": 32, "float64": 64}  # fmt: skip


def doc_promote(a: str, b: str) -> str:
    """torch.promote_types from its documentation: the higher category wins; within a
    category the wider type; uint8 with int8 needs int16; float16 with bfloat16 needs
    float32; uint8 with any wider signed type is that type."""
    if a == b:
        return a
    if _CAT[a] != _CAT[b]:
        return a if _CAT[a] > _CAT[b] else b
    if {a, b} == {"uint8", "int8"}:
        return "int16"
    if {a, b} == {"float16", "bfloat16"}:
        return "float32"
    return a if _BITS[a] > _BITS[b] else b


def doc_result_type(dim=(), zero=(), scalars=(), default="float32"):
    """torch.result_type from the documented rules: dimensioned tensors decide, unless a
    zero-dim tensor is of a higher category (then the zero-dim tensors of that tier decide
    together with them), and likewise Python scalars below zero-dim tensors (a float scalar
    counts as the default dtype, an int as int64, a bool as bool)."""

    def tier(ds):
        out = None
        for d in ds:
            out = d if out is None else doc_promote(out, d)
        return out

    def scalar_dtype(v):
        return "bool" if isinstance(v, bool) else "int64" if isinstance(v, int) else default

    def merge(high, low):
        if high is None:
            return low
        if low is None or _CAT[low] <= _CAT[high]:
            return high
        return doc_promote(high, low)

    return merge(tier(dim), merge(tier(zero), tier([scalar_dtype(s) for s in scalars])))


def _t(name, zero_dim=False):
    d = getattr(ember, name)
    return ember.ones((), dtype=d) if zero_dim else ember.ones(2, dtype=d)


@pytest.mark.parametrize("a,b", list(itertools.product(DTYPES, DTYPES)))
def test_promote_types_every_pair(a, b):
    assert ember.promote_types(getattr(ember, a), getattr(ember, b)).name == doc_promote(a, b)


@pytest.mark.parametrize("a,b", list(itertools.product(DTYPES, DTYPES)))
def test_result_type_every_pair_and_operand_kind(a, b):
    assert ember.result_type(_t(a), _t(b)).name == doc_result_type(dim=[a, b])
    assert ember.result_type(_t(a), _t(b, True)).name == doc_result_type(dim=[a], zero=[b])
    assert ember.result_type(_t(a, True), _t(b, True)).name == doc_result_type(zero=[a, b])
    # the operators follow result_type (bool - bool is an error in PyTorch; use add)
    assert (_t(a) + _t(b)).dtype.name == doc_result_type(dim=[a, b])
    assert (_t(a) * _t(b, True)).dtype.name == doc_result_type(dim=[a], zero=[b])


@pytest.mark.parametrize("a", DTYPES)
@pytest.mark.parametrize("scalar", [True, 3, 2.5])
def test_result_type_with_python_scalars(a, scalar):
    want = doc_result_type(dim=[a], scalars=[scalar])
    assert ember.result_type(_t(a), scalar).name == want
    assert (_t(a) + scalar).dtype.name == want
    assert (scalar * _t(a)).dtype.name == want
    want0 = doc_result_type(zero=[a], scalars=[scalar])
    assert (_t(a, True) + scalar).dtype.name == want0


@pytest.mark.parametrize("default", ["float64", "float16", "bfloat16"])
def test_float_scalar_follows_default_dtype(default):
    prev = ember.get_default_dtype()
    ember.set_default_dtype(getattr(ember, default))
    try:
        assert (ember.tensor([1, 2]) * 0.5).dtype.name == default
        assert ember.result_type(_t("int32"), 1.5).name == default
    finally:
        ember.set_default_dtype(prev)


def test_doc_rules_match_torch_result_type():
    torch = pytest.importorskip("torch")

    def tt(name, zero=False):
        d = getattr(torch, name)
        return torch.ones((), dtype=d) if zero else torch.ones(2, dtype=d)

    for a, b in itertools.product(DTYPES, DTYPES):
        assert str(torch.promote_types(getattr(torch, a), getattr(torch, b)))[6:] == (
            doc_promote(a, b)
        )
        assert str(torch.result_type(tt(a), tt(b, True)))[6:] == doc_result_type([a], [b])
        assert str(torch.result_type(tt(a, True), tt(b, True)))[6:] == doc_result_type(zero=[a, b])
    for a, s in itertools.product(DTYPES, [True, 3, 2.5]):
        assert str(torch.result_type(tt(a), s))[6:] == doc_result_type([a], scalars=[s])
        assert str(torch.result_type(tt(a, True), s))[6:] == doc_result_type(zero=[a], scalars=[s])


# ---- reductions over random dims ----------------------------------------------------------

_REDUCE = {
    "sum": (lambda t, d, k: t.sum(d, keepdim=k), lambda x, d, k: x.sum(d, keepdims=k)),
    "mean": (lambda t, d, k: t.mean(d, keepdim=k), lambda x, d, k: x.mean(d, keepdims=k)),
    "amax": (lambda t, d, k: t.amax(d, keepdim=k), lambda x, d, k: x.max(d, keepdims=k)),
    "amin": (lambda t, d, k: t.amin(d, keepdim=k), lambda x, d, k: x.min(d, keepdims=k)),
    "var": (lambda t, d, k: t.var(d, keepdim=k), lambda x, d, k: x.var(d, ddof=1, keepdims=k)),
    "std0": (lambda t, d, k: t.std(d, keepdim=k, correction=0),
             lambda x, d, k: x.std(d, keepdims=k)),
    "logsumexp": (lambda t, d, k: t.logsumexp(d, keepdim=k),
                  lambda x, d, k: np.log(np.exp(x).sum(d, keepdims=k))),
    "norm": (lambda t, d, k: t.norm(dim=d, keepdim=k),
             lambda x, d, k: np.sqrt((x * x).sum(d, keepdims=k))),
}  # fmt: skip


@st.composite
def _shape_and_dims(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=2, max_side=4))
    n = len(shape)
    axes = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
    signed = tuple(a - n if draw(st.booleans()) else a for a in axes)
    return shape, signed


@SETTINGS
@given(sd=_shape_and_dims(), keepdim=st.booleans(), op=st.sampled_from(sorted(_REDUCE)))
def test_reductions_over_random_dims(sd, keepdim, op):
    shape, dims = sd
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    fn, ref = _REDUCE[op]
    t = ember.tensor(x, requires_grad=True)
    out = fn(t, dims, keepdim)
    np.testing.assert_allclose(out.detach().numpy(), ref(x, dims, keepdim), rtol=1e-10, atol=1e-12)
    out.sum().backward()
    assert t.grad.shape == t.shape


@SETTINGS
@given(sd=_shape_and_dims(), keepdim=st.booleans())
def test_max_min_with_dim_over_random_shapes(sd, keepdim):
    shape, dims = sd
    d = dims[0]
    x = np.random.default_rng(7).permutation(int(np.prod(shape))).reshape(shape).astype(float)
    v, i = ember.tensor(x).max(d, keepdim)
    np.testing.assert_array_equal(v.numpy(), x.max(d, keepdims=keepdim))
    np.testing.assert_array_equal(i.numpy(), x.argmax(d, keepdims=keepdim))
    v, i = ember.tensor(x).min(d, keepdim)
    np.testing.assert_array_equal(v.numpy(), x.min(d, keepdims=keepdim))
    np.testing.assert_array_equal(i.numpy(), x.argmin(d, keepdims=keepdim))
