"""ember's CUDA code on the CPU, for the tests that run without a GPU: the kernels compiled
as C++ (test_cuda_kernels_emulated.py runs them thread by thread with its own shim;
test_cuda_kernels_cooperative.py with one OS thread per CUDA thread, the shim below), and a
stand-in ``cupy`` module over NumPy under which the kernel wrappers in kernels/cuda run
whole (test_cuda_wrappers_emulated.py)."""

import ctypes
import subprocess
import threading
import types

import numpy as np

from ember.kernels.cuda import compile as cc

I64, I32, F64 = ctypes.c_longlong, ctypes.c_int, ctypes.c_double

# The cooperative emulation: one OS thread per CUDA thread, __syncthreads a barrier over the
# block, __shfl_xor_sync an exchange through one slot per thread between two warp barriers.
COOP_SHIM = r"""
#include <cmath>
#include <cstring>
#include <mutex>
#include <condition_variable>
using namespace std;
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static
struct dim3_ { unsigned int x, y, z; };
static dim3_ blockIdx_g, blockDim, gridDim;
thread_local dim3_ threadIdx;
#define blockIdx blockIdx_g
struct Barrier {
  mutex m; condition_variable cv; int count = 0, need = 1; long gen = 0;
  void wait() {
    unique_lock<mutex> l(m);
    long g = gen;
    if (++count == need) { count = 0; ++gen; cv.notify_all(); }
    else cv.wait(l, [&] { return gen != g; });
  }
};
static Barrier block_bar, warp_bar[32];
static double slot[1024];
inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned int i) { float f; memcpy(&f, &i, 4); return f; }
inline unsigned int __float_as_uint(float f) { unsigned int i; memcpy(&i, &f, 4); return i; }
struct ushort4 { unsigned short x, y, z, w; };
struct float4 { float x, y, z, w; };
inline ushort4 make_ushort4(unsigned short a, unsigned short b, unsigned short c,
                            unsigned short d) { return {a, b, c, d}; }
inline float4 make_float4(float a, float b, float c, float d) { return {a, b, c, d}; }
inline int flat_tid() { return threadIdx.x + threadIdx.y * blockDim.x; }
inline void __syncthreads() { block_bar.wait(); }
template <typename V> V __shfl_xor_sync(unsigned, V v, int o) {
  int t = flat_tid(), w = t >> 5;
  slot[t] = (double)v;
  warp_bar[w].wait();
  V r = (V)slot[(t & ~31) | ((t & 31) ^ o)];
  warp_bar[w].wait();
  return r;
}
"""
COOP_LAUNCH = r"""
extern "C" void set_block(unsigned bx, unsigned by, unsigned tx, unsigned ty, unsigned gx,
                          unsigned gy) {
  blockIdx_g = {bx, by, 0}; blockDim = {tx, ty, 1}; gridDim = {gx, gy, 1};
  block_bar.need = tx * ty;
  for (int w = 0; w < 32; ++w) warp_bar[w].need = 32;
}
extern "C" void set_thread(unsigned tx, unsigned ty) { threadIdx = {tx, ty, 0}; }
"""


def compile_code(cpp, code: str):
    """``code`` (CUDA C with a shim in front) compiled as C++ at ``cpp`` (a path ending in
    .cpp), loaded with ctypes."""
    cpp.write_text(code.replace('extern "C" __global__ void', 'extern "C" void'))
    so = cpp.with_suffix(".so")
    cmd = ["g++", "-O1", "-shared", "-fPIC", "-pthread", "-o", str(so), str(cpp)]
    subprocess.run(cmd, check=True)
    return ctypes.CDLL(str(so))


def builder(root, shim: str, launch: str):
    """``get(source, dtype)``: the kernels of ``source`` for ``dtype`` (a prelude key) as a
    ctypes library, compiled once into ``root`` between ``shim`` and ``launch``."""
    cache = {}

    def get(source, dtype):
        key = (id(source), dtype)
        if key not in cache:
            code = shim + cc._PRELUDE[dtype] + cc._BLOCK_REDUCE + source + launch
            cache[key] = compile_code(root / f"k{len(cache)}.cpp", code)
        return cache[key]

    return get


def run_blocks(lib, name, grid, block, args):
    """The blocks in turn, run by one OS thread per CUDA thread (ctypes lets go of the GIL
    during the call, so the threads meet at the kernel's barriers); a Python barrier between
    blocks, whose action moves the shared block index on."""
    gx, gy = (*grid, 1)[:2] if isinstance(grid, tuple) else (grid, 1)
    bx, by = (*block, 1)[:2] if isinstance(block, tuple) else (block, 1)
    assert (bx * by) % 32 == 0, "whole warps only"
    fn = getattr(lib, name)
    blocks = iter([(i, j) for j in range(gy) for i in range(gx)])

    def next_block():
        i, j = next(blocks, (0, 0))
        lib.set_block(i, j, bx, by, gx, gy)

    between = threading.Barrier(bx * by, action=next_block)

    def thread(tx, ty):
        lib.set_thread(tx, ty)
        for _ in range(gx * gy):
            between.wait()
            fn(*args)

    threads = [threading.Thread(target=thread, args=(x, y)) for y in range(by) for x in range(bx)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class FakeCupyArray(np.ndarray):
    """A NumPy array that passes ember's "is this CuPy?" checks and has CuPy's
    ``.data.ptr``; views of it stay this type."""

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.ctypes.data)


FakeCupyArray.__module__ = "cupy._core.core"


def _device(a):
    return a.view(FakeCupyArray)


def _argument(a):
    """A kernel argument as ctypes passes it: arrays and np.uint64 addresses as pointers."""
    if isinstance(a, np.ndarray):
        return ctypes.c_void_p(a.ctypes.data)
    if isinstance(a, np.uint64):
        return ctypes.c_void_p(int(a))
    for kind, ct in ((np.int32, ctypes.c_int), (np.int64, ctypes.c_longlong)):
        if isinstance(a, kind):
            return ct(int(a))
    if isinstance(a, np.float64):
        return ctypes.c_double(float(a))
    if isinstance(a, np.float32):
        return ctypes.c_float(float(a))
    raise TypeError(f"no kernel argument conversion for {type(a).__name__}")


def fake_cupy(root, compiled=None):
    """A stand-in ``cupy`` module over NumPy, enough for ember's CUDA kernel wrappers
    (kernels/cuda): allocation, ``RawModule`` (the kernel source compiled as C++ under the
    cooperative shim, into ``root``; ``compiled`` caches the libraries by source) and
    launches run block by block with one OS thread per CUDA thread."""
    mod = types.ModuleType("cupy")
    mod.uint64, mod.uint8 = np.uint64, np.uint8
    mod.empty = lambda shape, dtype=float: _device(np.empty(shape, dtype))
    mod.zeros = lambda shape, dtype=float: _device(np.zeros(shape, dtype))
    mod.empty_like = lambda a, dtype=None: _device(np.empty_like(a, dtype=dtype))
    mod.asarray = lambda a, dtype=None: _device(np.asarray(a, dtype))
    mod.ndarray = lambda shape, dtype, mem, strides: _device(
        np.ndarray(shape, dtype, buffer=mem, strides=strides)
    )
    stream = types.SimpleNamespace(ptr=0, is_capturing=lambda: False)  # never capturing
    mod.cuda = types.SimpleNamespace(
        alloc=lambda n: bytearray(max(n, 1)), get_current_stream=lambda: stream
    )
    compiled = {} if compiled is None else compiled  # code -> library, reusable across tests

    class RawModule:
        def __init__(self, code, options=()):
            lib = compiled.get(code)
            if lib is None:
                cpp = root / f"m{len(compiled)}.cpp"
                lib = compiled[code] = compile_code(cpp, COOP_SHIM + code + COOP_LAUNCH)
            self.lib = lib

        def get_function(self, name):
            def launch(grid, block, args):
                run_blocks(self.lib, name, tuple(grid), tuple(block), [_argument(a) for a in args])

            return launch

    mod.RawModule = RawModule
    return mod
