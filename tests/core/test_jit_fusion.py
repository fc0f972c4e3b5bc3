"""ember.jit.passes.fuse_elementwise: fused graphs give bitwise the unfused graph's outputs."""

import numpy as np
import pytest

import ember
import ember.jit
from ember import nn
from ember.jit import TracedModule, fusion, passes
from ember.jit.fusion import FUSED
from ember.kernels.cpu.parallel import run_rows


class GeluMLP(nn.Module):
    """Linear -> GELU -> Linear -> tanh-GELU, a scaled residual and a SiLU gate."""

    def __init__(self, d=32, hidden=256):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x):
        h = nn.functional.gelu(self.fc1(x))  # (B, hidden)
        y = self.fc2(h) * 0.5 + x  # one group: Mul, Add, GELU, SiLU, Mul
        return nn.functional.gelu(y, approximate="tanh") * nn.functional.silu(x)


class BertBlock(nn.Module):
    """Post-LN BERT layer: attention with a scale and an additive mask, GELU MLP, residuals."""

    def __init__(self, d=32, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).split(d, dim=-1)  # (B, T, d) each
        q, k, v = (z.reshape(b, t, h, d // h).permute(0, 2, 1, 3) for z in (q, k, v))
        bias = (1.0 - (x[:, :, 0] > -2.0).to(x.dtype)) * -1e4  # (B, T): a padding mask
        scores = (q @ k.transpose(-2, -1)) * (d // h) ** -0.5 + bias[:, None, None, :]
        y = (scores.softmax(-1) @ v).permute(0, 2, 1, 3).reshape(b, t, d)
        x = self.ln1(x + self.proj(y))
        return self.ln2(x + self.fc2(nn.functional.gelu(self.fc1(x))))


def _conv_net():
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    for bn in (net[1], net[4]):
        bn.running_mean.copy_(ember.randn(16))
        bn.running_var.copy_(ember.rand(16) + 0.5)
    return net.eval()


# name: (build, example shape without the batch, fused groups, sizes: batch sizes to run)
MODELS = {
    "gelu_mlp": (GeluMLP, (32,), 1, (1, 5, 8200)),
    "conv_bn_relu": (_conv_net, (3, 32, 32), 2, (1, 3, 17)),
    "bert_block": (BertBlock, (16, 32), 2, (1, 2, 300)),
}


def _graphs(name, dtype):
    ember.manual_seed(0)
    build, shape, _, _ = MODELS[name]
    model = build().to(dtype).eval()
    traced = ember.jit.trace(model, ember.randn(2, *shape, dtype=dtype))
    # every group fused (optimize_for_inference would skip the cheap-only ones)
    fused = passes.fuse_elementwise(passes.optimize(traced.graph))
    return traced, ember.jit.TracedModule(fused), shape


def _ops(graph):
    return [n.op for n in graph.nodes]


@pytest.mark.parametrize("dtype", [ember.float32, ember.float64])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_fused_graph_is_bitwise_the_unfused_graph(name, dtype, monkeypatch):
    blocked = []
    monkeypatch.setattr(fusion, "run_rows", lambda *a: blocked.append(1) or run_rows(*a))
    traced, fast, shape = _graphs(name, dtype)
    plain = TracedModule(passes.optimize(traced.graph))  # every pass but fusion
    for b in MODELS[name][3]:
        x = ember.randn(b, *shape, dtype=dtype)
        want = plain(x).numpy()
        got = fast(x).numpy()
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got, traced(x).numpy(), rtol=1e-4, atol=1e-4)
    assert blocked  # the largest batch ran in blocks


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fusion_replaces_each_group_by_one_node(name):
    traced, fast, _ = _graphs(name, ember.float32)
    plain = passes.optimize(traced.graph)
    fused = [n for n in fast.graph.nodes if n.op == FUSED]
    assert len(fused) == MODELS[name][2]
    inside = sum(len(n.params["steps"]) for n in fused)
    assert len(fast.graph.nodes) == len(plain.nodes) - inside + len(fused)
    assert sorted(_ops(passes.unfuse(fast.graph))) == sorted(_ops(plain))


def test_conv_bias_and_relu_fuse_after_folding_batchnorm():
    _, fast, _ = _graphs("conv_bn_relu", ember.float32)
    steps = [[s["op"] for s in n.params["steps"]] for n in fast.graph.nodes if n.op == FUSED]
    assert steps == [["Add", "Relu"], ["Add", "Relu"]]


def test_a_value_read_outside_the_group_is_not_fused_away():
    def f(x):
        a = x.exp()  # read by the chain and by the sum
        return (a * 2 + 1).relu() * a.sum(-1, keepdim=True)

    g = ember.jit.trace(f, ember.randn(4, 3)).graph
    out = passes.fuse_elementwise(g)
    assert _ops(out) == ["Exp", "Sum", FUSED]
    assert [s["op"] for s in out.nodes[-1].params["steps"]] == ["Mul", "Add", "Relu", "Mul"]
    for b in (1, 100000):
        x = ember.randn(b, 3)
        np.testing.assert_array_equal(TracedModule(out)(x).numpy(), TracedModule(g)(x).numpy())


def test_graph_outputs_and_single_cheap_nodes_stay():
    g = ember.jit.trace(lambda x: (x + 1, (x + 1).relu(), x.tanh()), ember.randn(2, 3)).graph
    assert _ops(passes.fuse_elementwise(passes.cse(g))) == ["Add", "Relu", "Tanh"]


def test_broadcast_operands_where_casts_and_compare_fuse():
    ember.manual_seed(1)
    per_channel, per_row = ember.randn(1, 8, 1, 1), ember.randn(1, 1, 1, 64)

    def f(x, m):  # x: (B, 8, 64, 64); m: (B, 1, 64, 1)
        y = (x * per_channel + per_row).clamp(-1.0, 2.0)
        keep = (m > 0) & (y < 1.5)
        z = ember.where(keep, y.sigmoid(), -y.abs()).to(ember.float64)
        return (z.sqrt() + 3).to(ember.float32)

    x, m = ember.randn(3, 8, 64, 64), ember.randn(3, 1, 64, 1)
    g = ember.jit.trace(f, (x, m)).graph
    out = passes.fuse_elementwise(g)
    assert _ops(out) == [FUSED]
    for b in (1, 2, 9):
        x, m = ember.randn(b, 8, 64, 64), ember.randn(b, 1, 64, 1)
        want = TracedModule(g)(x, m).numpy()
        np.testing.assert_array_equal(TracedModule(out)(x, m).numpy(), want)


def test_non_contiguous_inputs_and_other_dtypes_fall_back_to_whole_arrays():
    def f(x):
        return (x.permute(0, 2, 1) * 3 - 1).tanh()

    g = ember.jit.trace(f, ember.randn(2, 400, 20)).graph
    out = passes.fuse_elementwise(g)
    assert _ops(out) == ["Permute", FUSED]
    for x in (ember.randn(30, 400, 20), ember.randn(30, 400, 20, dtype=ember.float64)):
        want = TracedModule(g)(x).numpy()
        got = TracedModule(out)(x).numpy()
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_gradients_flow_through_a_fused_node():
    g = ember.jit.trace(lambda x: (x * 2 + 1).sigmoid() * x, ember.randn(3, 4)).graph
    x0 = ember.randn(3, 4).numpy()
    grads = []
    for graph in (g, passes.fuse_elementwise(g)):
        x = ember.tensor(x0, requires_grad=True)
        TracedModule(graph)(x).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(grads[0], grads[1])


def test_fused_trace_saves_and_loads(tmp_path):
    traced, fast, shape = _graphs("bert_block", ember.float32)
    fast.save(tmp_path / "fused.ejit")
    loaded = ember.jit.load(tmp_path / "fused.ejit")
    assert _ops(loaded.graph) == _ops(fast.graph)
    for b in (1, 300):
        x = ember.randn(b, *shape)
        np.testing.assert_array_equal(loaded(x).numpy(), fast(x).numpy())


def test_the_gpu_seam_declines_numpy_arrays():
    steps = passes.fuse_elementwise(ember.jit.trace(lambda x: x * 2 + 1, ember.randn(2)).graph)
    params = steps.nodes[0].params
    assert fusion.generated_kernel(params["steps"], [np.ones(2, np.float32)]) is None


def test_skip_cheap_leaves_bias_relu_groups_and_keeps_transcendental_ones():
    def f(x):
        return (x * 2 + 1).relu(), (x + 1).sigmoid() * 3

    g = ember.jit.trace(f, ember.randn(4, 3)).graph
    everything = passes.fuse_elementwise(g)
    worth = passes.fuse_elementwise(g, skip_cheap=True)
    assert [n.op for n in everything.nodes].count("FusedElementwise") == 2
    fused = [n for n in worth.nodes if n.op == "FusedElementwise"]
    assert [[s["op"] for s in n.params["steps"]] for n in fused] == [["Add", "Sigmoid", "Mul"]]
    x = ember.randn(7, 3)
    for a, b in zip(ember.jit.TracedModule(worth)(x), ember.jit.TracedModule(g)(x)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
