"""Anomaly detection: record where each node was created and fail on NaN gradients."""

from __future__ import annotations

from .grad_mode import STATE


class detect_anomaly:
    """Inside this block, a backward that produces NaN raises an error naming the forward op
    and showing where it was called.

    >>> import ember
    >>> x = ember.tensor([0.0], requires_grad=True)
    >>> with ember.autograd.detect_anomaly():
    ...     y = (x.sqrt() * 0).sum()
    ...     try:
    ...         y.backward()
    ...     except RuntimeError as e:
    ...         print(str(e).split('.')[0])
    Function 'SqrtBackward0' returned nan values in its 0th output
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self._prev = STATE.anomaly
        STATE.anomaly = self.check_nan
        return self

    def __exit__(self, *exc):
        STATE.anomaly = self._prev
        return False


class set_detect_anomaly(detect_anomaly):
    """Turn anomaly detection on or off (also usable as a context manager)."""

    def __init__(self, mode: bool, check_nan: bool = True):
        super().__init__(check_nan and mode)
        self._prev = STATE.anomaly
        STATE.anomaly = bool(mode) and check_nan

    def __enter__(self):
        return self


def is_anomaly_enabled() -> bool:
    """True while anomaly detection is on."""
    return STATE.anomaly
