"""Stochastic gradient descent with optional (Nesterov) momentum: PyTorch's torch.optim.SGD."""

from __future__ import annotations

import numpy as np

from .._tensor import _make
from ..backend.device import array_module
from ..kernels.cpu import blas1
from ..kernels.cuda import optim as cuda_optim
from ._foreach import foreach
from .optimizer import Optimizer, _check_flags, _check_lr, _direction, _to_scalar

__all__ = ["SGD", "sgd"]


def _sgd_kernel(xp, arrays, scratch, lr, wd, momentum, dampening, nesterov, maximize, first):
    p, g, buf = arrays
    t, u = scratch
    d = _direction(xp, p, g, wd, maximize, t)
    if momentum != 0:
        if first:
            xp.copyto(buf, d)
        else:
            buf *= momentum
            if dampening == 0:
                buf += d
            else:
                xp.multiply(d, 1 - dampening, out=u)
                buf += u
        if nesterov:
            xp.multiply(buf, momentum, out=u)
            u += d
            d = u
        else:
            d = buf
    xp.multiply(d, lr, out=u)
    p -= u


def sgd(
    params,
    grads,
    momentum_buffers,
    *,
    lr: float,
    weight_decay: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    maximize: bool,
) -> None:
    """Apply one SGD step to each array in ``params`` in place.

    For each parameter ``p`` with gradient ``g`` (NumPy or CuPy arrays)::

        g = -g if maximize else g
        g = g + weight_decay * p
        if momentum != 0:
            b = g                                        first step
            b = momentum * b + (1 - dampening) * g       later steps
            g = g + momentum * b if nesterov else b
        p = p - lr * g

    ``momentum_buffers[i]`` is ``None`` before the first step; this function then stores the
    new buffer in the list (``momentum_buffers`` is ignored when ``momentum == 0``).
    """
    if _cuda_sgd(
        params, grads, momentum_buffers, lr, weight_decay, momentum, dampening, nesterov, maximize
    ):
        return
    items = []
    for i, (p, g) in enumerate(zip(params, grads)):
        buf, first = None, False
        if momentum != 0:
            buf = momentum_buffers[i]
            if buf is None:
                buf = momentum_buffers[i] = array_module(p).empty_like(p)
                first = True
        extra = (lr, weight_decay, momentum, dampening, nesterov, maximize, first)
        if not _sgd_blas(p, g, buf, *extra):
            items.append(((p, g, buf), extra))
    if items:
        foreach(_sgd_kernel, items)


def _cuda_sgd(params, grads, bufs, lr, wd, momentum, dampening, nesterov, maximize) -> bool:
    """All parameters in one multi-tensor CUDA launch when they are CuPy arrays of one dtype
    whose momentum buffers are all new or all present; False (nothing changed) otherwise."""
    if not params or isinstance(params[0], np.ndarray):
        return False

    first = momentum != 0 and bufs[0] is None
    if momentum != 0 and any((b is None) != first for b in bufs):
        return False
    grads = cuda_optim.in_layouts(grads, params)
    groups = (params, grads) if first or momentum == 0 else (params, grads, bufs)
    if not cuda_optim.multi_usable(*groups):
        return False
    if momentum == 0:
        use = params  # never read or written by the kernel
    else:
        if first:
            for i, p in enumerate(params):
                bufs[i] = array_module(p).empty_like(p)
        use = bufs
    cuda_optim.sgd(
        params,
        grads,
        use,
        lr=lr,
        weight_decay=wd,
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
        maximize=maximize,
        first=first,
    )
    return True


def _sgd_blas(p, g, buf, lr, wd, momentum, dampening, nesterov, maximize, first) -> bool:
    """The SGD update as BLAS ``axpy``/``scal`` calls (blas1.py): one fused multiply-add per
    ``add(x, alpha=a)`` step, as PyTorch's loop computes it, so the result is bitwise
    PyTorch's. False (nothing changed) when BLAS cannot take these arrays."""
    arrays = (p, g) if buf is None else (p, g, buf)
    if not blas1.usable(*arrays):
        return False
    d = g
    if maximize or wd != 0:
        d = np.negative(g, out=np.empty_like(g)) if maximize else g.copy()
        if wd != 0:
            blas1.axpy(wd, p, d)  # d = d + wd * p
    if momentum != 0:
        if first:
            np.copyto(buf, d)
        else:
            blas1.scal(momentum, buf)
            blas1.axpy(1.0 - dampening, d, buf)
        if nesterov:
            d = d.copy() if d is g else d
            blas1.axpy(momentum, buf, d)  # d = d + momentum * buf
        else:
            d = buf
    blas1.axpy(-lr, d, p)
    return True


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum, as ``torch.optim.SGD``.

    >>> import ember
    >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = ember.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    tensor([0.8000, 1.6000], requires_grad=True)
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _check_lr(lr)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        _check_flags(foreach, fused, differentiable)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()``'s loss if given."""
        return self._step_groups(closure)

    def _update_group(self, group, params) -> None:
        momentum = group["momentum"]
        bufs = None
        if momentum != 0:
            states = [self.state[p] for p in params]
            bufs = [s.get("momentum_buffer") for s in states]
            bufs = [None if b is None else b._data for b in bufs]
        sgd(
            [p._data for p in params],
            [p.grad._data for p in params],
            bufs,
            lr=_to_scalar(group["lr"]),
            weight_decay=group["weight_decay"],
            momentum=momentum,
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
        )
        if bufs is not None:
            for state, buf in zip(states, bufs):
                if state.get("momentum_buffer") is None:
                    state["momentum_buffer"] = _make(buf)
