"""Tokenizers: ids equal to what transformers gave on the same files (fixtures), SentencePiece."""

import json
from pathlib import Path

import numpy as np
import pytest

import ember
from ember_text import AutoTokenizer, HFTokenizer, SentencePieceTokenizer

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = np.load(FIXTURES / "expected.npz")
STRINGS = json.loads((FIXTURES / "expected.json").read_text())
TEXTS = ["the quick fox is gold", "a lazy dog begins the journey to the question"]


@pytest.mark.parametrize("name", ["bert", "bpe"])
def test_batch_ids_match_transformers(name):
    tok = AutoTokenizer.from_pretrained(FIXTURES / name)
    enc = tok(TEXTS, padding=True, return_tensors="np")
    keys = {k.split("_tok_")[1] for k in EXPECTED if k.startswith(f"{name}_tok_")}
    assert set(enc) == keys
    for key in keys:
        np.testing.assert_array_equal(enc[key], EXPECTED[f"{name}_tok_{key}"])
    trunc = tok(TEXTS, padding="max_length", truncation=True, max_length=6, return_tensors="np")
    np.testing.assert_array_equal(trunc["input_ids"], EXPECTED[f"{name}_trunc_input_ids"])
    assert tok.decode(enc["input_ids"][1], skip_special_tokens=True) == STRINGS[f"{name}_decode"]
    assert tok.decode(enc["input_ids"][1]) == STRINGS[f"{name}_decode_all"]
    assert tok.tokenize(TEXTS[0]) == STRINGS[f"{name}_tokens"]


def test_bert_special_ids_and_ember_tensors():
    tok = AutoTokenizer.from_pretrained(FIXTURES / "bert")
    assert (tok.pad_token_id, tok.cls_token_id, tok.sep_token_id) == (0, 2, 3)
    assert tok.bos_token_id is None
    enc = tok(TEXTS, padding=True, return_tensors="ember")
    assert isinstance(enc["input_ids"], ember.Tensor)
    assert enc["input_ids"].dtype == ember.int64
    ids = tok.encode(TEXTS[0])
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.decode(ember.tensor(ids), skip_special_tokens=True) == "the quick fox is gold"
    single = tok(TEXTS[0])
    assert single["input_ids"] == ids and single["attention_mask"] == [1] * len(ids)


def test_text_pairs_get_segment_ids():
    tok = AutoTokenizer.from_pretrained(FIXTURES / "bert")
    enc = tok("the fox", "the dog")
    first = enc["input_ids"].index(tok.sep_token_id)
    assert enc["token_type_ids"] == [0] * (first + 1) + [1] * (len(enc["input_ids"]) - first - 1)


def test_legacy_vocab_txt_gives_same_ids(tmp_path):
    src = FIXTURES / "bert"
    vocab = json.loads((src / "tokenizer.json").read_text())["model"]["vocab"]
    lines = sorted(vocab, key=vocab.get)
    (tmp_path / "vocab.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "tokenizer_config.json").write_text((src / "tokenizer_config.json").read_text())
    legacy = AutoTokenizer.from_pretrained(tmp_path)
    modern = AutoTokenizer.from_pretrained(src)
    assert legacy(TEXTS, padding=True) == modern(TEXTS, padding=True)


def test_errors_are_clear():
    backend = AutoTokenizer.from_pretrained(FIXTURES / "bert").backend
    tok = HFTokenizer(backend)
    with pytest.raises(ValueError, match="pad token"):
        tok(TEXTS, padding=True)
    with pytest.raises(ValueError, match="padding=True"):
        tok(TEXTS, return_tensors="np")
    with pytest.raises(FileNotFoundError):
        AutoTokenizer.from_pretrained(FIXTURES / "gpt2")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("spm") / "corpus.txt"
    words = "the quick brown fox jumps over the lazy dog while seven wizards hex".split()
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(words, size=8)) for _ in range(300)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_train_roundtrip(corpus, tmp_path, model_type):
    prefix = tmp_path / "m"
    tok = SentencePieceTokenizer.train([corpus], 60, model_type=model_type, model_prefix=prefix)
    assert tok.model_file == str(prefix) + ".model" and Path(tok.model_file).is_file()
    assert tok.vocab_size <= 60
    assert (tok.unk_token_id, tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (0, 1, 2, 3)
    text = "the lazy fox jumps"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    tok.save(tmp_path / "copy.model")
    again = SentencePieceTokenizer.from_file(tmp_path / "copy.model")
    assert again.encode(text) == ids
    import sentencepiece as spm  # the library itself is the reference

    assert spm.SentencePieceProcessor(model_file=str(tmp_path / "copy.model")).encode(text) == ids
    enc = tok([text, "the dog"], padding=True, truncation=True, max_length=4, return_tensors="np")
    assert enc["input_ids"].shape[0] == 2 and enc["input_ids"].shape[1] <= 4
    assert enc["attention_mask"][1].sum() == len(
        tok.encode("the dog", truncation=True, max_length=4)
    )


def test_sentencepiece_bos_eos_and_auto(corpus, tmp_path):
    tok = SentencePieceTokenizer.train(corpus, 60, model_prefix=tmp_path / "spiece")
    auto = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(auto, SentencePieceTokenizer)
    both = SentencePieceTokenizer(tok.model_file, add_bos=True, add_eos=True)
    ids = both.encode("the fox")
    assert ids[0] == 1 and ids[-1] == 2 and ids[1:-1] == tok.encode("the fox")
    assert both.decode(ids, skip_special_tokens=True) == "the fox"
