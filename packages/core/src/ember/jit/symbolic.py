"""Symbolic sizes: which dims of a traced value follow the inputs' dynamic dims, and how.

A size expression is JSON-able: an ``int``, ``["dim", i, axis]`` (the size of graph input
``i`` along ``axis``), or ``[op, a, b]`` with ``op`` one of add, sub, mul, div (floor), mod.
While a trace runs, the dynamic dims of traced tensors read back as ``SymInt``: an ``int``
that remembers its expression through arithmetic, so ``ember.arange(x.shape[1])`` records a
size that follows the input. A node's ``sym`` maps a parameter name to the parameter with its
sizes written as expressions; replay evaluates them against the actual input shapes.
"""

from __future__ import annotations

import operator

_OPS = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.floordiv,
    "mod": operator.mod,
}


def is_expr(e) -> bool:
    """Whether ``e`` is a (non-constant) size expression."""
    return isinstance(e, list)


def combine(op: str, a, b):
    """``a <op> b`` as an expression, folding constants and the identities of + and *."""
    if not is_expr(a) and not is_expr(b):
        return _OPS[op](int(a), int(b))
    if (op in ("add", "sub") and b == 0) or (op in ("mul", "div") and b == 1):
        return a
    if (op == "add" and a == 0) or (op == "mul" and a == 1):
        return b
    return [op, a, b]


def evaluate(e, shapes) -> int:
    """The value of expression ``e`` when graph input ``i`` has shape ``shapes[i]``."""
    if not is_expr(e):
        return e
    if e[0] == "dim":
        return shapes[e[1]][e[2]]
    return _OPS[e[0]](evaluate(e[1], shapes), evaluate(e[2], shapes))


def resolve(obj, shapes):
    """``obj`` (a parameter: nested lists and tuples) with every expression evaluated."""
    if is_expr(obj):
        return evaluate(obj, shapes)
    if isinstance(obj, tuple):
        return tuple(resolve(x, shapes) for x in obj)
    if isinstance(obj, dict):
        return {k: resolve(v, shapes) for k, v in obj.items()}
    return obj


def product(entries):
    """The product of size entries (ints or expressions)."""
    out = 1
    for e in entries:
        out = combine("mul", out, e)
    return out


def factors(e) -> list:
    """The multiplicative factors of an entry: ``b*t*4`` gives ``[b, t, 4]``."""
    if is_expr(e) and e[0] == "mul":
        return factors(e[1]) + factors(e[2])
    return [e]


class SymInt(int):
    """An ``int`` that carries the size expression it was computed from (tracing only)."""

    expr: object

    def __new__(cls, value: int, expr):
        """Wrap ``value``; plain ``int`` when ``expr`` is a constant."""
        obj = super().__new__(cls, value)
        obj.expr = expr
        return obj


def sym(value: int, expr):
    """``value`` as a SymInt carrying ``expr``, or a plain int for a constant expression."""
    return SymInt(value, expr) if is_expr(expr) else int(value)


def expr_of(x):
    """The expression of an int (its own value unless it is a SymInt)."""
    return x.expr if isinstance(x, SymInt) else int(x)


def _binop(op, swap=False):
    def fn(self, other):
        if not isinstance(other, int) or isinstance(other, bool):
            return NotImplemented
        a, b = (other, self) if swap else (self, other)
        return sym(_OPS[op](int(a), int(b)), combine(op, expr_of(a), expr_of(b)))

    return fn


for _name, _op in (("add", "add"), ("sub", "sub"), ("mul", "mul"), ("floordiv", "div")):
    setattr(SymInt, f"__{_name}__", _binop(_op))
    setattr(SymInt, f"__r{_name}__", _binop(_op, swap=True))
SymInt.__mod__ = _binop("mod")
SymInt.__neg__ = lambda self: sym(-int(self), combine("mul", self.expr, -1))


def has_expr(obj) -> bool:
    """Whether a parameter holds an expression anywhere."""
    if is_expr(obj):
        return True
    if isinstance(obj, tuple | dict):
        vals = obj.values() if isinstance(obj, dict) else obj
        return any(has_expr(v) for v in vals)
    return False


def split_symints(obj):
    """``(plain, symbolic)``: ``obj`` with SymInts made ints, and with them made expressions."""
    if isinstance(obj, SymInt):
        return int(obj), obj.expr
    if isinstance(obj, tuple | list):
        pairs = [split_symints(x) for x in obj]
        kind = type(obj) if isinstance(obj, tuple) else tuple
        return type(obj)(p for p, _ in pairs), kind(s for _, s in pairs)
    return obj, obj


def reshape_entries(in_sym, in_shape, out_shape, value) -> tuple:
    """The symbolic target of a reshape from ``in_shape`` (entries ``in_sym``) to
    ``out_shape``: dims are grouped where the sizes' products agree, a merged group becomes a
    product and a split group hands its dynamic factors to the output dims of equal size
    (``value(expr)`` gives an expression's traced value)."""
    if not any(is_expr(e) for e in in_sym) or 0 in in_shape:
        return tuple(out_shape)
    out: list = list(out_shape)
    i = j = 0
    n, m = len(in_shape), len(out_shape)
    while i < n or j < m:
        if i < n and in_shape[i] == 1 and not is_expr(in_sym[i]):
            i += 1
            continue
        if j < m and out_shape[j] == 1:
            j += 1
            continue
        if i >= n or j >= m:
            break
        ins, outs, pi, po = [i], [j], in_shape[i], out_shape[j]
        i, j = i + 1, j + 1
        while pi != po:
            if pi < po and i < n:
                ins, pi, i = ins + [i], pi * in_shape[i], i + 1
            elif j < m:
                outs, po, j = outs + [j], po * out_shape[j], j + 1
            else:
                return tuple(out_shape)
        _fill(out, [in_sym[k] for k in ins], outs, value)
    return tuple(out)


def _fill(out, entries, outs, value) -> None:
    if not any(is_expr(e) for e in entries):
        return
    if len(outs) == 1:
        out[outs[0]] = product(entries)
        return
    dyn = [f for e in entries for f in factors(e) if is_expr(f)]
    hits = {}
    for j in outs:
        hit = next((f for f in dyn if value(f) == out[j]), None)
        if hit is not None:
            dyn.remove(hit)
            hits[j] = hit
    if not dyn:  # every dynamic factor found its dim; otherwise the traced sizes stay
        for j, f in hits.items():
            out[j] = f
