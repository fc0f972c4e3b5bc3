"""Convolutions through the op harness, against straightforward loop references written here:
conv1d, conv2d (stride, padding incl. 'same'/'valid', dilation, groups) and conv_transpose2d
(stride, padding, output_padding, groups, dilation)."""

import numpy as np
import pytest
from harness import OpCase, op_tests

import ember


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _same_pads(k, d):
    total = d * (k - 1)
    return total // 2, total - total // 2


def conv2d_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation by explicit loops over output positions."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    if padding == "valid":
        padding = 0
    if padding == "same":
        (t, bot), (lft, rgt) = _same_pads(kh, dh), _same_pads(kw, dw)
    else:
        ph, pw = _pair(padding)
        t, bot, lft, rgt = ph, ph, pw, pw
    xp = np.pad(x, ((0, 0), (0, 0), (t, bot), (lft, rgt)))
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    og = o // groups
    out = np.zeros((n, o, oh, ow))
    for bi in range(n):
        for oc in range(o):
            g = oc // og
            for i in range(oh):
                for j in range(ow):
                    r, q = i * sh, j * sw
                    patch = xp[
                        bi,
                        g * cg : (g + 1) * cg,
                        r : r + dh * (kh - 1) + 1 : dh,
                        q : q + dw * (kw - 1) + 1 : dw,
                    ]
                    out[bi, oc, i, j] = np.sum(patch * w[oc])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def conv1d_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation by explicit loops."""
    n, c, length = x.shape
    o, cg, k = w.shape
    if padding == "valid":
        padding = 0
    lo, hi = _same_pads(k, dilation) if padding == "same" else (padding, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (lo, hi)))
    ol = (xp.shape[2] - dilation * (k - 1) - 1) // stride + 1
    og = o // groups
    out = np.zeros((n, o, ol))
    for bi in range(n):
        for oc in range(o):
            g = oc // og
            for i in range(ol):
                s = i * stride
                patch = xp[bi, g * cg : (g + 1) * cg, s : s + dilation * (k - 1) + 1 : dilation]
                out[bi, oc, i] = np.sum(patch * w[oc])
    if b is not None:
        out += b.reshape(1, -1, 1)
    return out


def conv_transpose2d_ref(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution by scattering each input pixel times the kernel."""
    n, cin, h, wd = x.shape
    _, cog, kh, kw = w.shape
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    (oph, opw), (dh, dw) = _pair(output_padding), _pair(dilation)
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + oph
    full_w = (wd - 1) * sw + dw * (kw - 1) + 1 + opw
    full = np.zeros((n, cog * groups, full_h, full_w))
    cig = cin // groups
    for bi in range(n):
        for c in range(cin):
            g = c // cig
            for i in range(h):
                for j in range(wd):
                    for ki in range(kh):
                        for kj in range(kw):
                            full[
                                bi, g * cog : (g + 1) * cog, i * sh + ki * dh, j * sw + kj * dw
                            ] += x[bi, c, i, j] * w[c, :, ki, kj]
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    out = full[:, :, ph : ph + oh, pw : pw + ow]
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out


# PyTorch warns that an even 'same' kernel copies the input; that is expected here
_QUIET = (pytest.mark.filterwarnings("ignore:Using padding='same'"),)


def _c2(name, xs, ws, bias=True, **kw):
    shapes = (xs, ws, (ws[0],)) if bias else (xs, ws)
    return OpCase(
        name,
        lambda m, *a: m.F.conv2d(*a, **kw) if bias else m.F.conv2d(*a, None, **kw),
        lambda *a: conv2d_ref(*a, **kw),
        shapes,
        tol=4,
        marks=_QUIET,
    )


def _c1(name, xs, ws, bias=True, **kw):
    shapes = (xs, ws, (ws[0],)) if bias else (xs, ws)
    return OpCase(
        name,
        lambda m, *a: m.F.conv1d(*a, **kw) if bias else m.F.conv1d(*a, None, **kw),
        lambda *a: conv1d_ref(*a, **kw),
        shapes,
        tol=4,
        marks=_QUIET,
    )


def _ct(name, xs, ws, groups=1, bias=True, **kw):
    cout = ws[1] * groups
    shapes = (xs, ws, (cout,)) if bias else (xs, ws)
    return OpCase(
        name,
        lambda m, *a: (
            m.F.conv_transpose2d(*a, groups=groups, **kw)
            if bias
            else m.F.conv_transpose2d(*a, None, groups=groups, **kw)
        ),
        lambda *a: conv_transpose2d_ref(*a, groups=groups, **kw),
        shapes,
        tol=4,
    )


CONV2D = [
    _c2("conv2d", (2, 2, 5, 5), (3, 2, 3, 3)),
    _c2("conv2d_no_bias", (1, 2, 4, 5), (2, 2, 3, 3), bias=False),
    _c2("conv2d_stride2_pad1", (1, 2, 5, 5), (3, 2, 3, 3), stride=2, padding=1),
    _c2("conv2d_tuple_args", (1, 2, 5, 6), (2, 2, 2, 3), stride=(2, 1), padding=(1, 2)),
    _c2("conv2d_dilation", (1, 1, 6, 6), (2, 1, 3, 3), dilation=2),
    _c2("conv2d_dilation_pad", (1, 2, 5, 5), (2, 2, 2, 2), dilation=(2, 1), padding=1),
    _c2("conv2d_groups", (1, 4, 4, 4), (4, 2, 3, 3), groups=2),
    _c2("conv2d_depthwise", (1, 3, 4, 4), (6, 1, 3, 3), groups=3, padding=1),
    _c2("conv2d_same", (1, 2, 4, 5), (2, 2, 3, 3), padding="same"),
    _c2("conv2d_same_dilated", (1, 1, 5, 5), (2, 1, 3, 3), padding="same", dilation=2),
    _c2("conv2d_same_even_kernel", (1, 1, 4, 5), (2, 1, 2, 4), padding="same"),
    _c2("conv2d_valid", (1, 2, 4, 4), (2, 2, 3, 3), padding="valid"),
    _c2("conv2d_1x1", (2, 3, 3, 3), (4, 3, 1, 1)),
    _c2("conv2d_stride_gt_kernel", (1, 1, 7, 7), (1, 1, 2, 2), stride=3),
    # C*kh*kw above the kernel's small-K cut-off (32): one GEMM plus an output transpose
    _c2("conv2d_wide_k", (2, 4, 5, 5), (3, 4, 3, 3), padding=1),
    _c2("conv2d_wide_k_stride", (2, 5, 6, 5), (2, 5, 3, 3), stride=2, bias=False),
    _c2("conv2d_wide_k_groups", (1, 8, 4, 4), (4, 4, 3, 3), groups=2, padding=1),
    OpCase(
        "conv2d_unbatched",
        lambda m, x, w: m.F.conv2d(x, w, padding=1),
        lambda x, w: conv2d_ref(x[None], w, padding=1)[0],
        ((2, 4, 4), (3, 2, 3, 3)),
        tol=4,
    ),
]

CONV1D = [
    _c1("conv1d", (2, 2, 7), (3, 2, 3)),
    _c1("conv1d_stride_pad", (1, 2, 8), (2, 2, 3), stride=2, padding=1),
    _c1("conv1d_dilation", (1, 1, 9), (2, 1, 3), dilation=3, bias=False),
    _c1("conv1d_groups", (1, 4, 6), (4, 2, 2), groups=2),
    _c1("conv1d_same", (1, 2, 6), (2, 2, 5), padding="same"),
    _c1("conv1d_same_even", (1, 2, 6), (2, 2, 4), padding="same"),
]

CONVT = [
    _ct("conv_transpose2d", (1, 2, 3, 3), (2, 3, 3, 3)),
    _ct("conv_transpose2d_no_bias", (2, 2, 3, 2), (2, 2, 2, 3), bias=False),
    _ct("conv_transpose2d_stride2", (1, 2, 3, 3), (2, 2, 3, 3), stride=2),
    _ct("conv_transpose2d_pad", (1, 2, 4, 4), (2, 2, 3, 3), stride=2, padding=1),
    _ct(
        "conv_transpose2d_output_padding",
        (1, 2, 3, 3),
        (2, 1, 3, 3),
        stride=2,
        padding=1,
        output_padding=1,
    ),
    _ct(
        "conv_transpose2d_tuple",
        (1, 1, 3, 4),
        (1, 2, 2, 3),
        stride=(2, 1),
        padding=(1, 0),
        output_padding=(1, 0),
    ),
    _ct("conv_transpose2d_groups", (1, 4, 3, 3), (4, 1, 2, 2), groups=2),
    _ct("conv_transpose2d_dilation", (1, 2, 3, 3), (2, 2, 2, 2), dilation=2),
]

CASES = CONV2D + CONV1D + CONVT

# the CUDA variants run the same im2col/window kernels on CuPy (all pass on an H200)
test_forward, test_low_precision, test_gradcheck, test_gradgradcheck, test_cuda = op_tests(CASES)


# ---- errors ------------------------------------------------------------------------------


def test_conv2d_channel_mismatch_names_shapes():
    with pytest.raises(RuntimeError, match=r"conv2d.*\[3, 2, 3, 3\].*channels"):
        ember.ops.conv2d(ember.zeros(1, 4, 5, 5), ember.zeros(3, 2, 3, 3))


def test_conv2d_kernel_larger_than_input_raises():
    with pytest.raises(RuntimeError, match="Kernel size can't be greater"):
        ember.ops.conv2d(ember.zeros(1, 1, 2, 2), ember.zeros(1, 1, 3, 3))


def test_conv2d_dtype_mismatch_raises():
    with pytest.raises(RuntimeError, match="type"):
        ember.ops.conv2d(ember.zeros(1, 1, 3, 3), ember.zeros(1, 1, 2, 2, dtype=ember.float64))


def test_conv2d_same_with_stride_raises():
    with pytest.raises(ValueError, match="same"):
        ember.ops.conv2d(ember.zeros(1, 1, 5, 5), ember.zeros(1, 1, 3, 3), stride=2, padding="same")


def test_conv2d_wrong_rank_raises():
    with pytest.raises(RuntimeError, match="conv2d"):
        ember.ops.conv2d(ember.zeros(1, 1, 1, 5, 5), ember.zeros(1, 1, 3, 3))


@pytest.mark.parametrize("k,hw", [(1, 16), (3, 32), (3, 8)])
def test_conv2d_empty_batch_forward_and_backward(k, hw):
    """An empty batch gives an empty output and zero weight gradient, as in PyTorch."""
    x = ember.zeros(0, 4, hw, hw, requires_grad=True)
    conv = ember.nn.Conv2d(4, 5, k, padding=k // 2)
    y = conv(x)
    assert tuple(y.shape) == (0, 5, hw, hw)
    y.sum().backward()
    assert tuple(x.grad.shape) == (0, 4, hw, hw)
    np.testing.assert_array_equal(conv.weight.grad.numpy(), np.zeros((5, 4, k, k), np.float32))
