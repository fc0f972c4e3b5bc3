"""Saving and loading a Module's state_dict. Loading validates every key and shape first and
copies only when nothing is wrong, so a failed load leaves the model exactly as it was."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import NamedTuple

from .._tensor import Tensor
from ..autograd.grad_mode import no_grad
from .parameter import Parameter


class _IncompatibleKeys(NamedTuple):
    missing_keys: list
    unexpected_keys: list

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return (
            f"_IncompatibleKeys(missing_keys={self.missing_keys}, "
            f"unexpected_keys={self.unexpected_keys})"
        )

    __str__ = __repr__


class _LoadLog(list):
    """The ``error_msgs`` list of ``_load_from_state_dict``, which also collects the copies
    to make once every module has been checked."""

    def __init__(self):
        super().__init__()
        self.jobs = []

    def schedule(self, fn, *args) -> None:
        """Run ``fn(*args)`` at commit time (only when no error was recorded)."""
        self.jobs.append((fn, args))

    def commit(self) -> None:
        with no_grad():
            for fn, args in self.jobs:
                fn(*args)


def _has_extra_state(module) -> bool:
    from .module import Module

    return type(module).get_extra_state is not Module.get_extra_state


def save(module, destination, prefix: str, keep_vars: bool):
    """Fill ``destination`` (a new OrderedDict by default) with ``module``'s state."""
    if destination is None:
        destination = OrderedDict()
        destination._metadata = OrderedDict()
    meta = getattr(destination, "_metadata", None)
    if meta is not None:
        meta[prefix[:-1]] = {"version": module._version}
    module._save_to_state_dict(destination, prefix, keep_vars)
    for name, child in module._modules.items():
        if child is not None:
            child.state_dict(
                destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars
            )
    return destination


def save_local(module, destination, prefix: str, keep_vars: bool) -> None:
    """This module's own parameters, persistent buffers and extra state (not its children)."""
    for name, p in module._parameters.items():
        if p is not None:
            destination[prefix + name] = p if keep_vars else p.detach()
    skip = module._non_persistent_buffers_set
    for name, b in module._buffers.items():
        if b is not None and name not in skip:
            destination[prefix + name] = b if keep_vars else b.detach()
    if _has_extra_state(module):
        destination[prefix + "_extra_state"] = module.get_extra_state()


def _local_state(module) -> dict:
    skip = module._non_persistent_buffers_set
    out = {k: v for k, v in module._parameters.items() if v is not None}
    out.update((k, v) for k, v in module._buffers.items() if v is not None and k not in skip)
    return out


def _assign(module, name, current, src) -> None:
    if name in module._parameters:
        if not isinstance(src, Parameter):
            src = Parameter(src, requires_grad=current.requires_grad)
        module._parameters[name] = src
    else:
        module._buffers[name] = src


def _copy(current, src) -> None:
    current.copy_(src)


def _check_one(key, current, src, errors):
    """The source tensor to copy into ``current``, or None after logging an error."""
    if not isinstance(src, Tensor):
        errors.append(
            f'While copying the parameter named "{key}", expected ember.Tensor or '
            f"Tensor-like object from checkpoint but received {type(src)}"
        )
        return None
    if current.ndim == 0 and src.ndim == 1 and src.numel() == 1:
        src = src.reshape(())  # PyTorch's backward compatibility for old 0-d checkpoints
    if tuple(src.shape) != tuple(current.shape):
        errors.append(
            f"size mismatch for {key}: copying a param with shape {src.shape} from "
            f"checkpoint, the shape in current model is {current.shape}."
        )
        return None
    return src


def load_local(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
    """Check this module's keys in ``state_dict`` and schedule the copies (PyTorch's
    ``_load_from_state_dict`` contract, minus the immediate copy)."""
    local = _local_state(module)
    assign = local_metadata.get("assign_to_params_buffers", False)
    schedule = errors.schedule if isinstance(errors, _LoadLog) else lambda f, *a: f(*a)
    for name, current in local.items():
        key = prefix + name
        if key not in state_dict:
            if strict:
                missing.append(key)
            continue
        src = _check_one(key, current, state_dict[key], errors)
        if src is None:
            continue
        if assign:
            schedule(_assign, module, name, current, src)
        else:
            schedule(_copy, current, src)
    extra_key = prefix + "_extra_state"
    if _has_extra_state(module):
        if extra_key in state_dict:
            schedule(module.set_extra_state, state_dict[extra_key])
        elif strict:
            missing.append(extra_key)
    elif strict and extra_key in state_dict:
        unexpected.append(extra_key)
    if strict:
        for key in state_dict:
            if key.startswith(prefix) and key != extra_key:
                head = key[len(prefix) :].split(".", 1)[0]
                if head not in module._modules and head not in local:
                    unexpected.append(key)


def load(module, state_dict, strict: bool, assign: bool):
    """Validate ``state_dict`` against every module, then copy; see Module.load_state_dict."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
    missing, unexpected = [], []
    errors = _LoadLog()
    metadata = getattr(state_dict, "_metadata", None)
    state_dict = OrderedDict(state_dict)
    if metadata is not None:
        state_dict._metadata = metadata

    def walk(mod, local_sd, prefix):
        meta = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
        if assign:
            meta["assign_to_params_buffers"] = True
        mod._load_from_state_dict(local_sd, prefix, meta, True, missing, unexpected, errors)
        for name, child in mod._modules.items():
            if child is not None:
                child_prefix = prefix + name + "."
                child_sd = {k: v for k, v in local_sd.items() if k.startswith(child_prefix)}
                walk(child, child_sd, child_prefix)

    walk(module, state_dict, "")
    if strict:
        if unexpected:
            keys = ", ".join(f'"{k}"' for k in unexpected)
            errors.insert(0, f"Unexpected key(s) in state_dict: {keys}. ")
        if missing:
            keys = ", ".join(f'"{k}"' for k in missing)
            errors.insert(0, f"Missing key(s) in state_dict: {keys}. ")
    if errors:
        raise RuntimeError(
            f"Error(s) in loading state_dict for {type(module).__name__}:\n\t" + "\n\t".join(errors)
        )
    errors.commit()
    return _IncompatibleKeys(missing, unexpected)
