"""``ember.nn.functional`` (import as F): the stateless forms of every layer, activation and
loss. Convolution, pooling, softmax and layer norm are ember's primitives; the rest live in
the ``nn._*`` files this module gathers."""

from __future__ import annotations

from .. import ops
from .._tensor import _make
from ..backend.device import array_module
from ..backend.random import rng
from ..ops import elementwise as E
from ..ops import unary as U
from ..ops.index import one_hot
from ..ops.inplace import apply_inplace
from ..ops.linalg import linear
from ..ops.pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
)
from ..ops.shape import pad
from ._activations import (
    celu,
    elu,
    gelu,
    glu,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    log_softmax,
    logsigmoid,
    mish,
    prelu,
    relu,
    relu6,
    relu_,
    selu,
    sigmoid,
    silu,
    softmax,
    softmin,
    softplus,
    softsign,
    tanh,
    tanhshrink,
    threshold,
)
from ._attention import scaled_dot_product_attention
from ._conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d
from ._embedding import embedding
from ._losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from ._losses_extra import (
    cosine_embedding_loss,
    gaussian_nll_loss,
    hinge_embedding_loss,
    margin_ranking_loss,
    multilabel_soft_margin_loss,
    poisson_nll_loss,
    soft_margin_loss,
    triplet_margin_loss,
)
from ._norms import batch_norm, group_norm, instance_norm, layer_norm, rms_norm
from ._sampling import interpolate, pixel_shuffle, pixel_unshuffle, upsample

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "alpha_dropout",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "bilinear",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "celu",
    "conv1d",
    "conv2d",
    "conv_transpose1d",
    "conv_transpose2d",
    "cosine_embedding_loss",
    "cosine_similarity",
    "cross_entropy",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "elu",
    "embedding",
    "gaussian_nll_loss",
    "gelu",
    "glu",
    "group_norm",
    "hardsigmoid",
    "hardswish",
    "hardtanh",
    "hinge_embedding_loss",
    "huber_loss",
    "instance_norm",
    "interpolate",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "logsigmoid",
    "margin_ranking_loss",
    "max_pool1d",
    "max_pool2d",
    "mish",
    "mse_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "normalize",
    "one_hot",
    "pad",
    "pairwise_distance",
    "pixel_shuffle",
    "pixel_unshuffle",
    "poisson_nll_loss",
    "prelu",
    "relu",
    "relu6",
    "relu_",
    "rms_norm",
    "scaled_dot_product_attention",
    "selu",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "soft_margin_loss",
    "softmax",
    "softmin",
    "softplus",
    "softsign",
    "tanh",
    "tanhshrink",
    "threshold",
    "triplet_margin_loss",
    "upsample",
]


def bilinear(input1, input2, weight, bias=None):
    """``x1^T W[o] x2 + b[o]`` for each output feature ``o``; ``weight`` is (out, in1, in2)."""
    if weight.ndim != 3:
        raise RuntimeError(f"bilinear(): weight must be 3-D, got {list(weight.shape)}")
    for k, x in ((1, input1), (2, input2)):
        if x.shape[-1] != weight.shape[k]:
            raise RuntimeError(
                f"bilinear(): input{k} size does not match weight size: got {x.shape[-1]} "
                f"but expected {weight.shape[k]}"
            )
    if tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise RuntimeError(
            "bilinear(): input batch dimensions do not match: got "
            f"{list(input1.shape[:-1])} and {list(input2.shape[:-1])}"
        )
    out = ops.einsum("...i,oij,...j->...o", input1, weight, input2)
    return out + bias if bias is not None else out


# ---- dropout -----------------------------------------------------------------------------


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if inplace and training and p > 0:
        return apply_inplace(input, lambda x: ops.dropout(x, p, True), None, op="dropout_")
    return ops.dropout(input, p, training)


def _feature_dropout(input, p, training, inplace, batched_ndim, name):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.ndim not in (batched_ndim - 1, batched_ndim):
        raise RuntimeError(
            f"{name}: Expected {batched_ndim - 1}D or {batched_ndim}D input, but received a "
            f"{input.ndim}D input of size {list(input.shape)}"
        )
    if not training or p == 0.0:
        return input
    lead = 2 if input.ndim == batched_ndim else 1  # (N, C) or unbatched (C,)
    shape = tuple(input.shape[:lead]) + (1,) * (input.ndim - lead)
    xp = array_module(input._data)
    if p == 1.0:
        keep = xp.zeros(shape, input._data.dtype)
    else:
        draw = rng().random(shape) if xp.__name__ == "numpy" else xp.random.random(shape)
        keep = ((xp.asarray(draw) >= p) * (1.0 / (1.0 - p))).astype(input._data.dtype)
    mask = _make(keep)
    if inplace:
        return apply_inplace(input, lambda x: x * mask, None, op=name + "_")
    return input * mask


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of (N, C, L) input with probability ``p``."""
    return _feature_dropout(input, p, training, inplace, 3, "dropout1d")


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of (N, C, H, W) input with probability ``p``."""
    return _feature_dropout(input, p, training, inplace, 4, "dropout2d")


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of (N, C, D, H, W) input with probability ``p``."""
    return _feature_dropout(input, p, training, inplace, 5, "dropout3d")


def alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False):
    """Dropout that keeps SELU's zero mean and unit variance (masked units go to
    ``-scale * alpha`` and an affine correction follows)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    alpha_p = -1.7580993408473766  # -selu_scale * selu_alpha
    a = ((1.0 - p) * (1.0 + p * alpha_p * alpha_p)) ** -0.5
    b = -a * alpha_p * p
    keep = _make((rng().random(tuple(input.shape)) >= p).astype(input._data.dtype))
    out = (input * keep + alpha_p * (1.0 - keep)) * a + b
    return out


# ---- pooling extras ----------------------------------------------------------------------


def _adaptive_bins(n_in, n_out):
    return [((i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)) for i in range(n_out)]


def adaptive_max_pool2d(input, output_size, return_indices: bool = False):
    """Max pooling to a fixed (oh, ow) output, with PyTorch's bin edges."""
    if return_indices:
        raise NotImplementedError("adaptive_max_pool2d: return_indices=True is not supported")
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    h, w = input.shape[-2:]
    oh, ow = oh or h, ow or w
    if h % oh == 0 and w % ow == 0:
        return max_pool2d(input, (h // oh, w // ow))
    rows = []
    for r0, r1 in _adaptive_bins(h, oh):
        cols = [input[..., r0:r1, c0:c1].amax((-2, -1)) for c0, c1 in _adaptive_bins(w, ow)]
        rows.append(ops.stack(cols, -1))
    return ops.stack(rows, -2)


def adaptive_max_pool1d(input, output_size, return_indices: bool = False):
    """Max pooling of (N, C, L) input to a fixed length."""
    out = adaptive_max_pool2d(input.unsqueeze(-2), (1, output_size), return_indices)
    return out.squeeze(-2)


# ---- distances ---------------------------------------------------------------------------


def _clamped_norm(x, p, dim, eps):
    """``max(||x||_p, eps)`` over ``dim`` (kept), finite-gradient at zero vectors for p=2."""
    if p in (2, 2.0):
        return U.sqrt(E.clamp((x * x).sum(dim, keepdim=True), min=eps * eps))
    return E.clamp(ops.norm(x, p, dim, keepdim=True), min=eps)


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None):
    """``input / max(||input||_p, eps)`` along ``dim``."""
    if out is not None:
        raise NotImplementedError("normalize: out= is not supported by ember")
    return input / _clamped_norm(input, p, dim, eps)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim`` (broadcast together);
    each norm is clamped at ``eps``."""
    a = x1 / _clamped_norm(x1, 2, dim, eps)
    b = x2 / _clamped_norm(x2, 2, dim, eps)
    return (a * b).sum(dim)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    """``||x1 - x2 + eps||_p`` over the last dim."""
    d = x1 - x2 + eps
    return ops.norm(d, p, -1, keepdim)
