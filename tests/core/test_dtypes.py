"""dtypes: the dtype objects and aliases, conversions, bfloat16 round trips, default dtype
switching and the type promotion of operators."""

import ml_dtypes
import numpy as np
import pytest

import ember

ALL = ["bool", "uint8", "int8", "int16", "int32", "int64",
       "float16", "bfloat16", "float32", "float64"]  # fmt: skip


@pytest.fixture
def default_dtype():
    prev = ember.get_default_dtype()
    yield
    ember.set_default_dtype(prev)


@pytest.mark.parametrize("name", ALL)
def test_dtype_attributes(name):
    d = getattr(ember, name)
    assert repr(d) == f"ember.{name}"
    assert d.is_floating_point == name.startswith(("float", "bfloat"))
    assert d.itemsize == (2 if name == "bfloat16" else np.dtype(name).itemsize)
    assert d.is_signed == (name not in ("bool", "uint8"))
    t = ember.zeros(2, dtype=d)
    assert t.dtype is d and t.element_size() == d.itemsize


def test_aliases():
    assert ember.float is ember.float32 and ember.double is ember.float64
    assert ember.half is ember.float16 and ember.long is ember.int64
    assert ember.int is ember.int32 and ember.short is ember.int16


@pytest.mark.parametrize(
    "spec,want",
    [
        (float, "float64"),
        (int, "int64"),
        (bool, "bool"),
        (np.float16, "float16"),
        (np.dtype("int32"), "int32"),
        ("float64", "float64"),
        (ember.bfloat16, "bfloat16"),
    ],
)
def test_dtype_specs_accepted_everywhere(spec, want):
    assert ember.zeros(2, dtype=spec).dtype.name == want
    if spec in (float, int, bool) or isinstance(spec, ember.dtype):
        assert ember.ones(2).to(spec).dtype.name == want


def test_conversion_methods():
    x = ember.tensor([1.7, -1.7, 0.0])
    assert x.long().tolist() == [1, -1, 0]  # truncation toward zero
    assert x.int().dtype == ember.int32
    assert x.bool().tolist() == [True, True, False]
    assert x.half().dtype == ember.float16 and x.bfloat16().dtype == ember.bfloat16
    assert x.double().dtype == ember.float64 and x.float() is x
    assert x.short().dtype == ember.int16 and x.char().dtype == ember.int8
    assert x.byte().dtype == ember.uint8
    assert x.type(ember.float64).dtype == ember.float64 and x.type() == "ember.FloatTensor"
    assert x.type_as(ember.zeros(1, dtype=ember.int64)).dtype == ember.int64
    assert ember.tensor([300]).to(ember.uint8).tolist() == [44]  # wraps like a C cast


def test_to_returns_self_when_nothing_changes_unless_copy():
    x = ember.ones(2)
    assert x.to(ember.float32) is x and x.to("cpu") is x
    y = x.to(ember.float32, copy=True)
    assert y is not x and not np.shares_memory(y.numpy(), x.numpy())
    assert x.to(ember.zeros(1, dtype=ember.float64)).dtype == ember.float64
    assert x.to(device="cpu", dtype=ember.float16).dtype == ember.float16


def test_cast_is_differentiable_between_float_types():
    x = ember.tensor([1.5, 2.5], dtype=ember.float64, requires_grad=True)
    y = x.float() * 2
    assert y.dtype == ember.float32
    y.sum().backward()
    assert x.grad.dtype == ember.float64 and x.grad.tolist() == [2.0, 2.0]
    assert not x.long().requires_grad


# ---- bfloat16 ----------------------------------------------------------------------------


def test_bfloat16_round_trips():
    vals = [1.0, -2.5, 0.15625, 3.0e10, 1.00390625]
    t = ember.tensor(vals, dtype=ember.bfloat16)
    want = np.array(vals, dtype=np.float32).astype(ml_dtypes.bfloat16)
    assert t.numpy().dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(t.numpy(), want)
    assert t.tolist() == want.astype(np.float32).tolist()
    assert isinstance(t[0].item(), float) and t[4].item() == 1.0  # 1 + 2^-8 rounds to 1
    back = ember.tensor(t.numpy())
    assert back.dtype == ember.bfloat16 and ember.equal(back, t)
    assert ember.equal(t.float().bfloat16(), t)
    assert ember.from_numpy(want).dtype == ember.bfloat16


def test_bfloat16_arithmetic_stays_bfloat16():
    a = ember.tensor([1.0, 2.0], dtype=ember.bfloat16)
    assert (a + a).dtype == ember.bfloat16 and (a * 3).dtype == ember.bfloat16
    assert a.exp().dtype == ember.bfloat16 and a.sum().dtype == ember.bfloat16
    assert (a @ a).dtype == ember.bfloat16 and (a @ a).item() == 5.0
    assert (a + ember.tensor([1.0], dtype=ember.float16)).dtype == ember.float32


def test_float16_values():
    h = ember.tensor([65504.0, 1e-8, 0.1], dtype=ember.float16)
    assert h.tolist()[0] == 65504.0 and h.tolist()[1] == 0.0
    with np.errstate(over="ignore"):  # NumPy would warn; PyTorch is silent
        assert (h * 2)[0].item() == float("inf")


# ---- default dtype --------------------------------------------------------------------------


@pytest.mark.usefixtures("default_dtype")
@pytest.mark.parametrize("d", [ember.float64, ember.float16, ember.bfloat16])
def test_set_default_dtype_switches_float_creation(d):
    ember.set_default_dtype(d)
    assert ember.get_default_dtype() is d
    assert ember.tensor([1.5]).dtype is d and ember.zeros(2).dtype is d
    assert ember.arange(2.0).dtype is d and ember.rand(2).dtype is d
    assert ember.randn(2).dtype is d and ember.linspace(0, 1, 3).dtype is d
    assert ember.tensor([1, 2]).dtype is ember.int64
    assert (ember.tensor([1, 2]) / 2).dtype is d
    assert ember.tensor([1, 2]).sqrt().dtype is d


def test_set_default_dtype_rejects_integers():
    with pytest.raises(TypeError, match="floating"):
        ember.set_default_dtype(ember.int64)


# ---- promotion of operators ---------------------------------------------------------------


@pytest.mark.parametrize(
    "make,want",
    [
        (lambda: ember.tensor([1, 2]) + 1.5, ember.float32),
        (lambda: ember.tensor([1, 2], dtype=ember.int32) * 2.0, ember.float32),
        (
            lambda: (
                ember.tensor([1, 2], dtype=ember.float16) + ember.tensor(2.0, dtype=ember.float64)
            ),
            ember.float16,
        ),
        (
            lambda: ember.tensor([1], dtype=ember.uint8) + ember.tensor([1], dtype=ember.int8),
            ember.int16,
        ),
        (lambda: ember.tensor([True]) + ember.tensor([True]), ember.bool),
        (lambda: ember.tensor([1, 3]) / ember.tensor([2, 2]), ember.float32),
        (lambda: ember.tensor([1, 3]) / 2, ember.float32),
        (lambda: ember.tensor([1, 2], dtype=ember.int8) + 1000, ember.int8),
        (lambda: ember.tensor([1, 2], dtype=ember.int32) + ember.tensor(5), ember.int32),
        (lambda: ember.tensor([1, 2], dtype=ember.int32) + ember.tensor(5.0), ember.float32),
        (lambda: ember.tensor([True]) + 1, ember.int64),
        (lambda: ember.tensor([True]) * 2.5, ember.float32),
        (lambda: ember.tensor([1.0]) + ember.tensor([1.0], dtype=ember.float64), ember.float64),
        (lambda: ember.tensor([1, 2]) ** 2, ember.int64),
        (lambda: ember.tensor([1, 2]) ** 0.5, ember.float32),
        (lambda: 2.0 ** ember.tensor([1, 2]), ember.float32),
        (lambda: ember.tensor([1], dtype=ember.uint8) - 6, ember.uint8),
        (lambda: ember.tensor([1, 2]) // 2, ember.int64),
        (lambda: ember.tensor([1.0, 2.0]) // 2, ember.float32),
        (lambda: ember.where(ember.tensor([True]), ember.tensor([1]), 2.5), ember.float32),
        (lambda: ember.maximum(ember.tensor([1]), ember.tensor([1.5])), ember.float32),
        (lambda: ember.tensor([1, 2]) == 1.0, ember.bool),
        (
            lambda: ember.cat([ember.tensor([1]), ember.tensor([1.0], dtype=ember.float16)]),
            ember.float16,
        ),
        (lambda: ember.tensor([[1, 2]]) @ ember.tensor([[1.0], [2.0]]), ember.float32),
    ],
)
def test_operator_promotion(make, want):
    assert make().dtype is want


def test_integer_arithmetic_semantics():
    assert (ember.tensor([-7, 7]) // ember.tensor([2, -2])).tolist() == [-4, -4]
    assert (ember.tensor([-7, 7]) % ember.tensor([2, -2])).tolist() == [1, -1]
    assert (ember.tensor([5], dtype=ember.uint8) - 6).tolist() == [255]
    assert (ember.tensor([100], dtype=ember.int8) * 2).tolist() == [-56]
    assert ember.tensor([-7, 7]).div(2, rounding_mode="trunc").tolist() == [-3, 3]
    assert (ember.tensor([6, 5]) & ember.tensor([3, 1])).tolist() == [2, 1]
    assert (ember.tensor([6, 5]) | 1).tolist() == [7, 5]
    assert (~ember.tensor([0, 5])).tolist() == [-1, -6]
    assert (~ember.tensor([True, False])).tolist() == [False, True]
    with pytest.raises(RuntimeError):
        ember.tensor([1.0]) & ember.tensor([1.0])


def test_operators_match_torch_across_dtypes():
    torch = pytest.importorskip("torch")
    ops = [
        lambda a, b: a + b,
        lambda a, b: a * b,
        lambda a, b: a / b,
        lambda a, b: a - b,
        lambda a, b: a < b,
    ]
    vals = [1, 2, 3]
    for da in ALL:
        for db in ALL:
            for op in ops:
                ea = ember.tensor(vals, dtype=getattr(ember, da))
                eb = ember.tensor(vals[::-1], dtype=getattr(ember, db))
                ta = torch.tensor(vals, dtype=getattr(torch, da))
                tb = torch.tensor(vals[::-1], dtype=getattr(torch, db))
                try:
                    want = op(ta, tb)
                except RuntimeError:
                    continue  # e.g. bool - bool: PyTorch refuses
                got = op(ea, eb)
                assert got.dtype.name == str(want.dtype)[6:], (da, db)
                np.testing.assert_allclose(
                    got.double().numpy(), want.double().numpy(), rtol=1e-2, err_msg=f"{da} {db}"
                )
