"""Tensor: an array (NumPy or CuPy) plus autograd bookkeeping.

This file holds storage and bookkeeping only. Operators and math methods are installed onto
Tensor by ``ember._methods`` so that ops can create Tensors without a circular import.
"""

from __future__ import annotations

import numpy as np

from .backend import dtypes as _dt
from .backend.device import CPU, device_of


class Tensor:
    """A multi-dimensional array that can record the operations applied to it.

    >>> import ember
    >>> x = ember.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4.])
    """

    __slots__ = (
        "_data",
        "_rg",
        "grad",
        "grad_fn",
        "_output_nr",
        "_vbox",
        "_base",
        "_retains_grad",
        "_hooks",
        "__weakref__",
    )

    __array_ufunc__ = None  # NumPy defers to our operators: np.float32(2) * t is a Tensor

    def __init_subclass__(cls, **kwargs):
        # Hot paths test ``x.__class__ in TENSOR_TYPES`` (cheaper than isinstance on non-tensors).
        super().__init_subclass__(**kwargs)
        TENSOR_TYPES.add(cls)

    def __init__(self, *args, dtype=None, device=None):
        # torch.Tensor(data) copies into the default float type; Tensor(2, 3) is uninitialized.
        from .creation import tensor as _tensor

        d = dtype or _dt.get_default_dtype()
        if len(args) == 1 and not isinstance(args[0], int):
            src = _tensor(args[0], dtype=d, device=device)
        else:
            from .creation import empty

            src = empty(*args, dtype=d, device=device)
        _init(self, src._data)

    # ---- metadata ------------------------------------------------------------------------
    @property
    def shape(self):
        """The size of each dimension, as a tuple subclass (``ember.Size``)."""
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        """``shape``, or the size of one dimension."""
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim, "size")]

    @property
    def dtype(self) -> _dt.dtype:
        """The element type (``ember.float32`` ...)."""
        return _dt._FROM_NP[self._data.dtype]

    @property
    def device(self):
        """The device holding the memory."""
        d = self._data
        return CPU if isinstance(d, np.ndarray) else device_of(d)

    @property
    def is_cuda(self) -> bool:
        """True when the tensor lives on a GPU."""
        return not isinstance(self._data, np.ndarray)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self._data.ndim

    def dim(self) -> int:
        """Number of dimensions."""
        return self._data.ndim

    def numel(self) -> int:
        """Number of elements."""
        return self._data.size

    nelement = numel

    def element_size(self) -> int:
        """Bytes per element."""
        return self._data.itemsize

    def is_floating_point(self) -> bool:
        """True for float16, bfloat16, float32 and float64 tensors."""
        return self.dtype.is_floating_point

    def is_contiguous(self, memory_format=None) -> bool:
        """True when the elements lie without gaps in row-major order, or in the order
        ``memory_format`` names (``ember.channels_last``: N, H, W, C)."""
        from .backend import memory_format as _mf

        order = _mf.storage_order(memory_format, self._data.ndim, "is_contiguous")
        if order is None:
            return bool(self._data.flags.c_contiguous)
        return _mf.is_laid_out(self._data, order)

    def stride(self, dim: int | None = None):
        """Steps in elements between neighbours along each dimension."""
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[_wrap_dim(dim, self._data.ndim, "stride")]

    def data_ptr(self) -> int:
        """Address of the first element."""
        d = self._data
        return d.ctypes.data if isinstance(d, np.ndarray) else d.data.ptr

    def untyped_storage_ptr(self) -> int:
        """Address of the start of the memory this tensor views (shared by its views)."""
        base = self._data
        while getattr(base, "base", None) is not None:
            base = base.base
        return base.ctypes.data if isinstance(base, np.ndarray) else self.data_ptr()

    # ---- autograd bookkeeping ------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow to this tensor."""
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Start (or stop) recording operations on this leaf tensor; returns self."""
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if requires_grad and not self.dtype.is_floating_point:
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients (got {self.dtype})"
            )
        self._rg = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user rather than by a recorded op."""
        return self.grad_fn is None

    @property
    def _version(self) -> int:
        return self._vbox[0]

    def _bump(self) -> None:
        """Record an in-place change (checked by backward against saved tensors)."""
        self._vbox[0] += 1

    @property
    def data(self) -> Tensor:
        """The same memory as a tensor outside the graph (no version tracking)."""
        t = _make(self._data)
        return t

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"data: expected a Tensor, got {type(value).__name__}")
        self._data = value._data

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if self.grad_fn is None:
            return
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        self._retains_grad = True
        self.grad_fn._retain(self._output_nr, self)

    @property
    def retains_grad(self) -> bool:
        """True after ``retain_grad()`` on a non-leaf tensor."""
        return bool(self._retains_grad)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a non-None return
        replaces the gradient. Returns a handle whose ``remove()`` unregisters it."""
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            return self.grad_fn._add_tensor_hook(self._output_nr, hook)
        if self._hooks is None:
            self._hooks = []
        return _Handle(self._hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into each leaf's ``.grad``."""
        from .autograd.engine import backward

        backward(self, gradient, retain_graph, create_graph, inputs)

    def detach(self) -> Tensor:
        """A tensor sharing memory (and version counter) but cut from the graph."""
        t = _make(self._data)
        t._vbox = self._vbox
        return t

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph in place, making it a leaf."""
        self.grad_fn = None
        self._rg = False
        return self

    # ---- conversion ----------------------------------------------------------------------
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The NumPy array sharing this tensor's memory (CPU tensors without grad)."""
        if self._rg and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. "
                "Use tensor.detach().numpy() instead."
            )
        if not isinstance(self._data, np.ndarray):
            if not force:
                raise TypeError(
                    f"can't convert {self.device} device type tensor to numpy. "
                    "Use Tensor.cpu() to copy the tensor to host memory first."
                )
            return self._data.get()
        return self._data

    def item(self):
        """The single element as a Python number."""
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar"
            )
        v = self._data.reshape(()).item() if isinstance(self._data, np.ndarray) else None
        if v is None:
            v = self._data.get().reshape(()).item()
        if self.dtype in (_dt.bfloat16,):
            v = float(v)
        return v

    def tolist(self):
        """Nested Python lists of the elements."""
        arr = self._data if isinstance(self._data, np.ndarray) else self._data.get()
        if arr.dtype == _dt.bfloat16.np:
            arr = arr.astype(np.float32)
        return arr.tolist()

    def __array__(self, dtype=None, copy=None):
        """The data as a NumPy array (copied to the host for a CUDA tensor), for ``np.asarray``."""
        arr = self._data if isinstance(self._data, np.ndarray) else self._data.get()
        return arr if dtype is None else arr.astype(dtype)

    def __dlpack__(self, *args, **kwargs):
        """A DLPack capsule sharing this tensor's memory (``ember.from_dlpack`` reads it)."""
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        """The (device type, index) pair DLPack consumers ask for."""
        return self._data.__dlpack_device__()

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self._data.size} values is ambiguous"
            )
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __complex__(self) -> complex:
        return complex(self.item())

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        from ._format import format_tensor

        return format_tensor(self)

    def __reduce_ex__(self, protocol):
        # Allows DataLoader workers and copy.deepcopy to move tensors (our own data only).
        return (_rebuild, (np.asarray(self.__array__()), self._rg))

    def __deepcopy__(self, memo):
        if self.grad_fn is not None:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the "
                "deepcopy protocol at the moment."
            )
        t = type(self).__new__(type(self))
        _init(t, self._data.copy())
        t._rg = self._rg
        if self.grad is not None:
            t.grad = self.grad.__deepcopy__(memo)
        memo[id(self)] = t
        return t


TENSOR_TYPES = {Tensor}  # Tensor and its subclasses (nn.Parameter), for exact-class checks


class Size(tuple):
    """A tensor's shape: a tuple that prints like PyTorch's ``torch.Size``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"ember.Size({list(self)})"

    def numel(self) -> int:
        """Product of the sizes."""
        n = 1
        for s in self:
            n *= s
        return n


class _Handle:
    """Returned by hook registration; ``remove()`` unregisters the hook."""

    def __init__(self, registry, hook, key=None):
        self._registry, self._hook = registry, hook
        if isinstance(registry, dict):
            registry[key] = hook
            self._key = key
        else:
            registry.append(hook)

    def remove(self) -> None:
        """Unregister the hook (no error if already removed)."""
        if isinstance(self._registry, dict):
            self._registry.pop(self._key, None)
        elif self._hook in self._registry:
            self._registry.remove(self._hook)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _init(t: Tensor, arr) -> None:
    t._data = arr
    t._rg = False
    t.grad = None
    t.grad_fn = None
    t._output_nr = 0
    t._vbox = [0]
    t._base = None
    t._retains_grad = False
    t._hooks = None


_new = Tensor.__new__


def _make(arr, rg: bool = False) -> Tensor:
    """Wrap an array in a new Tensor without copying (the hot path of every op)."""
    t = _new(Tensor)
    t._data = arr
    t._rg = rg
    t.grad = None
    t.grad_fn = None
    t._output_nr = 0
    t._vbox = [0]
    t._base = None
    t._retains_grad = False
    t._hooks = None
    return t


def _rebuild(arr, rg):
    t = _make(np.array(arr))
    if rg:
        t.requires_grad_(True)
    return t


def _wrap_dim(dim: int, ndim: int, op: str = "op") -> int:
    """Turn a possibly negative dim into a valid index, with PyTorch's IndexError."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
            f"but got {dim})"
        )
    return dim + n if dim < 0 else dim
