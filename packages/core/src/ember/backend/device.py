"""Devices ("cpu", "cuda:N") and the array module (NumPy or CuPy) that backs each."""

from __future__ import annotations

import numpy as np


class device:
    """Where a tensor's memory lives: ``ember.device("cpu")`` or ``ember.device("cuda:0")``."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index: int | None = None):
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        if isinstance(spec, int):
            spec, index = "cuda", spec
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, idx = spec.partition(":")
        if kind not in ("cpu", "cuda"):
            raise RuntimeError(
                f"Expected one of cpu, cuda device type at start of device string: {spec}"
            )
        if idx:
            if index is not None:
                raise RuntimeError(f"device: index given twice in {spec!r} and index={index}")
            index = int(idx)
        if kind == "cpu" and index not in (None, 0):
            raise RuntimeError(f"device: cpu has no index {index}")
        self.type = kind
        self.index = None if kind == "cpu" else index

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = device("cpu")


def to_device(d) -> device:
    """Accept a device, a string or an int; return a device (``None`` means CPU)."""
    if d is None:
        return CPU
    if isinstance(d, device):
        return d
    return device(d)


def cupy_module():
    """Import CuPy, or raise a clear error saying how to get it."""
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "CUDA tensors need CuPy: pip install 'ember[cuda]' on a machine with an NVIDIA GPU"
        ) from exc
    return cupy


def array_module(arr):
    """``numpy`` for a NumPy array (or scalar), ``cupy`` for a CuPy array."""
    if isinstance(arr, np.ndarray | np.generic):
        return np
    if type(arr).__module__.startswith("cupy"):
        return cupy_module()
    return np


def device_of(arr) -> device:
    """The device an array lives on."""
    if isinstance(arr, np.ndarray | np.generic):
        return CPU
    if type(arr).__module__.startswith("cupy"):
        return device("cuda", int(arr.device.id))
    return CPU
