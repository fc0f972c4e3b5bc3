"""Adam (adaptive moment estimation), with optional AMSGrad: PyTorch's torch.optim.Adam."""

from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..kernels.cuda import optim as cuda_optim
from ._foreach import foreach
from .optimizer import (
    Optimizer,
    _check_flags,
    _check_lr,
    _check_nonneg,
    _direction,
    _lerp_,
    _to_scalar,
)

__all__ = ["Adam", "adam"]


def _adam_kernel(xp, arrays, scratch, b1, b2, lr, wd, eps, maximize, decoupled, step):
    p, g, m, v, vmax = arrays
    t, u = scratch
    if decoupled and wd != 0:
        p *= 1 - lr * wd
    d = _direction(xp, p, g, 0 if decoupled else wd, maximize, t)
    _lerp_(xp, m, d, 1 - b1, u)
    v *= b2
    xp.multiply(d, d, out=u)
    u *= 1 - b2
    v += u
    if vmax is not None:
        xp.maximum(vmax, v, out=vmax)
        v = vmax
    step_size = lr / (1 - b1**step)
    bias_correction2_sqrt = (1 - b2**step) ** 0.5
    xp.sqrt(v, out=u)
    u /= bias_correction2_sqrt
    u += eps
    xp.divide(m, u, out=u)
    u *= step_size
    p -= u


def adam(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    steps,
    *,
    amsgrad: bool,
    beta1: float,
    beta2: float,
    lr: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
    decoupled_weight_decay: bool = False,
) -> None:
    """Apply one Adam step to each array in ``params`` in place.

    For each parameter ``p`` with gradient ``g``, moments ``m``, ``v`` (and ``v_max`` with
    amsgrad) and step counter ``t`` (a 0-d array, incremented here)::

        t = t + 1
        g = -g if maximize else g
        p = p * (1 - lr * weight_decay)           decoupled weight decay (AdamW)
        g = g + weight_decay * p                  otherwise
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v); use v_max for v    amsgrad
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    ``max_exp_avg_sqs`` is only read when ``amsgrad`` is true.
    """
    if not amsgrad and _cuda_adam(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        steps,
        beta1,
        beta2,
        lr,
        weight_decay,
        eps,
        maximize,
        decoupled_weight_decay,
    ):
        return
    items = []
    for i, (p, g) in enumerate(zip(params, grads)):
        steps[i] += 1
        vmax = max_exp_avg_sqs[i] if amsgrad else None
        extra = (beta1, beta2, lr, weight_decay, eps, maximize, decoupled_weight_decay)
        items.append(((p, g, exp_avgs[i], exp_avg_sqs[i], vmax), (*extra, float(steps[i]))))
    foreach(_adam_kernel, items)


def _cuda_adam(params, grads, ms, vs, steps, b1, b2, lr, wd, eps, maximize, decoupled) -> bool:
    """All parameters in one multi-tensor CUDA launch when they are CuPy arrays of one dtype
    at one step count; False (nothing changed) otherwise."""
    if not params or isinstance(params[0], np.ndarray):
        return False

    if len({float(s) for s in steps}) != 1:
        return False
    grads = cuda_optim.in_layouts(
        [g.astype(p.dtype, copy=False) for p, g in zip(params, grads)], params
    )
    if not cuda_optim.multi_usable(params, grads, ms, vs):
        return False
    for i in range(len(steps)):
        steps[i] += 1
    cuda_optim.adam(
        params,
        grads,
        ms,
        vs,
        lr=lr,
        beta1=b1,
        beta2=b2,
        eps=eps,
        weight_decay=wd,
        step=float(steps[0]),
        decoupled=decoupled,
        maximize=maximize,
    )
    return True


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (L2 weight decay added to the gradient).

    >>> import ember
    >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = ember.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    tensor([0.9000, 1.9000], requires_grad=True)
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        _check_lr(lr)
        _check_nonneg("epsilon", eps)
        for i in (0, 1):
            if isinstance(betas[i], Tensor) and betas[i].numel() != 1:
                raise ValueError(f"Tensor betas[{i}] must be 1-element")
            if not 0.0 <= _to_scalar(betas[i]) < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {betas[i]}")
        _check_nonneg("weight_decay", weight_decay)
        if isinstance(betas[0], Tensor) != isinstance(betas[1], Tensor):
            raise ValueError("betas must be either both floats or both Tensors")
        _check_flags(foreach, fused, differentiable)
        defaults = {
            "lr": lr,
            "betas": tuple(_to_scalar(b) for b in betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()``'s loss if given."""
        return self._step_groups(closure)

    def _update_group(self, group, params) -> None:
        keys = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group["amsgrad"] else [])
        state = self._lazy_state(params, keys)
        beta1, beta2 = group["betas"]
        adam(
            [p._data for p in params],
            [p.grad._data for p in params],
            state["exp_avg"],
            state["exp_avg_sq"],
            state.get("max_exp_avg_sq", []),
            state["step"],
            amsgrad=group["amsgrad"],
            beta1=_to_scalar(beta1),
            beta2=_to_scalar(beta2),
            lr=_to_scalar(group["lr"]),
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
        )
