"""Indexing: getitem (basic views and advanced copies), setitem, gather/scatter, index_select,
masked ops, sort/topk, unique and nonzero."""

from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _make, _wrap_dim
from ..autograd.function import Primitive
from ..backend.device import array_module
from ._util import broadcast_shapes, scalar_value, sum_to


def _key(key):
    """Turn Tensors and lists inside an index into arrays; report whether it is basic."""
    if not isinstance(key, tuple):
        key = (key,)
    out, basic = [], True
    for k in key:
        if isinstance(k, Tensor):
            k = k._data
            if k.dtype.kind not in "biu":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            basic = False
        elif isinstance(k, list):
            k = np.asarray(k) if k else np.zeros(0, np.int64)
            if k.dtype.kind == "f":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            basic = False
        elif isinstance(k, np.ndarray) or hasattr(k, "__cuda_array_interface__"):
            basic = False
        elif isinstance(k, np.generic):
            k = k.item()
        out.append(k)
    return tuple(out), basic


class GetItem(Primitive):
    view = True

    @staticmethod
    def forward(ctx, a, key, basic):
        ctx.shape, ctx.key, ctx.basic, ctx.dtype = a.shape, key, basic, a.dtype
        out = a[key]
        if not basic:
            return out
        if not isinstance(out, np.ndarray) and array_module(a) is np:
            out = a[key + (Ellipsis,)] if Ellipsis not in key else np.asarray(out)
        return out

    @staticmethod
    def backward(ctx, g):
        return IndexAdd.apply(g, shape=ctx.shape, key=ctx.key, basic=ctx.basic)


class AdvGetItem(GetItem):
    """Advanced indexing: a copy, not a view."""

    view = False


def _getitem_op(basic):
    return GetItem if basic else AdvGetItem


class IndexAdd(Primitive):
    """The gradient of getitem: zeros of the input's shape with ``g`` added at ``key``."""

    @staticmethod
    def forward(ctx, g, shape, key, basic):
        ctx.key, ctx.basic = key, basic
        xp = array_module(g)
        z = xp.zeros(shape, g.dtype)
        if basic:
            z[key] = g
        else:
            np.add.at(z, key, g) if xp is np else xp.add.at(z, key, g)
        return z

    @staticmethod
    def backward(ctx, gg):
        return _getitem_op(ctx.basic).apply(gg, key=ctx.key, basic=ctx.basic)


def _ints_first(key):
    """PyTorch applies integer indices before advanced ones; NumPy counts them as advanced,
    which moves the result's dims when a slice separates them. Split such a key in two."""
    if not any(isinstance(x, int) and not isinstance(x, bool) for x in key):
        return None
    first, second = [], []
    for x in key:
        if isinstance(x, np.ndarray) or hasattr(x, "__cuda_array_interface__"):
            first.extend([slice(None)] * (x.ndim if x.dtype == bool else 1))
            second.append(x)
        elif isinstance(x, int) and not isinstance(x, bool):
            first.append(x)
        else:  # slice, None, Ellipsis
            first.append(x)
            second.append(Ellipsis if x is Ellipsis else slice(None))
    return tuple(first), tuple(second)


def getitem(input, key):
    """``input[key]``: ints, slices, None, Ellipsis, int/bool tensors, lists."""
    k, basic = _key(key)
    if not basic:
        split = _ints_first(k)
        if split is not None:
            return getitem(getitem(input, split[0]), split[1])
    try:
        return _getitem_op(basic).apply(input, key=k, basic=basic)
    except IndexError as exc:
        raise IndexError(f"index: {exc} (tensor of shape {list(input._data.shape)})") from None


class IndexPut(Primitive):
    """Out-of-place ``a[key] = v``; used by setitem when gradients must flow."""

    @staticmethod
    def forward(ctx, a, v, key):
        ctx.key, ctx.vshape = key, getattr(v, "shape", None)
        out = a.copy()
        out[key] = v
        return out

    @staticmethod
    def backward(ctx, g):
        ga = gv = None
        if ctx._next[0] is not None:
            ga = IndexPut.apply(
                g, _make(array_module(g._data).zeros((), g._data.dtype)), key=ctx.key
            )
        if ctx._next[1] is not None:
            k, basic = ctx.key, all(not isinstance(x, np.ndarray) for x in ctx.key)
            gv = sum_to(_getitem_op(basic).apply(g, key=k, basic=basic), ctx.vshape)
        return ga, gv


def setitem(input, key, value):
    """``input[key] = value`` in place, recording the graph when gradients must flow."""
    from .inplace import check_inplace, commit

    k, _ = _key(key)
    if isinstance(value, Tensor):
        if value._data.dtype != input._data.dtype:
            value = value.to(input.dtype)
    else:
        value = scalar_value(value)
    track = check_inplace(input, value, "setitem")
    if not track:
        try:
            input._data[k] = value._data if isinstance(value, Tensor) else value
        except ValueError as exc:
            if not getattr(input._data.flags, "writeable", True):  # an expanded view
                raise RuntimeError(
                    "unsupported operation: more than one element of the written-to tensor "
                    "refers to a single memory location. Please clone() the tensor first."
                ) from None
            raise RuntimeError(f"setitem: {exc}") from None
        input._bump()
        return
    v = value if isinstance(value, Tensor) else _make(np.asarray(value, input._data.dtype))
    commit(input, IndexPut.apply(input, v, key=k))


def index_select(input, dim, index):
    """Entries of ``input`` along ``dim`` at the 1-D ``index``."""
    d = _wrap_dim(dim, input._data.ndim, "index_select")
    if index._data.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    try:
        return getitem(input, (slice(None),) * d + (index.reshape(-1),))
    except IndexError as exc:
        raise RuntimeError(f"index_select(): index out of range in self: {exc}") from None


def _full_index(index_arr, dim):
    xp = array_module(index_arr)
    nd = index_arr.ndim
    grids = [  # open grids, like np.indices(..., sparse=True), which CuPy lacks
        xp.arange(n).reshape((1,) * i + (n,) + (1,) * (nd - i - 1))
        for i, n in enumerate(index_arr.shape)
    ]
    grids[dim] = index_arr
    return tuple(grids)


class Gather(Primitive):
    @staticmethod
    def forward(ctx, a, index, dim):
        ctx.shape, ctx.dim, ctx.index = a.shape, dim, index
        return a[_full_index(index, dim)]

    @staticmethod
    def backward(ctx, g):
        z = _make(array_module(g._data).zeros(ctx.shape, g._data.dtype))
        return ScatterAdd.apply(z, g, index=ctx.index, dim=ctx.dim)


def _check_index(op, input, dim, index):
    if index._data.dtype != np.int64 and index._data.dtype.kind not in "iu":
        raise RuntimeError(f"{op}(): Expected dtype int64 for index, got {index.dtype}")
    if index._data.ndim != input._data.ndim:
        raise RuntimeError(
            f"{op}(): Index tensor must have the same number of dimensions as input tensor "
            f"(index {list(index.shape)}, input {list(input.shape)})"
        )
    d = _wrap_dim(dim, input._data.ndim, op)
    for k, (si, sx) in enumerate(zip(index._data.shape, input._data.shape)):
        if k != d and si > sx:
            raise RuntimeError(
                f"{op}(): Size does not match at dimension {k} expected index "
                f"{list(index.shape)} to be smaller than self {list(input.shape)} apart from "
                f"dimension {d}"
            )
    return d


def gather(input, dim, index):
    """``out[i][j] = input[index[i][j]][j]`` (for dim=0), as ``torch.gather``."""
    d = _check_index("gather", input, dim, index)
    try:
        return Gather.apply(input, index=index._data, dim=d)
    except IndexError as exc:
        raise RuntimeError(f"gather(): {exc}") from None


class ScatterAdd(Primitive):
    @staticmethod
    def forward(ctx, a, src, index, dim):
        ctx.dim, ctx.index = dim, index
        out = a.copy()
        xp = array_module(a)
        src = src[tuple(slice(0, s) for s in index.shape)] if src.shape != index.shape else src
        (np.add.at if xp is np else xp.add.at)(out, _full_index(index, dim), src)
        return out

    @staticmethod
    def backward(ctx, g):
        gs = Gather.apply(g, index=ctx.index, dim=ctx.dim) if ctx._next[1] is not None else None
        return g, gs


class Scatter(Primitive):
    @staticmethod
    def forward(ctx, a, src, index, dim):
        ctx.dim, ctx.index = dim, index
        out = a.copy()
        if hasattr(src, "shape") and src.shape and src.shape != index.shape:
            src = src[tuple(slice(0, s) for s in index.shape)]
        out[_full_index(index, dim)] = src
        return out

    @staticmethod
    def backward(ctx, g):
        zero = _make(array_module(g._data).zeros((), g._data.dtype))
        ga = Scatter.apply(g, zero, index=ctx.index, dim=ctx.dim)
        gs = Gather.apply(g, index=ctx.index, dim=ctx.dim) if ctx._next[1] is not None else None
        return ga, gs


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    """A copy of ``input`` with ``src`` (or ``value``) written at ``index`` along ``dim``."""
    d = _check_index("scatter", input, dim, index)
    if reduce == "add":
        return scatter_add(input, dim, index, src)
    if src is None:
        src = value
    if not isinstance(src, Tensor):
        src = _make(array_module(input._data).asarray(scalar_value(src), input._data.dtype))
    try:
        return Scatter.apply(input, src.to(input.dtype), index=index._data, dim=d)
    except IndexError as exc:
        raise RuntimeError(f"scatter(): {exc}") from None


def scatter_add(input, dim, index, src):
    """A copy of ``input`` with ``src`` added at ``index`` along ``dim`` (duplicates sum)."""
    d = _check_index("scatter_add", input, dim, index)
    try:
        return ScatterAdd.apply(input, src.to(input.dtype), index=index._data, dim=d)
    except IndexError as exc:
        raise RuntimeError(f"scatter_add(): {exc}") from None


def take_along_dim(input, indices, dim=None):
    """Pick values along ``dim`` at ``indices`` (broadcast against ``input``)."""
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    d = _wrap_dim(dim, input._data.ndim, "take_along_dim")
    sx, si = list(input._data.shape), list(indices._data.shape)
    sx[d] = si[d] = 1
    b = list(np.broadcast_shapes(tuple(sx), tuple(si)))
    bx, bi = list(b), list(b)
    bx[d], bi[d] = input._data.shape[d], indices._data.shape[d]
    return gather(input.expand(*bx), d, indices.expand(*bi))


def masked_fill(input, mask, value):
    """``value`` where ``mask`` is True, else ``input``."""
    from .elementwise import where

    if isinstance(value, Tensor) and value._data.ndim:
        raise RuntimeError(
            "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
            f"{value._data.ndim} dimension(s)."
        )
    if mask._data.dtype != bool:
        raise RuntimeError(f"masked_fill: expected a bool mask, got {mask.dtype}")
    if not isinstance(value, Tensor):
        xp = array_module(input._data)
        value = _make(xp.asarray(scalar_value(value), dtype=input._data.dtype))
    return where(mask, value.to(input.dtype), input)


def masked_select(input, mask):
    """The 1-D tensor of ``input``'s entries where ``mask`` is True (broadcast together)."""
    shape = broadcast_shapes("masked_select", input._data.shape, mask._data.shape)
    x = input.expand(*shape) if input._data.shape != shape else input
    m = mask._data if mask._data.shape == shape else np.broadcast_to(mask._data, shape)
    return getitem(x, _make(m))


class _SortResult(tuple):
    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


def sort(input, dim=-1, descending=False, stable=False):
    """``(values, indices)`` sorted along ``dim``."""
    d = _wrap_dim(dim, input._data.ndim, "sort")
    idx = argsort(input, d, descending, stable=stable)
    return _SortResult((gather(input, d, idx), idx))


def argsort(input, dim=-1, descending=False, stable=False):
    """Indices that sort ``input`` along ``dim``."""
    d = _wrap_dim(dim, input._data.ndim, "argsort")
    xp = array_module(input._data)
    a = input._data
    if descending:
        # negate for a stable descending order (bools and unsigned via a signed view)
        key = -a.astype(np.float64) if a.dtype.kind in "buV" else -a
        return _make(xp.argsort(key, axis=d, kind="stable").astype(np.int64))
    return _make(xp.argsort(a, axis=d, kind="stable").astype(np.int64))


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (or smallest) entries along ``dim``: ``(values, indices)``."""
    d = _wrap_dim(dim, input._data.ndim, "topk")
    n = input._data.shape[d] if input._data.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk: selected index k out of range (k={k}, size {n})")
    order = argsort(input, d, descending=largest)
    idx = order.narrow(d, 0, k)
    return _SortResult((gather(input, d, idx), idx))


def nonzero(input, *, as_tuple=False):
    """Indices of nonzero entries: an (n, ndim) int64 tensor, or a tuple of 1-D tensors."""
    xp = array_module(input._data)
    if input._data.ndim == 0:  # one row per nonzero element, with no columns
        n = int(bool(input._data))
        if as_tuple:
            return (_make(xp.zeros(n, np.int64)),)
        return _make(xp.zeros((n, 0), np.int64))
    idx = xp.nonzero(input._data)
    if as_tuple:
        return tuple(_make(i.astype(np.int64)) for i in idx)
    return _make(xp.stack(idx, axis=1).astype(np.int64) if idx else xp.zeros((0, 0), np.int64))


def argwhere(input):
    """Same as ``nonzero(input)``."""
    return nonzero(input)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """Sorted unique values; optionally the inverse indices and the counts."""
    a = input._data
    xp = array_module(a)
    res = xp.unique(a, return_inverse=return_inverse, return_counts=return_counts, axis=dim)
    if not (return_inverse or return_counts):
        return _make(res)
    out = [_make(res[0])]
    i = 1
    if return_inverse:
        out.append(_make(res[i].reshape(a.shape if dim is None else -1).astype(np.int64)))
        i += 1
    if return_counts:
        out.append(_make(res[i].astype(np.int64)))
    return tuple(out)


def one_hot(tensor, num_classes=-1):
    """Integer class ids to one-hot rows (int64), as ``F.one_hot``."""
    a = tensor._data
    if a.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if num_classes == -1:
        num_classes = int(a.max()) + 1 if a.size else 0
    if a.size and (a.min() < 0 or a.max() >= num_classes):
        raise RuntimeError("one_hot: Class values must be smaller than num_classes.")
    xp = array_module(a)
    return _make((a[..., None] == xp.arange(num_classes)).astype(np.int64))
