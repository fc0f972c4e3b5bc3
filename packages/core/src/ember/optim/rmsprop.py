"""RMSprop, optionally centered and with momentum: PyTorch's torch.optim.RMSprop."""

from __future__ import annotations

from ._foreach import foreach
from .optimizer import (
    Optimizer,
    _check_flags,
    _check_lr,
    _direction,
    _lerp_,
    _step_tensor,
    _to_scalar,
    _zeros_state,
)

__all__ = ["RMSprop", "rmsprop"]


def _rmsprop_kernel(xp, arrays, scratch, lr, alpha, eps, wd, momentum, maximize):
    p, g, v, a, b = arrays
    t, u = scratch
    d = _direction(xp, p, g, wd, maximize, t)
    v *= alpha
    xp.multiply(d, d, out=u)
    u *= 1 - alpha
    v += u
    if a is not None:
        _lerp_(xp, a, d, 1 - alpha, u)
        xp.multiply(a, a, out=u)
        xp.subtract(v, u, out=u)
        xp.sqrt(u, out=u)
    else:
        xp.sqrt(v, out=u)
    u += eps
    xp.divide(d, u, out=u)
    if b is not None:
        b *= momentum
        b += u
        xp.multiply(b, lr, out=u)
    else:
        u *= lr
    p -= u


def rmsprop(
    params,
    grads,
    square_avgs,
    grad_avgs,
    momentum_buffers,
    steps,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> None:
    """Apply one RMSprop step to each array in ``params`` in place.

    For each parameter ``p`` with gradient ``g``, running averages ``v`` (and ``a`` when
    centered), momentum buffer ``b`` and step counter ``t`` (a 0-d array, incremented here)::

        t = t + 1
        g = -g if maximize else g
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g;  den = sqrt(v - a * a) + eps     centered
        den = sqrt(v) + eps                                             otherwise
        b = momentum * b + g / den;  p = p - lr * b                     momentum > 0
        p = p - lr * g / den                                            otherwise

    ``grad_avgs`` is only read when ``centered``, ``momentum_buffers`` when ``momentum > 0``.
    """
    items = []
    for i, (p, g) in enumerate(zip(params, grads)):
        steps[i] += 1
        a = grad_avgs[i] if centered else None
        b = momentum_buffers[i] if momentum > 0 else None
        extra = (lr, alpha, eps, weight_decay, momentum, maximize)
        items.append(((p, g, square_avgs[i], a, b), extra))
    foreach(_rmsprop_kernel, items)


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``: divide the gradient by a running RMS of it.

    >>> import ember
    >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = ember.optim.RMSprop([w], lr=0.01, alpha=0.75)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    tensor([0.9800, 1.9800], requires_grad=True)
    """

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        _check_lr(lr)
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        _check_flags(foreach, None, differentiable)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _init_group(self, group, params):
        """Per-parameter state (created lazily on the first step), as lists of arrays."""
        momentum, centered = group["momentum"] > 0, group["centered"]
        sq, avg, bufs, steps = [], [], [], []
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _step_tensor()
                state["square_avg"] = _zeros_state(p)
                if momentum:
                    state["momentum_buffer"] = _zeros_state(p)
                if centered:
                    state["grad_avg"] = _zeros_state(p)
            sq.append(state["square_avg"]._data)
            steps.append(state["step"]._data)
            if momentum:
                bufs.append(state["momentum_buffer"]._data)
            if centered:
                avg.append(state["grad_avg"]._data)
        return sq, avg, bufs, steps

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()``'s loss if given."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            sq, avg, bufs, steps = self._init_group(group, params)
            rmsprop(
                [p._data for p in params],
                [p.grad._data for p in params],
                sq,
                avg,
                bufs,
                steps,
                lr=_to_scalar(group["lr"]),
                alpha=group["alpha"],
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                momentum=group["momentum"],
                centered=group["centered"],
                maximize=group["maximize"],
            )
            for p in params:
                p._bump()
        return loss
