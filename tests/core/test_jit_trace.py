"""ember.jit.trace: recording, replay, dynamic batch, warnings, save/load elsewhere."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import ember
import ember.jit
from ember import nn


def _net():
    ember.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5)
    ).eval()


def _close(a, b):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-5)


def test_graph_names_params_and_prints_one_line_per_node():
    net = _net()
    traced = ember.jit.trace(net, ember.randn(2, 3, 4, 4))
    text = str(traced.graph)
    assert "constant[0.weight]" in text and "constant[1.running_var]" in text
    assert len([ln for ln in text.splitlines() if " = " in ln and "constant[" not in ln]) == len(
        traced.graph.nodes
    )
    assert traced.graph.nodes[0].op == "Conv2d"


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_replay_matches_eager_for_other_batch_sizes(batch):
    net = _net()
    traced = ember.jit.trace(net, ember.randn(2, 3, 4, 4))
    x = ember.randn(batch, 3, 4, 4)
    _close(traced(x), net(x))


def test_reshape_of_batch_is_marked_dynamic_and_others_not():
    traced = ember.jit.trace(lambda x: x.reshape(3, 2, 4).reshape(3, 8), ember.randn(3, 8))
    assert [n.dyn for n in traced.graph.nodes] == [("shape",), ("shape",)]
    assert traced(ember.randn(5, 8)).shape == (5, 8)
    fixed = ember.jit.trace(lambda x: x.reshape(2, 12), ember.randn(3, 8))
    assert fixed.graph.nodes[0].dyn == ()


def test_gradients_flow_through_replay():
    traced = ember.jit.trace(lambda x: (x * x).sum(), ember.randn(3))
    x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    traced(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])


def test_python_value_of_traced_tensor_warns():
    def f(x):
        return x * 2 if x.sum() > 0 else x

    with pytest.warns(ember.jit.TracerWarning, match="Python value"):
        ember.jit.trace(f, ember.ones(3))


def test_shape_only_code_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ember.jit.trace(lambda x: x.reshape(x.shape[0], -1), ember.ones(2, 3, 4))


def test_trace_restores_primitive_apply():
    from ember.autograd.function import Primitive

    before = Primitive.__dict__["apply"]
    with pytest.raises(ZeroDivisionError):
        ember.jit.trace(lambda x: x + 1 / 0, ember.ones(2))
    assert Primitive.__dict__["apply"] is before


def test_inplace_op_is_followed():
    def f(x):
        y = x * 1.0
        y.add_(1.0)
        return y.relu_()

    traced = ember.jit.trace(f, ember.randn(2, 3))
    x = ember.randn(4, 3)
    _close(traced(x), (x + 1).relu())


def test_tuple_outputs_and_wrong_shape_error():
    traced = ember.jit.trace(lambda x: (x + 1, x.exp()), ember.randn(2, 3))
    a, b = traced(ember.zeros(4, 3))
    assert a.shape == (4, 3) and float(b.sum()) == 12.0
    with pytest.raises(RuntimeError, match="dim 0 may vary"):
        traced(ember.zeros(4, 2))


def test_save_and_load_roundtrip(tmp_path):
    net = _net()
    traced = ember.jit.trace(net, ember.randn(2, 3, 4, 4))
    traced.save(tmp_path / "m.ejit")
    loaded = ember.jit.load(tmp_path / "m.ejit")
    x = ember.randn(3, 3, 4, 4)
    _close(loaded(x), net(x))


def test_load_rejects_ops_outside_the_registry(tmp_path):
    traced = ember.jit.trace(lambda x: x + 1, ember.randn(2))
    traced.graph.nodes[0].op = "os.system"
    traced.save(tmp_path / "bad.ejit")
    with pytest.raises(ValueError, match="not in the registry"):
        ember.jit.load(tmp_path / "bad.ejit")


MODEL_SRC = """
import ember
from ember import nn

class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 8)
        self.ln = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, ids):
        h = nn.functional.gelu(self.ln(self.emb(ids)))  # (B, T, 8)
        return self.fc(h.mean(1)).softmax(-1)
"""

SAVE = """
import sys, numpy as np, ember, ember.jit
sys.path.insert(0, sys.argv[1])
from tinymodel import TinyNet
ember.manual_seed(0)
net = TinyNet().eval()
ids = ember.tensor(np.arange(10).reshape(2, 5) % 11)
ember.jit.trace(net, ids).save(sys.argv[2])
with ember.no_grad():
    np.save(sys.argv[3], net(ember.tensor(np.arange(15).reshape(3, 5) % 11)).numpy())
"""

LOAD = """
import sys, numpy as np, ember, ember.jit
m = ember.jit.load(sys.argv[1])
out = m(ember.tensor(np.arange(15).reshape(3, 5) % 11)).numpy()
assert "tinymodel" not in sys.modules
np.testing.assert_allclose(out, np.load(sys.argv[2]), atol=1e-6)
print("ok")
"""


def test_load_in_a_process_without_the_model_code(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "tinymodel.py").write_text(textwrap.dedent(MODEL_SRC))
    path, ref = str(tmp_path / "m.ejit"), str(tmp_path / "ref.npy")
    env_path = [p for p in sys.path if "packages/core/src" in p]
    env = {"PYTHONPATH": ":".join(env_path)} if env_path else None
    import os

    env = {**os.environ, **(env or {})}
    subprocess.run([sys.executable, "-c", SAVE, str(src), path, ref], check=True, env=env)
    run = subprocess.run(
        [sys.executable, "-c", LOAD, path, ref],
        check=True,
        env=env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
    )
    assert run.stdout.strip() == "ok"


def _text_models():
    text = pytest.importorskip("ember_text")
    ember.manual_seed(0)
    bert = text.models.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
    )
    gpt2 = text.models.GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2)
    return {
        "bert": (text.models.BertModel(bert).eval(), 2),
        "bert_cls": (text.models.BertForSequenceClassification(bert).eval(), 2),
        "gpt2": (text.models.GPT2LMHeadModel(gpt2).eval(), 1),
    }


def _text_inputs(batch, seq, n):
    ids = ember.randint(0, 50, (batch, seq))
    mask = ember.ones(batch, seq, dtype=ember.int64)
    mask[0, seq - 1] = 0
    return (ids, mask)[:n]


@pytest.mark.parametrize("name", ["bert", "bert_cls", "gpt2"])
def test_one_trace_serves_every_batch_and_sequence_length(name, tmp_path):
    model, n = _text_models()[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traced = ember.jit.trace(
            model, _text_inputs(2, 7, n), dynamic_axes={i: [0, 1] for i in range(n)}
        )
    traced.save(tmp_path / "t.ejit")
    loaded = ember.jit.load(tmp_path / "t.ejit")
    for batch, seq in [(1, 3), (3, 5), (2, 12)]:
        x = _text_inputs(batch, seq, n)
        with ember.no_grad():
            want = model(*x)
        for fn in (traced, loaded):
            got = fn(*x)
            pairs = zip(got, want) if isinstance(want, tuple) else [(got, want)]
            for g, w in pairs:
                _close(g, w)


def test_symbolic_reshape_and_arange_follow_dynamic_dims():
    def f(x):  # x: (B, T, 6)
        b, t, d = x.shape
        y = x.reshape(b, t, 2, d // 2).transpose(1, 2).reshape(b * 2, t, -1)  # (2B, T, 3)
        return y + ember.arange(t).float().unsqueeze(-1)

    traced = ember.jit.trace(f, ember.randn(2, 5, 6), dynamic_axes={0: [0, 1]})
    assert {n.op for n in traced.graph.nodes if n.sym} >= {"Reshape", "Arange"}
    x = ember.randn(3, 4, 6)
    _close(traced(x), f(x))
    with pytest.raises(RuntimeError, match="dims 0, 1 may vary"):
        traced(ember.randn(3, 4, 5))


def test_same_size_for_two_dynamic_dims_warns():
    with pytest.warns(ember.jit.TracerWarning, match="same size"):
        ember.jit.trace(lambda x: x + 1, ember.randn(3, 3), dynamic_axes={0: [0, 1]})
