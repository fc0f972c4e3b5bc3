"""Repository-wide pytest hooks: skip @pytest.mark.gpu tests where no CUDA GPU is usable, and
run the ones that do with full float32 precision (no TF32) so CUDA results compare with the
CPU's at float32 tolerances."""

import pytest


def _cuda_available():
    try:
        import ember
    except ImportError:  # a session without the core still collects its own tests
        return False
    return ember.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items or _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (ember.cuda.is_available())")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(autouse=True)
def _gpu_full_float32(request):
    """GPU tests run with cuDNN's and cuBLAS's TF32 off; the flags are restored afterwards."""
    if request.node.get_closest_marker("gpu") is None:
        yield
        return
    import ember.backends as backends

    saved = (backends.cudnn.allow_tf32, backends.get_float32_matmul_precision())
    backends.cudnn.allow_tf32 = False
    backends.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        backends.cudnn.allow_tf32 = saved[0]
        backends.set_float32_matmul_precision(saved[1])
