"""Trace a model into a graph, optimize it, save it and run it without the model's code.

``trace`` records the Primitive ops a call runs; the ``TracedModule`` it returns replays them,
``.save`` writes one safetensors file, and ``load`` reads it back with ember alone.
``passes`` rewrites graphs (dead code, constants, common subexpressions, conv+batch norm,
fusion of elementwise chains).
"""

from . import passes
from .graph import Graph, Node, Ref
from .module import TracedModule, load, trace
from .passes import optimize_for_inference
from .tracer import TracerWarning

__all__ = [
    "Graph",
    "Node",
    "Ref",
    "TracedModule",
    "TracerWarning",
    "load",
    "optimize_for_inference",
    "passes",
    "trace",
]
