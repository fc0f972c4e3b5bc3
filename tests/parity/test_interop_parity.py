"""DLPack between ember and PyTorch: zero-copy both ways, same values and dtypes."""

import numpy as np
import pytest
import torch

import ember

PAIRS = [
    (ember.float16, torch.float16),
    (ember.float32, torch.float32),
    (ember.float64, torch.float64),
    (ember.int8, torch.int8),
    (ember.int16, torch.int16),
    (ember.int32, torch.int32),
    (ember.int64, torch.int64),
    (ember.uint8, torch.uint8),
    (ember.bool, torch.bool),
]
IDS = [str(t).split(".")[-1] for _, t in PAIRS]


@pytest.mark.parametrize("edt,tdt", PAIRS, ids=IDS)
def test_torch_from_ember_shares_memory(edt, tdt):
    e = ember.tensor([[0, 1, 0], [1, 1, 0]], dtype=edt)
    t = torch.from_dlpack(e)
    assert t.dtype == tdt and tuple(t.shape) == (2, 3)
    assert t.tolist() == e.tolist()
    assert t.data_ptr() == e.data_ptr()
    t[0, 0] = 1
    assert e[0, 0].item() == 1
    e[1, 2] = 1
    assert t[1, 2].item() == 1


@pytest.mark.parametrize("edt,tdt", PAIRS, ids=IDS)
def test_ember_from_torch_shares_memory(edt, tdt):
    t = torch.tensor([[1, 0, 1], [0, 0, 1]], dtype=tdt)
    e = ember.from_dlpack(t)
    assert e.dtype == edt and e.tolist() == t.tolist()
    assert e.data_ptr() == t.data_ptr()
    e[0, 1] = 1
    assert t[0, 1].item() == 1
    t[1, 0] = 1
    assert e[1, 0].item() == 1


def test_round_trip_keeps_strides_and_values():
    t = torch.arange(24.0, dtype=torch.float64).reshape(4, 6)[:, 1::2].T  # non-contiguous
    e = ember.from_dlpack(t)
    np.testing.assert_array_equal(e.numpy(), t.numpy())
    back = torch.from_dlpack(e)
    assert back.stride() == t.stride() and back.data_ptr() == t.data_ptr()


def test_ember_results_feed_torch_and_back():
    x = torch.linspace(-1.0, 1.0, 7, dtype=torch.float64)
    y = ember.from_dlpack(x).tanh() * 2
    z = torch.from_dlpack(y)
    torch.testing.assert_close(z, torch.tanh(x) * 2)
    w = ember.from_dlpack(z.exp())
    np.testing.assert_allclose(w.numpy(), np.exp(2 * np.tanh(x.numpy())))


def test_torch_exports_from_ember_after_detach():
    e = ember.ones(3, requires_grad=True)
    t = torch.from_dlpack(e.detach())
    assert t.data_ptr() == e.data_ptr() and not t.requires_grad


def test_ember_set_num_threads_leaves_torch_threads_alone():
    # set_num_threads once restored every library's thread count, torch's OpenMP pool included
    torch_before, ember_before = torch.get_num_threads(), ember.get_num_threads()
    try:
        torch.set_num_threads(1)
        ember.set_num_threads(1)
        torch.set_num_threads(2)
        ember.set_num_threads(2)
        assert torch.get_num_threads() == 2
        ember.set_num_threads(1)
        assert torch.get_num_threads() == 2 and ember.get_num_threads() == 1
    finally:
        torch.set_num_threads(torch_before)
        ember.set_num_threads(ember_before)
