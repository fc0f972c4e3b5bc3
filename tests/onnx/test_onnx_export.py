"""ember.onnx.export: the files pass onnx.checker and match ember in onnxruntime."""

import numpy as np
import pytest

import ember
import ember.jit
import ember.onnx
from ember import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


class Block(nn.Module):
    """A tiny transformer block: LayerNorm, attention by matmul + softmax, GELU MLP."""

    def __init__(self, d=8, heads=2):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)  # (B, T, d) each
        q, k, v = (z.reshape(b, t, h, d // h).permute(0, 2, 1, 3) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1) / (d // h) ** 0.5).softmax(-1)  # (B, h, T, T)
        y = (att @ v).permute(0, 2, 1, 3).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.fc2(nn.functional.gelu(self.fc1(self.ln2(x))))


def _conv_net():
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 4, 3, padding=1),
        nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 5),
    )
    bn = net[1]
    bn.running_mean.copy_(ember.randn(6))
    bn.running_var.copy_(ember.rand(6) + 0.5)
    return net.eval()


def _mlp():
    return nn.Sequential(
        nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 8), nn.Sigmoid(), nn.Linear(8, 3)
    ).eval()


CASES = {
    "mlp": (_mlp, (10,)),
    "conv": (_conv_net, (3, 8, 8)),
    "block": (Block, (4, 8)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_export_runs_in_onnxruntime_for_several_batch_sizes(case, tmp_path):
    ember.manual_seed(0)
    build, shape = CASES[case]
    model = build().eval()
    path = tmp_path / f"{case}.onnx"
    ember.onnx.export(
        model,
        (ember.randn(2, *shape),),
        str(path),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
    )
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b in (1, 3, 5):
        x = ember.randn(b, *shape)
        with ember.no_grad():
            want = model(x).numpy()
        (got,) = sess.run(None, {"x": x.numpy()})
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_export_maps_slices_cat_embedding_and_logsoftmax(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 6)

        def forward(self, ids):
            e = self.emb(ids)  # (B, T, 6)
            z = ember.cat([e[:, 1:, :3], e[:, :-1, 3:]], dim=-1).to(ember.float64)
            return z.log_softmax(-1)

    model = Net().eval()
    path = str(tmp_path / "emb.onnx")
    ids = ember.tensor(np.random.default_rng(0).integers(0, 20, (2, 5)))
    ember.onnx.export(model, (ids,), path, dynamic_axes={"input_0": [0]})
    onnx.checker.check_model(onnx.load(path))
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for b in (1, 4):
        ids = ember.tensor(np.random.default_rng(b).integers(0, 20, (b, 5)))
        with ember.no_grad():
            want = model(ids).numpy()
        (got,) = sess.run(None, {"input_0": ids.numpy()})
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_unmapped_op_raises_a_clear_error(tmp_path):
    with pytest.raises(NotImplementedError, match="no ONNX mapping"):
        ember.onnx.export(lambda x: x.roll(1, 0), (ember.randn(3),), str(tmp_path / "c.onnx"))


def _roundtrip(fn, example, path, axes, others):
    ember.onnx.export(fn, example, path, input_names=["x"], dynamic_axes={"x": axes})
    onnx.checker.check_model(onnx.load(path))
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for x in (example[0], *others):
        (got,) = sess.run(None, {"x": x.numpy()})
        np.testing.assert_allclose(got, fn(x).numpy(), rtol=1e-5, atol=1e-5)


def test_export_maps_advanced_indexing_einsum_and_pad(tmp_path):
    idx = ember.tensor([2, 0, 1, 2])
    rows, cols = ember.tensor([0, 1, 1]), ember.tensor([2, 0, 1])
    w, v = ember.randn(3, 5), ember.randn(4, 2)

    def f(x):  # x: (B, 3, 4)
        a = x[:, idx]  # Gather on dim 1: (B, 4, 4)
        b = ember.einsum("bij,jk->bik", a, v)  # (B, 4, 2)
        c = nn.functional.pad(b, (1, 2, 0, 1), value=0.5)  # (B, 5, 5)
        d = x.permute(1, 2, 0)[rows, cols]  # GatherND: (3, B)
        return c.sum(-1) + (w[rows] * 2).sum() + d.sum(0).unsqueeze(-1)

    with ember.no_grad():
        x = ember.randn(2, 3, 4)
        _roundtrip(f, (x,), str(tmp_path / "adv.onnx"), [0], [ember.randn(5, 3, 4)])


def test_export_masks_and_arange_follow_the_sequence_length(tmp_path):
    def f(x):  # x: (B, T); a causal mask and positions built from the traced T
        t = x.shape[1]
        pos = ember.arange(t).to(ember.float32)  # (T,)
        causal = ember.tril(ember.ones(t, t, dtype=ember.bool))  # (T, T)
        keep = (x > 0).unsqueeze(1) & causal  # (B, T, T)
        return ember.where(keep, x.unsqueeze(1) + pos, ember.zeros(())).sum(-1)

    with ember.no_grad():
        others = [ember.randn(3, 9), ember.randn(1, 2)]
        _roundtrip(f, (ember.randn(2, 5),), str(tmp_path / "m.onnx"), [0, 1], others)


def test_export_of_an_optimized_trace_with_fused_nodes(tmp_path):
    ember.manual_seed(0)
    for name, build, shape in (("conv", _conv_net, (3, 8, 8)), ("mlp", _mlp, (10,))):
        model = build().eval()
        traced = ember.jit.trace(model, ember.randn(2, *shape))
        graph = ember.jit.passes.fuse_elementwise(ember.jit.passes.optimize(traced.graph))
        fast = ember.jit.TracedModule(graph)
        assert any(n.op == "FusedElementwise" for n in fast.graph.nodes)
        path = str(tmp_path / f"{name}.onnx")
        axes = {"x": {0: "batch"}, "y": {0: "batch"}}
        example = (ember.randn(2, *shape),)
        ember.onnx.export(fast, example, path, ["x"], ["y"], dynamic_axes=axes)
        onnx.checker.check_model(onnx.load(path))
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        for b in (1, 6):
            x = ember.randn(b, *shape)
            (got,) = sess.run(None, {"x": x.numpy()})
            np.testing.assert_allclose(got, fast(x).numpy(), atol=1e-4, rtol=1e-4)


def test_export_maps_silu_cumsum_flip_and_group_norm(tmp_path):
    ember.manual_seed(0)
    norm = nn.GroupNorm(2, 4).eval()
    with ember.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)

    def f(x):  # x: (B, 4, 6)
        y = nn.functional.silu(norm(x))  # Normalize (group norm's core) then SiLU
        return ember.cumsum(y, dim=2).flip(1, 2) + ember.cumsum(x, dim=1, dtype=ember.float64)

    with ember.no_grad():
        x = ember.randn(3, 4, 6) * 3
        _roundtrip(f, (x,), str(tmp_path / "m.onnx"), [0], [ember.randn(1, 4, 6)])
