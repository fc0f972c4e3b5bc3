"""Zero-copy interop with NumPy: .numpy(), from_numpy, np.asarray and DLPack share memory."""

import numpy as np
import pytest

import ember

DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]


def sample(dtype, shape=(2, 3)):
    return (np.arange(int(np.prod(shape))) % 2).reshape(shape).astype(dtype)


def one(dtype):
    return np.ones((), dtype=dtype)[()]


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_shares_memory(dtype):
    t = ember.zeros(2, 3, dtype=getattr(ember, dtype if dtype != "bool" else "bool"))
    a = t.numpy()
    assert a.dtype == np.dtype(dtype) and a.shape == (2, 3)
    a[0, 1] = one(dtype)
    assert t[0, 1].item() == 1
    t[1, 2] = 1
    assert a[1, 2] == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_from_numpy_shares_memory(dtype):
    a = np.zeros((2, 3), dtype=dtype)
    t = ember.from_numpy(a)
    assert t.dtype == getattr(ember, dtype) and tuple(t.shape) == (2, 3)
    a[1, 0] = one(dtype)
    assert t[1, 0].item() == 1
    t[0, 2] = 1
    assert a[0, 2] == 1
    assert np.shares_memory(t.numpy(), a)


def test_from_numpy_keeps_strides_of_views():
    base = np.arange(12.0).reshape(3, 4)
    view = base[:, ::2].T  # non-contiguous
    t = ember.from_numpy(view)
    assert t.tolist() == view.tolist()
    base[0, 0] = -1.0
    assert t[0, 0].item() == -1.0


def test_from_numpy_rejects_other_types():
    with pytest.raises(TypeError):
        ember.from_numpy([1.0, 2.0])


def test_in_place_ops_are_seen_by_numpy():
    t = ember.ones(4)
    a = t.numpy()
    t.mul_(3.0)
    t.add_(1.0)
    np.testing.assert_array_equal(a, [4.0, 4.0, 4.0, 4.0])


def test_numpy_refuses_grad_tensors():
    t = ember.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        t.numpy()
    assert np.shares_memory(t.detach().numpy(), t.numpy(force=True))


@pytest.mark.parametrize("dtype", DTYPES)
def test_asarray_shares_memory(dtype):
    t = ember.from_numpy(sample(dtype))
    a = np.asarray(t)
    assert a.dtype == np.dtype(dtype)
    assert np.shares_memory(a, t.numpy())
    np.testing.assert_array_equal(a, sample(dtype))


def test_asarray_with_dtype_converts():
    t = ember.tensor([1.5, 2.5])
    a = np.asarray(t, dtype=np.float64)
    assert a.dtype == np.float64 and a.tolist() == [1.5, 2.5]
    np.testing.assert_array_equal(np.array(t), [1.5, 2.5])
    assert np.array(t, copy=True).tolist() == [1.5, 2.5]


def test_dlpack_device_is_cpu():
    assert ember.ones(2).__dlpack_device__() == (1, 0)  # kDLCPU, device 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_np_from_dlpack_shares_memory(dtype):
    t = ember.from_numpy(sample(dtype))
    a = np.from_dlpack(t)
    assert a.dtype == np.dtype(dtype) and a.shape == (2, 3)
    assert np.shares_memory(a, t.numpy())
    t[0, 0] = 1
    assert a[0, 0] == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_ember_from_dlpack_shares_memory(dtype):
    a = sample(dtype)
    t = ember.from_dlpack(a)
    assert t.dtype == getattr(ember, dtype)
    assert t.tolist() == a.tolist()
    a[1, 1] = 0
    assert t[1, 1].item() == 0
    t[1, 2] = 0
    assert a[1, 2] == 0


def test_dlpack_round_trip_ember_to_ember():
    t = ember.arange(6.0).reshape(2, 3)
    u = ember.from_dlpack(t)
    assert u.data_ptr() == t.data_ptr()
    u[0, 0] = 7.0
    assert t[0, 0].item() == 7.0


def test_dlpack_non_contiguous_view():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)[:, 1::2]
    t = ember.from_dlpack(a)
    assert t.tolist() == a.tolist()
    back = np.from_dlpack(t)
    assert back.strides == a.strides and np.shares_memory(back, a)


def test_results_of_ops_hand_back_to_numpy():
    x = ember.from_numpy(np.linspace(0.0, 1.0, 5))
    y = (x * 2).exp()
    np.testing.assert_allclose(np.from_dlpack(y), np.exp(2 * np.linspace(0.0, 1.0, 5)))
    np.testing.assert_allclose(y.numpy(), np.asarray(y))
