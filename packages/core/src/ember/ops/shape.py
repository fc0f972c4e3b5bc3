"""Shape ops: views (reshape, permute, expand, squeeze ...) that share memory with their input,
and copies (cat, flip, roll, pad, repeat, tril/triu, diag)."""

from __future__ import annotations

import numpy as np

from .._tensor import _make, _wrap_dim
from ..autograd.function import Primitive
from ..backend import memory_format as _mf
from ..backend.device import array_module
from ._util import sum_to


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], list | tuple):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _infer(shape, numel, op):
    shape = list(shape)
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if neg:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{shape}' is invalid for input of size {numel}")
        shape[neg[0]] = numel // known
    elif known != numel:
        raise RuntimeError(f"shape '{shape}' is invalid for input of size {numel}")
    return tuple(shape)


class Reshape(Primitive):
    view = True

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return reshape(g, ctx.shape)


def reshape(input, *shape):
    """The same elements in a new shape (a view when the layout allows, else a copy)."""
    shape = _shape_arg(shape)
    if shape == input._data.shape:
        return Reshape.apply(input, shape=shape) if input._rg else _alias(input)
    return Reshape.apply(input, shape=_infer(shape, input._data.size, "reshape"))


def _alias(t):
    if t._rg:  # still a graph node, so gradients keep flowing
        return Reshape.apply(t, shape=t._data.shape)
    out = _make(t._data)
    out._vbox, out._base = t._vbox, t._base if t._base is not None else t
    return out


def view(input, *shape):
    """A view with a new shape; raises if the memory layout needs a copy (use reshape)."""
    if len(shape) == 1 and not isinstance(shape[0], int | list | tuple):
        from .elementwise import cast

        return cast(input, shape[0])
    shape = _infer(_shape_arg(shape), input._data.size, "view")
    d = input._data
    if isinstance(d, np.ndarray) and not d.flags.c_contiguous:
        try:
            np.reshape(d, shape, copy=False)
        except ValueError:
            raise RuntimeError(
                "view size is not compatible with input tensor's size and stride (at least one "
                "dimension spans across two contiguous subspaces). Use .reshape(...) instead."
            ) from None
        except TypeError:  # NumPy < 2.1 has no copy= argument; reshape decides
            pass
    return Reshape.apply(input, shape=shape)


class Permute(Primitive):
    view = True

    @staticmethod
    def forward(ctx, a, perm):
        ctx.perm = perm
        return a.transpose(perm)

    @staticmethod
    def backward(ctx, g):
        inv = [0] * len(ctx.perm)
        for i, p in enumerate(ctx.perm):
            inv[p] = i
        return Permute.apply(g, perm=tuple(inv))


def permute(input, *dims):
    """Reorder the dimensions (a view)."""
    dims = _shape_arg(dims)
    n = input._data.ndim
    if len(dims) != n:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
            f"length of the desired ordering of dimensions i.e. input.dim() = {n} is not equal "
            f"to len(dims) = {len(dims)}"
        )
    perm = tuple(_wrap_dim(d, n, "permute") for d in dims)
    if len(set(perm)) != n:
        raise RuntimeError(f"permute: repeated dim in {list(dims)}")
    return Permute.apply(input, perm=perm)


def transpose(input, dim0, dim1):
    """Swap two dimensions (a view)."""
    n = input._data.ndim
    if n == 0:
        return _alias(input)
    a, b = _wrap_dim(dim0, n, "transpose"), _wrap_dim(dim1, n, "transpose")
    perm = list(range(n))
    perm[a], perm[b] = perm[b], perm[a]
    return Permute.apply(input, perm=tuple(perm))


def movedim(input, source, destination):
    """Move dimension(s) ``source`` to position(s) ``destination``."""
    n = input._data.ndim
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [_wrap_dim(s, n, "movedim") for s in src]
    dst = [_wrap_dim(d, n, "movedim") for d in dst]
    order = [i for i in range(n) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return Permute.apply(input, perm=tuple(order))


class Expand(Primitive):
    view = True

    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return array_module(a).broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        return sum_to(g, ctx.shape)


def expand(input, *sizes):
    """Broadcast singleton dimensions to ``sizes`` without copying (-1 keeps a size)."""
    sizes = _shape_arg(sizes)
    shape = input._data.shape
    if len(sizes) < len(shape):
        raise RuntimeError(
            f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to "
            f"the number of dimensions in the tensor ({len(shape)})"
        )
    lead = len(sizes) - len(shape)
    target = list(sizes)
    for i, s in enumerate(shape):
        t = sizes[lead + i]
        if t == -1:
            target[lead + i] = s
        elif s != 1 and s != t:
            raise RuntimeError(
                f"The expanded size of the tensor ({t}) must match the existing size ({s}) at "
                f"non-singleton dimension {lead + i}.  Target sizes: {list(sizes)}.  "
                f"Tensor sizes: {list(shape)}"
            )
    target = tuple(target)
    if target == shape:
        return _alias(input) if not input._rg else Reshape.apply(input, shape=shape)
    return Expand.apply(input, shape=target)


def expand_as(input, other):
    """``expand`` to ``other``'s shape."""
    return expand(input, other._data.shape)


def broadcast_to(input, shape):
    """``expand`` to ``shape``."""
    return expand(input, tuple(shape))


def squeeze(input, dim=None):
    """Drop size-1 dimensions (all, or those named in ``dim``)."""
    shape = input._data.shape
    if dim is None:
        new = tuple(s for s in shape if s != 1)
    else:
        ds = (dim,) if isinstance(dim, int) else tuple(dim)
        ds = {_wrap_dim(d, len(shape), "squeeze") for d in ds} if shape else set()
        new = tuple(s for i, s in enumerate(shape) if not (i in ds and s == 1))
    return reshape(input, new) if new != shape else _alias(input)


def unsqueeze(input, dim):
    """Insert a size-1 dimension at ``dim``."""
    shape = input._data.shape
    d = _wrap_dim(dim, len(shape) + 1, "unsqueeze")
    return Reshape.apply(input, shape=shape[:d] + (1,) + shape[d:])


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dimensions ``start_dim..end_dim`` into one."""
    shape = input._data.shape
    if not shape:
        return reshape(input, (1,))
    s, e = _wrap_dim(start_dim, len(shape), "flatten"), _wrap_dim(end_dim, len(shape), "flatten")
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    n = 1
    for x in shape[s : e + 1]:
        n *= x
    return reshape(input, shape[:s] + (n,) + shape[e + 1 :])


def unflatten(input, dim, sizes):
    """Split dimension ``dim`` into ``sizes`` (one may be -1)."""
    shape = input._data.shape
    d = _wrap_dim(dim, len(shape), "unflatten")
    sizes = _infer(tuple(sizes), shape[d], "unflatten")
    return reshape(input, shape[:d] + sizes + shape[d + 1 :])


class Flip(Primitive):
    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        return array_module(a).flip(a, axes).copy()

    @staticmethod
    def backward(ctx, g):
        return Flip.apply(g, axes=ctx.axes)


def flip(input, dims):
    """Reverse the order of elements along ``dims`` (a copy, as in PyTorch)."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    axes = tuple(_wrap_dim(d, input._data.ndim, "flip") for d in dims)
    return Flip.apply(input, axes=axes)


def flip_method(self, *dims, **kw):
    """``Tensor.flip``: dims as varargs ``x.flip(0, 1)``, one tuple, or ``dims=``, as in torch."""
    if dims:
        kw["dims"] = dims[0] if len(dims) == 1 else dims
    return flip(self, **kw)


class Roll(Primitive):
    @staticmethod
    def forward(ctx, a, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        if axes is None:
            return array_module(a).roll(a.reshape(-1), shifts).reshape(a.shape)
        return array_module(a).roll(a, shifts, axes)

    @staticmethod
    def backward(ctx, g):
        neg = -ctx.shifts if isinstance(ctx.shifts, int) else tuple(-s for s in ctx.shifts)
        return Roll.apply(g, shifts=neg, axes=ctx.axes)


def roll(input, shifts, dims=None):
    """Rotate elements along ``dims`` (the flattened tensor when None)."""
    if dims is not None:
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        dims = tuple(_wrap_dim(d, input._data.ndim, "roll") for d in dims)
        shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
        if len(shifts) != len(dims):
            raise RuntimeError(f"roll: shifts ({len(shifts)}) and dims ({len(dims)}) differ")
    return Roll.apply(input, shifts=shifts, axes=dims)


def repeat(input, *sizes):
    """Tile the tensor ``sizes[i]`` times along each dimension (PyTorch's ``repeat``)."""
    reps = _shape_arg(sizes)
    shape = input._data.shape
    if len(reps) < len(shape):
        raise RuntimeError(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions "
            "of tensor"
        )
    shape = (1,) * (len(reps) - len(shape)) + shape
    x = reshape(input, sum(((1, s) for s in shape), ()))
    x = expand(x, sum(((r, s) for r, s in zip(reps, shape)), ()))
    out = reshape(x, tuple(r * s for r, s in zip(reps, shape)))
    return clone(out) if all(r == 1 for r in reps) else out  # always a copy, as in PyTorch


def tile(input, dims):
    """``repeat`` with ``dims`` padded with leading ones to the tensor's rank."""
    dims = tuple(dims)
    n = input._data.ndim
    if len(dims) < n:
        dims = (1,) * (n - len(dims)) + dims
    return repeat(input, dims)


class Pad(Primitive):
    @staticmethod
    def forward(ctx, a, widths, value):
        ctx.widths = widths
        return array_module(a).pad(a, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        idx = tuple(slice(lo, g._data.shape[i] - hi) for i, (lo, hi) in enumerate(ctx.widths))
        return g[idx]


def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` dimensions; ``pad`` lists (left, right) from the last
    dimension backwards, as ``F.pad`` does. Modes: constant, reflect, replicate, circular."""
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    n = input._data.ndim
    k = len(pad) // 2
    if k > n:
        raise RuntimeError(f"Padding length too large: {len(pad)} for a {n}-d input")
    pairs = [(0, 0)] * n
    for i in range(k):
        pairs[n - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if mode == "constant":
        x = input
        if any(lo < 0 or hi < 0 for lo, hi in pairs):  # negative padding crops
            idx = tuple(slice(max(-lo, 0), s - max(-hi, 0)) for (lo, hi), s in zip(pairs, x.shape))
            x = x[idx]
            pairs = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
        return Pad.apply(x, widths=tuple(pairs), value=0.0 if value is None else value)
    np_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}.get(mode)
    if np_mode is None:
        raise NotImplementedError(f"pad: unsupported mode {mode!r}")
    out = input
    for d, (lo, hi) in enumerate(pairs):
        if lo or hi:
            src = np.pad(np.arange(out._data.shape[d]), (lo, hi), mode=np_mode)
            from .index import index_select

            out = index_select(out, d, _make(src.astype(np.int64)))
    return out


class Tri(Primitive):
    @staticmethod
    def forward(ctx, a, k, upper):
        ctx.k, ctx.upper = k, upper
        xp = array_module(a)
        return xp.triu(a, k) if upper else xp.tril(a, k)

    @staticmethod
    def backward(ctx, g):
        return Tri.apply(g, k=ctx.k, upper=ctx.upper)


def tril(input, diagonal=0):
    """Keep the lower triangle (on and below ``diagonal``); zero the rest."""
    return Tri.apply(input, k=diagonal, upper=False)


def triu(input, diagonal=0):
    """Keep the upper triangle (on and above ``diagonal``); zero the rest."""
    return Tri.apply(input, k=diagonal, upper=True)


class Diag(Primitive):
    @staticmethod
    def forward(ctx, a, k):
        ctx.k, ctx.n = k, a.shape
        return array_module(a).diag(a, k).copy()

    @staticmethod
    def backward(ctx, g):
        if len(ctx.n) == 1:
            return Diag.apply(g, k=ctx.k)
        full = Diag.apply(g, k=ctx.k)  # (m, m) square; crop or pad to the input's shape
        rows, cols = ctx.n
        m = full._data.shape[0]
        return pad(full, (0, max(cols - m, 0), 0, max(rows - m, 0)))[:rows, :cols]


def diag(input, diagonal=0):
    """A 1-D tensor's diagonal matrix, or a 2-D tensor's diagonal."""
    if input._data.ndim not in (1, 2):
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input._data.ndim}D")
    return Diag.apply(input, k=diagonal)


class Clone(Primitive):
    @staticmethod
    def forward(ctx, a, order=None):
        if order is None:
            return a.copy()
        return _mf.copy_in_order(a, order)

    @staticmethod
    def backward(ctx, g):
        return g


def clone(input, *, memory_format=None):
    """A copy with its own memory (gradients flow back to ``input``). ``channels_last``
    (``channels_last_3d``) stores it as N, H, W, C (N, D, H, W, C); otherwise row-major."""
    order = None
    if memory_format is not None and memory_format is not _mf.preserve_format:
        order = _mf.storage_order(memory_format, input._data.ndim, "clone")
    return Clone.apply(input, order=order)


def contiguous(input, memory_format=None):
    """``input`` if already laid out as ``memory_format`` asks (row-major by default, or
    ``ember.channels_last``), else a copy that is."""
    order = _mf.storage_order(memory_format, input._data.ndim, "contiguous")
    if order is None:
        return input if input._data.flags.c_contiguous else Clone.apply(input)
    return input if _mf.is_laid_out(input._data, order) else Clone.apply(input, order=order)
