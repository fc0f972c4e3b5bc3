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


@pytest.mark.parametrize("fmt", ["contiguous_format", "channels_last"])
def test_leaf_gradient_strides_follow_the_leaf_as_in_torch(fmt):
    """A gradient that reaches the leaf as a transposed view is stored in the leaf's layout."""
    a = np.random.default_rng(1).standard_normal((2, 3, 4, 5)).astype(np.float32)
    e = ember.tensor(a).contiguous(memory_format=getattr(ember, fmt)).requires_grad_(True)
    t = torch.tensor(a).contiguous(memory_format=getattr(torch, fmt)).requires_grad_(True)
    for x, lib in ((e, ember), (t, torch)):
        (x.transpose(1, 2) * lib.tensor(3.0)).sum().backward()
    assert e.grad.stride() == t.grad.stride()
    np.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())


def test_a_fresh_gradient_in_another_layout_is_laid_out_as_the_leaf():
    """Not only views: a gradient computed C-contiguous for a channels-last leaf (here
    through ``contiguous()``) is stored channels last, as in PyTorch."""
    a = np.random.default_rng(2).standard_normal((2, 3, 4, 5)).astype(np.float32)
    e = ember.tensor(a).contiguous(memory_format=ember.channels_last).requires_grad_(True)
    t = torch.tensor(a).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    (e.contiguous() * ember.tensor(2.0)).sum().backward()
    (t.contiguous() * torch.tensor(2.0)).sum().backward()
    assert e.grad.stride() == t.grad.stride()
    np.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())
