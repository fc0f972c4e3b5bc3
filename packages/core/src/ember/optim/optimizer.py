"""Optimizer: parameter groups, per-parameter state and PyTorch's state_dict layout.

Each algorithm subclasses :class:`Optimizer` for the bookkeeping and keeps its math in one pure
update function that works on the raw arrays in place (NumPy or CuPy alike).
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections import defaultdict
from itertools import chain

import numpy as np

from .._tensor import Tensor, _make
from ..autograd import enable_grad
from ..backend import dtypes as _dt
from ..backend.device import array_module

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks a hyperparameter that every parameter group must set itself."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _typename(obj) -> str:
    """``torch.typename``: the dotted type name used in error messages."""
    if isinstance(obj, Tensor):
        return f"ember.{obj.dtype.name.capitalize()}Tensor"
    cls = type(obj)
    module = cls.__module__
    return cls.__qualname__ if module in ("", "builtins") else f"{module}.{cls.__qualname__}"


def _to_scalar(x):
    """A Python number from a number or a one-element tensor (lr, betas ...)."""
    if isinstance(x, Tensor):
        return x.item()
    return x


def _scalar_dtype():
    """The dtype of ``state["step"]``: float64 when that is the default dtype, else float32."""
    return np.float64 if _dt.get_default_dtype() is _dt.float64 else np.float32


def _step_tensor(value: float = 0.0) -> Tensor:
    """A fresh 0-d CPU tensor holding a step count, as PyTorch keeps ``state["step"]``."""
    return _make(np.array(value, dtype=_scalar_dtype()))


def _zeros_state(p: Tensor) -> Tensor:
    """A zero tensor shaped, typed and placed like ``p`` (a moment buffer)."""
    return _make(array_module(p._data).zeros_like(p._data))


def _copy_to_param(param: Tensor, value: Tensor, key) -> Tensor:
    """A copy of a saved state tensor on ``param``'s device, cast to its dtype (not ``step``)."""
    arr = value._data
    if key != "step":
        xp = array_module(param._data)
        if xp is not array_module(arr):
            arr = arr.get() if xp is np else xp.asarray(arr)
        if param.dtype.is_floating_point:
            arr = arr.astype(param._data.dtype, copy=False)
    out = _make(arr.copy())
    out._rg = value._rg
    return out


def _cast_state(param: Tensor, value, key=None):
    """Deep-copy ``value``, moving and casting every tensor inside it to suit ``param``."""
    if isinstance(value, Tensor):
        return _copy_to_param(param, value, key)
    if isinstance(value, dict):
        return {k: _cast_state(param, v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_cast_state(param, v) for v in value)
    return copy.deepcopy(value)


def _wrap_step(step):
    """Wrap a subclass's ``step`` so schedulers can tell whether it has been called."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        self._opt_called = True
        return step(self, *args, **kwargs)

    wrapper._wrapped_by_lr_sched = True
    return wrapper


class Optimizer:
    """Base class of all optimizers: holds ``param_groups`` and per-parameter ``state``.

    Args:
        params: an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts that each
            define a parameter group (``{"params": [...], "lr": ...}``).
        defaults: the default hyperparameters, used by groups that do not set their own.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_wrapped_by_lr_sched", False):
            cls.step = _wrap_step(step)

    def __init__(self, params, defaults: dict) -> None:
        self.defaults = defaults
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                "dicts, but got " + _typename(params)
            )
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ---- pickling and repr -------------------------------------------------------------
    def __getstate__(self) -> dict:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for group in self.param_groups:
            for name, default in self.defaults.items():
                if default is not required:
                    group.setdefault(name, default)
            for p in group["params"]:
                p_state = self.state.get(p)
                if p_state and "step" in p_state and not isinstance(p_state["step"], Tensor):
                    p_state["step"] = _step_tensor(float(p_state["step"]))

    def __repr__(self) -> str:
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"

    # ---- groups ------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters (with its own hyperparameters) to ``param_groups``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        param_group["params"] = params
        if names:
            if len(names) != len(params):
                raise ValueError(
                    "all optimizer params should be with/without names. Some param names are "
                    "missing"
                )
            param_group["param_names"] = names
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(
                    "optimizer can only optimize Tensors, but one of the params is " + _typename(p)
                )
            if not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    "parameter group didn't specify a value of required optimization "
                    f"parameter {name}"
                )
            param_group.setdefault(name, default)
        self._check_new_group(param_group)
        self.param_groups.append(param_group)

    def _check_new_group(self, group: dict) -> None:
        """Warn on duplicates inside ``group``; reject parameters already in another group."""
        ids = [id(p) for p in group["params"]]
        if len(ids) != len(set(ids)):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; in future, "
                "this will cause an error; see github.com/pytorch/pytorch/issues/40967 for more "
                "information",
                stacklevel=3,
            )
        seen = set()
        for other in self.param_groups:
            seen.update(id(p) for p in other["params"])
            if ("param_names" in group) != ("param_names" in other):
                txt = "with names" if "param_names" in group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {txt} to the optimizer"
                )
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")

    # ---- gradients and steps -----------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized tensors (to None by default, else to zeros)."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                    continue
                if g.grad_fn is not None:
                    g.detach_()
                else:
                    g._rg = False
                g._data.fill(0)
                g._bump()

    def step(self, closure=None):
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the
        loss. Subclasses implement this."""
        raise NotImplementedError

    def _run_closure(self, closure):
        """Call ``closure`` with gradients enabled (PyTorch's step does the same)."""
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _step_groups(self, closure):
        """The body of a subclass's ``step``: run ``closure``, then for every group with
        gradients call ``self._update_group(group, params)`` (``params``: the group's
        parameters that have a gradient) and bump those parameters' versions."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            self._update_group(group, params)
            for p in params:
                p._bump()
        return loss

    def _lazy_state(self, params, keys) -> dict:
        """``{"step": [...], key: [...] for key in keys}``: the raw arrays of each parameter's
        state; a parameter without state first gets step 0 and a zero buffer per key."""
        out = {"step": [], **{k: [] for k in keys}}
        for p in params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _step_tensor()
                for k in keys:
                    state[k] = _zeros_state(p)
            for k, arrays in out.items():
                arrays.append(state[k]._data)
        return out

    # ---- state_dict --------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The optimizer's state: ``{"state": {index: {...}}, "param_groups": [...]}`` where
        parameters are replaced by their position across all groups."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state from :meth:`state_dict`: hyperparameters per group and a copy of every
        parameter's state, cast to that parameter's dtype and device (``step`` is kept)."""
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of "
                "optimizer's group"
            )
        id_map = dict(
            zip(
                chain.from_iterable(s["params"] for s in saved_groups),
                chain.from_iterable(g["params"] for g in groups),
            )
        )
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                state[id_map[k]] = _cast_state(id_map[k], v)
            else:
                state[k] = copy.deepcopy(v)
        for g, s in zip(groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
        self.__setstate__({"state": state, "param_groups": saved_groups})


def _check_flags(foreach=None, fused=None, differentiable=False) -> None:
    """Reject implementation switches ember cannot honour (fused with foreach, differentiable).

    ``foreach``, ``fused`` and ``capturable`` are accepted and kept in the groups (so state
    dicts match PyTorch's) but change nothing: every ember step runs through ``_foreach``.
    """
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    if fused and differentiable:
        raise RuntimeError("`fused` does not support `differentiable`")
    if differentiable:
        raise NotImplementedError(
            "ember.optim: differentiable=True (autograd through the optimizer step) is not "
            "supported; leave it False"
        )


def _direction(xp, p, g, weight_decay, maximize, out):
    """The direction an update follows: ``±g + weight_decay * p`` (minus g when maximizing).

    Returns ``g`` itself when there is nothing to add, else ``out`` holding the result.
    """
    if weight_decay == 0 and not maximize:
        return g
    if weight_decay != 0:
        xp.multiply(p, weight_decay, out=out)
        (xp.subtract if maximize else xp.add)(out, g, out=out)
    else:
        xp.negative(g, out=out)
    return out


def _lerp_(xp, start, end, weight, scratch) -> None:
    """``start += weight * (end - start)`` in place, rounded the way PyTorch's ``lerp_`` is."""
    xp.subtract(end, start, out=scratch)
    if weight < 0.5:
        scratch *= weight
        start += scratch
    else:
        scratch *= 1 - weight
        xp.subtract(end, scratch, out=start)


def _check_nonneg(name: str, value) -> None:
    """PyTorch's check of a hyperparameter that must not be negative (NaN is rejected too)."""
    if not 0.0 <= value:
        raise ValueError(f"Invalid {name} value: {value}")


def _check_lr(lr) -> None:
    """PyTorch's learning-rate checks: non-negative, and one element when a tensor."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= _to_scalar(lr):
        raise ValueError(f"Invalid learning rate: {lr}")
