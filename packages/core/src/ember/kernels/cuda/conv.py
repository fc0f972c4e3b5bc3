"""2-D convolution on CuPy arrays through cuDNN frontend graphs: forward, data gradient and
weight gradient, each built once per (shape, layout, dtype, configuration) and cached. The
same three functions as the CPU kernels (kernels/cpu/conv.py), which stay the fallback: the
im2col + cuBLAS path runs whenever cuDNN is off, missing, or refuses a graph.

Arrays are (N, C, H, W) logically; their physical layout is what their strides say, so an
NHWC buffer viewed as NCHW (``memory_format=ember.channels_last``) reaches cuDNN as NHWC, and
outputs are allocated in the input's layout.
"""

from __future__ import annotations

from ..cpu import conv as _im2col
from . import cudnn_graphs as G
from .compile import empty_4d


def _channels_last(a) -> bool:
    """True for an (N, C, H, W) array stored as NHWC (channel stride 1), C > 1."""
    return (
        a.ndim == 4 and a.shape[1] > 1 and a.strides[1] == a.itemsize and not a.flags.c_contiguous
    )


def nhwc_dense(a) -> bool:
    """Whether a 4-D array's memory is dense in NHWC order (size-1 dims may have any
    stride), read from its strides: no transposed view and flags object per call (316 a
    ResNet-50 step)."""
    shape, strides, expect = a.shape, a.strides, a.itemsize
    for ax in (1, 3, 2, 0):
        if shape[ax] != 1 and strides[ax] != expect:
            return False
        expect *= shape[ax]
    return True


def _dense(a, nhwc: bool):
    """``a`` in the requested layout (NHWC when ``nhwc``), copied only when it is not."""
    import cupy

    if nhwc:
        if nhwc_dense(a):
            return a
        return cupy.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return cupy.ascontiguousarray(a)


def _usable(*arrays) -> bool:
    if not G.enabled():
        return False
    a0 = arrays[0]
    return (
        all(a.ndim == 4 and a.dtype == a0.dtype and a.size for a in arrays)
        and G.data_type(a0.dtype) is not None
    )


def _spec(a):
    return (tuple(a.shape), tuple(G.elem_strides(a)))


def _tensor(graph, name, a):
    return graph.tensor(
        name=name, dim=list(a.shape), stride=G.elem_strides(a), data_type=G.data_type(a.dtype)
    )


def _attrs(stride, padding, dilation):
    return {"padding": list(padding), "stride": list(stride), "dilation": list(dilation)}


def conv2d(x, w, stride, padding, dilation, groups, keep_cols=True):
    """Forward convolution; returns (y, None) like the CPU kernel (no window matrix)."""
    if not _usable(x, w):
        return _im2col.conv2d(x, w, stride, padding, dilation, groups, keep_cols)
    nhwc = _channels_last(x)
    x, w = _dense(x, nhwc), _dense(w, nhwc)
    n, _, h, wd = x.shape
    k, _, kh, kw = w.shape
    oh = _im2col.out_size(h, kh, stride[0], padding[0], dilation[0])
    ow = _im2col.out_size(wd, kw, stride[1], padding[1], dilation[1])
    y = empty_4d((n, k, oh, ow), x.dtype, nhwc)
    key = ("fprop", _spec(x), _spec(w), _spec(y), x.dtype.str, stride, padding, dilation)

    def make():
        g = G.new_graph(x.dtype)
        tx, tw = _tensor(g, "x", x), _tensor(g, "w", w)
        ty = g.conv_fprop(image=tx, weight=tw, **_attrs(stride, padding, dilation))
        ty.set_output(True).set_dim(list(y.shape)).set_stride(G.elem_strides(y))
        ty.set_data_type(G.data_type(y.dtype))
        return g, {"x": tx, "w": tw, "y": ty}, x.dtype.name == "float32"

    entry = G.build(key, make)
    if entry is None:
        return _im2col.conv2d(x, w, stride, padding, dilation, groups, keep_cols)
    G.run(entry, {"x": x, "w": w, "y": y})
    return y, None


def conv2d_input_grad(g, w, x_shape, stride, padding, dilation, groups):
    """The gradient w.r.t. the input (also ``conv_transpose2d``), shape ``x_shape``."""
    if not _usable(g, w):
        return _im2col.conv2d_input_grad(g, w, x_shape, stride, padding, dilation, groups)
    nhwc = _channels_last(g)
    g, w = _dense(g, nhwc), _dense(w, nhwc)
    dx = empty_4d(tuple(x_shape), g.dtype, nhwc)
    key = ("dgrad", _spec(g), _spec(w), _spec(dx), g.dtype.str, stride, padding, dilation)

    def make():
        gr = G.new_graph(g.dtype)
        tg, tw = _tensor(gr, "dy", g), _tensor(gr, "w", w)
        tdx = gr.conv_dgrad(loss=tg, filter=tw, **_attrs(stride, padding, dilation))
        tdx.set_output(True).set_dim(list(dx.shape)).set_stride(G.elem_strides(dx))
        tdx.set_data_type(G.data_type(dx.dtype))
        return gr, {"dy": tg, "w": tw, "dx": tdx}, g.dtype.name == "float32"

    entry = G.build(key, make)
    if entry is None:
        return _im2col.conv2d_input_grad(g, w, x_shape, stride, padding, dilation, groups)
    G.run(entry, {"dy": g, "w": w, "dx": dx})
    return dx


def conv2d_weight_grad(x, g, w_shape, stride, padding, dilation, groups, cols=None):
    """The gradient w.r.t. the weight, shape ``w_shape`` (``cols`` is unused here)."""
    if not _usable(x, g):
        return _im2col.conv2d_weight_grad(x, g, w_shape, stride, padding, dilation, groups, cols)
    nhwc = _channels_last(x)
    x, g = _dense(x, nhwc), _dense(g, nhwc)
    dw = empty_4d(tuple(w_shape), x.dtype, nhwc)
    key = ("wgrad", _spec(x), _spec(g), _spec(dw), x.dtype.str, stride, padding, dilation)

    def make():
        gr = G.new_graph(x.dtype)
        tx, tg = _tensor(gr, "x", x), _tensor(gr, "dy", g)
        tdw = gr.conv_wgrad(image=tx, loss=tg, **_attrs(stride, padding, dilation))
        tdw.set_output(True).set_dim(list(dw.shape)).set_stride(G.elem_strides(dw))
        tdw.set_data_type(G.data_type(dw.dtype))
        return gr, {"x": tx, "dy": tg, "dw": tdw}, x.dtype.name == "float32"

    entry = G.build(key, make)
    if entry is None:
        return _im2col.conv2d_weight_grad(x, g, w_shape, stride, padding, dilation, groups, None)
    G.run(entry, {"x": x, "dy": g, "dw": dw})
    return dw  # in x's layout; autograd lays a weight's gradient out as the weight itself
