"""Optimizer steps over many CuPy parameters in one launch ("multi-tensor", as PyTorch's
foreach/fused paths): a table of pointers, one row per parameter, and a block-to-parameter map
built once per set of buffers and kept while those buffers live. Each block updates one chunk
of one parameter, reading p, g and the moments once and writing them once."""

from __future__ import annotations

import numpy as np

from .compile import as_layout, function, storage_order, usable_dense

_CHUNK = 4096  # elements per block

_SOURCE = r"""
extern "C" __global__ void adam_mt(const unsigned long long* __restrict__ ptrs,
    const long long* __restrict__ sizes, const int* __restrict__ block_tensor,
    const long long* __restrict__ block_start, int k, double lr, double b1, double b2,
    double eps, double wd, double bc1, double bc2_sqrt, int decoupled, int maximize) {
  int t = block_tensor[blockIdx.x];
  long long s0 = block_start[blockIdx.x], s1 = s0 + CHUNK, n = sizes[t];
  if (s1 > n) s1 = n;
  T* p = (T*)ptrs[t];
  const T* g = (const T*)ptrs[k + t];
  T* m = (T*)ptrs[2 * k + t];
  T* v = (T*)ptrs[3 * k + t];
  A step = (A)(lr / bc1), keep = (A)(1.0 - lr * wd);
  for (long long i = s0 + threadIdx.x; i < s1; i += blockDim.x) {
    A pv = LD(p[i]), gv = LD(g[i]);
    if (maximize) gv = -gv;
    if (decoupled) pv *= keep; else gv += (A)wd * pv;
    A mv = LD(m[i]), vv = LD(v[i]);
    mv += (A)(1.0 - b1) * (gv - mv);
    vv = (A)b2 * vv + (A)(1.0 - b2) * gv * gv;
    pv -= step * mv / (sqrt(vv) / (A)bc2_sqrt + (A)eps);
    p[i] = ST(pv); m[i] = ST(mv); v[i] = ST(vv);
  }
}

extern "C" __global__ void sgd_mt(const unsigned long long* __restrict__ ptrs,
    const long long* __restrict__ sizes, const int* __restrict__ block_tensor,
    const long long* __restrict__ block_start, int k, double lr, double wd, double momentum,
    double dampening, int nesterov, int maximize, int first) {
  int t = block_tensor[blockIdx.x];
  long long s0 = block_start[blockIdx.x], s1 = s0 + CHUNK, n = sizes[t];
  if (s1 > n) s1 = n;
  T* p = (T*)ptrs[t];
  const T* g = (const T*)ptrs[k + t];
  T* buf = (T*)ptrs[2 * k + t];
  for (long long i = s0 + threadIdx.x; i < s1; i += blockDim.x) {
    A pv = LD(p[i]), d = LD(g[i]);
    if (maximize) d = -d;
    d += (A)wd * pv;
    if (momentum != 0.0) {
      A b = first ? d : (A)momentum * LD(buf[i]) + (A)(1.0 - dampening) * d;
      buf[i] = ST(b);
      d = nesterov ? d + (A)momentum * b : b;
    }
    p[i] = ST(pv - (A)lr * d);
  }
}
"""

_MAPS: dict = {}  # tuple of sizes -> (sizes, block map, block starts, block count) on device


_SOURCE = f"#define CHUNK {_CHUNK}\n" + _SOURCE


def _fn(name, dtype):
    return function("optim", _SOURCE, dtype, name)


_PTRS: dict = {}  # (device, pointer values) -> that pointer table on the device
_PTRS_KEPT = 8


def _pointers(groups):
    """The device array of the groups' addresses, cached by the address values (on the
    device): a table holds numbers, not references, so it stays right for whatever arrays
    live at those addresses. Gradients zeroed in place, or handed the same addresses again by
    CuPy's pool, then need no upload per step (an upload inside a captured CUDA graph would
    replay a copy from host memory that may since hold something else)."""

    first = groups[0][0]
    key = (getattr(first.device, "id", 0), tuple([a.data.ptr for grp in groups for a in grp]))
    ptrs = _PTRS.get(key)
    if ptrs is None:
        if len(_PTRS) >= _PTRS_KEPT:
            del _PTRS[next(iter(_PTRS))]  # the oldest
        ptrs = _PTRS[key] = _upload(np.array(key[1], np.uint64))
    return ptrs


def _upload(host):
    """``host`` copied to the GPU; refused with an error that says what to do while the
    current stream captures a CUDA graph (a copy from host memory has no place in one)."""
    import cupy

    if cupy.cuda.get_current_stream().is_capturing():
        raise RuntimeError(
            "optimizer step: captured in a CUDA graph before its parameter table was on the "
            "GPU; run one step before capturing, with gradients kept in place "
            "(zero_grad(set_to_none=False)), so the captured step finds it"
        )
    return cupy.asarray(host)


def _table(groups):
    """The pointer table of ``groups`` (lists of same-length arrays: params, grads, states)
    and the block map of their sizes, both cached (the map by the sizes, the table by the
    addresses)."""

    sizes = tuple(a.size for a in groups[0])
    hit = _MAPS.get(sizes)
    if hit is None:
        n = np.array(sizes, np.int64)
        counts = -(-n // _CHUNK)
        block_tensor = np.repeat(np.arange(len(sizes), dtype=np.int32), counts)
        block_start = np.concatenate([np.arange(c, dtype=np.int64) * _CHUNK for c in counts])
        hit = _MAPS[sizes] = (
            _upload(n),
            _upload(block_tensor),
            _upload(block_start),
            int(block_tensor.size),
        )
    return (_pointers(groups), *hit)


def multi_usable(*groups) -> bool:
    """True when the groups (params, grads, states: lists of one length) hold non-empty CuPy
    arrays of one float dtype, each stored densely, and the arrays at one index share one
    layout (C-contiguous or channels last): the kernels read each as a flat vector."""
    lead = groups[0]
    if not lead or not usable_dense(lead[0]):
        return False
    dt = lead[0].dtype
    for i, p in enumerate(lead):
        order = storage_order(p) if type(p).__module__.startswith("cupy") else None
        if order is None:
            return False
        shape, strides = p.shape, p.strides
        for grp in groups:  # one dtype: equal strides are one layout (size-1 dims may differ)
            a = grp[i]
            if not type(a).__module__.startswith("cupy") or a.dtype != dt or not a.size:
                return False
            if a.shape != shape or (a.strides != strides and storage_order(a) != order):
                return False
    return True


def in_layouts(grads, params):
    """The gradients, each stored in its parameter's layout (a copy only where it is not)."""
    return [as_layout(g, p) if g.shape == p.shape else g for g, p in zip(grads, params)]


def adam(params, grads, ms, vs, *, lr, beta1, beta2, eps, weight_decay, step, decoupled, maximize):
    """One Adam/AdamW step (no amsgrad) over lists of same-dtype CuPy arrays, all at ``step``."""
    ptrs, sizes, bt, bs, blocks = _table([params, grads, ms, vs])
    _fn("adam_mt", params[0].dtype)(
        (blocks,),
        (256,),
        (
            ptrs,
            sizes,
            bt,
            bs,
            np.int32(len(params)),
            np.float64(lr),
            np.float64(beta1),
            np.float64(beta2),
            np.float64(eps),
            np.float64(weight_decay),
            np.float64(1 - beta1**step),
            np.float64((1 - beta2**step) ** 0.5),
            np.int32(bool(decoupled)),
            np.int32(bool(maximize)),
        ),
    )


def sgd(params, grads, bufs, *, lr, weight_decay, momentum, dampening, nesterov, maximize, first):
    """One SGD step over lists of same-dtype CuPy arrays; ``bufs`` are the momentum buffers
    (ignored, and may repeat ``params``, when ``momentum == 0``)."""
    ptrs, sizes, bt, bs, blocks = _table([params, grads, bufs])
    _fn("sgd_mt", params[0].dtype)(
        (blocks,),
        (256,),
        (
            ptrs,
            sizes,
            bt,
            bs,
            np.int32(len(params)),
            np.float64(lr),
            np.float64(weight_decay),
            np.float64(momentum),
            np.float64(dampening),
            np.int32(bool(nesterov)),
            np.int32(bool(maximize)),
            np.int32(bool(first)),
        ),
    )


__all__ = ["adam", "sgd", "multi_usable", "in_layouts"]
