"""Write PyTorch's zip checkpoint format, which ``torch.load(f, weights_only=True)`` reads.

The pickle is written opcode by opcode (protocol 2) and names only the globals
``torch._utils._rebuild_tensor_v2``, ``collections.OrderedDict``, ``torch.Size``, the
``torch.*Storage`` classes and dtypes; each tensor's bytes go to ``archive/data/<key>``.
"""

from __future__ import annotations

import struct
import zipfile
from collections import OrderedDict

import numpy as np

from .._tensor import Size, Tensor
from ..backend import dtypes as _dt
from .safetensors_io import to_little

STORAGE_NAMES = {
    _dt.float32: "FloatStorage",
    _dt.float64: "DoubleStorage",
    _dt.float16: "HalfStorage",
    _dt.bfloat16: "BFloat16Storage",
    _dt.int64: "LongStorage",
    _dt.int32: "IntStorage",
    _dt.int16: "ShortStorage",
    _dt.int8: "CharStorage",
    _dt.uint8: "ByteStorage",
    _dt.bool_: "BoolStorage",
}
MARK, STOP, TUPLE, REDUCE, BINPERSID = b"(", b".", b"t", b"R", b"Q"


class TorchPickler:
    """A minimal protocol-2 pickler for tensors, containers, numbers and strings."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")
        self.arrays: list[np.ndarray] = []
        self._keys: dict[int, int] = {}  # id(tensor) -> storage key: a repeated tensor is shared
        self._active: set[int] = set()

    def dump(self, obj) -> bytes:
        """The pickle bytes of ``obj``."""
        self.save(obj)
        self.out += STOP
        return bytes(self.out)

    def save(self, obj) -> None:
        """Append the opcodes that rebuild ``obj``."""
        if obj is None:
            self.out += b"N"
        elif isinstance(obj, bool):
            self.out += b"\x88" if obj else b"\x89"
        elif isinstance(obj, int):
            self._int(int(obj))
        elif isinstance(obj, float):
            self.out += b"G" + struct.pack(">d", obj)
        elif isinstance(obj, str):
            raw = obj.encode("utf-8", "surrogatepass")
            self.out += b"X" + struct.pack("<I", len(raw)) + raw
        elif isinstance(obj, Tensor):
            self._tensor(obj)
        elif isinstance(obj, _dt.dtype):
            self._global("torch", obj.name)
        elif isinstance(obj, (list, tuple, dict)):
            self._container(obj)
        else:
            raise TypeError(
                f"ember.save(format='torch'): cannot save an object of type "
                f"{type(obj).__name__}: only tensors, dicts, lists, tuples, numbers, strings, "
                "bools and None are supported"
            )

    def _int(self, v: int) -> None:
        if 0 <= v < 256:
            self.out += b"K" + bytes([v])
        elif -(2**31) <= v < 2**31:
            self.out += b"J" + struct.pack("<i", v)
        else:
            raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
            self.out += b"\x8a" + bytes([len(raw)]) + raw

    def _global(self, module: str, name: str) -> None:
        self.out += b"c" + f"{module}\n{name}\n".encode("ascii")

    def _tuple(self, items) -> None:
        self.out += MARK
        for v in items:
            self.save(v)
        self.out += TUPLE

    def _container(self, obj) -> None:
        if id(obj) in self._active:
            raise ValueError("ember.save(format='torch'): circular reference")
        self._active.add(id(obj))
        try:
            if isinstance(obj, Size):
                self._global("torch", "Size")
                self.out += MARK
                self._tuple(obj)
                self.out += TUPLE + REDUCE
            elif isinstance(obj, tuple):
                self._tuple(obj)
            elif isinstance(obj, list):
                self.out += b"]" + MARK
                for v in obj:
                    self.save(v)
                self.out += b"e"
            else:
                self._dict(obj)
        finally:
            self._active.discard(id(obj))

    def _dict(self, obj: dict) -> None:
        if isinstance(obj, OrderedDict):
            self._global("collections", "OrderedDict")
            self.out += b")" + REDUCE
        else:
            self.out += b"}"
        self.out += MARK
        for k, v in obj.items():
            self.save(k)
            self.save(v)
        self.out += b"u"

    def _tensor(self, t: Tensor) -> None:
        key = self._keys.get(id(t))
        if key is None:
            key = self._keys[id(t)] = len(self.arrays)
            data = t._data if isinstance(t._data, np.ndarray) else t.detach().cpu()._data
            self.arrays.append(to_little(data))
        shape = tuple(t.shape)
        stride, acc = [], 1
        for s in reversed(shape):
            stride.append(acc)
            acc *= max(s, 1)
        self._global("torch._utils", "_rebuild_tensor_v2")
        self.out += MARK + MARK + b"X\x07\x00\x00\x00storage"
        self._global("torch", STORAGE_NAMES[t.dtype])
        self.save(str(key))
        self.save("cpu")
        self.save(t.numel())
        self.out += TUPLE + BINPERSID
        self.save(0)
        self._tuple(shape)
        self._tuple(tuple(reversed(stride)))
        self.save(bool(t.requires_grad))
        self._global("collections", "OrderedDict")
        self.out += b")" + REDUCE + TUPLE + REDUCE


def write(fh, obj) -> None:
    """Write ``obj`` to the binary file ``fh`` as a PyTorch zip checkpoint."""
    pickler = TorchPickler()
    data = pickler.dump(obj)
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data)
        zf.writestr("archive/byteorder", "little")
        for key, arr in enumerate(pickler.arrays):
            zf.writestr(f"archive/data/{key}", arr.reshape(-1).view(np.uint8).tobytes())
        zf.writestr("archive/version", "3\n")
