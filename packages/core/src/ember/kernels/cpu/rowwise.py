"""Row-wise kernels for softmax and layer norm on C-contiguous NumPy arrays: in-place passes,
run on row blocks in threads (parallel.py). Each normalizes over trailing axes, so the rows of
the leading axis are independent."""

from __future__ import annotations

import numpy as np

from .parallel import run_rows

_ONES: dict = {}
_GEMV_MIN = 32


def _row_sum(a: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``scale * a.sum(axis=1, keepdims=True)`` for a 2-D ``a``. For float32/float64 this is
    a BLAS matrix-vector product: NumPy's own reduction pays ~50 ns per row, which for rows of
    a few hundred elements is most of its time ((1024, 256) float32: 55 us vs 10 us). Rows
    narrower than ``_GEMV_MIN`` use NumPy's sum: there BLAS gains nothing, and one CI run saw
    "invalid value encountered in matmul" from a (3, 5) softmax of zeros (never reproduced;
    a vector kernel reading lanes past a short row's end would explain it)."""
    n = a.shape[1]
    if a.dtype not in (np.float32, np.float64) or n < _GEMV_MIN:
        out = a.sum(axis=1, keepdims=True)
        return out * scale if scale != 1.0 else out
    key = (n, a.dtype, scale)
    v = _ONES.get(key)
    if v is None:
        v = _ONES[key] = np.full(n, scale, a.dtype)
    return (a @ v)[:, None]


def _row_dot(a: np.ndarray, b: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``scale * (a * b).sum(axis=1, keepdims=True)`` (one pass, no product array)."""
    if a.dtype not in (np.float32, np.float64):
        return _row_sum(a * b, scale)
    out = np.vecdot(a, b)[:, None]
    if scale != 1.0:
        out *= a.dtype.type(scale)
    return out


def _rows(x: np.ndarray, k: int) -> np.ndarray:
    """View ``x`` as (rows, trailing) with the last ``k`` axes flattened."""
    lead = int(np.prod(x.shape[: x.ndim - k], dtype=np.int64))
    return x.reshape(lead, int(np.prod(x.shape[x.ndim - k :], dtype=np.int64)))  # also when empty


# Below this largest input, exp(x) cannot overflow a float32 row sum of up to a million terms,
# so the max subtraction (a row reduction NumPy pays for per row: 369 us of a (4096, 128)
# softmax's 900) is skipped; rows whose sum then underflows (every entry below about -69) are
# redone with it. Without the shift the result differs from the shifted one by rounding only.
# Half-precision types (exp overflows past 11) always shift.
_NO_SHIFT_MAX = 60.0
_MIN_ROW_SUM = 1e-30


def softmax_last(x: np.ndarray, bias=None) -> np.ndarray:
    """softmax(x + bias) over the last axis; ``bias`` broadcasts against x's trailing shape."""
    z = np.ascontiguousarray(x) if bias is None else np.add(x, bias)  # one broadcast pass
    z2 = z.reshape(-1, z.shape[-1])
    y = np.empty_like(z2)
    wide = z2.dtype in (np.float32, np.float64)
    shift = not (wide and z2.size and z2.max() <= _NO_SHIFT_MAX)  # NaN compares False: shift

    def stable(out, zs):
        np.subtract(zs, zs.max(axis=-1, keepdims=True), out=out)
        np.exp(out, out=out)
        return _row_sum(out)

    def kern(out, zs):
        if shift:
            sums = stable(out, zs)
        else:
            np.exp(zs, out=out)
            sums = _row_sum(out)
            if not sums.min() >= _MIN_ROW_SUM:
                sums = stable(out, zs)
        out /= sums

    if z2.size:
        run_rows(kern, y, z2)
    return y.reshape(z.shape)


def softmax_last_grad(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """y * (g - sum(g * y)) over the last axis."""
    g2 = np.ascontiguousarray(g).reshape(-1, g.shape[-1])
    y2 = np.ascontiguousarray(y).reshape(g2.shape)
    out = np.empty_like(g2)

    def kern(o, gs, ys):
        np.multiply(gs, ys, out=o)
        s = _row_sum(o)
        np.subtract(gs, s, out=o)
        o *= ys

    return run_rows(kern, out, g2, y2).reshape(g.shape)


def layer_norm(x: np.ndarray, w, b, k: int, eps: float):
    """(out, xhat, rstd) of layer norm over the last ``k`` axes; ``w``/``b`` may be None
    (then ``out`` is ``xhat``)."""
    x2 = _rows(np.ascontiguousarray(x), k)
    xhat = np.empty_like(x2)
    rstd = np.empty((x2.shape[0], 1), x2.dtype)
    w2 = None if w is None else w.reshape(-1)
    b2 = None if b is None else b.reshape(-1)

    def normalize(xh, xs, r):
        inv_n = 1.0 / xs.shape[1]
        np.subtract(xs, _row_sum(xs, inv_n), out=xh)
        var = _row_dot(xh, xh, inv_n)
        var += eps
        np.sqrt(var, out=r)
        np.reciprocal(r, out=r)
        xh *= r

    def affine(o, xs, xh, r):
        normalize(xh, xs, r)
        np.multiply(xh, w2, out=o) if w2 is not None else np.copyto(o, xh)
        if b2 is not None:
            o += b2

    if w is None and b is None:
        out = run_rows(normalize, xhat, x2, rstd, threads=False)
    else:
        out = run_rows(affine, np.empty_like(x2), x2, xhat, rstd, threads=False)
    shape = x.shape
    return out.reshape(shape), xhat.reshape(shape), rstd.reshape(shape[: x.ndim - k] + (1,) * k)


def layer_norm_grad_x(g: np.ndarray, w, xhat: np.ndarray, rstd: np.ndarray, k: int):
    """rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)) with gxhat = g * w."""
    g2 = _rows(np.ascontiguousarray(g), k)
    xh = _rows(np.ascontiguousarray(xhat), k)
    r2 = rstd.reshape(-1, 1)
    w2 = None if w is None else w.reshape(-1)
    out = np.empty_like(g2)

    def kern(o, gs, xs, rs):
        np.multiply(gs, w2, out=o) if w2 is not None else np.copyto(o, gs)
        inv_n = 1.0 / o.shape[1]
        m1 = _row_sum(o, inv_n)
        m2 = _row_dot(o, xs, inv_n)
        o -= m1
        o -= xs * m2
        o *= rs

    return run_rows(kern, out, g2, xh, r2, threads=False).reshape(g.shape)
