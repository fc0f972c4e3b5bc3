"""AdamW: Adam with decoupled weight decay (PyTorch's torch.optim.AdamW)."""

from __future__ import annotations

from .adam import Adam, adam

__all__ = ["AdamW", "adamw"]


def adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, **hyper) -> None:
    """Apply one AdamW step to each array in ``params`` in place.

    The update is :func:`ember.optim.adam.adam`'s with the weight decay decoupled from the
    gradient: ``p = p * (1 - lr * weight_decay)`` first, then the Adam step on the plain
    gradient, so the decay never enters the moments ``m`` and ``v``.
    """
    hyper["decoupled_weight_decay"] = True
    adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, **hyper)


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: Adam whose weight decay (default 1e-2) shrinks the
    parameters directly instead of being added to the gradient.

    >>> import ember
    >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = ember.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    tensor([0.8500, 1.8000], requires_grad=True)
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
