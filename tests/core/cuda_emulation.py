"""Compiling ember's CUDA C kernels as C++ for the CPU emulation tests
(test_cuda_kernels_emulated.py: thread by thread; test_cuda_kernels_cooperative.py: one OS
thread per CUDA thread). Each test file brings its own shim for CUDA's built-ins."""

import ctypes
import subprocess

from ember.kernels.cuda import compile as cc

I64, I32, F64 = ctypes.c_longlong, ctypes.c_int, ctypes.c_double


def builder(root, shim: str, launch: str):
    """``get(source, dtype)``: the kernels of ``source`` for ``dtype`` (a prelude key) as a
    ctypes library, compiled once into ``root`` between ``shim`` and ``launch``."""
    cache = {}

    def get(source, dtype):
        key = (id(source), dtype)
        if key not in cache:
            code = shim + cc._PRELUDE[dtype] + cc._BLOCK_REDUCE + source + launch
            cpp = root / f"k{len(cache)}.cpp"
            cpp.write_text(code.replace('extern "C" __global__ void', 'extern "C" void'))
            so = cpp.with_suffix(".so")
            cmd = ["g++", "-O1", "-shared", "-fPIC", "-pthread", "-o", str(so), str(cpp)]
            subprocess.run(cmd, check=True)
            cache[key] = ctypes.CDLL(str(so))
        return cache[key]

    return get
