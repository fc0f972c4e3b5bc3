"""The domain packages' models export to ONNX and run in onnxruntime from one file for several
batch sizes (and, for the text models, sequence lengths): "every op the vision and text
models use", with batch and sequence both dynamic."""

import warnings

import numpy as np
import pytest

import ember
import ember.onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
vision = pytest.importorskip("ember_vision")
text = pytest.importorskip("ember_text")


def _export(model, example, path, ins, outs, axes):
    dyn = {n: axes for n in ins}
    dyn.update({n: {0: "batch"} for n in outs})
    with warnings.catch_warnings():
        warnings.simplefilter("error", ember.jit.TracerWarning)  # the trace must generalize
        ember.onnx.export(model, example, str(path), ins, outs, dynamic_axes=dyn)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _check(model, sess, inputs, names):
    with ember.no_grad():
        want = model(*inputs)
    want = want if isinstance(want, tuple) else (want,)
    got = sess.run(None, {n: t.numpy() for n, t in zip(names, inputs)})
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape)
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "vgg11_bn"])
def test_vision_models_match_onnxruntime_for_several_batch_sizes(arch, tmp_path):
    ember.manual_seed(0)
    model = getattr(vision.models, arch)(num_classes=10).eval()
    for m in model.modules():  # non-trivial batch norm statistics, so the folding shows
        if isinstance(m, ember.nn.BatchNorm2d):
            m.running_mean.copy_(ember.randn(m.num_features) * 0.1)
            m.running_var.copy_(ember.rand(m.num_features) + 0.5)
    axes = {0: "batch"}
    sess = _export(model, (ember.randn(2, 3, 32, 32),), tmp_path / "m.onnx", ["x"], ["y"], axes)
    for batch in (1, 3):
        _check(model, sess, (ember.randn(batch, 3, 32, 32),), ["x"])


def _bert_cfg(act="gelu"):
    return text.models.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_act=act,
    )


def _ids(batch, seq, vocab=100, masked=False):
    ids = ember.randint(0, vocab, (batch, seq))
    mask = ember.ones(batch, seq, dtype=ember.int64)
    if masked:
        mask[0, seq - 2 :] = 0  # padding at the end of the first row
    return ids, mask


SIZES = [(1, 3), (3, 5), (2, 11), (4, 16)]


def test_bert_model_with_dynamic_batch_and_sequence(tmp_path):
    ember.manual_seed(0)
    model = text.models.BertModel(_bert_cfg()).eval()
    axes = {0: "batch", 1: "seq"}
    names = ["input_ids", "attention_mask"]
    path = tmp_path / "bert.onnx"
    sess = _export(model, _ids(2, 7, masked=True), path, names, ["hidden", "pooled"], axes)
    for batch, seq in SIZES:
        _check(model, sess, _ids(batch, seq, masked=True), names)


def test_bert_classifier_with_tanh_gelu(tmp_path):
    ember.manual_seed(0)
    model = text.models.BertForSequenceClassification(_bert_cfg("gelu_new")).eval()
    axes = {0: "batch", 1: "seq"}
    sess = _export(model, _ids(2, 7)[:1], tmp_path / "cls.onnx", ["input_ids"], ["logits"], axes)
    for batch, seq in SIZES:
        _check(model, sess, _ids(batch, seq)[:1], ["input_ids"])


def test_gpt2_lm_head_with_dynamic_batch_and_sequence(tmp_path):
    ember.manual_seed(0)
    cfg = text.models.GPT2Config(vocab_size=60, n_positions=32, n_embd=16, n_layer=2, n_head=2)
    model = text.models.GPT2LMHeadModel(cfg).eval()
    axes = {0: "batch", 1: "seq"}
    ids = _ids(2, 7, vocab=60)[:1]
    sess = _export(model, ids, tmp_path / "gpt2.onnx", ["input_ids"], ["logits"], axes)
    for batch, seq in SIZES:
        _check(model, sess, _ids(batch, seq, vocab=60)[:1], ["input_ids"])
