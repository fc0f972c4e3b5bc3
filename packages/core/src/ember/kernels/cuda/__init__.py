"""CUDA kernels on CuPy arrays: ember's own fused CUDA C kernels (rows, elementwise, batch
norm, optimizer steps) and NVIDIA's cuDNN frontend graphs (convolution, attention).

Nothing here imports CuPy or cuDNN at module import: each module loads them on first use, so
CPU users never pay for them. Every entry point has a ``usable``-style check, and callers keep
their CuPy composite path for what these kernels do not cover.
"""
