"""One generic op harness: declare an op case as data, and the harness checks it.

A case names the op, an ember callable, a NumPy float64 reference and how to draw its inputs
(Chainer's FunctionTestCase, tinygrad's helper_test_op). ``fn(m, *tensors)`` receives a
namespace ``m`` that is either ember (with ``m.F`` its functional ops) or torch (with ``m.F``
= ``torch.nn.functional``), so one callable serves ember, the parity tests and the GPU run.

Checks, each a function taking the case:

- ``check_forward(case, dtype)``: ember against the float64 reference, for float32/float64 with
  tight tolerances and float16/bfloat16 with loose ones; output dtypes and shapes; the gradient
  dtype and shape of every differentiable input.
- ``check_gradcheck(case)`` / ``check_gradgradcheck(case)``: ``ember.autograd.gradcheck`` and
  ``gradgradcheck`` in float64 (finite differences against backward, and double backward).
- ``check_torch(case, dtype)``: forward and vector-Jacobian products against PyTorch.
- ``check_device(case, device)``: the case on another device (CUDA) against the CPU result.

``op_tests(CASES)`` returns parametrized test functions a family file binds to test_* names.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable

import ml_dtypes
import numpy as np
import pytest

import ember
import ember.ops

# ---- inputs -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Arg:
    """One input of a case: ``gen(rng)`` draws a float64 (or int/bool) array; ``diff`` says
    whether it is a floating input that gradients flow to."""

    gen: Callable[[np.random.Generator], np.ndarray]
    diff: bool = True


def randn(*shape) -> Arg:
    """Standard normal values."""
    return Arg(lambda r: r.standard_normal(shape))


def uniform(*shape, lo=-1.0, hi=1.0) -> Arg:
    """Uniform values on [lo, hi)."""
    return Arg(lambda r: r.uniform(lo, hi, shape))


def pos(*shape, lo=0.5, hi=2.0) -> Arg:
    """Positive values (log, sqrt, rsqrt, pow bases, divisors)."""
    return uniform(*shape, lo=lo, hi=hi)


def distinct(*shape, gap=0.25) -> Arg:
    """Values at least ``gap`` apart and away from 0 (max/min/sort/abs/relu: no ties or kinks
    that finite differences would straddle)."""

    def gen(r):
        n = int(np.prod(shape)) if shape else 1
        vals = (r.permutation(n) - n / 2 + 0.5) * gap
        vals = vals + r.uniform(-gap / 8, gap / 8, n)
        return vals.reshape(shape)

    return Arg(gen)


def index(shape, high, low=0) -> Arg:
    """int64 indices on [low, high)."""
    return Arg(lambda r: r.integers(low, high, shape).astype(np.int64), diff=False)


def perm_index(n, k=None) -> Arg:
    """``k`` distinct int64 indices below ``n`` (no duplicates)."""
    return Arg(lambda r: r.permutation(n)[: k or n].astype(np.int64), diff=False)


def mask(*shape, p=0.5) -> Arg:
    """A random bool mask."""
    return Arg(lambda r: r.random(shape) < p, diff=False)


def const(value, diff=False) -> Arg:
    """A fixed array (copied per draw)."""
    arr = np.asarray(value)
    return Arg(lambda r: arr.copy(), diff=diff)


def _as_arg(spec) -> Arg:
    return spec if isinstance(spec, Arg) else randn(*spec)


# ---- cases ------------------------------------------------------------------------------


@dataclasses.dataclass
class OpCase:
    """One op on one set of inputs.

    fn: ``fn(m, *tensors)`` -> tensor or tuple of tensors (m: ember or torch namespace).
    ref: ``ref(*arrays)`` on float64 arrays -> array or tuple (None: no forward reference).
    inputs: an ``Arg`` or a shape (standard normal) per positional input.
    grad/gradgrad: whether to gradcheck / gradgradcheck (float64).
    low_precision: also check float16 and bfloat16 forward with loose tolerances.
    tol: multiplies the per-dtype tolerances.
    torch: compare with PyTorch in the parity tests.
    marks: pytest marks (e.g. an xfail with its reason) for every check of this case.
    gpu_marks: more marks for the CUDA check only (an xfail while an op has no GPU kernel).
    """

    name: str
    fn: Callable
    ref: Callable | None
    inputs: tuple
    grad: bool = True
    gradgrad: bool = True
    low_precision: bool = True
    tol: float = 1.0
    torch: bool = True
    marks: tuple = ()
    gpu_marks: tuple = ()
    check_dtype: bool = True

    def draw(self):
        """The case's input arrays (float64, int64 or bool), the same on every call."""
        r = np.random.default_rng(zlib.crc32(self.name.encode()))
        return [np.asarray(_as_arg(s).gen(r)) for s in self.inputs]

    def diff_mask(self):
        return [_as_arg(s).diff for s in self.inputs]


class _Lib:
    """A library namespace plus its functional ops under ``.F``."""

    def __init__(self, mod, F, name):
        self._mod, self.F, self.name = mod, F, name

    def __getattr__(self, item):
        return getattr(self._mod, item)


EMBER = _Lib(ember, ember.ops, "ember")


def torch_lib():
    """The torch namespace for ``fn`` (imports torch lazily: tests only)."""
    import torch
    import torch.nn.functional as F

    return _Lib(torch, F, "torch")


# ---- dtypes and tolerances ----------------------------------------------------------------

NP_OF = {
    "float64": np.float64,
    "float32": np.float32,
    "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16,
}
TOL = {  # (rtol, atol)
    "float64": (1e-7, 1e-9),
    "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-2),
    "bfloat16": (4e-2, 4e-2),
}
FLOAT_DTYPES = ("float32", "float64")
LOW_DTYPES = ("float16", "bfloat16")


def quantize(arrays, mask, dtype: str):
    """Float inputs rounded to ``dtype`` (kept as float64 for the reference)."""
    out = []
    for a, d in zip(arrays, mask):
        if a.dtype.kind == "f":
            out.append(a.astype(NP_OF[dtype]).astype(np.float64))
        else:
            out.append(a)
        del d
    return out


def make_inputs(m, arrays, mask, dtype: str, requires_grad: bool, device=None):
    """Tensors of library ``m`` from the arrays; float ones get ``dtype``."""
    ts = []
    for a, diff in zip(arrays, mask):
        if a.dtype.kind == "f":
            d = getattr(m, dtype)
            t = m.tensor(a, dtype=d, device=device)
            if requires_grad and diff:
                t.requires_grad_(True)
        else:
            t = m.tensor(a, device=device)
        ts.append(t)
    return ts


def as_tuple(out):
    return tuple(out) if isinstance(out, tuple | list) else (out,)


def to_np(t):
    """A float64 (or int/bool) NumPy copy of an ember or torch tensor."""
    t = t.detach().cpu()
    if t.dtype.is_floating_point:
        t = t.double() if hasattr(t, "double") else t
    return np.asarray(t.numpy())


def assert_close(actual, expected, dtype: str, tol: float, what: str):
    """Compare arrays with the dtype's tolerance; exact for int and bool results."""
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape} != expected {expected.shape}"
    )
    if expected.dtype.kind in "biu":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(
        actual.astype(np.float64),
        expected.astype(np.float64),
        rtol=rtol * tol,
        atol=atol * tol,
        equal_nan=True,
        err_msg=what,
    )


def _float_outs(outs):
    return tuple(o for o in outs if o.dtype.is_floating_point)


# ---- checks ------------------------------------------------------------------------------


def check_forward(case: OpCase, dtype: str) -> None:
    """ember's forward against the float64 reference; dtypes; gradient shapes and dtypes."""
    if case.ref is None:
        pytest.skip("no NumPy reference for this case")
    arrays, mask = case.draw(), case.diff_mask()
    need_grad = case.grad and dtype in FLOAT_DTYPES
    xs = make_inputs(EMBER, arrays, mask, dtype, requires_grad=need_grad)
    outs = as_tuple(case.fn(EMBER, *xs))
    refs = as_tuple(case.ref(*quantize(arrays, mask, dtype)))
    assert len(outs) == len(refs), f"{case.name}: {len(outs)} outputs, reference has {len(refs)}"
    for k, (o, r) in enumerate(zip(outs, refs)):
        r = np.asarray(r)
        what = f"{case.name} [{dtype}] output {k}"
        if case.check_dtype:
            _check_out_dtype(o, r, dtype, what)
        assert_close(to_np(o), r, dtype, case.tol, what)
    if need_grad:
        _check_grad_meta(case, xs, mask, outs, dtype)


def _check_out_dtype(o, r, dtype, what):
    if r.dtype.kind == "f":
        assert o.dtype == getattr(ember, dtype), f"{what}: dtype {o.dtype}, expected {dtype}"
    elif r.dtype.kind == "b":
        assert o.dtype == ember.bool, f"{what}: dtype {o.dtype}, expected bool"
    else:
        assert o.dtype == ember.int64, f"{what}: dtype {o.dtype}, expected int64"


def _check_grad_meta(case, xs, mask, outs, dtype):
    anydiff = any(d and x.dtype.is_floating_point for x, d in zip(xs, mask))
    for k, o in enumerate(outs):
        want = o.dtype.is_floating_point and anydiff
        assert o.requires_grad == want, f"{case.name}: output {k} requires_grad={o.requires_grad}"
    fo = _float_outs(outs)
    loss = None
    for o in fo:
        s = (o * (1.0 + ember.arange(o.numel(), dtype=o.dtype).reshape(o.shape) / 7)).sum()
        loss = s if loss is None else loss + s
    if loss is None:
        return
    loss.backward()
    for i, (x, diff) in enumerate(zip(xs, mask)):
        if not (diff and x.dtype.is_floating_point):
            continue
        if x.grad is None:
            continue  # an input that does not affect the output (checked by gradcheck)
        assert x.grad.shape == x.shape, f"{case.name}: grad {i} shape {x.grad.shape} != {x.shape}"
        assert x.grad.dtype == getattr(ember, dtype), f"{case.name}: grad {i} dtype {x.grad.dtype}"
        assert x.grad.grad_fn is None and not x.grad.requires_grad


def _grad_fn(case):
    def f(*xs):
        return _float_outs(as_tuple(case.fn(EMBER, *xs)))

    return f


def check_gradcheck(case: OpCase) -> None:
    """Backward against central finite differences, in float64."""
    if not case.grad:
        pytest.skip("not differentiable")
    arrays, mask = case.draw(), case.diff_mask()
    xs = make_inputs(EMBER, arrays, mask, "float64", requires_grad=True)
    assert ember.autograd.gradcheck(_grad_fn(case), xs, eps=1e-6, atol=1e-5, rtol=1e-4)


def check_gradgradcheck(case: OpCase) -> None:
    """Double backward against finite differences of backward, in float64."""
    if not (case.grad and case.gradgrad):
        pytest.skip("no double backward for this case")
    arrays, mask = case.draw(), case.diff_mask()
    xs = make_inputs(EMBER, arrays, mask, "float64", requires_grad=True)
    assert ember.autograd.gradgradcheck(_grad_fn(case), xs, eps=1e-6, atol=1e-5, rtol=1e-4)


def _vjp(m, case, xs, mask, outs, cots):
    pairs = [(o, c) for o, c in zip(outs, cots) if o.requires_grad]
    diff = [x for x, d in zip(xs, mask) if d and x.requires_grad]
    if not pairs or not diff:
        return []
    gs = m.autograd.grad([o for o, _ in pairs], diff, [c for _, c in pairs], allow_unused=True)
    return [None if g is None else to_np(g) for g in gs]


def check_torch(case: OpCase, dtype: str) -> None:
    """Forward values and dtypes, and vector-Jacobian products, against PyTorch."""
    if not case.torch:
        pytest.skip("no PyTorch counterpart for this case")
    import torch

    th = torch_lib()
    arrays, mask = case.draw(), case.diff_mask()
    rg = case.grad
    xs_e = make_inputs(EMBER, arrays, mask, dtype, requires_grad=rg)
    xs_t = make_inputs(th, arrays, mask, dtype, requires_grad=rg)
    outs_e = as_tuple(case.fn(EMBER, *xs_e))
    outs_t = as_tuple(case.fn(th, *xs_t))
    assert len(outs_e) == len(outs_t), f"{case.name}: {len(outs_e)} outputs, torch {len(outs_t)}"
    for k, (a, b) in enumerate(zip(outs_e, outs_t)):
        what = f"{case.name} [{dtype}] output {k} vs torch"
        assert a.dtype.name == str(b.dtype).removeprefix("torch."), (
            f"{what}: dtype {a.dtype} vs {b.dtype}"
        )
        assert tuple(a.shape) == tuple(b.shape), f"{what}: shape {a.shape} vs {tuple(b.shape)}"
        assert_close(to_np(a), to_np(b), dtype, case.tol * 10, what)
    if not rg:
        return
    r = np.random.default_rng(1)
    cots = [r.standard_normal(tuple(o.shape)) for o in outs_e]
    ge = _vjp(
        ember,
        case,
        xs_e,
        mask,
        outs_e,
        [ember.tensor(c, dtype=o.dtype) for c, o in zip(cots, outs_e)],
    )
    gt = _vjp(
        torch,
        case,
        xs_t,
        mask,
        outs_t,
        [torch.tensor(c, dtype=o.dtype) for c, o in zip(cots, outs_t)],
    )
    for k, (a, b) in enumerate(zip(ge, gt)):
        what = f"{case.name} [{dtype}] grad {k} vs torch"
        if a is None or b is None:
            assert a is None and b is None or not np.any(a if a is not None else b), what
            continue
        assert_close(a, b, dtype, case.tol * 10, what)


def check_device(case: OpCase, device: str) -> None:
    """The case on ``device`` (e.g. CUDA): forward and gradients match the CPU run."""
    arrays, mask = case.draw(), case.diff_mask()
    dtype = "float32"
    rg = case.grad
    xs_c = make_inputs(EMBER, arrays, mask, dtype, requires_grad=rg)
    xs_d = make_inputs(EMBER, arrays, mask, dtype, requires_grad=rg, device=device)
    outs_c = as_tuple(case.fn(EMBER, *xs_c))
    outs_d = as_tuple(case.fn(EMBER, *xs_d))
    for k, (a, b) in enumerate(zip(outs_c, outs_d)):
        assert b.device.type == ember.device(device).type, f"{case.name}: output {k} on {b.device}"
        assert a.dtype == b.dtype, f"{case.name}: output {k} dtype {b.dtype} vs cpu {a.dtype}"
        assert_close(to_np(b), to_np(a), dtype, case.tol * 10, f"{case.name} output {k}")
    if not rg:
        return
    r = np.random.default_rng(1)
    cots = [r.standard_normal(tuple(o.shape)) for o in outs_c]
    gc = _vjp(
        ember,
        case,
        xs_c,
        mask,
        outs_c,
        [ember.tensor(c, dtype=o.dtype) for c, o in zip(cots, outs_c)],
    )
    gd = _vjp(
        ember,
        case,
        xs_d,
        mask,
        outs_d,
        [ember.tensor(c, dtype=o.dtype, device=device) for c, o in zip(cots, outs_d)],
    )
    for k, (a, b) in enumerate(zip(gc, gd)):
        if a is None or b is None:
            assert a is None and b is None, f"{case.name}: grad {k} missing on one device"
            continue
        assert_close(b, a, dtype, case.tol * 10, f"{case.name} grad {k} on {device}")


# ---- pytest glue -------------------------------------------------------------------------


def params(cases, only=None, gpu=False):
    """``pytest.param`` per case (id = case name, with the case's marks, and its
    ``gpu_marks`` for the CUDA run)."""
    return [
        pytest.param(c, id=c.name, marks=tuple(c.marks) + (tuple(c.gpu_marks) if gpu else ()))
        for c in cases
        if only is None or only(c)
    ]


def op_tests(cases):
    """Test functions over ``cases``; a family file binds them to ``test_*`` names:

    ``test_forward, test_low_precision, test_gradcheck, test_gradgradcheck, test_cuda =
    op_tests(CASES)``.
    """
    names = [c.name for c in cases]
    dup = {n for n in names if names.count(n) > 1}
    assert not dup, f"duplicate case names: {sorted(dup)}"

    @pytest.mark.parametrize("dtype", FLOAT_DTYPES)
    @pytest.mark.parametrize("case", params(cases))
    def test_forward(case, dtype):
        check_forward(case, dtype)

    @pytest.mark.parametrize("dtype", LOW_DTYPES)
    @pytest.mark.parametrize("case", params(cases, lambda c: c.low_precision))
    def test_low_precision(case, dtype):
        check_forward(case, dtype)

    @pytest.mark.parametrize("case", params(cases, lambda c: c.grad))
    def test_gradcheck(case):
        check_gradcheck(case)

    @pytest.mark.parametrize("case", params(cases, lambda c: c.grad and c.gradgrad))
    def test_gradgradcheck(case):
        check_gradgradcheck(case)

    @pytest.mark.gpu
    @pytest.mark.parametrize("case", params(cases, gpu=True))
    def test_cuda(case):
        check_device(case, "cuda")

    return test_forward, test_low_precision, test_gradcheck, test_gradgradcheck, test_cuda
