"""Memory formats against PyTorch: the same strides and contiguity answers."""

import numpy as np
import pytest
import torch

import ember

CASES = [
    ((2, 3, 4, 5), "channels_last"),
    ((2, 3, 1, 1), "channels_last"),
    ((1, 1, 4, 5), "channels_last"),
    ((2, 3, 4, 5, 6), "channels_last_3d"),
]


@pytest.mark.parametrize("shape,fmt", CASES, ids=str)
def test_strides_and_contiguity_match_torch(shape, fmt):
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    e = ember.tensor(a).contiguous(memory_format=getattr(ember, fmt))
    t = torch.tensor(a).contiguous(memory_format=getattr(torch, fmt))
    assert e.stride() == t.stride()
    for f in ("contiguous_format", fmt):
        assert e.is_contiguous(memory_format=getattr(ember, f)) == t.is_contiguous(
            memory_format=getattr(torch, f)
        )
    np.testing.assert_array_equal(e.numpy(), t.numpy())
