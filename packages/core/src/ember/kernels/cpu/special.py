"""GELU on float32 NumPy arrays, faster than SciPy's double-precision loops and run
on row blocks in threads (see parallel.py)."""

from __future__ import annotations

import math

import numpy as np

from .parallel import run_rows, scratch

# Abramowitz & Stegun 7.1.26: erfc(z) ~ t*(a1 + t*(a2 + ... a5)) * exp(-z^2), t = 1/(1 + p z)
# for z >= 0, absolute error below 1.5e-7.
_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


_SIGN_BIT = np.uint32(0x80000000)


def _gelu_rows(y, d, x):
    """``y = x * Phi(x)`` and, when ``d`` is given, ``d = Phi(x) + x * phi(x)`` (GELU's
    derivative, so the backward is one multiply), on one float32 block.

    The lower tail Phi(-|x|) is computed directly (no cancellation for negative x), then
    reflected by copying x's sign bit onto 0.5 - tail; absolute error about 3e-7 (float32
    rounding of the 1.5e-7 formula). ``d`` (or a scratch buffer) holds t, then the sign bits."""
    f32 = np.float32
    z, w, *rest = scratch(np.float32, x.size, 2 if d is not None else 3)
    t = d if d is not None else rest[0]
    np.abs(x, out=z)
    np.multiply(z, f32(_P * _INV_SQRT_2), out=t)
    t += f32(1.0)
    np.divide(f32(1.0), t, out=t)  # t = 1 / (1 + p |x| / sqrt 2); divide beats reciprocal
    np.multiply(t, f32(0.5 * _A[4]), out=w)  # 0.5 folded into the coefficients
    for c in _A[3:0:-1]:
        w += f32(0.5 * c)
        w *= t
    w += f32(0.5 * _A[0])
    w *= t
    np.multiply(z, z, out=z)
    z *= f32(-0.5)
    np.exp(z, out=z)  # z = exp(-x^2 / 2)
    w *= z  # w = Phi(-|x|) = erfc(|x| / sqrt 2) / 2
    # Phi(x) = 0.5 + sign(x) * (0.5 - w), and 0.5 - w >= 0: OR in x's sign bit
    np.subtract(f32(0.5), w, out=y)
    yi, ti = y.view(np.uint32), t.view(np.uint32)
    np.bitwise_and(x.view(np.uint32), _SIGN_BIT, out=ti)
    np.bitwise_or(yi, ti, out=yi)
    y += f32(0.5)  # y = Phi(x)
    if d is not None:
        np.multiply(x, z, out=d)
        d *= f32(_INV_SQRT_2PI)
        d += y
    y *= x


def gelu_forward(x: np.ndarray, with_grad: bool = False):
    """``(x * Phi(x), d)`` for a float32 array, ``d`` the derivative ``Phi(x) + x * phi(x)``
    when ``with_grad`` (else None)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty_like(x)
    if not with_grad:
        run_rows(lambda yb, xb: _gelu_rows(yb, None, xb), y.reshape(-1), x.reshape(-1))
        return y, None
    d = np.empty_like(x)
    run_rows(_gelu_rows, y.reshape(-1), d.reshape(-1), x.reshape(-1))
    return y, d


def _times(out, a, b):
    np.multiply(a, b, out=out)


def gelu_backward(g: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``g * d`` for float32 arrays, ``d`` the derivative ``gelu_forward`` returned."""
    g, d = (np.ascontiguousarray(a, dtype=np.float32) for a in (g, d))
    gx = np.empty_like(d)
    run_rows(_times, gx.reshape(-1), g.reshape(-1), d.reshape(-1))
    return gx
