"""GELU's pieces on float32 NumPy arrays, faster than SciPy's double-precision loops and run
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


def _normal_cdf_into(q, x):
    """Phi(x) into ``q`` (float32, 1-D): the lower tail Phi(-|x|) is computed directly (no
    cancellation for negative x), then reflected by copying x's sign bit onto 0.5 - tail;
    absolute error about 3e-7 (float32 rounding of the 1.5e-7 formula)."""
    f32 = np.float32
    z, w = scratch(np.float32, x.size)
    np.abs(x, out=z)
    np.multiply(z, f32(_P * _INV_SQRT_2), out=q)
    q += f32(1.0)
    np.reciprocal(q, out=q)  # t = 1 / (1 + p |x| / sqrt 2)
    np.multiply(q, f32(0.5 * _A[4]), out=w)  # 0.5 folded into the coefficients
    for c in _A[3:0:-1]:
        w += f32(0.5 * c)
        w *= q
    w += f32(0.5 * _A[0])
    w *= q
    np.multiply(z, z, out=z)
    z *= f32(-0.5)
    np.exp(z, out=z)
    w *= z  # w = Phi(-|x|) = erfc(|x| / sqrt 2) / 2
    # Phi(x) = 0.5 + sign(x) * (0.5 - w), and 0.5 - w >= 0: OR in x's sign bit
    np.subtract(f32(0.5), w, out=q)
    qi, zi = q.view(np.uint32), z.view(np.uint32)
    np.bitwise_and(x.view(np.uint32), _SIGN_BIT, out=zi)
    np.bitwise_or(qi, zi, out=qi)
    q += f32(0.5)
    return q


def _gelu_fwd(y, cdf, x):
    _normal_cdf_into(cdf, x)
    np.multiply(x, cdf, out=y)


def gelu_forward(x: np.ndarray):
    """``(x * Phi(x), Phi(x))`` for a float32 array."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    y, cdf = np.empty_like(x), np.empty_like(x)
    run_rows(_gelu_fwd, y.reshape(-1), cdf.reshape(-1), x.reshape(-1))
    return y, cdf


def _gelu_bwd(gx, g, x, cdf):
    np.multiply(x, x, out=gx)
    gx *= np.float32(-0.5)
    np.exp(gx, out=gx)
    gx *= x
    gx *= np.float32(_INV_SQRT_2PI)
    gx += cdf
    gx *= g


def gelu_backward(g: np.ndarray, x: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """``g * (Phi(x) + x * phi(x))`` for float32 arrays."""
    g, x, cdf = (np.ascontiguousarray(a, dtype=np.float32) for a in (g, x, cdf))
    gx = np.empty_like(x)
    run_rows(_gelu_bwd, gx.reshape(-1), g.reshape(-1), x.reshape(-1), cdf.reshape(-1))
    return gx
