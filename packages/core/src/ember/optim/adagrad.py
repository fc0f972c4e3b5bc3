"""Adagrad: per-coordinate learning rates from summed squared gradients (torch.optim.Adagrad)."""

from __future__ import annotations

from .._tensor import _make
from ..backend.device import array_module
from ._foreach import foreach
from .optimizer import (
    Optimizer,
    _check_flags,
    _check_lr,
    _check_nonneg,
    _direction,
    _step_tensor,
    _to_scalar,
)

__all__ = ["Adagrad", "adagrad"]


def _adagrad_kernel(xp, arrays, scratch, clr, wd, eps, maximize):
    p, g, s = arrays
    t, u = scratch
    d = _direction(xp, p, g, wd, maximize, t)
    xp.multiply(d, d, out=u)
    s += u
    xp.sqrt(s, out=u)
    u += eps
    xp.divide(d, u, out=u)
    u *= clr
    p -= u


def adagrad(
    params,
    grads,
    state_sums,
    steps,
    *,
    lr: float,
    weight_decay: float,
    lr_decay: float,
    eps: float,
    maximize: bool,
) -> None:
    """Apply one Adagrad step to each array in ``params`` in place.

    For each parameter ``p`` with gradient ``g``, accumulator ``s`` and step counter ``t``
    (a 0-d array, incremented here)::

        t = t + 1
        g = -g if maximize else g
        g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        p = p - clr * g / (sqrt(s) + eps)
    """
    items = []
    for i, (p, g) in enumerate(zip(params, grads)):
        steps[i] += 1
        clr = lr / (1 + (float(steps[i]) - 1) * lr_decay)
        items.append(((p, g, state_sums[i]), (clr, weight_decay, eps, maximize)))
    foreach(_adagrad_kernel, items)


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad``: its state is created for every parameter at once.

    >>> import ember
    >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = ember.optim.Adagrad([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    tensor([0.9000, 1.9000], requires_grad=True)
    """

    def __init__(
        self,
        params,
        lr=1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        _check_lr(lr)
        _check_nonneg("lr_decay", lr_decay)
        _check_nonneg("weight_decay", weight_decay)
        _check_nonneg("initial_accumulator_value", initial_accumulator_value)
        _check_nonneg("epsilon", eps)
        _check_flags(foreach, fused, differentiable)
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, initial_accumulator_value)

    def _init_state(self, p, initial_value) -> None:
        """Start ``p``'s state: step 0 and an accumulator filled with ``initial_value``."""
        state = self.state[p]
        state["step"] = _step_tensor()
        xp = array_module(p._data)
        state["sum"] = _make(xp.full_like(p._data, initial_value))

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()``'s loss if given."""
        return self._step_groups(closure)

    def _update_group(self, group, params) -> None:
        sums, steps = [], []
        for p in params:
            state = self.state[p]
            if len(state) == 0:  # a parameter added later with add_param_group
                self._init_state(p, self.defaults["initial_accumulator_value"])
            sums.append(state["sum"]._data)
            steps.append(state["step"]._data)
        adagrad(
            [p._data for p in params],
            [p.grad._data for p in params],
            sums,
            steps,
            lr=_to_scalar(group["lr"]),
            weight_decay=group["weight_decay"],
            lr_decay=group["lr_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
        )
