"""``autocast``: run the matrix-product ops in a lower precision and the numerically touchy ops
in float32, as PyTorch's autocast does, reduced to ember's ops.

Ops opt in with one attribute read at their entry, not in ``Primitive.apply``::

    if _amp.STATE.on:
        input, other = _amp.lower_precision(input, other)   # matmul, linear, conv, einsum, sdpa
    if _amp.STATE.on:
        (input,) = _amp.full_precision(input)               # softmax, layer_norm, losses

``lower_precision`` casts floating inputs other than float64 to the autocast dtype of the
device they live on (when autocast is on for that device); ``full_precision`` casts float16
and bfloat16 inputs to float32. Casts of leaf tensors that require grad (parameters) are
cached for the extent of the outermost autocast region when ``cache_enabled``.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ..backend import dtypes as _dt

_DEVICES = ("cpu", "cuda")
_DEFAULT_DTYPE = {"cpu": _dt.bfloat16, "cuda": _dt.float16}
_ALLOWED = (_dt.bfloat16, _dt.float16)


class _State:
    """Process-wide autocast switches; ``on`` is the one flag ops read at entry."""

    on = False
    depth = 0
    cache_enabled = True

    def __init__(self):
        self.enabled = {"cpu": False, "cuda": False}
        self.dtype = dict(_DEFAULT_DTYPE)
        self.cache = {}  # id(leaf) -> (leaf, np dtype, cast)


STATE = _State()


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """True inside an enabled ``autocast(device_type)`` region.

    >>> import ember, ember.amp
    >>> ember.amp.is_autocast_enabled("cpu")
    False
    """
    return STATE.enabled[_device_type(device_type)]


def get_autocast_dtype(device_type: str = "cuda"):
    """The dtype ``autocast(device_type)`` casts to (bfloat16 on cpu, float16 on cuda by
    default).

    >>> import ember, ember.amp
    >>> ember.amp.get_autocast_dtype("cpu")
    ember.bfloat16
    """
    return STATE.dtype[_device_type(device_type)]


def _device_type(device_type) -> str:
    if not isinstance(device_type, str) or device_type not in _DEVICES:
        raise RuntimeError(f"autocast: expected device_type 'cpu' or 'cuda', got {device_type!r}")
    return device_type


def _on_device(t) -> str:
    return "cpu" if isinstance(t._data, np.ndarray | np.generic) else "cuda"


def _cast(t, target):
    """``t.to(target)``, through the parameter cache when ``t`` is a leaf requiring grad."""
    from ..autograd.grad_mode import STATE as GRAD

    cacheable = STATE.cache_enabled and t.requires_grad and t.grad_fn is None and GRAD.grad_enabled
    if not cacheable:
        return t.to(target)
    hit = STATE.cache.get(id(t))
    if hit is not None and hit[0] is t and hit[1] == target.np:
        return hit[2]
    out = t.to(target)
    STATE.cache[id(t)] = (t, target.np, out)
    return out


def lower_precision(*tensors):
    """Each floating tensor (not float64) cast to its device's autocast dtype, when autocast is
    on for that device; anything else (None, integers, float64, numbers) as it is.

    >>> import ember, ember.amp
    >>> with ember.amp.autocast("cpu"):
    ...     (y,) = ember.amp.lower_precision(ember.ones(2))
    >>> y.dtype
    ember.bfloat16
    """
    out = []
    for t in tensors:
        data = getattr(t, "_data", None)
        if data is not None and data.dtype.kind in "fV" and data.dtype != np.float64:
            dev = _on_device(t)
            if STATE.enabled[dev]:
                target = STATE.dtype[dev]
                if data.dtype != target.np:
                    t = _cast(t, target)
        out.append(t)
    return tuple(out)


_HALF = (np.dtype(np.float16), _dt.bfloat16.np)


def full_precision(*tensors):
    """Each float16/bfloat16 tensor cast to float32 (inside autocast for its device); anything
    else as it is.

    >>> import ember, ember.amp
    >>> with ember.amp.autocast("cpu"):
    ...     (y,) = ember.amp.full_precision(ember.ones(2, dtype=ember.bfloat16))
    >>> y.dtype
    ember.float32
    """
    out = []
    for t in tensors:
        data = getattr(t, "_data", None)
        if data is not None and data.dtype in _HALF and STATE.enabled[_on_device(t)]:
            t = t.to(_dt.float32)
        out.append(t)
    return tuple(out)


class autocast:
    """Mixed precision for a region: a context manager, and a decorator.

    Inside, matmul, mm, bmm, linear, conv, einsum and scaled-dot-product attention cast their
    floating inputs to ``dtype`` (default bfloat16 on "cpu", float16 on "cuda"); softmax,
    log_softmax, layer/group norm and the losses run in float32. ``enabled=False`` switches
    autocast off for the region (also inside an enabled one). ``cache_enabled`` (default True)
    reuses the cast of each parameter within the outermost region.

    >>> import ember, ember.amp
    >>> @ember.amp.autocast("cpu", dtype=ember.float16)
    ... def f():
    ...     return ember.amp.get_autocast_dtype("cpu")
    >>> f()
    ember.float16
    """

    def __init__(self, device_type: str, dtype=None, enabled: bool = True, cache_enabled=None):
        self.device = _device_type(device_type)
        self.fast_dtype = _DEFAULT_DTYPE[self.device] if dtype is None else _dt.to_dtype(dtype)
        self._enabled = bool(enabled)
        if self._enabled and self.fast_dtype not in _ALLOWED:
            warnings.warn(
                f"In {self.device} autocast, but the target dtype {self.fast_dtype} is not "
                f"supported (use ember.bfloat16 or ember.float16). Disabling autocast.",
                stacklevel=2,
            )
            self._enabled = False
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        self._args = (device_type, dtype, enabled, cache_enabled)

    def __enter__(self):
        d = self.device
        self._prev = (STATE.enabled[d], STATE.dtype[d], STATE.cache_enabled)
        STATE.enabled[d] = self._enabled
        STATE.dtype[d] = self.fast_dtype
        STATE.cache_enabled = self._cache_enabled
        STATE.on = any(STATE.enabled.values())
        STATE.depth += 1
        return self

    def __exit__(self, *exc):
        d = self.device
        STATE.enabled[d], STATE.dtype[d], STATE.cache_enabled = self._prev
        STATE.on = any(STATE.enabled.values())
        STATE.depth -= 1
        if STATE.depth == 0:
            STATE.cache.clear()
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(*self._args):
                return fn(*args, **kwargs)

        return wrapper
