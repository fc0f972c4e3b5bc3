"""Normalization for ``nn.functional``: batch, group, instance, layer and RMS norm. Each
normalizes with ember's fused ``Normalize`` primitive, then applies one scale and shift."""

from __future__ import annotations

import numpy as np

from .._tensor import _make
from ..autograd.grad_mode import STATE, no_grad
from ..backend import dtypes as _dt
from ..kernels.cuda import batchnorm as cuda_bn
from ..ops import batchnorm as _bn
from ..ops import unary as U
from ..ops.norm import Normalize, layer_norm, normalize_stats

__all__ = ["batch_norm", "group_norm", "instance_norm", "layer_norm", "rms_norm"]

_EPS = {
    _dt.float16: 0.0009765625,
    _dt.bfloat16: 0.0078125,
    _dt.float32: 1.1920928955078125e-07,
    _dt.float64: 2.220446049250313e-16,
}


def _channel_shape(input) -> tuple:
    # (1, C, 1, ...) so per-channel vectors broadcast against (N, C, *spatial)
    return (1, input.shape[1]) + (1,) * (input.ndim - 2)


def _affine(out, weight, bias, shape):
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _check_channels(op, input, vecs):
    if input.ndim < 2:
        raise ValueError(f"{op}: expected at least 2-D input (N, C, ...), got {list(input.shape)}")
    c = input.shape[1]
    for name, v in vecs:
        if v is not None and v.numel() != c:
            raise RuntimeError(
                f"{op}: {name} should contain {c} elements (input channels of input "
                f"{list(input.shape)}), but got {list(v.shape)}"
            )


_WIDE = (np.dtype(np.float32), np.dtype(np.float64))


def _update_running(running, batch_stat, momentum) -> None:
    """``running = (1 - momentum) * running + momentum * batch_stat`` in place. A float32 or
    float64 NumPy buffer is updated with two in-place NumPy passes (the same roundings as the
    tensor ops below, which cost five op dispatches: 80 us a buffer, 9 ms of a small CPU
    ResNet-50 step)."""
    r = running._data
    fast = type(r) is np.ndarray and r.dtype in _WIDE and r.flags.writeable
    if fast and not running._rg and not STATE.tracing:
        r *= 1.0 - momentum
        r += np.asarray(batch_stat).reshape(-1).astype(r.dtype, copy=False) * momentum
        running._vbox[0] += 1  # as copy_ counts an in-place change
        return
    with no_grad():
        batch = _make(batch_stat.reshape(-1)).to(running.dtype)
        new = running * (1.0 - momentum) + batch * momentum
        running.copy_(new)


def _running_in_kernel(running_mean, running_var, input, momentum, n):
    """(running_mean, running_var, momentum, n) as arrays for the CUDA batch-norm kernel to
    update in its statistics launch; None off CUDA, without running statistics, or for
    buffers it cannot write (then the update runs on its own)."""
    if isinstance(input._data, np.ndarray) or momentum is None:
        return None
    if running_mean is None and running_var is None:
        return None

    rm = None if running_mean is None else running_mean._data
    rv = None if running_var is None else running_var._data
    if not (cuda_bn.running_ok(rm, input._data) and cuda_bn.running_ok(rv, input._data)):
        return None
    return rm, rv, float(momentum), n


def _running_on_device(running_mean, running_var, mu, var, momentum, n) -> bool:
    """Update both running statistics in one CUDA launch (in place, versions bumped, as
    ``copy_`` would); False, with nothing changed, off CUDA or for unusual buffers."""
    if isinstance(mu, np.ndarray) or momentum is None:
        return False

    rm = None if running_mean is None else running_mean._data
    rv = None if running_var is None else running_var._data
    if not (cuda_bn.running_usable(rm, mu) and cuda_bn.running_usable(rv, var)):
        return False
    cuda_bn.update_running(rm, rv, mu, var, float(momentum), n)
    for t in (running_mean, running_var):
        if t is not None:
            t._vbox[0] += 1
    return True


def _eval_on_blocks(input, running_mean, running_var, weight, bias, eps):
    """Inference batch norm through the blocked CPU kernel, where no graph is recorded and
    every array is a NumPy float32/float64 one (C-contiguous input); None otherwise."""
    x = input._data
    if type(x) is not np.ndarray or x.dtype not in _WIDE or not x.flags.c_contiguous:
        return None
    if STATE.tracing:  # the trace records the ops below instead
        return None
    vecs = [t for t in (running_mean, running_var, weight, bias) if t is not None]
    if STATE.grad_enabled and any(t._rg for t in (input, *vecs)):
        return None
    if any(type(t._data) is not np.ndarray for t in vecs) or x.ndim < 2 or x.size == 0:
        return None
    from ..kernels.cpu.batchnorm import batch_norm_eval

    w = None if weight is None else weight._data
    b = None if bias is None else bias._data
    return _make(batch_norm_eval(x, running_mean._data, running_var._data, w, b, eps))


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
):
    """Normalize each channel (dim 1) with batch statistics (``training``, also updating the
    running ones in place with the unbiased variance) or with the running statistics."""
    _check_channels(
        "batch_norm",
        input,
        [("running_mean", running_mean), ("running_var", running_var)]
        + [("weight", weight), ("bias", bias)],
    )
    shape = _channel_shape(input)
    axes = (0,) + tuple(range(2, input.ndim))
    if training:
        n = input.numel() // input.shape[1]
        if n <= 1:
            raise ValueError(
                "Expected more than 1 value per channel when training, got input size "
                f"{list(input.shape)}"
            )
        if _bn.fused_available(input):
            fold = _running_in_kernel(running_mean, running_var, input, momentum, n)
            out, mu, var = _bn.batch_norm_train(input, weight, bias, eps, running=fold)
            if fold is not None:
                for t in (running_mean, running_var):
                    if t is not None:
                        t._vbox[0] += 1  # updated in place, as copy_ would count it
                return out
            if _running_on_device(running_mean, running_var, mu, var, momentum, n):
                return out
        else:
            out, mu, var = normalize_stats(input, axes, eps)
            out = _affine(out, weight, bias, shape)
        if running_mean is not None:
            _update_running(running_mean, mu, momentum)
        if running_var is not None:
            _update_running(running_var, var * (n / (n - 1)), momentum)
        return out
    if running_mean is None or running_var is None:
        raise RuntimeError("batch_norm: running_mean and running_var must be defined in eval mode")
    fast = _eval_on_blocks(input, running_mean, running_var, weight, bias, eps)
    if fast is not None:
        return fast
    # eval: fold the statistics into one scale and one shift (two passes over the input)
    scale = U.rsqrt(running_var.to(input.dtype) + eps)
    if weight is not None:
        scale = scale * weight
    shift = -running_mean.to(input.dtype) * scale
    if bias is not None:
        shift = shift + bias
    return input * scale.reshape(shape) + shift.reshape(shape)


def instance_norm(
    input,
    running_mean=None,
    running_var=None,
    weight=None,
    bias=None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
):
    """Normalize each (sample, channel) plane over its spatial dims."""
    _check_channels("instance_norm", input, [("weight", weight), ("bias", bias)])
    shape = _channel_shape(input)
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    axes = tuple(range(2, input.ndim))
    out, mu, var = normalize_stats(input, axes, eps)
    if running_mean is not None:
        _update_running(running_mean, mu.mean(axis=0), momentum)
    if running_var is not None:
        n = 1
        for a in axes:
            n *= input.shape[a]
        _update_running(running_var, (var * (n / max(n - 1, 1))).mean(axis=0), momentum)
    return _affine(out, weight, bias, shape)


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5):
    """Split the channels (dim 1) into ``num_groups`` groups and normalize each group of each
    sample over its channels and spatial dims; then scale and shift per channel."""
    if input.ndim < 2:
        raise RuntimeError(
            f"group_norm: Expected at least 2 dimensions for input tensor but received {input.ndim}"
        )
    n, c = input.shape[0], input.shape[1]
    if c % num_groups:
        raise RuntimeError(
            "group_norm: Expected number of channels in input to be divisible by num_groups, "
            f"but got input of shape {list(input.shape)} and num_groups={num_groups}"
        )
    _check_channels("group_norm", input, [("weight", weight), ("bias", bias)])
    grouped = input.reshape(n, num_groups, -1)  # (N, G, C/G * spatial)
    out = Normalize.apply(grouped, axes=(2,), eps=eps).reshape(input.shape)
    return _affine(out, weight, bias, _channel_shape(input))


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """``x / sqrt(mean(x**2) + eps) * weight`` over the last ``len(normalized_shape)`` dims;
    ``eps=None`` uses the dtype's machine epsilon, as PyTorch."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if tuple(input.shape[input.ndim - k :]) != normalized_shape:
        raise RuntimeError(
            f"rms_norm: Given normalized_shape={list(normalized_shape)}, expected input with "
            f"shape [*, {', '.join(map(str, normalized_shape))}], but got input of size "
            f"{list(input.shape)}"
        )
    if eps is None:
        eps = _EPS.get(input.dtype, _EPS[_dt.float32])
    dims = tuple(range(input.ndim - k, input.ndim))
    out = input * U.rsqrt((input * input).mean(dims, keepdim=True) + eps)
    return out * weight if weight is not None else out
