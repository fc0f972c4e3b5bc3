"""Device and dtype conversion of a Module's parameters and buffers (``to``, ``cuda``,
``double`` ...). Parameters keep their identity: only their data changes, as PyTorch's
``param.data = ...`` does, so optimizers holding them stay valid."""

from __future__ import annotations

from ..autograd.grad_mode import no_grad


def _layout_applies(fmt, t) -> bool:
    """``Module.to(memory_format=...)`` relays out only the tensors of the format's rank (4-D
    weights for ``channels_last``, 5-D for ``channels_last_3d``), as PyTorch does."""
    from ..backend import memory_format as _mf

    if fmt is None or fmt is _mf.preserve_format or fmt is _mf.contiguous_format:
        return fmt is _mf.contiguous_format and t.ndim in (4, 5)
    return t.ndim == (4 if fmt is _mf.channels_last else 5)


class ConvertMixin:
    """The conversion half of ``Module``: every method rewrites tensors in place and
    returns the module."""

    def _apply(self, fn, recurse: bool = True) -> ConvertMixin:
        if recurse:
            for m in self.children():
                m._apply(fn)
        with no_grad():
            for p in self._parameters.values():
                if p is None:
                    continue
                new = fn(p)
                if new is not p:
                    p._data = new._data  # same Parameter object, as PyTorch's param.data = ...
                if p.grad is not None:
                    g = fn(p.grad)
                    if g is not p.grad:
                        p.grad._data = g._data
            for k, b in self._buffers.items():
                if b is not None:
                    self._buffers[k] = fn(b)
        return self

    def to(self, *args, **kwargs) -> ConvertMixin:
        """Move and/or cast parameters and buffers in place: ``to(device)``, ``to(dtype)``,
        ``to(tensor)``; only floating-point tensors change dtype. Returns self."""
        from .._to import _parse_to
        from ..backend import dtypes as _dt

        device, dtype, _, fmt = _parse_to(args, dict(kwargs))
        if dtype is not None:
            dtype = _dt.to_dtype(dtype)
            if not dtype.is_floating_point:
                raise TypeError(
                    "nn.Module.to only accepts floating point or complex dtypes, but got "
                    f"desired dtype={dtype}"
                )

        def convert(t):
            if device is not None:
                t = t.to(device)
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            if _layout_applies(fmt, t):
                t = t.to(memory_format=fmt)
            return t

        return self._apply(convert)

    def cpu(self) -> ConvertMixin:
        """Move every parameter and buffer to the CPU; returns self."""
        return self._apply(lambda t: t.cpu())

    def cuda(self, device=None) -> ConvertMixin:
        """Move every parameter and buffer to a GPU; returns self."""
        return self._apply(lambda t: t.cuda(device))

    def type(self, dst_type) -> ConvertMixin:
        """Cast every parameter and buffer to ``dst_type``; returns self."""
        return self._apply(lambda t: t.type(dst_type))

    def _float_cast(self, name):
        return self._apply(lambda t: getattr(t, name)() if t.is_floating_point() else t)

    def float(self) -> ConvertMixin:
        """Cast floating-point parameters and buffers to float32; returns self."""
        return self._float_cast("float")

    def double(self) -> ConvertMixin:
        """Cast floating-point parameters and buffers to float64; returns self."""
        return self._float_cast("double")

    def half(self) -> ConvertMixin:
        """Cast floating-point parameters and buffers to float16; returns self."""
        return self._float_cast("half")

    def bfloat16(self) -> ConvertMixin:
        """Cast floating-point parameters and buffers to bfloat16; returns self."""
        return self._float_cast("bfloat16")
