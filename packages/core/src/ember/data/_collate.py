"""``default_collate`` and ``default_convert``: samples to batched tensors, as PyTorch does."""

from __future__ import annotations

import collections.abc as cabc
import copy
import re

import numpy as np

from .._tensor import Tensor, _make
from ..backend.device import array_module

_STRING_OR_OBJECT = re.compile(r"[SaUO]")  # NumPy dtype kinds that cannot become tensors
_ERR = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def _is_numpy(elem) -> bool:
    name = type(elem).__name__
    return type(elem).__module__ == "numpy" and name not in ("str_", "bytes_", "string_")


def _is_namedtuple(elem) -> bool:
    return isinstance(elem, tuple) and hasattr(elem, "_fields")


def _stack_tensors(batch):
    shape = batch[0].shape
    same = all(t.shape == shape and t.dtype == batch[0].dtype for t in batch)
    if not same or any(t.requires_grad for t in batch):
        from ..ops import stack  # type promotion, shape errors and autograd live there

        return stack(batch, 0)
    xp = array_module(batch[0]._data)
    return _make(xp.stack([t._data for t in batch]))


def _as_tensor(arr):
    from ..creation import as_tensor

    return as_tensor(arr)


def _rebuild_mapping(elem, values: dict):
    """A container of ``elem``'s type holding ``values``, or a dict if that type refuses."""
    try:
        if isinstance(elem, cabc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(values)
            return clone
        return type(elem)(values)
    except TypeError:
        return values


def _rebuild_sequence(elem, items: list):
    try:
        if isinstance(elem, cabc.MutableSequence):
            clone = copy.copy(elem)
            for i, item in enumerate(items):
                clone[i] = item
            return clone
        return type(elem)(items)
    except TypeError:
        return items


def default_collate(batch):
    """Merge a list of samples into a batch, recursing into dicts, tuples and lists.

    Tensors are stacked along a new first dimension; NumPy arrays and NumPy scalars become
    tensors; Python floats become a float64 tensor, ints an int64 tensor, bools a bool tensor;
    strings and bytes stay a list; mappings, namedtuples and sequences keep their structure
    (a tuple of fields comes back as a list, as in PyTorch).

    >>> import ember
    >>> out = default_collate([{"x": ember.ones(2), "y": 1}, {"x": ember.zeros(2), "y": 0}])
    >>> out["x"].shape, out["y"]
    (ember.Size([2, 2]), tensor([1, 0]))
    >>> default_collate([(1.5, "a"), (2.5, "b")])
    [tensor([1.5000, 2.5000], dtype=ember.float64), ('a', 'b')]
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack_tensors(batch)
    if _is_numpy(elem):
        if isinstance(elem, np.ndarray):
            if _STRING_OR_OBJECT.search(elem.dtype.str) is not None:
                raise TypeError(_ERR.format(elem.dtype))
            shape = elem.shape
            if all(isinstance(b, np.ndarray) and b.shape == shape for b in batch):
                return _as_tensor(np.stack(batch))
            return default_collate([_as_tensor(b) for b in batch])
        if elem.shape == ():  # NumPy scalars
            return _as_tensor(np.array(batch))
        raise TypeError(_ERR.format(type(elem)))
    if isinstance(elem, float):
        return _make(np.array(batch, dtype=np.float64))
    if isinstance(elem, int):  # bools too; mixed batches promote as ember.tensor does
        from ..creation import tensor

        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, cabc.Mapping):
        values = {key: default_collate([d[key] for d in batch]) for key in elem}
        return _rebuild_mapping(elem, values)
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(s) for s in zip(*batch)))
    if isinstance(elem, cabc.Sequence):
        size = len(elem)
        if any(len(b) != size for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [default_collate(s) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return columns
        return _rebuild_sequence(elem, columns)
    raise TypeError(_ERR.format(type(elem)))


def default_convert(data):
    """Turn NumPy arrays and scalars in ``data`` into tensors, leaving everything else alone.

    The DataLoader's ``collate_fn`` when automatic batching is off (``batch_size=None``).

    >>> import numpy as np
    >>> default_convert({"a": np.array([1, 2]), "b": "text"})
    {'a': tensor([1, 2]), 'b': 'text'}
    """
    if isinstance(data, Tensor):
        return data
    if _is_numpy(data):
        if isinstance(data, np.ndarray) and _STRING_OR_OBJECT.search(data.dtype.str):
            return data
        if isinstance(data, (np.ndarray, np.generic)):
            return _as_tensor(np.asarray(data))
        return data
    if isinstance(data, cabc.Mapping):
        values = {key: default_convert(data[key]) for key in data}
        return _rebuild_mapping(data, values)
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, cabc.Sequence) and not isinstance(data, (str, bytes)):
        return _rebuild_sequence(data, [default_convert(d) for d in data])
    return data
