"""The domain packages' models export to ONNX and run in onnxruntime for several batch sizes
from one file (issue 8: "every op the vision and text models use")."""

import warnings

import numpy as np
import onnxruntime as ort

import ember
import ember_text as text
import ember_vision as vision


def _session(model, example, path, names):
    axes = {n: {0: "batch"} for n in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about constants are expected here
        ember.onnx.export(
            model,
            example,
            str(path),
            input_names=names[:1],
            output_names=names[1:],
            dynamic_axes=axes,
        )
    return ort.InferenceSession(str(path))


def test_resnet18_matches_onnxruntime_for_several_batch_sizes(tmp_path):
    ember.manual_seed(0)
    model = vision.models.resnet18(num_classes=10).eval()
    sess = _session(model, (ember.randn(2, 3, 32, 32),), tmp_path / "r18.onnx", ["x", "logits"])
    for batch in (1, 3):
        x = ember.randn(batch, 3, 32, 32)
        with ember.no_grad():
            want = model(x).numpy()
        got = sess.run(None, {"x": x.numpy()})[0]
        assert got.shape == (batch, 10)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_bert_encoder_matches_onnxruntime_for_several_batch_sizes(tmp_path):
    ember.manual_seed(0)
    cfg = text.models.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
    )
    model = text.models.BertModel(cfg).eval()
    ids = ember.randint(0, 100, (2, 7))
    sess = _session(model, (ids,), tmp_path / "bert.onnx", ["ids", "hidden", "pooled"])
    for batch in (1, 3, 5):
        ids = ember.randint(0, 100, (batch, 7))
        with ember.no_grad():
            hidden, pooled = model(ids)
        got_hidden, got_pooled = sess.run(None, {"ids": ids.numpy()})
        np.testing.assert_allclose(got_hidden, hidden.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got_pooled, pooled.numpy(), rtol=1e-4, atol=1e-4)
