"""Parity tests compare ember with PyTorch; run them with `nox -s parity`.

torch is imported plainly, not through importorskip: in the parity session a missing torch
is an error, never a silent skip.
"""

import torch  # noqa: F401
