"""Every op-harness case against PyTorch: forward values, dtypes and shapes, and gradients
(vector-Jacobian products), in float32 and float64. The case tables live in tests/core."""

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))

import harness  # noqa: E402

FAMILIES = ("elementwise", "reduce", "shape", "index", "linalg", "conv", "pool", "norm")


def _cases():
    out = []
    for fam in FAMILIES:
        mod = importlib.import_module(f"test_ops_{fam}")
        out += [pytest.param(c, id=f"{fam}-{c.name}", marks=c.marks) for c in mod.CASES if c.torch]
    return out


CASES = _cases()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES)
def test_op_matches_torch(case, dtype):
    harness.check_torch(case, dtype)
