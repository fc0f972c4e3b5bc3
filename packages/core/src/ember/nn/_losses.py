"""Loss functions for ``nn.functional``, each with ``reduction='mean'|'sum'|'none'`` and
PyTorch's legacy ``size_average``/``reduce`` arguments. Cross entropy is log_softmax + nll;
binary cross entropy is one primitive so that its clamped log has PyTorch's gradient."""

from __future__ import annotations

import warnings

import numpy as np

from .. import ops
from .._tensor import Tensor, _make
from ..amp import autocast_mode as _amp
from ..autograd import grad_mode as _grad_mode
from ..autograd.function import Primitive
from ..backend.device import array_module
from ..kernels.cuda import rowwise as cuda_rows
from ..ops import elementwise as E
from ..ops import unary as U
from ..ops.norm import _cuda_rows
from ._activations import logsigmoid

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "mse_loss",
    "nll_loss",
    "smooth_l1_loss",
]


def legacy_reduction(size_average, reduce, reduction: str) -> str:
    """Map PyTorch's deprecated ``size_average``/``reduce`` pair onto ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def reduce_loss(loss, reduction: str):
    """Apply ``reduction`` to an elementwise loss."""
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _check_reduction(reduction):
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _same_size(op, input, target):
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"{op}: Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size."
        )


def _weighted(loss, weight):
    return loss if weight is None else loss * weight


# ---- regression --------------------------------------------------------------------------


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error ``(input - target) ** 2``."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _same_size("mse_loss", input, target)
    d = input - target
    return reduce_loss(_weighted(d * d, weight), reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error ``|input - target|``."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _same_size("l1_loss", input, target)
    return reduce_loss(_weighted(U.abs(input - target), weight), reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """``0.5 * d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 * beta``."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    _same_size("smooth_l1_loss", input, target)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    d = U.abs(input - target)
    if beta == 0:
        return reduce_loss(d, reduction)
    return reduce_loss(E.where(d < beta, (0.5 / beta) * d * d, d - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """``0.5 * d**2`` where ``|d| < delta``, else ``delta * (|d| - 0.5 * delta)``."""
    _check_reduction(reduction)
    _same_size("huber_loss", input, target)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    d = U.abs(input - target)
    loss = E.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return reduce_loss(_weighted(loss, weight), reduction)


# ---- classification ----------------------------------------------------------------------


def _class_target(op, input, target):
    """Check shapes; return (input, target, unbatched) with a batch dim added if needed."""
    if not isinstance(target, Tensor) or target.dtype.is_floating_point:
        raise RuntimeError(
            f"{op}: expected target of an integer dtype (class indices), got "
            f"{getattr(target, 'dtype', type(target).__name__)}"
        )
    if input.ndim == 1 and target.ndim == 0:
        return input.unsqueeze(0), target.unsqueeze(0), True
    if input.ndim < 2:
        raise ValueError(f"{op}: Expected 2 or more dimensions (got {input.ndim})")
    if input.shape[0] != target.shape[0]:
        raise ValueError(
            f"{op}: Expected input batch_size ({input.shape[0]}) to match target batch_size "
            f"({target.shape[0]})."
        )
    want = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != want:
        raise RuntimeError(
            f"{op}: expected target of shape {list(want)} for input of shape "
            f"{list(input.shape)}, got {list(target.shape)}"
        )
    return input, target, False


def _target_weights(target, weight, ignore_index, num_classes, dtype):
    """(safe class ids, per-element weight with ignored entries zero) for nll-style losses;
    the weight is None when every entry counts once (no class weights, nothing ignored)."""
    t = target._data
    xp = array_module(t)
    keep = t != ignore_index
    bad = keep & ((t < 0) | (t >= num_classes))
    if bad.any():
        raise IndexError(f"Target {int(t[bad].reshape(-1)[0])} is out of bounds.")
    all_kept = bool(keep.all())
    safe = t.astype(xp.int64, copy=False) if all_kept else xp.where(keep, t, 0).astype(xp.int64)
    if weight is None:
        w = None if all_kept else _make(keep.astype(dtype.np))
    else:
        w = ops.getitem(weight.to(dtype), _make(safe)) * _make(keep.astype(dtype.np))
    return _make(safe), w


def nll_loss(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index=-100,
    reduce=None,
    reduction="mean",
):
    """Negative log likelihood of class indices: ``-input[n, target[n]]`` weighted by
    ``weight[target[n]]``; the mean divides by the summed weights, as PyTorch."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    input, target, unbatched = _class_target("nll_loss", input, target)
    c = input.shape[1]
    if weight is not None and weight.numel() != c:
        raise RuntimeError(
            f"nll_loss: weight tensor should be defined either for all {c} classes or no "
            f"classes but got weight tensor of shape: {list(weight.shape)}"
        )
    safe, w = _target_weights(target, weight, ignore_index, c, input.dtype)
    picked = ops.gather(input, 1, safe.unsqueeze(1)).squeeze(1)  # (N, d1, ...)
    loss = -picked if w is None else -picked * w
    if reduction == "none":
        return loss.squeeze(0) if unbatched else loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean() if w is None else loss.sum() / w.sum()


def _smoothing_term(logp, target, weight, ignore_index, reduction):
    c = logp.shape[1]
    if weight is not None:
        wl = logp * weight.to(logp.dtype).reshape((1, c) + (1,) * (logp.ndim - 2))
        smooth = -wl.sum(1)
    else:
        smooth = -logp.sum(1)
    _, w = _target_weights(target, weight, ignore_index, c, logp.dtype)
    if w is not None:
        smooth = E.where(_make(target._data != ignore_index), smooth, 0.0)
    if reduction == "none":
        return smooth
    if reduction == "sum":
        return smooth.sum()
    return smooth.mean() if w is None else smooth.sum() / w.sum()


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index=-100,
    reduce=None,
    reduction="mean",
    label_smoothing=0.0,
):
    """Cross entropy of logits ``input`` (N, C, ...) against class indices (N, ...) or class
    probabilities (N, C, ...), with optional class ``weight``, ``ignore_index`` and
    ``label_smoothing``."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}"
        )
    if _amp.STATE.on:  # cross entropy runs in float32 under autocast, fused or not
        (input,) = _amp.full_precision(input)
    fused = _fused_applies(input, target, weight, ignore_index, reduction, label_smoothing)
    if fused == "cuda":
        from ._losses_cuda import CrossEntropyIndicesCuda

        mean = reduction == "mean"
        return CrossEntropyIndicesCuda.apply(input, target, mean=mean, ignore_index=ignore_index)
    if fused:
        return _CrossEntropyIndices.apply(input, target, mean=reduction == "mean")
    class_dim = 0 if input.ndim == 1 else 1
    logp = ops.log_softmax(input, class_dim)
    if isinstance(target, Tensor) and target.dtype.is_floating_point:
        return _cross_entropy_probs(logp, target, weight, reduction, label_smoothing)
    if label_smoothing == 0:
        return nll_loss(logp, target, weight, None, ignore_index, None, reduction)
    nll = nll_loss(logp, target, weight, None, ignore_index, None, reduction)
    lp, t, unbatched = _class_target("cross_entropy", logp, target)
    smooth = _smoothing_term(lp, t, weight, ignore_index, reduction)
    if unbatched and reduction == "none":
        smooth = smooth.squeeze(0)
    c = lp.shape[1]
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / c)


def _fused_applies(input, target, weight, ignore_index, reduction, label_smoothing):
    """The plain classification case runs as one node: (N, C) float logits, (N,) class ids
    all in range, no class weights or smoothing, a mean or sum. "cuda" for CUDA tensors,
    whose node takes ignored and out-of-range ids itself (checking here would sync)."""
    if not (
        isinstance(target, Tensor)
        and input.ndim == 2
        and target.ndim == 1
        and weight is None
        and label_smoothing == 0
        and reduction in ("mean", "sum")
        and input.dtype.is_floating_point
        and target._data.dtype.kind in "iu"
        and input.shape[0] == target.shape[0] > 0
    ):
        return False
    t = target._data
    if not isinstance(t, np.ndarray):
        same = type(input._data) is type(t) and input.device == target.device
        return "cuda" if same else False
    return bool(((t >= 0) & (t < input.shape[1]) & (t != ignore_index)).all())


class _CrossEntropyIndices(Primitive):
    """``mean_n(-log_softmax(x)[n, t[n]])`` (or the sum) in one node: the same passes as
    log_softmax + nll_loss without the gather, negation and mean nodes and their backward
    ones. The first-order gradient is ``(softmax(x) - onehot(t)) * g / N``."""

    @staticmethod
    def forward(ctx, x, t, mean):
        xp = array_module(x)
        if xp is not np and _cuda_rows(x, 1):  # one fused launch instead of five passes
            logp = cuda_rows.softmax(x, log=True)
        else:
            logp = x - x.max(axis=1, keepdims=True)
            logp -= xp.log(xp.exp(logp).sum(axis=1, keepdims=True))
        picked = xp.take_along_axis(logp, t[:, None].astype(xp.int64), 1)[:, 0]
        loss = -(picked.mean() if mean else picked.sum())
        if ctx._rec:
            ctx.logp, ctx.t, ctx.mean = logp, t, mean
            ctx.save_for_backward(x)
        return xp.asarray(loss, dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        logp, t = ctx.logp, ctx.t
        n = logp.shape[0]
        xp = array_module(logp)
        rows = xp.arange(n)
        scale = 1.0 / n if ctx.mean else 1.0
        if not _grad_mode.STATE.grad_enabled:
            grad = xp.exp(logp)
            grad[rows, t] -= 1
            grad *= g._data * logp.dtype.type(scale)
            return _make(grad), None
        onehot = xp.zeros(logp.shape, logp.dtype)  # create_graph: a differentiable form
        onehot[rows, t] = 1
        return (ops.softmax(x, 1) - _make(onehot)) * (g * scale), None


def _cross_entropy_probs(logp, target, weight, reduction, label_smoothing):
    if tuple(target.shape) != tuple(logp.shape):
        raise RuntimeError(
            "cross_entropy: Expected target of the same shape as input for class "
            f"probabilities, got input {list(logp.shape)} and target {list(target.shape)}"
        )
    class_dim = 0 if logp.ndim == 1 else 1
    c = logp.shape[class_dim]
    if label_smoothing > 0:
        target = target * (1.0 - label_smoothing) + label_smoothing / c
    prod = logp * target
    if weight is not None:
        prod = prod * weight.to(logp.dtype).reshape((c,) + (1,) * (logp.ndim - class_dim - 1))
    loss = -prod.sum(class_dim)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (logp.numel() // c if logp.numel() else 1)


class _BinaryCrossEntropy(Primitive):
    """``-(t * log(x) + (1 - t) * log(1 - x))`` with both logs clamped at -100; the input
    gradient ``(x - t) / max(x (1 - x), 1e-12)`` stays finite at 0 and 1, as in PyTorch."""

    @staticmethod
    def forward(ctx, x, t):
        xp = array_module(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            lx = xp.maximum(xp.log(x), -100.0)
            l1x = xp.maximum(xp.log1p(-x), -100.0)
        ctx.save_for_backward(x, t)
        return (-(t * lx + (1 - t) * l1x)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, t = ctx.saved_tensors
        gx = gt = None
        if ctx._next[0] is not None:
            gx = g * (x - t) / E.clamp(x * (1.0 - x), min=1e-12)
        if ctx._next[1] is not None:
            lx = E.clamp(U.log(x), min=-100.0)
            l1x = E.clamp(U.log1p(-x), min=-100.0)
            gt = g * (l1x - lx)
        return gx, gt


def binary_cross_entropy(
    input, target, weight=None, size_average=None, reduce=None, reduction="mean"
):
    """Binary cross entropy of probabilities ``input`` in [0, 1] against ``target``."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}) is deprecated. Please ensure they have the same size."
        )
    d = input._data
    if d.size and bool(((d < 0) | (d > 1)).any()):
        raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 and 1")
    loss = _BinaryCrossEntropy.apply(input, target.to(input.dtype))
    return reduce_loss(_weighted(loss, weight), reduction)


def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction="mean",
    pos_weight=None,
):
    """Sigmoid + binary cross entropy in one stable expression; ``pos_weight`` scales the
    positive term (broadcast over the last dim, one entry per class)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Target size ({target.shape}) must be the same as input size ({input.shape})"
        )
    target = target.to(input.dtype)
    neg_logsig = -logsigmoid(input)  # softplus(-x), stable for any x
    if pos_weight is None:
        loss = (1.0 - target) * input + neg_logsig
    else:
        log_weight = (pos_weight.to(input.dtype) - 1.0) * target + 1.0
        loss = (1.0 - target) * input + log_weight * neg_logsig
    return reduce_loss(_weighted(loss, weight), reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Kullback-Leibler divergence ``target * (log(target) - input)`` with ``input`` given as
    log-probabilities (``log_target=True``: target too). ``reduction='batchmean'`` divides
    the sum by the batch size, the mathematically correct KL."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release."
        )
    if log_target:
        loss = U.exp(target) * (target - input)
    else:
        pos = target > 0
        safe = E.where(pos, target, 1.0)
        loss = E.where(pos, target * U.log(safe), 0.0) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return reduce_loss(loss, reduction)
