"""``Parameter``: a Tensor that a Module registers as learnable when assigned to it."""

from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _init, _make


class Parameter(Tensor):
    """Wrap ``data`` as a learnable tensor; assigning it to a Module attribute registers it.

    >>> import ember
    >>> p = ember.nn.Parameter(ember.zeros(2))
    >>> p.requires_grad
    True
    """

    # No __slots__: like PyTorch's, a Parameter accepts extra attributes (p.my_flag = True).

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = _make(np.empty((0,), dtype=np.float32))
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: expected data to be a Tensor, got {type(data).__name__}")
        p = Tensor.__new__(cls)
        _init(p, data._data)
        p._vbox = data._vbox  # shares memory and version counter, like data.detach()
        if requires_grad:
            p.requires_grad_(True)
        return p

    def __init__(self, data=None, requires_grad=True):
        pass  # everything happens in __new__ (Tensor.__init__ would copy)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (_rebuild_parameter, (np.asarray(self.__array__()), self._rg))

    def __deepcopy__(self, memo):
        import copy

        if id(self) in memo:
            return memo[id(self)]
        t = Parameter(_make(self._data.copy()), self._rg)
        memo[id(self)] = t
        if self.grad is not None:
            t.grad = self.grad.__deepcopy__(memo)
        t.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return t


def _rebuild_parameter(arr, requires_grad):
    from ..creation import from_numpy

    return Parameter(from_numpy(np.array(arr)), requires_grad)


def is_parameter(obj) -> bool:
    """True for ``nn.Parameter`` instances."""
    return isinstance(obj, Parameter)
