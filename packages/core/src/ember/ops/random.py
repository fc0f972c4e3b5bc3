"""Random ops with gradients: dropout."""

from __future__ import annotations

import numpy as np

from ..backend.device import array_module
from ..backend.random import rng


def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)``."""
    if p < 0 or p > 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    xp = array_module(input._data)
    if xp is np:
        keep = rng(generator).random(input._data.shape, dtype=np.float32) >= p
    else:  # pragma: no cover - GPU machines only
        keep = xp.random.random(input._data.shape, dtype=xp.float32) >= p
    from .._tensor import _make

    scale = (keep * (1.0 / (1.0 - p))).astype(input._data.dtype)
    return input * _make(scale)
