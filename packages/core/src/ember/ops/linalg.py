"""Matrix products: matmul (with batch broadcasting), a fused linear layer, einsum, and the
composites built on them (bmm, mm, mv, dot, outer, tensordot)."""

from __future__ import annotations

import re
import string

import numpy as np

from .._tensor import Tensor, _make
from ..amp import autocast_mode as _amp
from ..autograd.function import Primitive
from ..autograd.grad_mode import STATE
from ..backend.device import array_module
from ..kernels.cpu import gemm_batch
from ..kernels.cuda import gemm as cuda_gemm
from ._util import result_dtype, sum_to


def _mm_error(a, b, op):
    sa, sb = a.shape, b.shape
    return RuntimeError(
        f"{op}: mat1 and mat2 shapes cannot be multiplied "
        f"({'x'.join(map(str, sa))} and {'x'.join(map(str, sb))})"
    )


class Matmul(Primitive):
    """``a @ b`` with NumPy's matmul broadcasting; the backward reduces over broadcast dims."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        out = _flat_matmul(a, b)
        return out if out.dtype == a.dtype else out.astype(a.dtype)  # bfloat16 gives float32

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = a._data.ndim, b._data.ndim
        if (
            na >= 2
            and nb >= 2
            and a._data.shape[:-2] == b._data.shape[:-2]
            and _first_order(g, a, b)
        ):
            ad, bd, gd = a._data, b._data, g._data
            ga = _make(_mm(gd, bd.swapaxes(-1, -2))) if ctx._next[0] is not None else None
            gb = _make(_mm(ad.swapaxes(-1, -2), gd)) if ctx._next[1] is not None else None
            return ga, gb
        a2 = a.unsqueeze(0) if na == 1 else a
        b2 = b.unsqueeze(-1) if nb == 1 else b
        if na == 1 and nb == 1:  # a dot product: g is 0-d
            g2 = g.reshape(1, 1)
        elif na == 1:
            g2 = g.unsqueeze(-2)
        elif nb == 1:
            g2 = g.unsqueeze(-1)
        else:
            g2 = g
        ga = gb = None
        if ctx._next[0] is not None:
            ga = sum_to(matmul(g2, b2.mT), a2._data.shape)
            ga = ga.reshape(a._data.shape) if na == 1 else ga
        if ctx._next[1] is not None:
            gb = sum_to(matmul(a2.mT, g2), b2._data.shape)
            gb = gb.reshape(b._data.shape) if nb == 1 else gb
        return ga, gb


def _flat_matmul(a, b):
    """``a @ b``; a stacked ``a`` times a matrix ``b`` runs as ONE 2-D product over the merged
    leading dims (NumPy would call BLAS once per leading index: 1.5x slower at (8,128,256))."""
    if isinstance(a, np.ndarray):
        a, b = _operands(a, b)
    if a.ndim > 2 and b.ndim == 2:
        out = _matmul_arrays(a.reshape(-1, a.shape[-1]), b)
        return out.reshape(a.shape[:-1] + (b.shape[1],))
    return _matmul_arrays(a, b)


def _operands(a, b):
    """NumPy operands made ready for BLAS: a broadcast (stride-0) one, which sends NumPy off
    BLAS, is copied; so is a transposed stacked right operand under a short inner dimension:
    OpenBLAS multiplies by a transposed matrix 1.6-2.8x slower when the inner dimension is
    below 64 (attention's q @ k.mT with 32-dim heads), and a copy costs less than that. From 64
    up the copy costs more than it saves (GPT bench step: 191 -> 183 ms)."""
    a = a if a.ndim < 2 or _blas_ready(a) else np.ascontiguousarray(a)
    b = b if b.ndim < 2 or _blas_ready(b) else np.ascontiguousarray(b)
    if a.ndim > 2 and b.ndim > 2 and b.strides[-2] == b.itemsize and a.shape[-1] < 64:
        b = np.ascontiguousarray(b)
    return a, b


def _matmul_arrays(a, b):
    """NumPy's matmul (a stack of products in one batched OpenBLAS call where it can describe
    them: kernels/cpu/gemm_batch.py), or on CUDA one direct cuBLAS call where it can describe
    the operands (kernels/cuda/gemm.py), else CuPy's matmul."""
    if isinstance(a, np.ndarray):
        out = gemm_batch.matmul(a, b) if a.ndim > 2 else None
        return np.matmul(a, b) if out is None else out

    out = cuda_gemm.matmul(a, b) if cuda_gemm.enabled() else None
    return array_module(a).matmul(a, b) if out is None else out


def _blas_ready(x) -> bool:
    """Whether each matrix of a stacked array is one BLAS accepts in place: unit stride along
    one of its two axes (rows or columns), as NumPy's matmul needs to call BLAS at all."""
    rows, cols = x.strides[-2:]
    n, m = x.shape[-2:]
    item = x.itemsize
    row_major = cols == item and rows % item == 0 and rows >= m * item
    col_major = rows == item and cols % item == 0 and cols >= n * item
    return row_major or col_major


def _check_mm(a, b, op):
    if a._data.ndim == 0 or b._data.ndim == 0:
        raise RuntimeError(
            f"{op}: both arguments to matmul need to be at least 1D, but they are "
            f"{a._data.ndim}D and {b._data.ndim}D"
        )
    ka = a._data.shape[-1]
    kb = b._data.shape[-2] if b._data.ndim > 1 else b._data.shape[0]
    if ka != kb:
        raise _mm_error(a, b, op)


def matmul(input, other):
    """Matrix product with NumPy/PyTorch broadcasting of batch dimensions."""
    if _amp.STATE.on:
        input, other = _amp.lower_precision(input, other)
    if input._data.dtype != other._data.dtype:
        rt = result_dtype(input, other)
        input, other = input.to(rt), other.to(rt)
    _check_mm(input, other, "matmul")
    try:
        return Matmul.apply(input, other)
    except ValueError:
        raise _mm_error(input, other, "matmul") from None


def mm(input, mat2):
    """2-D matrix product."""
    if input._data.ndim != 2 or mat2._data.ndim != 2:
        raise RuntimeError(
            f"mm: expected 2-D tensors, got {input._data.ndim}D and {mat2._data.ndim}D"
        )
    return matmul(input, mat2)


def bmm(input, mat2):
    """Batched matrix product of (B, n, m) and (B, m, p)."""
    if input._data.ndim != 3 or mat2._data.ndim != 3:
        raise RuntimeError(
            f"bmm: batch1 must be a 3D tensor and batch2 must be a 3D tensor "
            f"(got {list(input.shape)} and {list(mat2.shape)})"
        )
    if input._data.shape[0] != mat2._data.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ: {list(input.shape)} and {list(mat2.shape)}")
    return matmul(input, mat2)


def mv(input, vec):
    """Matrix-vector product."""
    return matmul(input, vec)


def dot(input, other):
    """Inner product of two 1-D tensors."""
    if input._data.ndim != 1 or other._data.ndim != 1:
        raise RuntimeError(
            f"1D tensors expected, but got {input._data.ndim}D and {other._data.ndim}D tensors"
        )
    return matmul(input, other)


def outer(input, vec2):
    """Outer product of two 1-D tensors."""
    return input.unsqueeze(1) * vec2.unsqueeze(0)


class Linear(Primitive):
    """``x @ w.T + b`` in one node (the most common op in a network)."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        out = _flat_matmul(x, w.T)
        if out.dtype != x.dtype:  # bfloat16 matmul gives float32
            out = out.astype(x.dtype)
        if b is not None:
            out += b
        return out

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        if _first_order(g, x, w):
            return _linear_grads_first_order(ctx, g._data, x._data, w._data)
        gx = gw = gb = None
        if ctx._next[0] is not None:
            gx = matmul(g, w)
        if ctx._next[1] is not None:
            n = w._data.shape[0]
            gw = matmul(g.reshape(-1, n).mT, x.reshape(-1, x._data.shape[-1]))
        if len(ctx._next) > 2 and ctx._next[2] is not None:
            gb = g.reshape(-1, g._data.shape[-1]).sum(0)
        return gx, gw, gb


def _first_order(*tensors) -> bool:
    """Whether a backward may work on plain arrays: no graph of the gradient is being built
    (``create_graph=False``), no autocast, one dtype (so no casts are skipped)."""
    if STATE.grad_enabled or _amp.STATE.on:
        return False
    dtype = tensors[0]._data.dtype
    return all(t._data.dtype == dtype for t in tensors)


def _mm(a, b):
    """``a @ b`` on arrays as the Matmul node computes it (bfloat16 products come back as
    bfloat16)."""
    out = _flat_matmul(a, b)
    return out if out.dtype == a.dtype else out.astype(a.dtype)


def _linear_grads_first_order(ctx, g, x, w):
    """Linear's gradients straight from arrays: the same products and sum as the tensor
    path, without a dozen small nodes per layer (each ~5 us in a 3-layer MLP step)."""
    n = w.shape[0]
    g2 = g.reshape(-1, n)
    gx = _make(_mm(g, w)) if ctx._next[0] is not None else None
    gw = _make(_mm(g2.T, x.reshape(-1, x.shape[-1]))) if ctx._next[1] is not None else None
    gb = None
    if len(ctx._next) > 2 and ctx._next[2] is not None:
        gb = _make(g2.sum(0) if isinstance(g2, np.ndarray) else _column_sums(g2))
    return gx, gw, gb


_ONES: dict = {}


def _column_sums(a):
    """``a.sum(0)`` of a 2-D CuPy array as a product with a ones row: cuBLAS reads ``a`` once
    at memory speed, where CuPy's axis-0 reduction was 6x slower (GPT-2 bias gradients)."""
    xp = array_module(a)
    key = (a.shape[0], a.dtype.str, int(a.device.id))
    ones = _ONES.get(key)
    if ones is None:
        if len(_ONES) > 16:
            _ONES.clear()
        ones = _ONES[key] = xp.ones((1, a.shape[0]), a.dtype)
    return _mm(ones, a).reshape(a.shape[1])


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` (``F.linear``)."""
    if _amp.STATE.on:
        input, weight, bias = _amp.lower_precision(input, weight, bias)
    if input._data.shape[-1:] != weight._data.shape[-1:]:
        raise RuntimeError(
            f"linear: mat1 and mat2 shapes cannot be multiplied "
            f"({'x'.join(map(str, input.shape))} and "
            f"{'x'.join(map(str, weight.shape[::-1]))})"
        )
    if input._data.dtype != weight._data.dtype:
        raise RuntimeError(
            f"linear: expected input and weight to have the same dtype, but got input "
            f"{input.dtype} and weight {weight.dtype}"
        )
    if bias is None:
        return Linear.apply(input, weight, None)
    return Linear.apply(input, weight, bias)


def tensordot(a, b, dims=2):
    """Sum products over the last ``dims`` axes of ``a`` and first of ``b`` (or given lists)."""
    if isinstance(dims, int):
        da = list(range(a._data.ndim - dims, a._data.ndim))
        db = list(range(dims))
    else:
        da, db = list(dims[0]), list(dims[1])
        da = [d % a._data.ndim for d in da]
        db = [d % b._data.ndim for d in db]
    fa = [i for i in range(a._data.ndim) if i not in da]
    fb = [i for i in range(b._data.ndim) if i not in db]
    sa = [a._data.shape[i] for i in fa]
    sb = [b._data.shape[i] for i in fb]
    k = 1
    for i in da:
        k *= a._data.shape[i]
    am = a.permute(*fa, *da).reshape(-1, k)
    bm = b.permute(*db, *fb).reshape(k, -1)
    return matmul(am, bm).reshape(*sa, *sb)


# ---- einsum ------------------------------------------------------------------------------


def _parse(eq, shapes):
    eq = eq.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise RuntimeError(
            f"einsum(): {len(ins)} operands in the equation but {len(shapes)} were given"
        )
    used = set(re.sub(r"[^a-zA-Z]", "", eq))
    free = [c for c in string.ascii_letters if c not in used]
    ell = 0
    for sub, shp in zip(ins, shapes):
        if "..." in sub:
            ell = max(ell, len(shp) - (len(sub) - 3))
    out_ins = []
    for sub, shp in zip(ins, shapes):
        if "..." in sub:
            n = len(shp) - (len(sub) - 3)
            sub = sub.replace("...", "".join(free[ell - n : ell]))
        if len(sub) != len(shp):
            raise RuntimeError(
                f"einsum(): the number of subscripts in the equation ({len(sub)}) does not "
                f"match the number of dimensions ({len(shp)}) for operand"
            )
        out_ins.append(sub)
    if arrow:
        out = rhs.replace("...", "".join(free[:ell]) if ell else "")
    else:
        counts = {}
        for s in out_ins:
            for c in s:
                counts[c] = counts.get(c, 0) + 1
        out = ("".join(free[:ell]) if ell else "") + "".join(
            sorted(c for c, n in counts.items() if n == 1 and c not in free)
        )
    return out_ins, out


class Einsum(Primitive):
    """One ``einsum`` term; each operand's gradient is another einsum of the others and ``g``."""

    @staticmethod
    def forward(ctx, *arrays, ins, out):
        ctx.ins, ctx.out = ins, out
        ctx.save_for_backward(*arrays)
        dtype = arrays[0].dtype
        if dtype.kind == "V":  # NumPy's einsum has no bfloat16 loops
            arrays = [a.astype("float32") for a in arrays]
        res = array_module(arrays[0]).einsum(",".join(ins) + "->" + out, *arrays, optimize=True)
        return res if res.dtype == dtype else res.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        ops = ctx.saved_tensors
        grads = []
        for i, sub in enumerate(ctx.ins):
            if ctx._next[i] is None:
                grads.append(None)
                continue
            sizes = dict(zip(sub, ops[i]._data.shape))
            uniq = "".join(dict.fromkeys(sub))  # a repeated subscript is a diagonal
            others = [(s, t) for j, (s, t) in enumerate(zip(ctx.ins, ops)) if j != i]
            have = set(ctx.out).union(*[set(s) for s, _ in others])
            keep = "".join(c for c in uniq if c in have)
            gi = Einsum.apply(
                g, *[t for _, t in others], ins=[ctx.out] + [s for s, _ in others], out=keep
            )
            if keep != uniq:  # dims only this operand had were summed: broadcast back
                view = [sizes[c] if c in keep else 1 for c in uniq]
                gi = gi.reshape(view).expand(*[sizes[c] for c in uniq])
            if uniq != sub:
                gi = _embed_diagonal(gi, uniq, sub, sizes)
            grads.append(gi)
        return tuple(grads)


def _embed_diagonal(g, uniq, sub, sizes):
    """Zeros of the operand's shape with ``g`` (indexed by ``uniq``) on the diagonals that a
    repeated subscript in ``sub`` names: an einsum with identity matrices."""
    from .._tensor import _make

    xp = array_module(g._data)
    fresh = (c for c in string.ascii_letters if c not in set(sub))
    target, deltas, seen = [], [], set()
    for c in sub:
        if c in seen:
            f = next(fresh)
            target.append(f)
            deltas.append(c + f)
        else:
            seen.add(c)
            target.append(c)
    eyes = [_make(xp.eye(sizes[d[0]], dtype=g._data.dtype)) for d in deltas]
    return Einsum.apply(g, *eyes, ins=[uniq] + deltas, out="".join(target))


def einsum(equation, *operands):
    """Einstein summation, e.g. ``einsum("bij,bjk->bik", a, b)`` (``...`` supported)."""
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    if _amp.STATE.on:
        operands = _amp.lower_precision(*operands)
    if not all(isinstance(t, Tensor) for t in operands):
        raise TypeError("einsum(): operands must be Tensors")
    if len({t._data.dtype for t in operands}) > 1:
        rt = result_dtype(*operands)
        operands = tuple(t.to(rt) for t in operands)
    shapes = [list(t._data.shape) for t in operands]
    ins, out = _parse(equation, [t._data.shape for t in operands])
    try:
        return Einsum.apply(*operands, ins=ins, out=out)
    except ValueError as exc:  # NumPy's size mismatch between operands
        raise RuntimeError(f"einsum(): {exc} (operand shapes {shapes})") from None
