"""RMSprop, optionally centered and with momentum: PyTorch's torch.optim.RMSprop."""

from __future__ import annotations

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
        _check_nonneg("epsilon", eps)
        _check_nonneg("momentum", momentum)
        _check_nonneg("weight_decay", weight_decay)
        _check_nonneg("alpha", alpha)
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

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()``'s loss if given."""
        return self._step_groups(closure)

    def _update_group(self, group, params) -> None:
        keys = ["square_avg"]
        keys += ["momentum_buffer"] if group["momentum"] > 0 else []
        keys += ["grad_avg"] if group["centered"] else []
        state = self._lazy_state(params, keys)
        rmsprop(
            [p._data for p in params],
            [p.grad._data for p in params],
            state["square_avg"],
            state.get("grad_avg", []),
            state.get("momentum_buffer", []),
            state["step"],
            lr=_to_scalar(group["lr"]),
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            centered=group["centered"],
            maximize=group["maximize"],
        )
