"""``RemovableHandle``: what hook registration returns (PyTorch's torch.utils.hooks)."""

from __future__ import annotations

import itertools
import weakref

_ids = itertools.count()


class RemovableHandle:
    """Call ``remove()`` to unregister the hook; also a context manager that removes on exit."""

    def __init__(self, hooks_dict, *, extra_dict=None):
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = next(_ids)
        extras = () if extra_dict is None else extra_dict
        if not isinstance(extras, list | tuple):
            extras = (extras,)
        self.extra_dict_ref = tuple(weakref.ref(d) for d in extras)

    def remove(self) -> None:
        """Unregister the hook (no error when it was already removed)."""
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            d = ref()
            if d is not None:
                if isinstance(d, set):
                    d.discard(self.id)
                else:
                    d.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def add_hook(hooks, hook, prepend: bool, extra=None) -> RemovableHandle:
    """Insert ``hook`` into the ordered dict ``hooks`` (first when ``prepend``)."""
    handle = RemovableHandle(hooks, extra_dict=extra)
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


def _name_failing_module(exc: Exception, module) -> None:
    """Append the failing submodule's qualified name to an error as it leaves each enclosing
    module: "... (in Conv2d 'layer1.0.conv1')"."""
    info = getattr(exc, "_ember_module", None)
    if info is None:
        if not (exc.args and isinstance(exc.args[0], str)):
            return
        info = exc._ember_module = [type(module).__name__, "", module, exc.args[0]]
    else:
        inner = info[2]
        for name, sub in module.named_modules():
            if sub is inner and name:
                info[1] = name + ("." + info[1] if info[1] else "")
                break
        info[2] = module
    where = f"in {info[0]} '{info[1]}'" if info[1] else f"in {info[0]}"
    try:
        exc.args = (f"{info[3]} ({where})",) + tuple(exc.args[1:])
    except (AttributeError, TypeError):  # an exception type with read-only args
        pass
