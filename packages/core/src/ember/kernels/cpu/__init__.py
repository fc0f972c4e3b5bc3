"""CPU kernels on NumPy arrays (im2col + BLAS convolution, pooling windows)."""
