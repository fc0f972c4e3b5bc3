"""One BLAS thread for the RL tests: their matrices are tiny, and on a busy 2-core machine
multi-threaded BLAS spins and runs the agents about ten times slower. Must run before NumPy is
imported, which is why it is an environment variable set here rather than a call."""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
