"""``ember.amp``: automatic mixed precision (``autocast``) and loss scaling (``GradScaler``).

>>> import ember, ember.amp
>>> with ember.amp.autocast("cpu"):
...     ember.amp.is_autocast_enabled("cpu")
True
"""

from __future__ import annotations

from .autocast_mode import (
    STATE,
    autocast,
    full_precision,
    get_autocast_dtype,
    is_autocast_enabled,
    lower_precision,
)
from .grad_scaler import GradScaler

__all__ = [
    "STATE",
    "GradScaler",
    "autocast",
    "full_precision",
    "get_autocast_dtype",
    "is_autocast_enabled",
    "lower_precision",
]
