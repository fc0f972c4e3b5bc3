"""Moving and converting tensors: ``to`` (device, dtype, memory format), ``type`` and the
dtype shortcut methods (``float()``, ``half()``, ...), installed by ``_methods``."""

from __future__ import annotations

import numpy as np

from . import ops
from ._tensor import Tensor
from .autograd.function import Primitive
from .backend import dtypes as _dt
from .backend import memory_format as _mf
from .backend.device import to_device
from .creation import place
from .ops import elementwise as E


class ToDevice(Primitive):
    """A copy on another device; the gradient goes back to the source device."""

    @staticmethod
    def forward(ctx, a, device):
        ctx.src = "cpu" if isinstance(a, np.ndarray) else f"cuda:{a.device.id}"
        return place(a, device)

    @staticmethod
    def backward(ctx, g):
        return ToDevice.apply(g, device=ctx.src)


def _parse_to(args, kwargs):
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    mf = kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif isinstance(a, _dt.dtype) or a in (float, int, bool) or isinstance(a, np.dtype):
            dtype = a
        elif isinstance(a, str | int) or hasattr(a, "type") and hasattr(a, "index"):
            device = a
        elif isinstance(a, bool):
            pass
        else:
            raise TypeError(f"to() received an invalid argument {a!r}")
    return device, dtype, copy, mf


def to(self, *args, **kwargs):
    """Convert dtype and/or move device: ``t.to(ember.float64)``, ``t.to("cuda")``,
    ``t.to(other)``, and lay out as ``memory_format`` asks (``ember.channels_last``). Returns
    ``self`` when nothing changes (unless ``copy=True``)."""
    device, dtype, copy, fmt = _parse_to(args, dict(kwargs))
    out = self
    if device is not None and to_device(device) != self.device:
        out = ToDevice.apply(out, device=str(to_device(device)))
    if dtype is not None:
        out = E.cast(out, _dt.to_dtype(dtype))
    if fmt is not None and fmt is not _mf.preserve_format:
        out = ops.contiguous(out, memory_format=fmt)
    if copy and out is self:
        out = ops.clone(self, memory_format=fmt)
    return out


def _dtype_method(d):
    def m(self, memory_format=None):
        return E.cast(self, d)

    m.__doc__ = f"``self.to({d!r})``."
    return m


_TYPE_NAMES = {
    "float32": "Float",
    "float64": "Double",
    "float16": "Half",
    "bfloat16": "BFloat16",
    "int64": "Long",
    "int32": "Int",
    "int16": "Short",
    "int8": "Char",
    "uint8": "Byte",
    "bool": "Bool",
}


def _type(self, dtype=None, non_blocking=False):
    """The type name (no argument), such as ``ember.FloatTensor``, or a cast to ``dtype``."""
    if dtype is None:
        return f"ember.{_TYPE_NAMES[self.dtype.name]}Tensor"
    return E.cast(self, _dt.to_dtype(dtype))
