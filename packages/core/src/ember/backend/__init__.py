"""Devices, dtypes and random streams: what sits below tensors."""

from .device import CPU, array_module, cupy_module, device, device_of, to_device
from .dtypes import (
    dtype,
    from_numpy_dtype,
    get_default_dtype,
    promote_types,
    set_default_dtype,
    to_dtype,
)
from .random import Generator, default_generator, manual_seed, rng

__all__ = [
    "CPU",
    "Generator",
    "array_module",
    "cupy_module",
    "default_generator",
    "device",
    "device_of",
    "dtype",
    "from_numpy_dtype",
    "get_default_dtype",
    "manual_seed",
    "promote_types",
    "rng",
    "set_default_dtype",
    "to_device",
    "to_dtype",
]
