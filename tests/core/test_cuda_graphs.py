"""Streams, events and CUDA graphs on a GPU: work on a side stream gives the same numbers,
events time it, and a captured forward pass or training step replays to the values eager
execution gives (test_cuda_graphs_control.py checks the same API's control flow on the CPU)."""

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F

pytestmark = pytest.mark.gpu


def _side_warmup(fn):
    """Run ``fn`` on a side stream and wait for it, as PyTorch advises before a capture."""
    side = ember.cuda.Stream()
    side.wait_stream(ember.cuda.current_stream())
    with ember.cuda.stream(side):
        out = fn()
    ember.cuda.current_stream().wait_stream(side)
    return out


def test_side_stream_and_event_timing():
    r = np.random.default_rng(0)
    an = r.standard_normal((256, 256)).astype(np.float32)
    a = ember.tensor(an, device="cuda")
    start, end = ember.cuda.Event(enable_timing=True), ember.cuda.Event(enable_timing=True)
    side = ember.cuda.Stream()
    side.wait_stream(ember.cuda.current_stream())
    with ember.cuda.stream(side):
        assert ember.cuda.current_stream() == side
        start.record()
        b = F.relu(a @ a) + 1.0
        end.record()
    ember.cuda.current_stream().wait_stream(side)
    end.synchronize()
    assert end.query() and start.elapsed_time(end) >= 0.0
    want = np.maximum(an.astype(np.float64) @ an, 0) + 1.0
    np.testing.assert_allclose(b.cpu().numpy(), want, rtol=1e-4, atol=1e-3)


def test_captured_forward_replays_with_new_inputs():
    """Matrix product (cuBLAS, called directly while capturing), bias, ReLU, a bfloat16-free
    scalar product: replays after copying new inputs in match eager results."""
    r = np.random.default_rng(1)
    w = ember.tensor(r.standard_normal((64, 32)).astype(np.float32), device="cuda")
    b = ember.tensor(r.standard_normal(32).astype(np.float32), device="cuda")
    static_x = ember.zeros(16, 64, device="cuda")

    def f(x):
        return F.relu(x @ w + b) * 0.5

    with ember.no_grad():
        _side_warmup(lambda: f(static_x))
        g = ember.cuda.CUDAGraph()
        with ember.cuda.graph(g):
            static_y = f(static_x)
        for _ in range(3):
            new = ember.tensor(r.standard_normal((16, 64)).astype(np.float32), device="cuda")
            static_x.copy_(new)
            g.replay()
            np.testing.assert_allclose(static_y.cpu().numpy(), f(new).cpu().numpy(), rtol=1e-5)
    assert g.pool().used_bytes() > 0


def _mlp():
    ember.manual_seed(3)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10)).to("cuda")


def test_captured_training_step_replays_like_eager_steps():
    """A whole SGD-with-momentum step (forward, cross entropy, backward, multi-tensor update)
    captured once and replayed three times gives the parameters three eager steps give."""
    r = np.random.default_rng(2)
    x = ember.tensor(r.standard_normal((8, 32)).astype(np.float32), device="cuda")
    y = ember.tensor(r.integers(0, 10, 8), device="cuda")
    eager, graphed = _mlp(), _mlp()
    opts = {id(m): ember.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in (eager, graphed)}

    def step(model):
        opt = opts[id(model)]
        opt.zero_grad(set_to_none=False)  # gradients keep their memory, as a graph needs
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(2):  # warm-up: gradients, momentum buffers and the pointer table exist
        step(eager)
        _side_warmup(lambda: step(graphed))
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g):
        static_loss = step(graphed)
    for _ in range(3):
        g.replay()
        loss = step(eager)
        np.testing.assert_allclose(static_loss.item(), loss.item(), rtol=1e-5)
    for pe, pg in zip(eager.parameters(), graphed.parameters()):
        np.testing.assert_allclose(pg.cpu().numpy(), pe.cpu().numpy(), rtol=1e-5, atol=1e-6)


def test_optimizer_step_captured_before_its_table_exists_says_what_to_do():
    model = _mlp()
    opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = ember.randn(4, 32, device="cuda")
    F.cross_entropy(model(x), ember.zeros(4, dtype=ember.int64, device="cuda")).backward()
    with pytest.raises(RuntimeError, match="set_to_none=False"):
        with ember.cuda.graph(ember.cuda.CUDAGraph()):
            opt.step()


def test_bfloat16_scalars_are_uploaded_once_and_keep_their_sign():
    from ember.ops import elementwise

    x = ember.ones(8, device="cuda", dtype=ember.bfloat16)
    elementwise._SCALARS.clear()
    a, b = x * 0.5, x * 0.5
    assert len(elementwise._SCALARS) == 1
    np.testing.assert_array_equal(a.float().cpu().numpy(), b.float().cpu().numpy())
    pos, neg = (x * 0.0).float().cpu().numpy(), (x * -0.0).float().cpu().numpy()
    assert not np.signbit(pos).any() and np.signbit(neg).all()
    assert len(elementwise._SCALARS) == 3
