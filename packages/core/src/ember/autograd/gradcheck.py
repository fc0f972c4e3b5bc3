"""Numerical gradient checks: compare backward's Jacobian with central finite differences."""

from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _make
from .engine import grad as _grad


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` when analytical and numerical gradients disagree."""


def _outputs(fn, inputs):
    out = fn(*inputs)
    return (out,) if isinstance(out, Tensor) else tuple(o for o in out if isinstance(o, Tensor))


def _numerical(fn, inputs, i, eps):
    x = inputs[i]
    arr = x._data  # perturbed in place, element by element (any memory layout)
    cols = []
    for k in range(arr.size):
        at = np.unravel_index(k, arr.shape)
        orig = arr[at].copy()
        arr[at] = orig + eps
        plus = [o._data.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
        arr[at] = orig - eps
        minus = [o._data.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
        arr[at] = orig
        cols.append(np.concatenate([(p - m) / (2 * eps) for p, m in zip(plus, minus)]))
    if not cols:  # an empty input: no columns
        return np.zeros((sum(o._data.size for o in _outputs(fn, inputs)), 0))
    return np.stack(cols, axis=1)


def _analytical(fn, inputs, i):
    outs = _outputs(fn, inputs)
    sizes = [o._data.size for o in outs]
    rows = []
    for j, o in enumerate(outs):
        for k in range(sizes[j]):
            if not o._rg:
                rows.append(np.zeros(inputs[i]._data.size))
                continue
            go = np.zeros(o._data.shape, o._data.dtype)
            go.reshape(-1)[k] = 1
            (g,) = _grad([o], [inputs[i]], [_make(go)], retain_graph=True, allow_unused=True)
            rows.append(
                np.zeros(inputs[i]._data.size)
                if g is None
                else g._data.astype(np.float64).reshape(-1)
            )
    return np.stack(rows, axis=0) if rows else np.zeros((0, inputs[i]._data.size))


def gradcheck(
    func,
    inputs,
    *,
    eps=1e-6,
    atol=1e-5,
    rtol=1e-3,
    raise_exception=True,
    check_undefined_grad=False,
    **_ignored,
) -> bool:
    """True when backward matches central differences for every input that requires grad.
    Use float64 inputs: float32 differences are too coarse to judge.

    >>> import ember
    >>> x = ember.randn(3, dtype=ember.float64, requires_grad=True)
    >>> ember.autograd.gradcheck(lambda t: (t * t).sin(), (x,))
    True
    """
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x._rg):
            continue
        if x.dtype.itemsize < 8:
            import warnings

            warnings.warn(
                f"gradcheck: input {i} is {x.dtype}, not float64; results may be noisy",
                stacklevel=2,
            )
        num = _numerical(func, inputs, i, eps)
        ana = _analytical(func, inputs, i)
        if num.shape != ana.shape or not np.allclose(ana, num, rtol=rtol, atol=atol):
            diff = np.abs(ana - num).max() if num.shape == ana.shape else "shape mismatch"
            msg = (
                f"Jacobian mismatch for output 0 with respect to input {i},\n"
                f"numerical:{num}\nanalytical:{ana}\nmax abs difference: {diff}"
            )
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


def gradgradcheck(
    func,
    inputs,
    grad_outputs=None,
    *,
    eps=1e-6,
    atol=1e-5,
    rtol=1e-3,
    raise_exception=True,
    **_ignored,
) -> bool:
    """``gradcheck`` of the gradient itself: checks second derivatives (double backward)."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x._rg]
    outs = _outputs(func, inputs)
    if grad_outputs is None:
        rs = np.random.default_rng(0)
        grad_outputs = [
            _make(rs.standard_normal(o._data.shape).astype(o._data.dtype), rg=True) for o in outs
        ]
    grad_outputs = list(grad_outputs)
    n = len(inputs)

    def first_grads(*args):
        xs, gos = args[:n], args[n:]
        ys = _outputs(func, xs)
        pairs = [(y, g) for y, g in zip(ys, gos) if y._rg]
        gs = _grad(
            [y for y, _ in pairs],
            [xs[i] for i in diff_idx],
            [g for _, g in pairs],
            create_graph=True,
            allow_unused=True,
        )
        return tuple(g for g in gs if g is not None)

    return gradcheck(
        first_grads,
        tuple(inputs) + tuple(grad_outputs),
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
    )
