"""Read PyTorch checkpoints (zip and legacy formats) without torch and without running code.

The pickle inside a checkpoint is read by :class:`RestrictedUnpickler`, whose ``find_class``
admits only the globals a tensor checkpoint needs (tensor rebuild functions, storage classes,
dtypes, ``torch.Size`` and ``collections.OrderedDict``), each mapped to an ember stand-in.
Any other global raises :class:`ForbiddenGlobalError` before anything from the file runs.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict

import numpy as np

from .._tensor import Size
from ..backend import dtypes as _dt

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_STORAGES = {
    "FloatStorage": _dt.float32,
    "DoubleStorage": _dt.float64,
    "HalfStorage": _dt.float16,
    "BFloat16Storage": _dt.bfloat16,
    "LongStorage": _dt.int64,
    "IntStorage": _dt.int32,
    "ShortStorage": _dt.int16,
    "CharStorage": _dt.int8,
    "ByteStorage": _dt.uint8,
    "BoolStorage": _dt.bool_,
}
_DTYPES = {
    **{d.name: d for d in _dt.ALL},
    "float": _dt.float32,
    "double": _dt.float64,
    "half": _dt.float16,
    "long": _dt.int64,
    "int": _dt.int32,
    "short": _dt.int16,
}


class ForbiddenGlobalError(pickle.UnpicklingError):
    """A checkpoint's pickle named a global outside ember's allowlist; nothing was executed."""


class StorageType:
    """Stands for a ``torch.*Storage`` class inside a checkpoint's pickle."""

    def __init__(self, name: str, dtype):
        self.name, self.dtype = name, dtype


class Storage:
    """A flat array of one dtype, filled from the file (later, for the legacy format)."""

    def __init__(self, dtype, location: str, numel: int, root=None, offset: int = 0):
        self.dtype, self.location, self.numel = dtype, location, numel
        self.data: np.ndarray | None = None
        self.root, self.offset = root, offset

    def array(self) -> np.ndarray:
        """The storage's elements as a 1-D array."""
        if self.root is not None:
            return self.root.array()[self.offset : self.offset + self.numel]
        if self.data is None:
            raise pickle.UnpicklingError("ember.load: a storage's data is missing from the file")
        return self.data


class Pending:
    """A tensor waiting for its storage's data: storage, offset, size, stride, requires_grad."""

    def __init__(self, storage, offset, size, stride, requires_grad=False):
        if not isinstance(storage, Storage):
            raise pickle.UnpicklingError(f"ember.load: expected a storage, got {storage!r}")
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)
        self.requires_grad = bool(requires_grad)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, metadata=None):
    return Pending(storage, offset, size, stride, requires_grad)


def _rebuild_tensor(storage, offset, size, stride):
    return Pending(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad, hooks):
    if not isinstance(data, Pending):
        raise pickle.UnpicklingError(f"ember.load: expected a tensor for a parameter, got {data!r}")
    data.requires_grad = bool(requires_grad)
    return data


_FUNCTIONS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch", "Size"): Size,
}


def allowed_global(module: str, name: str):
    """The ember stand-in for the pickled global ``module.name``, or ForbiddenGlobalError."""
    if (module, name) in _FUNCTIONS:
        return _FUNCTIONS[(module, name)]
    if module == "torch" and name in _STORAGES:
        return StorageType(name, _STORAGES[name])
    if module in ("torch", "torch.storage") and name in ("UntypedStorage", "ByteStorage"):
        return StorageType(name, _dt.uint8)
    if module == "torch" and name in _DTYPES:
        return _DTYPES[name]
    raise ForbiddenGlobalError(
        f"ember.load: refused the global '{module}.{name}' named by the checkpoint's pickle; "
        "only tensors, storages, dtypes and plain containers are allowed, so nothing from the "
        "file was executed"
    )


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickle with an allowlist of globals; storages come through ``persistent_load``."""

    def __init__(self, file, load_storage=None, encoding: str = "ASCII"):
        super().__init__(file, encoding=encoding)
        self.load_storage = load_storage  # (dtype, key, numel) -> ndarray, or None: fill later
        self.storages: dict[str, Storage] = {}

    def find_class(self, module, name):
        """Look ``module.name`` up in the allowlist (never imports anything)."""
        return allowed_global(module, name)

    def persistent_load(self, pid):
        """Turn a ``('storage', type, key, location, numel[, view])`` id into a Storage."""
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"ember.load: unsupported persistent id {pid!r}")
        kind, key, location, numel = pid[1:5]
        if not isinstance(kind, StorageType) or not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"ember.load: malformed storage id {pid!r}")
        key = str(key)
        if key not in self.storages:
            st = Storage(kind.dtype, str(location), numel)
            if self.load_storage is not None:
                st.data = self.load_storage(kind.dtype, key, numel)
            self.storages[key] = st
        root = self.storages[key]
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return root
        view_key, offset, size = view
        return Storage(root.dtype, root.location, size, root=root, offset=offset)


def from_bytes(raw: bytes, dtype, numel: int, big_endian: bool, where: str) -> np.ndarray:
    """``numel`` elements of ``dtype`` from ``raw``, in native byte order."""
    need = numel * dtype.itemsize
    if len(raw) < need:
        raise pickle.UnpicklingError(
            f"{where}: storage holds {len(raw)} bytes, but {numel} x {dtype.name} need {need}"
        )
    arr = np.frombuffer(raw, dtype=dtype.np, count=numel)
    if big_endian and dtype.itemsize > 1:
        arr = arr.view(f">u{dtype.itemsize}").astype(f"u{dtype.itemsize}").view(dtype.np)
    return arr


def read_zip(fh, encoding: str = "ASCII"):
    """Unpickle a zip-format checkpoint; return (object with Pending tensors, storages)."""
    with zipfile.ZipFile(fh) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise pickle.UnpicklingError(
                f"ember.load: not a PyTorch zip checkpoint: expected one '<dir>/data.pkl', "
                f"found {pkl or 'none'}"
            )
        prefix = pkl[0][: -len("data.pkl")]
        big = prefix + "byteorder" in names and zf.read(prefix + "byteorder").strip() == b"big"

        def load_storage(dtype, key, numel):
            try:
                raw = zf.read(f"{prefix}data/{key}")
            except KeyError:
                raise pickle.UnpicklingError(f"ember.load: storage {key!r} is missing") from None
            return from_bytes(raw, dtype, numel, big, "ember.load")

        unp = RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), load_storage, encoding)
        return unp.load(), unp.storages


def read_legacy(fh, encoding: str = "ASCII"):
    """Unpickle a legacy (pre-1.6, non-zip) checkpoint; return (object, storages)."""
    if RestrictedUnpickler(fh).load() != LEGACY_MAGIC:
        raise pickle.UnpicklingError("ember.load: not a PyTorch checkpoint (bad magic number)")
    protocol = RestrictedUnpickler(fh).load()
    if protocol != LEGACY_PROTOCOL:
        raise pickle.UnpicklingError(f"ember.load: unsupported legacy protocol {protocol!r}")
    info = RestrictedUnpickler(fh).load()
    big = isinstance(info, dict) and info.get("little_endian") is False
    unp = RestrictedUnpickler(fh, None, encoding)
    obj = unp.load()
    keys = RestrictedUnpickler(fh).load()
    for key in keys:
        st = unp.storages.get(str(key))
        if st is None:
            raise pickle.UnpicklingError(f"ember.load: storage key {key!r} was never referenced")
        count = int.from_bytes(fh.read(8), "big" if big else "little")
        if count != st.numel:
            raise pickle.UnpicklingError(
                f"ember.load: storage {key!r} holds {count} elements, the pickle says {st.numel}"
            )
        st.data = from_bytes(fh.read(count * st.dtype.itemsize), st.dtype, count, big, "ember.load")
    return obj, unp.storages


def materialize(p: Pending) -> np.ndarray:
    """A contiguous copy of the elements ``p`` views, after checking they lie in its storage."""
    arr = p.storage.array()
    size, stride, offset = p.size, p.stride, p.offset
    ints = all(isinstance(v, int) and v >= 0 for v in (*size, *stride, offset))
    if not ints or len(size) != len(stride):
        raise pickle.UnpicklingError(
            f"ember.load: invalid tensor geometry: size {size}, stride {stride}, offset {offset}"
        )
    if any(s == 0 for s in size):
        return np.empty(size, arr.dtype)
    last = offset + sum((s - 1) * st for s, st in zip(size, stride))
    if last >= arr.size:
        raise pickle.UnpicklingError(
            f"ember.load: tensor with size {size}, stride {stride} and offset {offset} reaches "
            f"element {last} of a storage of {arr.size} elements"
        )
    steps = [st * arr.itemsize for st in stride]
    view = np.lib.stride_tricks.as_strided(arr[offset:], size, steps, writeable=False)
    return np.array(view, order="C", copy=True)


def resolve(obj, convert, memo=None):
    """``obj`` with every Pending replaced by ``convert(pending)`` (shared ones stay shared)."""
    memo = {} if memo is None else memo
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, Pending):
        out = convert(obj)
    elif isinstance(obj, dict):
        out = type(obj)() if type(obj) in (dict, OrderedDict) else dict()
        memo[id(obj)] = out
        for k, v in obj.items():
            out[k] = resolve(v, convert, memo)
    elif isinstance(obj, list):
        out = []
        memo[id(obj)] = out
        out.extend(resolve(v, convert, memo) for v in obj)
    elif isinstance(obj, tuple):
        out = type(obj)(resolve(v, convert, memo) for v in obj)
    elif isinstance(obj, (Storage, StorageType)):
        raise pickle.UnpicklingError("ember.load: bare storages are not supported; save tensors")
    else:
        return obj
    memo[id(obj)] = out
    return out
