"""``ember.backends.cudnn``: flags for the cuDNN kernels, with PyTorch's names and defaults.

``allow_tf32`` (default True) lets float32 convolutions use TF32; ``benchmark`` (default False)
asks the kernels to time candidate plans per shape and keep the fastest; ``deterministic``
(default False) restricts them to reproducible plans; ``enabled`` (default True) allows cuDNN at
all. The cuDNN-frontend kernels read these module attributes each time they build a plan; until
they land (convolution on CUDA runs im2col + cuBLAS today) only ``allow_tf32`` has an effect,
through the matmul compute type of that fallback's GEMMs, which follows
``ember.backends.cuda.matmul.allow_tf32``.

>>> import ember.backends as backends
>>> backends.cudnn.allow_tf32, backends.cudnn.benchmark, backends.cudnn.deterministic
(True, False, False)
"""

from __future__ import annotations

enabled = True
allow_tf32 = True
benchmark = False
deterministic = False


def is_available() -> bool:
    """True when the cuDNN frontend (``import cudnn``, package nvidia-cudnn-frontend) loads."""
    try:
        import cudnn  # noqa: F401
    except Exception:  # noqa: BLE001 - missing library or runtime both mean "no"
        return False
    return True


def version():
    """cuDNN's version number as an int (e.g. 91900), or None without the cuDNN frontend."""
    if not is_available():
        return None
    import cudnn  # pragma: no cover - needs cuDNN

    return int(cudnn.backend_version())  # pragma: no cover - needs cuDNN
