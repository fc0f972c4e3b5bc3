"""Grad mode: whether ops record the graph. ``no_grad``, ``enable_grad``, ``inference_mode``."""

from __future__ import annotations

import functools


class _State:
    """Process-wide switches read on every op (a plain attribute read is the cheapest check)."""

    grad_enabled = True
    inference = False
    anomaly = False
    # True while ember.jit.trace records: the fast paths that write arrays without a
    # Primitive.apply (in-place scalar arithmetic, in-place ReLU and running statistics on
    # NumPy buffers, inference batch norm) take the general path, so every op is a node
    tracing = False


STATE = _State()


def is_grad_enabled() -> bool:
    """True when ops record the autograd graph."""
    return STATE.grad_enabled


def is_inference_mode_enabled() -> bool:
    """True inside ``ember.inference_mode()``."""
    return STATE.inference


class _Mode:
    """A context manager that is also a decorator, setting grad mode for its extent."""

    _value = True

    def __new__(cls, *args):
        if len(args) == 1 and callable(args[0]):  # used bare: @ember.no_grad
            return cls()(args[0])
        return super().__new__(cls)

    def __enter__(self):
        self._prev = (STATE.grad_enabled, STATE.inference)
        STATE.grad_enabled = self._value
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled, STATE.inference = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_Mode):
    """Run without recording the graph: results have ``requires_grad=False``.

    >>> import ember
    >>> x = ember.ones(2, requires_grad=True)
    >>> with ember.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    _value = False


class enable_grad(_Mode):
    """Record the graph again inside a ``no_grad`` block."""

    _value = True


class set_grad_enabled(_Mode):
    """Turn graph recording on or off; takes effect at once and also works as a context manager."""

    def __init__(self, mode: bool):
        self._prev = (STATE.grad_enabled, STATE.inference)
        self._value = bool(mode)
        STATE.grad_enabled = self._value

    def __enter__(self):
        return self

    def __call__(self, fn):
        STATE.grad_enabled, STATE.inference = self._prev
        mode = self._value

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


class inference_mode(_Mode):
    """Like ``no_grad``, for pure inference; ``inference_mode(False)`` is a no-op."""

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)

    def __enter__(self):
        self._prev = (STATE.grad_enabled, STATE.inference)
        if self.mode:
            STATE.grad_enabled = False
            STATE.inference = True
        return self

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)

        return wrapper
