"""Tensor creation: from data, filled, ranges, and random draws."""

from __future__ import annotations

import numpy as np

from ._tensor import Tensor, _make
from .backend import dtypes as _dt
from .backend.device import array_module, cupy_module, to_device
from .backend.random import rng


def _size(size):
    if len(size) == 1 and isinstance(size[0], list | tuple):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = int(s.item())
        if not isinstance(s, int | np.integer):
            raise TypeError(f"size must be a tuple of ints, got {type(s).__name__}")
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(size)}")
        out.append(int(s))
    return tuple(out)


def place(arr, device):
    """Move an array to ``device`` (NumPy for cpu, CuPy for cuda)."""
    dev = to_device(device)
    if dev.type == "cpu":
        if isinstance(arr, np.ndarray | np.generic):
            return np.asarray(arr)
        return arr.get()
    cp = cupy_module()
    with cp.cuda.Device(dev.index or 0):
        return cp.asarray(arr)


def _finish(arr, device, requires_grad):
    if device is not None and to_device(device).type != "cpu":
        arr = place(arr, device)
    t = _make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer_dtype(data):
    """PyTorch's dtype for nested Python data: bool < int64 < default float."""
    kind = -1  # no elements at all: the default float type, as in PyTorch
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, list | tuple):
            stack.extend(x)
        elif isinstance(x, Tensor):
            return None
        elif isinstance(x, bool | np.bool_):
            kind = max(kind, 0)
        elif isinstance(x, int | np.integer):
            kind = max(kind, 1)
        elif isinstance(x, float | np.floating):
            return _dt.get_default_dtype()
        elif isinstance(x, complex):
            raise TypeError("ember has no complex dtypes")
        else:
            raise TypeError(f"tensor(): can't build a tensor from {type(x).__name__}")
    return (_dt.get_default_dtype(), _dt.bool_, _dt.int64)[kind + 1]


def tensor(data, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """A new tensor holding a copy of ``data`` (nested lists, numbers, arrays or tensors).

    >>> import ember
    >>> ember.tensor([[1, 2], [3, 4]]).dtype
    ember.int64
    >>> ember.tensor([1.5, 2]).dtype
    ember.float32
    """
    if isinstance(data, Tensor):
        arr = data._data.copy()
        if not isinstance(arr, np.ndarray) and (device is None or to_device(device).type == "cpu"):
            arr = arr if device is None else place(arr, "cpu")
    elif isinstance(data, np.ndarray | np.generic):
        arr = np.array(data)
        if arr.dtype == np.float64 and dtype is None:
            pass  # NumPy float64 stays float64, as torch.tensor(ndarray) does
    elif hasattr(data, "__cuda_array_interface__"):
        arr = cupy_module().array(data)
    else:
        d = _infer_dtype(data)
        if d is None:  # lists holding tensors
            arr = np.array(_tolist(data))
            d = (
                _dt.from_numpy_dtype(arr.dtype)
                if arr.dtype != np.float64
                else _dt.get_default_dtype()
            )
        arr = np.array(data if not _has_tensor(data) else _tolist(data), dtype=d.np)
    if dtype is not None:
        arr = arr.astype(_dt.to_dtype(dtype).np, copy=False)
    return _finish(arr, device, requires_grad)


def _has_tensor(data):
    return isinstance(data, list | tuple) and any(
        isinstance(x, Tensor) or _has_tensor(x) for x in data
    )


def _tolist(data):
    if isinstance(data, Tensor):
        return data.tolist()
    if isinstance(data, list | tuple):
        return [_tolist(x) for x in data]
    return data


def as_tensor(data, dtype=None, device=None):
    """``data`` as a tensor, sharing memory with a NumPy array or tensor when possible."""
    if isinstance(data, Tensor):
        out = data if dtype is None else data.to(_dt.to_dtype(dtype))
        return out if device is None else out.to(device)
    if isinstance(data, np.ndarray) and device is None:
        arr = data if dtype is None else data.astype(_dt.to_dtype(dtype).np, copy=False)
        _dt.from_numpy_dtype(arr.dtype)
        return _make(arr)
    return tensor(data, dtype=dtype, device=device)


asarray = as_tensor


def from_numpy(ndarray) -> Tensor:
    """A tensor sharing memory with ``ndarray`` (changes show in both)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    _dt.from_numpy_dtype(ndarray.dtype)
    return _make(ndarray)


def _dtype_or_default(dtype):
    return _dt.to_dtype(dtype) if dtype is not None else _dt.get_default_dtype()


def zeros(*size, dtype=None, device=None, requires_grad=False, out=None):
    """A tensor of zeros."""
    return _finish(np.zeros(_size(size), _dtype_or_default(dtype).np), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of ones."""
    return _finish(np.ones(_size(size), _dtype_or_default(dtype).np), device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False, memory_format=None):
    """An uninitialized tensor (its contents are arbitrary)."""
    return _finish(np.empty(_size(size), _dtype_or_default(dtype).np), device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor filled with ``fill_value`` (dtype inferred from it, as in PyTorch)."""
    d = (
        _dt.to_dtype(dtype)
        if dtype is not None
        else _dt.scalar_dtype(
            fill_value.item() if isinstance(fill_value, Tensor | np.generic) else fill_value
        )
    )
    v = fill_value.item() if isinstance(fill_value, Tensor) else fill_value
    return _finish(
        np.full(_size((size,) if isinstance(size, int) else tuple(size)), v, d.np),
        device,
        requires_grad,
    )


def _like(t, dtype, device):
    return (
        _dt.to_dtype(dtype) if dtype is not None else t.dtype,
        device if device is not None else t.device,
    )


def zeros_like(input, dtype=None, device=None, requires_grad=False, memory_format=None):
    """Zeros with ``input``'s shape, dtype and device."""
    d, dev = _like(input, dtype, device)
    return (
        _finish(array_module(input._data).zeros(input._data.shape, d.np), None, requires_grad)
        if dev == input.device
        else zeros(input.shape, dtype=d, device=dev, requires_grad=requires_grad)
    )


def ones_like(input, dtype=None, device=None, requires_grad=False, memory_format=None):
    """Ones with ``input``'s shape, dtype and device."""
    d, dev = _like(input, dtype, device)
    return (
        _finish(array_module(input._data).ones(input._data.shape, d.np), None, requires_grad)
        if dev == input.device
        else ones(input.shape, dtype=d, device=dev, requires_grad=requires_grad)
    )


def empty_like(input, dtype=None, device=None, requires_grad=False, memory_format=None):
    """An uninitialized tensor like ``input``."""
    d, dev = _like(input, dtype, device)
    return (
        _finish(array_module(input._data).empty(input._data.shape, d.np), None, requires_grad)
        if dev == input.device
        else empty(input.shape, dtype=d, device=dev, requires_grad=requires_grad)
    )


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False, memory_format=None):
    """``fill_value`` everywhere, with ``input``'s shape, dtype and device."""
    d, dev = _like(input, dtype, device)
    return full(input.shape, fill_value, dtype=d, device=dev, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Values from ``start`` up to (not including) ``end`` by ``step``."""
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        dtype = _dt.get_default_dtype() if any(isinstance(v, float) for v in vals) else _dt.int64
    d = _dt.to_dtype(dtype)
    n = max(int(np.ceil((vals[1] - vals[0]) / vals[2])), 0)
    arr = vals[0] + np.arange(n, dtype=np.float64 if d.is_floating_point else np.int64) * vals[2]
    return _finish(arr.astype(d.np), device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    d = _dtype_or_default(dtype)
    return _finish(np.linspace(start, end, int(steps)).astype(d.np), device, requires_grad)


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False):
    """``base ** linspace(start, end, steps)``."""
    d = _dtype_or_default(dtype)
    return _finish(
        (base ** np.linspace(start, end, int(steps))).astype(d.np), device, requires_grad
    )


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """An ``n x m`` identity matrix."""
    return _finish(np.eye(n, m, dtype=_dtype_or_default(dtype).np), device, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform samples on [0, 1)."""
    d = _dtype_or_default(dtype)
    arr = rng(generator).random(_size(size), dtype=np.float64 if d is _dt.float64 else np.float32)
    return _finish(arr.astype(d.np, copy=False), device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples."""
    d = _dtype_or_default(dtype)
    arr = rng(generator).standard_normal(
        _size(size), dtype=np.float64 if d is _dt.float64 else np.float32
    )
    return _finish(arr.astype(d.np, copy=False), device, requires_grad)


def randint(
    low, high=None, size=None, generator=None, dtype=None, device=None, requires_grad=False
):
    """Integers drawn uniformly from [low, high): ``randint(high, size)`` or
    ``randint(low, high, size)``."""
    if size is None and isinstance(high, tuple | list):
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    if high <= low:
        raise RuntimeError(
            f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )
    d = _dt.to_dtype(dtype) if dtype is not None else _dt.int64
    arr = rng(generator).integers(
        low, high, size=_size((size,) if isinstance(size, int) else tuple(size))
    )
    return _finish(arr.astype(d.np), device, requires_grad)


def randperm(n, generator=None, dtype=None, device=None, requires_grad=False):
    """A random permutation of ``0..n-1``."""
    d = _dt.to_dtype(dtype) if dtype is not None else _dt.int64
    return _finish(rng(generator).permutation(int(n)).astype(d.np), device, requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad=False, generator=None):
    """Uniform samples shaped like ``input``."""
    d, dev = _like(input, dtype, device)
    return rand(input.shape, generator=generator, dtype=d, device=dev, requires_grad=requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad=False, generator=None):
    """Normal samples shaped like ``input``."""
    d, dev = _like(input, dtype, device)
    return randn(input.shape, generator=generator, dtype=d, device=dev, requires_grad=requires_grad)


def randint_like(input, low, high=None, dtype=None, device=None, generator=None):
    """Random integers shaped like ``input``."""
    d, dev = _like(input, dtype, device)
    return randint(low, high, tuple(input.shape), generator=generator, dtype=d, device=dev)


def bernoulli(input, p=None, generator=None):
    """1 with probability ``input`` (or ``p``) per element, else 0."""
    probs = input._data if p is None else np.full(input._data.shape, p)
    arr = (rng(generator).random(input._data.shape) < probs).astype(input._data.dtype)
    return _make(arr)


def multinomial(input, num_samples, replacement=False, generator=None):
    """Draw category indices from (rows of) non-negative weights."""
    w = np.asarray(input._data, dtype=np.float64)
    single = w.ndim == 1
    w = w[None] if single else w
    g = rng(generator)
    out = []
    for row in w:
        if row.sum() <= 0:
            raise RuntimeError(
                "multinomial: invalid probability distribution (sum of probabilities <= 0)"
            )
        pr = row / row.sum()
        if not replacement and num_samples > np.count_nonzero(pr):
            raise RuntimeError(
                "multinomial: cannot sample n_sample > prob_dist.size(-1) samples without "
                "replacement"
            )
        out.append(g.choice(len(pr), size=num_samples, replace=replacement, p=pr))
    arr = np.asarray(out, dtype=np.int64)
    return _make(arr[0] if single else arr)


def normal(mean, std, size=None, generator=None):
    """Normal samples with the given mean and std (numbers or tensors)."""
    m = mean._data if isinstance(mean, Tensor) else mean
    s = std._data if isinstance(std, Tensor) else std
    shape = size if size is not None else np.broadcast_shapes(np.shape(m), np.shape(s))
    arr = rng(generator).normal(m, s, size=shape)
    dt = mean.dtype if isinstance(mean, Tensor) else _dt.get_default_dtype()
    return _make(np.asarray(arr).astype(dt.np))
