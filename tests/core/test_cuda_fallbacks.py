"""What the CUDA paths do when a piece is missing, checked without a GPU."""

import pytest


def test_missing_cudnn_frontend_warns_once_and_disables_the_graphs(monkeypatch):
    """Without ``import cudnn`` (as on this machine) the CUDA paths fall back; the first
    check says so once, naming the import error and the fix."""
    import builtins

    from ember.kernels.cuda import cudnn_graphs

    real_import = builtins.__import__

    def no_cudnn(name, *args, **kwargs):
        if name == "cudnn":
            raise ImportError("No module named 'cudnn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cudnn)
    monkeypatch.setattr(cudnn_graphs, "_STATE", {"module": None, "error": None})
    with pytest.warns(RuntimeWarning, match="cuDNN frontend did not load.*ember\\[cuda\\]"):
        assert cudnn_graphs.enabled() is False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cudnn_graphs.enabled() is False  # no second warning
