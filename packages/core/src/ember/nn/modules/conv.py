"""Convolution layers: Conv1d, Conv2d, ConvTranspose1d and ConvTranspose2d, with PyTorch's
parameter shapes, initialisation, padding modes and repr."""

from __future__ import annotations

import math

from .. import _conv, init
from .. import functional as F
from ..module import Module
from .linear import _param

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(v, n, name):
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(i) for i in v)
    if len(v) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v}")
    return v


class _ConvNd(Module):
    """Shared set-up of convolution layers: validation, parameters, reset, repr."""

    _n = 2
    _transposed = False

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride,
        padding,
        dilation,
        output_padding,
        groups,
        bias,
        padding_mode,
        device=None,
        dtype=None,
    ):
        super().__init__()
        n = self._n
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {set(_PADDING_MODES)}, but got "
                f"padding_mode='{padding_mode}'"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size")
        self.stride = _ntuple(stride, n, "stride")
        self.dilation = _ntuple(dilation, n, "dilation")
        self.padding = self._check_padding(padding)
        self.output_padding = _ntuple(output_padding, n, "output_padding")
        self.transposed, self.groups, self.padding_mode = self._transposed, groups, padding_mode
        self._reversed_padding_repeated_twice = self._pad_for_mode()
        if self._transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = _param(*shape, device=device, dtype=dtype)
        if bias:
            self.bias = _param(out_channels, device=device, dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _check_padding(self, padding):
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}"
                )
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            return padding
        return _ntuple(padding, self._n, "padding")

    def _pad_for_mode(self):
        # F.pad widths (last dim first) used when padding_mode is not 'zeros'
        if self.padding == "valid":
            return [0, 0] * self._n
        if self.padding == "same":
            pairs = _conv.same_padding(self.kernel_size, self.dilation)
        else:
            pairs = [(p, p) for p in self.padding]
        return [v for lo_hi in reversed(pairs) for v in lo_hi]

    def reset_parameters(self) -> None:
        """Re-draw weight (kaiming_uniform_, a=sqrt(5)) and bias (U(+-1/sqrt(fan_in)))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        """Channels, kernel and every non-default setting, as PyTorch prints them."""
        n = self._n
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _padded(self, input):
        """(input, padding) for the conv call: non-zero modes pad explicitly first."""
        if self.padding_mode == "zeros":
            return input, self.padding
        return F.pad(input, self._reversed_padding_repeated_twice, self.padding_mode), 0


class _DirectConvNd(_ConvNd):
    """Conv1d and Conv2d: one signature and forward, ``_n`` sets the dimensionality."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        padding_mode="zeros",
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, 0, groups,
            bias, padding_mode, device, dtype,
        )  # fmt: skip

    def forward(self, input):
        """Convolve ``input`` with the layer's weight."""
        x, padding = self._padded(input)
        conv = getattr(F, f"conv{self._n}d")
        return conv(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv1d(_DirectConvNd):
    """1-D convolution over (N, C_in, L) input; weight (C_out, C_in / groups, k)."""

    _n = 1


class Conv2d(_DirectConvNd):
    """2-D convolution over (N, C_in, H, W) input; weight (C_out, C_in / groups, kh, kw).

    >>> import ember
    >>> ember.nn.Conv2d(3, 8, 3, padding="same")(ember.randn(1, 3, 5, 5)).shape
    ember.Size([1, 8, 5, 5])
    """


class _ConvTransposeNd(_ConvNd):
    """ConvTranspose1d and ConvTranspose2d: one signature and forward."""

    _transposed = True

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups=1,
        bias=True,
        dilation=1,
        padding_mode="zeros",
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, output_padding,
            groups, bias, padding_mode, device, dtype,
        )  # fmt: skip
        self._check_transposed()

    def forward(self, input, output_size=None):
        """Apply the transposed convolution (``output_size`` picks among valid sizes)."""
        opad = self._output_padding(input, output_size)
        return getattr(F, f"conv_transpose{self._n}d")(
            input, self.weight, self.bias, self.stride, self.padding, opad, self.groups,
            self.dilation,
        )  # fmt: skip

    def _output_padding(self, input, output_size):
        """The output_padding that makes the output ``output_size`` (PyTorch's rule)."""
        if output_size is None:
            return self.output_padding
        n = self._n
        output_size = tuple(output_size)[-n:]
        if len(output_size) != n:
            raise ValueError(
                f"ConvTranspose{n}D: for {input.ndim}D input, output_size must have {n} or "
                f"{n + 2} elements (got {len(output_size)})"
            )
        pads = []
        for d in range(n):
            size_in = input.shape[input.ndim - n + d]
            smallest = (
                (size_in - 1) * self.stride[d]
                - 2 * self.padding[d]
                + self.dilation[d] * (self.kernel_size[d] - 1)
                + 1
            )
            largest = smallest + self.stride[d] - 1
            if not smallest <= output_size[d] <= largest:
                raise ValueError(
                    f"requested an output size of {list(output_size)}, but valid sizes range "
                    f"from {smallest} to {largest} (for an input of {list(input.shape[2:])})"
                )
            pads.append(output_size[d] - smallest)
        return tuple(pads)

    def _check_transposed(self):
        if isinstance(self.padding, str):
            raise ValueError(f'padding="{self.padding}" is not supported for {type(self).__name__}')
        if self.padding_mode != "zeros":
            raise ValueError(f"Only 'zeros' padding mode is supported for {type(self).__name__}")


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution; weight (C_in, C_out / groups, k)."""

    _n = 1


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution; weight (C_in, C_out / groups, kh, kw)."""
