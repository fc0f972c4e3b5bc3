"""``ember.backends``: switches that pick how the CUDA kernels compute, with PyTorch's names.

``backends.cuda.matmul.allow_tf32`` (default False) lets float32 matrix products on CUDA use
TF32 tensor cores; ``set_float32_matmul_precision`` is the same switch by another name
("highest" is off, "high" and "medium" are on). ``backends.cudnn`` holds the flags the cuDNN
kernels read. On the CPU none of them changes a result.

>>> import ember.backends as backends
>>> backends.cuda.matmul.allow_tf32
False
>>> backends.get_float32_matmul_precision()
'highest'
"""

from __future__ import annotations

from . import cuda, cudnn
from .cuda import get_float32_matmul_precision, set_float32_matmul_precision

__all__ = ["cuda", "cudnn", "get_float32_matmul_precision", "set_float32_matmul_precision"]
