"""The ops a saved graph may name: an explicit table, so loading never imports a name taken
from the file. A Primitive missing here can be traced and run, but not saved and loaded."""

from __future__ import annotations

import importlib

_ALLOWED = {
    "ember.ops.elementwise": "Cast Add Sub Mul Div Pow Maximum Minimum Clamp Where",
    "ember.ops.unary": (
        "Neg Exp Log Log1p Expm1 Sqrt Rsqrt Sin Cos Tanh Sigmoid Relu Abs Erf Sign Floor Ceil "
        "Trunc Round"
    ),
    "ember.ops.shape": "Reshape Permute Expand Flip Roll Pad Tri Diag Clone",
    "ember.ops.join": "Cat Pieces",
    "ember.ops.index": "GetItem AdvGetItem IndexPut Gather ScatterAdd Scatter",
    "ember.ops.linalg": "Matmul Linear Einsum",
    "ember.ops.conv": "Conv2d ConvInputGrad",
    "ember.ops.pool": "MaxPool2d AvgPool2d",
    "ember.ops.norm": "Softmax LogSoftmax Normalize LayerNorm",
    "ember.ops.reduce": "Sum Amax Amin Cumsum Cumprod",
    "ember.ops.batchnorm": "BatchNormTrain",
    "ember.ops.recurrent": "LSTMPointwise GRUPointwise",
    "ember.nn._activations": "Gelu Silu",
    "ember.nn._embedding": "EmbeddingLookup",
    "ember.jit.traceops": "Arange Full Compare",
    "ember.jit.fusion": "FusedElementwise",
}

_OPS: dict = {}


def ops() -> dict:
    """``{op name: Primitive class}`` for every op a saved graph may use."""
    if not _OPS:
        for module, names in _ALLOWED.items():
            mod = importlib.import_module(module)
            for name in names.split():
                _OPS[name] = getattr(mod, name)
    return _OPS


def lookup(name: str):
    """The Primitive class registered as ``name``; ValueError for any other name."""
    cls = ops().get(name)
    if cls is None:
        raise ValueError(
            f"ember.jit: op {name!r} is not in the registry of loadable ops (ember/jit/registry.py)"
        )
    return cls
