"""Memory formats: channels_last layouts, their checks and conversions, with the strides
worked out by hand (N, H, W, C storage of an (N, C, H, W) tensor)."""

import numpy as np
import pytest

import ember
import ember.nn as nn


def nhwc_strides(n, c, h, w):
    return (h * w * c, 1, w * c, c)


def test_contiguous_channels_last_keeps_values_and_changes_strides():
    x = ember.randn(2, 3, 4, 5)
    y = x.contiguous(memory_format=ember.channels_last)
    assert y.shape == x.shape and y.stride() == nhwc_strides(2, 3, 4, 5)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    assert y.is_contiguous(memory_format=ember.channels_last) and not y.is_contiguous()
    assert x.is_contiguous() and not x.is_contiguous(memory_format=ember.channels_last)
    assert y.contiguous(memory_format=ember.channels_last) is y  # already laid out: no copy
    back = y.contiguous()
    assert back.is_contiguous() and back.stride() == (60, 20, 5, 1)
    np.testing.assert_array_equal(back.numpy(), x.numpy())


def test_channels_last_3d_and_rank_errors():
    x = ember.randn(2, 3, 4, 5, 6).contiguous(memory_format=ember.channels_last_3d)
    assert x.stride() == (360, 1, 90, 18, 3)
    with pytest.raises(RuntimeError, match="required rank 4"):
        ember.randn(2, 3, 4).contiguous(memory_format=ember.channels_last)
    with pytest.raises(RuntimeError, match="preserve memory format"):
        ember.randn(2, 3, 4, 5).contiguous(memory_format=ember.preserve_format)
    assert repr(ember.channels_last) == "ember.channels_last"


def test_size_one_dims_count_as_laid_out():
    x = ember.randn(2, 3, 1, 1)  # row-major and channels-last at once, as in PyTorch
    assert x.is_contiguous() and x.is_contiguous(memory_format=ember.channels_last)


def test_to_and_clone_take_a_memory_format_and_gradients_flow():
    x = ember.randn(2, 3, 4, 5, requires_grad=True)
    y = x.to(memory_format=ember.channels_last)
    assert y.stride() == nhwc_strides(2, 3, 4, 5)
    (y * ember.arange(120.0).reshape(2, 3, 4, 5)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(120.0).reshape(2, 3, 4, 5))
    c = y.clone(memory_format=ember.channels_last)
    assert c.stride() == y.stride() and c.data_ptr() != y.data_ptr()
    assert x.to(ember.float64, memory_format=ember.channels_last).stride() == nhwc_strides(
        2, 3, 4, 5
    )


def test_module_to_channels_last_relays_out_4d_weights_only():
    torch_like = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
    x = ember.randn(2, 3, 6, 6)
    want = torch_like(x).detach().numpy()
    torch_like.to(memory_format=ember.channels_last)
    w = torch_like[0].weight
    assert isinstance(w, nn.Parameter) and w.stride() == nhwc_strides(8, 3, 3, 3)
    assert torch_like[0].bias.stride() == (1,) and torch_like[1].weight.stride() == (1,)
    out = torch_like(x.to(memory_format=ember.channels_last))
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-5, atol=1e-6)
    out.sum().backward()
    assert w.grad.shape == w.shape and np.isfinite(w.grad.numpy()).all()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_channels_last_weights_save_and_load(tmp_path, suffix):
    m = nn.Conv2d(3, 4, 3).to(memory_format=ember.channels_last)
    ember.save(m.state_dict(), tmp_path / f"w{suffix}")
    fresh = nn.Conv2d(3, 4, 3)
    fresh.load_state_dict(ember.load(tmp_path / f"w{suffix}"))
    np.testing.assert_array_equal(fresh.weight.detach().numpy(), m.weight.detach().numpy())


def test_leaf_gradients_take_the_leaf_layout():
    """As PyTorch's gradient layout contract: a gradient that reaches a leaf as a view is
    copied into the leaf's own layout (channels last stays channels last, C stays C)."""
    xn = np.random.default_rng(4).standard_normal((2, 3, 4, 5))
    x = ember.tensor(xn).contiguous(memory_format=ember.channels_last).requires_grad_(True)
    (x.transpose(1, 2) * 2.0).sum().backward()  # transpose's backward hands back a view
    assert x.grad.is_contiguous(memory_format=ember.channels_last)
    np.testing.assert_array_equal(x.grad.numpy(), np.full(xn.shape, 2.0))
    w = ember.tensor(xn[0, 0], requires_grad=True)  # (4, 5), C-contiguous
    (w.t() * ember.tensor(np.arange(20.0).reshape(5, 4))).sum().backward()
    assert w.grad.is_contiguous()
    np.testing.assert_array_equal(w.grad.numpy(), np.arange(20.0).reshape(5, 4).T)
