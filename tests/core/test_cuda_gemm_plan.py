"""The direct cuBLAS planner (kernels/cuda/gemm.py) on the CPU: each plan is executed by a
NumPy emulation of cuBLAS's column-major strided-batched GEMM over the operands' raw memory,
and must give ``a @ b``. Checks layout logic without a GPU; the GPU tests run the real call."""

import numpy as np
import pytest

from ember.kernels.cuda.gemm import plan

BUF = np.random.default_rng(0).standard_normal(60_000)
OFF_B = 30_000


def _contig(shape):
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= n
    return tuple(reversed(strides))


def _view(off, shape, strides):
    return np.lib.stride_tricks.as_strided(BUF[off:], shape, [s * 8 for s in strides])


def _stored(base, op, ld, rows, cols):
    """op(X) as (rows, cols) for X stored column-major at BUF[base:] with leading dim ld."""
    r = np.arange(rows)[:, None]
    c = np.arange(cols)[None, :]
    return BUF[base + r + c * ld] if op == 0 else BUF[base + c + r * ld]


def _emulate(p, off_a, off_b):
    out = []
    for i in range(p["count"]):
        first = _stored(off_b + i * p["stride_first"], p["op_first"], p["ld_first"], p["m"], p["k"])
        second = _stored(
            off_a + i * p["stride_second"], p["op_second"], p["ld_second"], p["k"], p["n"]
        )
        out.append((first @ second).T)  # column-major (m, n) result = row-major C
    return np.stack(out).reshape(p["out_shape"])


def _cases():
    for m, k, n in [(3, 4, 5), (1, 4, 5), (3, 1, 5), (3, 4, 1), (7, 7, 7)]:
        yield (m, k), _contig((m, k)), (k, n), _contig((k, n))
        yield (m, k), _contig((m, k)), (k, n), _contig((n, k))[::-1]  # b is a transposed view
        yield (m, k), _contig((k, m))[::-1], (k, n), _contig((k, n))  # a is a transposed view
        yield (2, 3, m, k), _contig((2, 3, m, k)), (k, n), _contig((k, n))  # shared b
        yield (6, m, k), _contig((6, m, k)), (6, k, n), _contig((6, k, n))
        s = _contig((6, n, k))
        yield (6, m, k), _contig((6, m, k)), (6, k, n), (s[0], s[2], s[1])  # k.mT per batch
        yield (m, k), (k + 3, 1), (k, n), _contig((k, n))  # padded rows (ld > k)


@pytest.mark.parametrize("case", list(_cases()), ids=str)
def test_plan_computes_the_product(case):
    ash, ast, bsh, bst = case
    p = plan(ash, ast, bsh, bst)
    assert p is not None
    want = _view(0, ash, ast) @ _view(OFF_B, bsh, bst)
    np.testing.assert_allclose(_emulate(p, 0, OFF_B), want, rtol=1e-12, atol=1e-12)


def test_heads_split_from_a_sequence_buffer_plan_per_batch_index():
    """q (B, H, S, D) viewed from a (B, S, H, D) buffer: its (B, H) batch has no single
    stride, so the whole product is declined, and each batch index plans on its own."""
    b, h, s, d = 2, 3, 4, 5
    qst, kst = (s * h * d, d, h * d, 1), (s * h * d, d, 1, h * d)
    assert plan((b, h, s, d), qst, (b, h, d, s), kst) is None
    p = plan((h, s, d), qst[1:], (h, d, s), kst[1:])
    got = np.stack([_emulate(p, i * qst[0], OFF_B + i * kst[0]) for i in range(b)])
    want = _view(0, (b, h, s, d), qst) @ _view(OFF_B, (b, h, d, s), kst)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_plan_declines_what_cublas_cannot_take():
    assert plan((3, 4), (8, 2), (4, 5), _contig((4, 5))) is None  # no unit stride in a
    assert plan((2, 3, 4), _contig((2, 3, 4)), (3, 4, 5), _contig((3, 4, 5))) is None  # batches
    assert plan((3, 4), _contig((3, 4)), (5, 6), _contig((5, 6))) is None  # inner dims
    assert plan((4,), (1,), (4, 5), _contig((4, 5))) is None  # 1-D: CuPy's matmul handles it


class _Recorder:
    """Stands in for cuBLAS (CuPy's wrapper, or the C library through ctypes)."""

    def __init__(self, refuse=False, status=0):
        self.calls, self.refuse, self.status = [], refuse, status

    def setPointerMode(self, handle, mode):
        self.calls.append(("mode", handle, mode))

    def gemmStridedBatchedEx(self, *args):
        if self.refuse:  # what CuPy raises whenever the current stream is capturing
            raise NotImplementedError("calling cuBLAS API during stream capture is unsupported")
        self.calls.append(("cupy gemm", args))

    def cublasSetStream_v2(self, handle, stream):
        self.calls.append(("set stream", handle, stream))
        return 0

    def cublasGemmStridedBatchedEx(self, *args):
        self.calls.append(("c gemm", args))
        return self.status


def _fake_call(monkeypatch, wrapper, clib, capturing=True):
    """gemm._call on stand-in arrays with a fake ``cupy`` (handle 7, current stream 99)."""
    import sys
    import types

    from ember.kernels.cuda import gemm

    cuda = types.SimpleNamespace(
        device=types.SimpleNamespace(get_cublas_handle=lambda: 7),
        get_current_stream=lambda: types.SimpleNamespace(ptr=99, is_capturing=lambda: capturing),
    )
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setattr(gemm, "_cublas", lambda: wrapper)
    monkeypatch.setitem(gemm._C, "lib", clib)

    def arr(ptr):
        return types.SimpleNamespace(
            dtype=np.dtype(np.float32), data=types.SimpleNamespace(ptr=ptr)
        )

    p = plan((2, 3), (3, 1), (3, 4), (4, 1))
    gemm._call(arr(1000), arr(2000), arr(3000), p)
    return p


def test_gemm_outside_capture_goes_through_cupy_only(monkeypatch):
    wrapper, clib = _Recorder(), _Recorder()
    p = _fake_call(monkeypatch, wrapper, clib)
    assert clib.calls == []
    (_, args) = wrapper.calls[-1]
    # C^T = B^T A^T: b's pointer first, then a's, then the output
    assert args[0] == 7 and args[3:6] == (p["m"], p["n"], p["k"]) == (4, 2, 3)
    assert (args[7], args[11], args[16]) == (2000, 1000, 3000)


def test_gemm_while_capturing_calls_cublas_itself_on_the_current_stream(monkeypatch):
    """CuPy's wrapper raises during stream capture; the same call then goes to cuBLAS's C
    entry point with the handle set to the capturing stream."""
    eager = _Recorder()
    _fake_call(monkeypatch, eager, _Recorder())  # the same call outside capture
    clib = _Recorder()
    _fake_call(monkeypatch, _Recorder(refuse=True), clib)
    assert clib.calls == [("set stream", 7, 99), ("c gemm", eager.calls[-1][1])]


def test_gemm_refused_outside_capture_is_not_rerouted(monkeypatch):
    clib = _Recorder()
    with pytest.raises(NotImplementedError):
        _fake_call(monkeypatch, _Recorder(refuse=True), clib, capturing=False)
    assert clib.calls == []


def test_gemm_while_capturing_reports_a_cublas_failure(monkeypatch):
    with pytest.raises(RuntimeError, match="matmul: cuBLAS returned status 13"):
        _fake_call(monkeypatch, _Recorder(refuse=True), _Recorder(status=13))
