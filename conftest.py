"""Repository-wide pytest hooks: skip @pytest.mark.gpu tests where no CUDA GPU is usable."""

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
