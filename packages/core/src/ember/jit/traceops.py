"""Graph ops for work that is not a ``Primitive`` in eager ember but must follow the inputs in
a trace: tensors created with sizes read from a traced shape, and comparisons of traced values
(masks). Each class has the ``apply`` a graph node calls; none carries a gradient."""

from __future__ import annotations

from ..backend import dtypes as _dt


def _dtype(name):
    return None if name is None else _dt.to_dtype(name)


class Arange:
    """``ember.arange(start, end, step, dtype=...)`` as a graph node."""

    @classmethod
    def apply(cls, start, end, step, dtype=None):
        """Run it."""
        from ..creation import arange

        return arange(start, end, step, dtype=_dtype(dtype))


class Full:
    """``ember.full(shape, value, dtype=...)`` as a graph node."""

    @classmethod
    def apply(cls, shape, value, dtype=None):
        """Run it."""
        from ..creation import full

        return full(tuple(shape), value, dtype=_dtype(dtype))


_COMPARE = {
    "eq": "eq",
    "ne": "ne",
    "lt": "lt",
    "le": "le",
    "gt": "gt",
    "ge": "ge",
    "and": "logical_and",
    "or": "logical_or",
    "not": "logical_not",
}


class Compare:
    """A comparison or logical op (``op``: eq ne lt le gt ge and or not); a bool tensor."""

    @classmethod
    def apply(cls, a, b=None, op="eq"):
        """Run it."""
        from ..ops import elementwise

        fn = getattr(elementwise, _COMPARE[op])
        return fn(a) if op == "not" else fn(a, b)
