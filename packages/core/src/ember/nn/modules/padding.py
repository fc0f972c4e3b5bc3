"""Padding layers: constant, zero, reflection, replication and circular padding."""

from __future__ import annotations

from .. import functional as F
from ..module import Module

__all__ = [
    "CircularPad1d",
    "CircularPad2d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ZeroPad1d",
    "ZeroPad2d",
]


class _PadNd(Module):
    _mode = "constant"
    _n = 2

    def __init__(self, padding, value: float = 0.0):
        super().__init__()
        self.padding = (padding,) * (2 * self._n) if isinstance(padding, int) else tuple(padding)
        if len(self.padding) != 2 * self._n:
            raise ValueError(
                f"{type(self).__name__}: padding must be an int or a {2 * self._n}-tuple, "
                f"got {padding}"
            )
        self.value = value

    def forward(self, input):
        """Pad the last dims of ``input``."""
        if self._mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        """The padding (and fill value for constant padding)."""
        if self._mode == "constant" and type(self).__name__.startswith("Constant"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


class ConstantPad1d(_PadNd):
    """Pad the last dim with ``value``: ``padding`` is an int or (left, right)."""

    _n = 1

    def __init__(self, padding, value: float):
        super().__init__(padding, value)


class ConstantPad2d(_PadNd):
    """Pad the last two dims with ``value``: (left, right, top, bottom)."""

    def __init__(self, padding, value: float):
        super().__init__(padding, value)


class ZeroPad1d(_PadNd):
    """Pad the last dim with zeros."""

    _n = 1

    def __init__(self, padding):
        super().__init__(padding, 0.0)


class ZeroPad2d(_PadNd):
    """Pad the last two dims with zeros: (left, right, top, bottom)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)


class ReflectionPad1d(_PadNd):
    """Pad the last dim by reflecting the input at its edges."""

    _mode, _n = "reflect", 1


class ReflectionPad2d(_PadNd):
    """Pad the last two dims by reflecting the input at its edges."""

    _mode = "reflect"


class ReplicationPad1d(_PadNd):
    """Pad the last dim by repeating the edge values."""

    _mode, _n = "replicate", 1


class ReplicationPad2d(_PadNd):
    """Pad the last two dims by repeating the edge values."""

    _mode = "replicate"


class CircularPad1d(_PadNd):
    """Pad the last dim by wrapping around."""

    _mode, _n = "circular", 1


class CircularPad2d(_PadNd):
    """Pad the last two dims by wrapping around."""

    _mode = "circular"
