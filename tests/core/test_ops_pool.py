"""Pooling through the op harness, against loop references written here: max_pool2d (stride,
padding, dilation, ceil_mode, return_indices), avg_pool2d (count_include_pad, ceil_mode,
divisor_override), adaptive_avg_pool2d (incl. non-divisible sizes) and the 1-D forms."""

import math

import numpy as np
import pytest
from harness import OpCase, distinct, op_tests

import ember


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _out_len(n, k, s, p, d, ceil_mode):
    span = n + 2 * p - d * (k - 1) - 1
    o = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:  # a window may not start in the right padding
        o -= 1
    return o


def max_pool2d_ref(
    x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """Max over each window's in-bounds taps; indices into each H*W plane."""
    n, c, h, w = x.shape
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = _pair(stride if stride is not None else kernel_size)
    (ph, pw), (dh, dw) = _pair(padding), _pair(dilation)
    oh, ow = _out_len(h, kh, sh, ph, dh, ceil_mode), _out_len(w, kw, sw, pw, dw, ceil_mode)
    out = np.zeros((n, c, oh, ow))
    idx = np.zeros((n, c, oh, ow), np.int64)
    for i in range(oh):
        for j in range(ow):
            best, arg = np.full((n, c), -np.inf), np.zeros((n, c), np.int64)
            for ki in range(kh):
                for kj in range(kw):
                    r, q = i * sh - ph + ki * dh, j * sw - pw + kj * dw
                    if 0 <= r < h and 0 <= q < w:
                        v = x[:, :, r, q]
                        better = v > best
                        best = np.where(better, v, best)
                        arg = np.where(better, r * w + q, arg)
            out[:, :, i, j], idx[:, :, i, j] = best, arg
    return (out, idx) if return_indices else out


def avg_pool2d_ref(
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """Window sums over in-bounds taps divided by PyTorch's divisor."""
    n, c, h, w = x.shape
    (kh, kw) = _pair(kernel_size)
    (sh, sw) = _pair(stride if stride is not None else kernel_size)
    (ph, pw) = _pair(padding)
    oh, ow = _out_len(h, kh, sh, ph, 1, ceil_mode), _out_len(w, kw, sw, pw, 1, ceil_mode)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, q0 = i * sh - ph, j * sw - pw
            r1, q1 = min(r0 + kh, h + ph), min(q0 + kw, w + pw)
            size_with_pad = (r1 - r0) * (q1 - q0)
            r0, q0, r1, q1 = max(r0, 0), max(q0, 0), min(r1, h), min(q1, w)
            total = x[:, :, r0:r1, q0:q1].sum((2, 3))
            if divisor_override:
                div = divisor_override
            elif count_include_pad:
                div = size_with_pad
            else:
                div = (r1 - r0) * (q1 - q0)
            out[:, :, i, j] = total / div
    return out


def adaptive_avg_pool2d_ref(x, output_size):
    """Mean over PyTorch's adaptive bins: [floor(i*H/O), ceil((i+1)*H/O))."""
    h, w = x.shape[-2:]
    oh, ow = _pair(output_size)
    oh, ow = oh or h, ow or w
    out = np.zeros(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        r0, r1 = (i * h) // oh, -(-((i + 1) * h) // oh)
        for j in range(ow):
            q0, q1 = (j * w) // ow, -(-((j + 1) * w) // ow)
            out[..., i, j] = x[..., r0:r1, q0:q1].mean((-2, -1))
    return out


def _mp(name, shape, *args, **kw):
    return OpCase(
        name,
        lambda m, x: m.F.max_pool2d(x, *args, **kw),
        lambda x: max_pool2d_ref(x, *args, **kw),
        (distinct(*shape),),
    )


def _ap(name, shape, *args, **kw):
    return OpCase(
        name,
        lambda m, x: m.F.avg_pool2d(x, *args, **kw),
        lambda x: avg_pool2d_ref(x, *args, **kw),
        (shape,),
    )


def _aap(name, shape, size):
    return OpCase(
        name,
        lambda m, x: m.F.adaptive_avg_pool2d(x, size),
        lambda x: adaptive_avg_pool2d_ref(x, size),
        (shape,),
    )


MAX = [
    _mp("max_pool2d", (2, 2, 4, 4), 2),
    _mp("max_pool2d_stride1", (1, 2, 4, 5), 3, 1),
    _mp("max_pool2d_pad", (1, 1, 5, 5), 3, 2, 1),
    _mp("max_pool2d_tuple", (1, 2, 5, 6), (2, 3), (1, 2), (1, 1)),
    _mp("max_pool2d_dilation", (1, 1, 6, 6), 2, 1, 0, 2),
    _mp("max_pool2d_ceil", (1, 2, 5, 5), 2, ceil_mode=True),
    _mp("max_pool2d_ceil_pad", (1, 1, 6, 6), 3, 2, 1, ceil_mode=True),
    _mp("max_pool2d_indices", (2, 2, 4, 4), 2, return_indices=True),
    _mp("max_pool2d_indices_pad_dil", (1, 2, 5, 5), 3, 2, 1, 2, return_indices=True),
    _mp("max_pool2d_indices_ceil", (1, 1, 5, 5), 2, ceil_mode=True, return_indices=True),
    OpCase(
        "max_pool2d_unbatched",
        lambda m, x: m.F.max_pool2d(x, 2),
        lambda x: max_pool2d_ref(x[None], 2)[0],
        (distinct(2, 4, 4),),
    ),
    OpCase(
        "max_pool1d",
        lambda m, x: m.F.max_pool1d(x, 3, 2, 1),
        lambda x: max_pool2d_ref(x[:, :, None], (1, 3), (1, 2), (0, 1))[:, :, 0],
        (distinct(2, 2, 7),),
    ),
]

AVG = [
    _ap("avg_pool2d", (2, 2, 4, 4), 2),
    _ap("avg_pool2d_stride1", (1, 2, 4, 5), 3, 1),
    _ap("avg_pool2d_pad", (1, 1, 5, 5), 3, 2, 1),
    _ap("avg_pool2d_pad_exclude", (1, 1, 5, 5), 3, 2, 1, count_include_pad=False),
    _ap("avg_pool2d_ceil", (1, 2, 5, 5), 2, ceil_mode=True),
    _ap("avg_pool2d_ceil_pad", (1, 1, 6, 6), 3, 2, 1, ceil_mode=True),
    _ap("avg_pool2d_ceil_pad_exclude", (1, 1, 6, 6), 3, 2, 1, True, False),
    _ap("avg_pool2d_divisor", (1, 2, 4, 4), 2, divisor_override=3),
    _ap("avg_pool2d_divisor_pad", (1, 1, 5, 5), 3, 2, 1, divisor_override=2),
    _ap("avg_pool2d_tuple", (1, 1, 5, 6), (2, 3), (1, 2), (1, 1)),
    OpCase(
        "avg_pool2d_unbatched",
        lambda m, x: m.F.avg_pool2d(x, 2),
        lambda x: avg_pool2d_ref(x[None], 2)[0],
        ((2, 4, 4),),
    ),
    OpCase(
        "avg_pool1d",
        lambda m, x: m.F.avg_pool1d(x, 3, 2, 1),
        lambda x: avg_pool2d_ref(x[:, :, None], (1, 3), (1, 2), (0, 1))[:, :, 0],
        ((2, 2, 7),),
    ),
]

ADAPTIVE = [
    _aap("adaptive_avg_pool2d_1", (2, 2, 4, 5), 1),
    _aap("adaptive_avg_pool2d_div", (1, 2, 4, 6), (2, 3)),
    _aap("adaptive_avg_pool2d_nondiv", (1, 2, 5, 7), (3, 4)),
    _aap("adaptive_avg_pool2d_upsample", (1, 1, 2, 3), (3, 4)),
    _aap("adaptive_avg_pool2d_none", (1, 1, 5, 4), (3, None)),
    _aap("adaptive_avg_pool2d_unbatched", (2, 5, 5), 2),
    OpCase(
        "adaptive_avg_pool1d",
        lambda m, x: m.F.adaptive_avg_pool1d(x, 3),
        lambda x: adaptive_avg_pool2d_ref(x[:, :, None], (1, 3))[:, :, 0],
        ((2, 2, 7),),
    ),
]

CASES = MAX + AVG + ADAPTIVE

# the CUDA variants run the same im2col/window kernels on CuPy (all pass on an H200)
test_forward, test_low_precision, test_gradcheck, test_gradgradcheck, test_cuda = op_tests(CASES)


def test_max_pool2d_padding_too_large_raises():
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        ember.ops.max_pool2d(ember.zeros(1, 1, 4, 4), 2, padding=2)


def test_max_pool2d_ties_send_gradient_to_one_position():
    x = ember.ones(1, 1, 2, 2, requires_grad=True)
    ember.ops.max_pool2d(x, 2).sum().backward()
    assert x.grad.sum().item() == 1.0


@pytest.mark.parametrize("size", [(4, 4), (5, 4)])  # windows tiling the input, and not
def test_max_pool2d_ties_and_nan_match_torch(size):
    torch = pytest.importorskip("torch")
    x = np.zeros((2, 3) + size, np.float32)
    x[0, 0, :2, :2] = 1.0  # a four-way tie
    x[0, 1, 2:4, 0:2] = [[2.0, 5.0], [5.0, 1.0]]  # a two-way tie
    x[1, 2, 0, 1] = np.nan  # (with two NaNs in a window PyTorch picks the last one)
    x[1, 2, 1, 1] = 3.0
    g = np.arange(1, 2 * 3 * (size[0] // 2) * 2 + 1, dtype=np.float32).reshape(2, 3, -1, 2)
    xe, xt = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ember.ops.max_pool2d(xe, 2).backward(ember.tensor(g))
    torch.nn.functional.max_pool2d(xt, 2).backward(torch.tensor(g))
    np.testing.assert_array_equal(xe.grad.numpy(), xt.grad.numpy())


def test_max_pool2d_bad_rank_raises():
    with pytest.raises(RuntimeError, match="max_pool2d"):
        ember.ops.max_pool2d(ember.zeros(4, 4), 2)
