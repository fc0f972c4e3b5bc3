"""The layout logic of ember's CUDA kernels (kernels/cuda/compile.py) without a GPU: which
arrays count as dense and in what memory order, and how outputs are allocated in an input's
layout. The functions read only ``flags``, ``shape``, ``strides`` and ``itemsize``, which
NumPy arrays have too; allocation goes through a stand-in for CuPy backed by NumPy."""

import sys
import types

import numpy as np
import pytest

from ember.kernels.cuda import compile as cc


class CupyLike(np.ndarray):
    """A NumPy array whose type claims CuPy's module, for the checks that look at it."""


CupyLike.__module__ = "cupy._core.core"


def nhwc(shape, dtype=np.float32):
    n, c, h, w = shape
    return np.zeros((n, h, w, c), dtype).transpose(0, 3, 1, 2)


@pytest.mark.parametrize(
    "make,want",
    [
        (lambda: np.zeros((2, 3, 4, 5)), (0, 1, 2, 3)),
        (lambda: nhwc((2, 3, 4, 5)), (0, 2, 3, 1)),
        (lambda: np.zeros((2, 5, 3)).transpose(0, 2, 1), (0, 2, 1)),  # (N, C, L) channels last
        (lambda: np.zeros((2, 3, 4, 5)).transpose(0, 1, 3, 2), None),  # H and W swapped
        (lambda: nhwc((2, 4, 4, 5))[:, :3], None),  # a channel slice: not dense
        (lambda: np.zeros((2, 3, 8, 5))[:, :, ::2], None),  # strided rows
        (lambda: np.broadcast_to(np.zeros((1, 3, 1, 1)), (2, 3, 4, 5)), None),
        (lambda: nhwc((2, 3, 1, 1)), (0, 1, 2, 3)),  # both layouts are the same memory
        (lambda: np.zeros(7), (0,)),
    ],
)
def test_storage_order(make, want):
    assert cc.storage_order(make()) == want


def test_storage_order_agrees_with_a_transpose_check():
    """Against the definition: ``a`` is channels last when its (0, 2, 3, 1) transpose is
    C-contiguous, for random shapes with size-1 dims."""
    r = np.random.default_rng(3)
    for _ in range(200):
        shape = tuple(int(v) for v in r.integers(1, 4, 4))
        a = nhwc(shape) if r.random() < 0.5 else np.zeros(shape, np.float32)
        if r.random() < 0.3:  # sometimes break density
            a = a[:, :, :, ::2] if shape[3] > 1 else a[:, ::2]
        order = cc.storage_order(a)
        if a.flags.c_contiguous:
            assert order == (0, 1, 2, 3)
        elif a.transpose(0, 2, 3, 1).flags.c_contiguous:
            assert order == (0, 2, 3, 1)
        else:
            assert order is None


@pytest.fixture
def fake_cupy(monkeypatch):
    """``cupy.empty``, ``cupy.ndarray(shape, dtype, memptr, strides)`` and ``cuda.alloc``
    over NumPy, enough for the allocation helpers."""
    mod = types.ModuleType("cupy")
    mod.empty = np.empty
    mod.ndarray = lambda shape, dtype, mem, strides: np.ndarray(
        shape, dtype, buffer=mem, strides=strides
    )
    mod.cuda = types.SimpleNamespace(alloc=lambda n: bytearray(max(n, 1)))
    monkeypatch.setitem(sys.modules, "cupy", mod)
    return mod


def test_outputs_take_the_input_layout(fake_cupy):
    x = nhwc((2, 3, 4, 5), np.float64)
    y = cc.empty_as(x, np.float32)
    assert y.shape == x.shape and y.dtype == np.float32
    assert y.strides == nhwc((2, 3, 4, 5)).strides
    vals = np.arange(120.0).reshape(2, 3, 4, 5)
    y[...] = vals  # every element has its own place in the buffer
    np.testing.assert_array_equal(y, vals)
    assert cc.empty_as(np.zeros((2, 3, 4, 5)), np.float16).flags.c_contiguous
    assert cc.empty_4d((2, 3, 4, 5), np.float32, True).strides == nhwc((2, 3, 4, 5)).strides


def test_as_layout_copies_only_when_the_layout_or_dtype_differs(fake_cupy):
    like = nhwc((2, 3, 4, 5))
    same = nhwc((2, 3, 4, 5))
    assert cc.as_layout(same, like) is same
    g = np.random.default_rng(0).standard_normal((2, 3, 4, 5))  # C-contiguous float64
    out = cc.as_layout(g, like, np.float32)
    assert out is not g and cc.storage_order(out) == (0, 2, 3, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out, g.astype(np.float32))
    view = np.broadcast_to(np.ones((1, 3, 1, 1)), (2, 3, 4, 5))  # a broadcast gradient
    np.testing.assert_array_equal(cc.as_layout(view, like), np.ones((2, 3, 4, 5)))


def test_dense_kernels_accept_one_shared_layout_only():
    """``usable_dense`` takes CuPy arrays only; NumPy arrays dressed as CuPy's stand in."""
    Fake = CupyLike
    a = nhwc((2, 3, 4, 5)).view(Fake)
    b = nhwc((2, 3, 4, 5)).view(Fake)
    c = np.zeros((2, 3, 4, 5), np.float32).view(Fake)
    assert cc.usable_dense(a, b)
    assert not cc.usable_dense(a, c)  # channels last beside C-contiguous
    assert not cc.usable_dense(a, b.astype(np.float64).view(Fake))
    assert not cc.usable_dense(a[:, :, :, ::2])
    assert not cc.usable_dense(nhwc((2, 3, 4, 5)))  # a NumPy array


def test_as_layout_never_returns_a_non_dense_view(fake_cupy):
    view = np.broadcast_to(np.ones((1, 3, 1, 1)), (2, 3, 4, 5))
    out = cc.as_layout(view, view)  # equal strides, but not dense memory
    assert out is not view and out.flags.c_contiguous


def test_multi_tensor_check_pairs_layouts_per_parameter():
    from ember.kernels.cuda import optim as cuda_optim

    p_cl, g_cl = nhwc((4, 3, 2, 2)).view(CupyLike), nhwc((4, 3, 2, 2)).view(CupyLike)
    g_c = np.zeros((4, 3, 2, 2), np.float32).view(CupyLike)
    assert cuda_optim.multi_usable([p_cl], [g_cl])
    assert not cuda_optim.multi_usable([p_cl], [g_c])  # one layout per parameter
    row = np.zeros((1, 5), np.float32).view(CupyLike)
    row_g = np.lib.stride_tricks.as_strided(np.zeros(5, np.float32), (1, 5), (4, 4))
    assert row.strides != row_g.strides  # a size-1 dim's stride says nothing
    assert cuda_optim.multi_usable([row], [row_g.view(CupyLike)])
    assert not cuda_optim.multi_usable([row], [row.astype(np.float64).view(CupyLike)])


def test_conv_nhwc_check_agrees_with_a_transpose_check():
    """kernels/cuda/conv.py's NHWC density check (strides only) against the definition it
    replaced: the (0, 2, 3, 1) transpose is C-contiguous, size-1 dims included."""
    from ember.kernels.cuda import conv

    r = np.random.default_rng(4)
    for _ in range(300):
        shape = tuple(int(v) for v in r.integers(1, 4, 4))
        a = nhwc(shape) if r.random() < 0.5 else np.zeros(shape, np.float32)
        if r.random() < 0.3:
            a = a[:, :, :, ::2] if shape[3] > 1 else a[:, :, ::2]
        assert conv.nhwc_dense(a) == a.transpose(0, 2, 3, 1).flags.c_contiguous, (shape, a.strides)
