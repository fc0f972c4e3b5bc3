"""The JSON description of a saved object: containers and numbers, with tensors by name.

A node is a JSON value: ``null``, booleans, integers, strings and finite floats stand for
themselves; a JSON array is a Python list; every other node is an object with one tag key:
``{"tensor": name}`` (plus ``"requires_grad": true`` when set), ``{"tuple": [...]}``,
``{"dict": [[key, value], ...]}`` and ``{"odict": ...}`` (keys are nodes too, so int and tuple
keys come back as ints and tuples), ``{"float": "nan" | "inf" | "-inf"}``, ``{"size": [...]}``,
``{"dtype": "float32"}`` and ``{"device": "cuda:0"}``.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .._tensor import Size, Tensor
from ..backend import dtypes as _dt
from ..backend.device import device

VERSION = 1
_RESERVED = {"__metadata__"}


class Encoder:
    """Turn an object into a JSON node and collect its tensors as ``{name: ndarray}``."""

    def __init__(self, where: str = "ember.save"):
        self.where = where
        self.arrays: dict[str, np.ndarray] = {}
        self._names: dict[int, str] = {}  # id(tensor) -> name, so a repeated tensor is stored once
        self._active: set[int] = set()

    def encode(self, obj, path: str = ""):
        """The JSON node for ``obj``; ``path`` names its tensors (dotted, like state_dict keys)."""
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return float(obj) if math.isfinite(obj) else {"float": repr(float(obj))}
        if isinstance(obj, Tensor):
            return self._tensor(obj, path)
        if isinstance(obj, _dt.dtype):
            return {"dtype": obj.name}
        if isinstance(obj, device):
            return {"device": str(obj)}
        if isinstance(obj, (list, tuple, dict)):
            return self._container(obj, path)
        raise TypeError(
            f"{self.where}: cannot save an object of type {type(obj).__name__} at "
            f"{path or '<root>'!r}: only tensors, dicts, lists, tuples, numbers, strings, bools "
            "and None are supported (ember never pickles)"
        )

    def _container(self, obj, path: str):
        if id(obj) in self._active:
            raise ValueError(f"{self.where}: circular reference at {path or '<root>'!r}")
        self._active.add(id(obj))
        try:
            if isinstance(obj, dict):
                items = [
                    [self._key(k, path), self.encode(v, _join(path, k))] for k, v in obj.items()
                ]
                return {"odict" if isinstance(obj, OrderedDict) else "dict": items}
            items = [self.encode(v, _join(path, i)) for i, v in enumerate(obj)]
            if isinstance(obj, Size):
                return {"size": items}
            return {"tuple": items} if isinstance(obj, tuple) else items
        finally:
            self._active.discard(id(obj))

    def _key(self, key, path: str):
        if isinstance(key, Tensor):
            raise TypeError(f"{self.where}: tensors cannot be dict keys (at {path or '<root>'!r})")
        return self.encode(key, path)

    def _tensor(self, t: Tensor, path: str):
        name = self._names.get(id(t))
        if name is None:
            name = self._unique(path or "tensor")
            self._names[id(t)] = name
            data = t._data if isinstance(t._data, np.ndarray) else t.detach().cpu()._data
            self.arrays[name] = np.asarray(data, order="C")
        node = {"tensor": name}
        if t.requires_grad:
            node["requires_grad"] = True
        return node

    def _unique(self, name: str) -> str:
        if name not in self.arrays and name not in _RESERVED:
            return name
        n = 1
        while f"{name}#{n}" in self.arrays:
            n += 1
        return f"{name}#{n}"


def _join(path: str, key) -> str:
    key = key if isinstance(key, str) else repr(key)
    return f"{path}.{key}" if path else key


class Decoder:
    """Rebuild an object from a JSON node and ``{name: Tensor}``."""

    def __init__(self, tensors: dict, where: str = "ember.load"):
        self.tensors, self.where = tensors, where
        self._done: dict[str, Tensor] = {}

    def decode(self, node):
        """The Python object for ``node``."""
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict) or not node:
            raise ValueError(f"{self.where}: malformed structure node {node!r}")
        tag = next(iter(node))
        value = node[tag]
        if tag == "tensor":
            return self._tensor(value, node.get("requires_grad", False))
        if tag in ("dict", "odict"):
            pairs = ((_hashable(self.decode(k)), self.decode(v)) for k, v in value)
            return OrderedDict(pairs) if tag == "odict" else dict(pairs)
        if tag == "tuple":
            return tuple(self.decode(v) for v in value)
        if tag == "size":
            return Size(self.decode(v) for v in value)
        if tag == "float":
            return float(value)
        if tag == "dtype":
            return _dt.to_dtype(value)
        if tag == "device":
            return device(value)
        raise ValueError(f"{self.where}: unknown structure tag {tag!r} (file from a newer ember?)")

    def _tensor(self, name: str, requires_grad: bool) -> Tensor:
        if name in self._done:
            return self._done[name]
        if name not in self.tensors:
            raise ValueError(f"{self.where}: the structure names tensor {name!r}, not in the file")
        t = self.tensors[name]
        if requires_grad:
            t.requires_grad_(True)
        self._done[name] = t
        return t


def _hashable(key):
    if isinstance(key, list):
        raise ValueError(f"ember.load: a dict key decoded to a list {key!r}")
    return key
