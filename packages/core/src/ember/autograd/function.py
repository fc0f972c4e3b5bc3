"""Graph nodes: ``Function`` (user-defined ops on tensors) and ``Primitive`` (ember's own ops on
arrays). A node is its op's backward context: it saves what backward needs and holds the edges
to the nodes that produced its inputs."""

from __future__ import annotations

import traceback

import numpy as np

from .._tensor import TENSOR_TYPES as _TT
from .._tensor import Tensor, _Handle, _make
from ..backend.device import array_module
from .grad_mode import STATE


class _Leaf:
    """What ``next_functions`` shows for a leaf tensor (PyTorch's AccumulateGrad)."""

    def __init__(self, variable: Tensor):
        self.variable = variable

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self) -> str:
        return "<AccumulateGrad>"

    next_functions = ()


class Node:
    """Shared bookkeeping of graph nodes: edges, saved tensors, hooks, names."""

    _next = ()  # per input: None, (node, output_nr), or a leaf Tensor
    _nout = 1
    _saved = None
    _freed = False
    _hooks = None  # {output_nr: [hook]} from Tensor.register_hook on outputs
    _retained = None  # {output_nr: weakref-able tensor} from retain_grad
    _stack = None
    _materialize = True

    @classmethod
    def name(cls) -> str:
        """The node's name as PyTorch prints it, such as ``MulBackward0``."""
        return cls.__name__ + "Backward0"

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"

    @property
    def next_functions(self):
        """One ``(node, output_nr)`` per input; ``(None, 0)`` where no gradient flows."""
        out = []
        for e in self._next:
            if e is None:
                out.append((None, 0))
            elif isinstance(e, Tensor):
                out.append((_Leaf(e), 0))
            else:
                out.append(e)
        return tuple(out)

    def _add_tensor_hook(self, nr: int, hook):
        if self._hooks is None:
            self._hooks = {}
        return _Handle(self._hooks.setdefault(nr, []), hook)

    def _retain(self, nr: int, tensor: Tensor) -> None:
        if self._retained is None:
            self._retained = {}
        self._retained[nr] = tensor

    def register_hook(self, hook):
        """Call ``hook(grad_inputs, grad_outputs)`` after this node's backward."""
        if "_post" not in self.__dict__:
            self._post = []
        return _Handle(self._post, hook)

    # ---- saved tensors ------------------------------------------------------------------
    def _unpack(self):
        if self._freed:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved "
                "tensors after they have already been freed). Saved intermediate values of the "
                "graph are freed when you call .backward() or autograd.grad(). Specify "
                "retain_graph=True if you need to backward through the graph a second time or "
                "if you need to access saved tensors after calling backward."
            )
        out = []
        for kind, obj, version, nr in self._saved:
            if kind == 0:  # a tensor the op was given
                if obj._vbox[0] != version:
                    raise RuntimeError(_modified_msg(obj, version, self))
                out.append(obj)
            elif kind == 1:  # one of this node's outputs: rebuilt so it links back to us
                arr, vbox = obj
                if vbox[0] != version:
                    raise RuntimeError(_modified_msg(_make(arr), version, self, nr, vbox[0]))
                t = _make(arr, True)
                t.grad_fn, t._output_nr, t._vbox = self, nr, vbox
                out.append(t)
            else:
                out.append(obj)
        return tuple(out)

    @property
    def saved_tensors(self):
        """The tensors given to ``save_for_backward``, checked against in-place changes."""
        return self._unpack() if self._saved is not None or self._freed else ()

    def _release(self) -> None:
        if self._saved is not None:
            self._saved = None
            self._freed = True


def _modified_msg(t, version, node, nr=None, now=None) -> str:
    now = t._vbox[0] if now is None else now
    what = f"output {nr} of {node.name()}" if nr is not None else f"an input of {node.name()}"
    return (
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: [{t.dtype} {list(t.shape)}], which is {what}, is at version {now}; "
        f"expected version {version} instead."
    )


def _edge(t: Tensor):
    if t.grad_fn is not None:
        return (t.grad_fn, t._output_nr)
    return t if t._rg else None


class Primitive(Node):
    """An ember op: ``forward(ctx, *arrays, **params)`` returns an array (or a tuple of arrays);
    ``backward(ctx, *grads)`` returns gradient Tensors, one per positional input (None where
    none flows), written with ember's tensor ops so that higher-order gradients work."""

    differentiable = True
    view = False  # outputs share the input's memory and version counter

    @classmethod
    def apply(cls, *args, **params):
        """Run the op on tensors (or plain numbers), recording it when any input needs grad."""
        ctx = cls.__new__(cls)
        record = False
        if STATE.grad_enabled and cls.differentiable:
            for a in args:
                if a.__class__ in _TT and a._rg:
                    record = True
                    break
        ctx._args = args
        ctx._rec = record
        out = cls.forward(ctx, *[a._data if a.__class__ in _TT else a for a in args], **params)
        ctx._args = None
        if out.__class__ is tuple:
            return _wrap_many(ctx, out, record, args)
        if isinstance(out, np.generic):  # NumPy reductions return scalars; keep 0-d arrays
            out = _array_out(ctx, out)
        t = _make(out, record)
        if cls.view and out.base is not None:
            a = args[0]
            t._vbox = a._vbox
            t._base = a._base if a._base is not None else a
        if record:
            ctx._next = tuple([_edge(a) if a.__class__ in _TT else None for a in args])
            t.grad_fn = ctx
            if ctx._saved is not None:
                ctx._fix_outputs((out,), (t,))
            if STATE.anomaly:
                ctx._stack = traceback.format_stack()[:-2]
        return t

    def save_for_backward(self, *items) -> None:
        """Keep inputs, outputs or other arrays for backward (inputs by identity)."""
        if not self._rec:
            return
        args = self._args
        saved = []
        for x in items:
            for a in args:
                if a.__class__ in _TT and a._data is x:
                    saved.append((0, a, a._vbox[0], 0))
                    break
            else:
                if hasattr(x, "dtype") and x.__class__ not in _TT and hasattr(x, "shape"):
                    x = _make(x)
                saved.append((2, x, 0, 0))
        self._saved = saved

    def needs(self, i: int) -> bool:
        """Inside forward: whether positional input ``i`` requires grad."""
        a = self._args[i]
        return a.__class__ in _TT and a._rg

    def _fix_outputs(self, outs, tensors) -> None:
        # Saved arrays that turned out to be outputs are re-linked to this node.
        saved = self._saved
        for i, (kind, obj, _v, _n) in enumerate(saved):
            if kind == 2 and obj.__class__ in _TT:
                for nr, o in enumerate(outs):
                    if obj._data is o:
                        saved[i] = (1, (o, tensors[nr]._vbox), tensors[nr]._vbox[0], nr)
                        break

    @property
    def needs_input_grad(self):
        """Per positional input, whether its gradient is wanted."""
        return tuple(e is not None for e in self._next)


def _array_out(ctx, o):
    # NumPy ufuncs return scalars for 0-d inputs: use a 0-d array, and re-point saved
    # references to the scalar at it, so a saved output still links back to its node.
    arr = np.asarray(o)
    if ctx._saved is not None:
        for _kind, obj, _v, _n in ctx._saved:
            if obj.__class__ is Tensor and obj._data is o:
                obj._data = arr
    return arr


def _wrap_many(ctx, outs, record, args):
    outs = tuple(_array_out(ctx, o) if isinstance(o, np.generic) else o for o in outs)
    tensors = tuple(_make(o, record and o.dtype.kind in "fV") for o in outs)
    if ctx.__class__.view:
        a = args[0]
        base = a._base if a._base is not None else a
        for t in tensors:
            t._vbox, t._base = a._vbox, base
    if record:
        ctx._next = tuple([_edge(a) if a.__class__ in _TT else None for a in args])
        ctx._nout = len(outs)
        ctx._out_meta = [(array_module(o), o.shape, o.dtype) for o in outs]
        for nr, t in enumerate(tensors):
            if t._rg:
                t.grad_fn, t._output_nr = ctx, nr
        if ctx._saved is not None:
            ctx._fix_outputs(outs, tensors)
        if STATE.anomaly:
            ctx._stack = traceback.format_stack()[:-2]
    return tensors


class FunctionCtx:
    """The ``ctx`` a custom Function's static methods receive (PyTorch's FunctionCtx)."""


class Function(Node):
    """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grads)`` working on
    Tensors, then call ``MyFn.apply(*args)``, as in PyTorch.

    >>> import ember
    >>> class Cube(ember.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x ** 3
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (x,) = ctx.saved_tensors
    ...         return 3 * x ** 2 * g
    >>> x = ember.tensor([2.0], requires_grad=True)
    >>> Cube.apply(x).backward()
    >>> x.grad
    tensor([12.])
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        """Compute the outputs from the inputs (runs without recording the graph)."""
        raise NotImplementedError("Function subclasses must implement forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        """Return one gradient per forward input (None for non-tensors)."""
        raise NotImplementedError("Function subclasses must implement backward")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` and record a node whose backward is this class's ``backward``."""
        ctx = cls.__new__(cls)
        ctx._args = args
        ctx._non_diff = set()
        ctx._dirty = set()
        record = STATE.grad_enabled and any(isinstance(a, Tensor) and a._rg for a in args)
        # edges before forward, so needs_input_grad works inside forward too
        ctx._next = tuple(_edge(a) if record and isinstance(a, Tensor) else None for a in args)
        prev = STATE.grad_enabled
        STATE.grad_enabled = False
        try:
            out = cls.forward(ctx, *args, **kwargs)
        finally:
            STATE.grad_enabled = prev
        ctx._args = None
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        res = []
        for o in outs:
            if (
                isinstance(o, Tensor)
                and id(o) not in ctx._dirty
                and any(o is a for a in args if isinstance(a, Tensor))
            ):
                # an input returned as is still gets a new node, as in PyTorch; one marked
                # dirty is the same tensor, rebased onto this node
                nd = id(o) in ctx._non_diff
                o = o.detach()
                if nd:
                    ctx._non_diff.add(id(o))
            res.append(o)
        if record:
            ctx._nout = len(res)
            ctx._out_meta = [
                (array_module(o._data), o._data.shape, o._data.dtype)
                if isinstance(o, Tensor)
                else None
                for o in res
            ]
            for nr, o in enumerate(res):
                if (
                    isinstance(o, Tensor)
                    and o.dtype.is_floating_point
                    and id(o) not in ctx._non_diff
                ):
                    o._rg, o.grad_fn, o._output_nr = True, ctx, nr
            if STATE.anomaly:
                ctx._stack = traceback.format_stack()[:-2]
        return res[0] if single else tuple(res)

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors for backward; in-place changes to them are detected."""
        self._saved = [
            (0, t, t._vbox[0], 0) if isinstance(t, Tensor) else (2, t, 0, 0) for t in tensors
        ]

    def mark_non_differentiable(self, *tensors) -> None:
        """Declare outputs (such as indices) that never carry gradients."""
        self._non_diff.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors) -> None:
        """Declare inputs modified in place by forward (bumps their version); return them
        from forward, and they become outputs of this node."""
        for t in tensors:
            if t._rg and t.grad_fn is None and any(e is not None for e in self._next):
                raise RuntimeError(
                    "a leaf Variable that requires grad has been used in an in-place operation."
                )
            t._bump()
            self._dirty.add(id(t))

    @classmethod
    def name(cls) -> str:
        """The node's name as PyTorch prints it for custom Functions: ``MyFnBackward``."""
        return cls.__name__ + "Backward"

    def set_materialize_grads(self, value: bool) -> None:
        """Whether missing output gradients arrive as zeros (True) or None (False)."""
        self._materialize = bool(value)

    @property
    def needs_input_grad(self):
        """Per forward input, whether its gradient is wanted."""
        return tuple(e is not None for e in self._next)

    def __init__(self, *args, **kwargs):
        # PyTorch's legacy Function instances are not supported; make the error actionable.
        if args or kwargs:
            raise RuntimeError(
                "Legacy autograd function with non-static forward method is deprecated. "
                "Please use new-style autograd function with static forward method."
            )
