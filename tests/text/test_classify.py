"""Fine-tuning a sequence classifier from a CSV or JSONL file: the tiny model learns a toy
sentiment set, macro-F1 equals scikit-learn's, --resume is bit-identical, predict/evaluate read
the output folder, and bad data fails with a message that names the problem."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import ember
from ember_text import BertForSequenceClassification
from ember_text.classify import TextClassifier, main
from ember_text.tasks.classify import (
    CHECKPOINT,
    macro_f1,
    parse_model_spec,
    read_examples,
    split_indices,
    toy_sentiment,
    write_examples,
)

FIXTURES = Path(__file__).parent / "fixtures"
FAST = ["--quiet", "--warmup-steps", "10"]


def _data(folder, name, n=120, seed=0):
    texts, labels = toy_sentiment(n, seed=seed)
    path = folder / name
    write_examples(path, texts, labels)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny classifier trained once on 400 toy reviews: (folder, history)."""
    folder = tmp_path_factory.mktemp("classify")
    data = _data(folder, "reviews.csv", n=400)
    argv = ["train", "--data", str(data), "--out", str(folder / "out"), "--epochs", "20"]
    history = main(argv + ["--valid-fraction", "0.2"] + FAST)
    return folder / "out", history


def test_tiny_model_learns_toy_sentiment(trained):
    out, history = trained
    assert len(history) == 20 and history[-1]["valid_n"] == 80
    assert history[-1]["valid_accuracy"] >= 0.9
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 3
    assert (out / "log.jsonl").read_text().count("\n") == 20
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1} and config["num_labels"] == 2
    model = BertForSequenceClassification.from_pretrained(out)
    assert model.config.num_labels == 2 and model.config.hidden_size == 32


def test_reported_f1_equals_sklearn_on_the_validation_split(trained):
    f1_score = pytest.importorskip("sklearn.metrics").f1_score
    out, history = trained
    texts, labels = read_examples(out.parent / "reviews.csv")
    _, valid = split_indices(labels, 0.2, seed=0)  # the split training made
    clf = TextClassifier.from_pretrained(out)
    names = [labels[i] for i in valid]
    predicted = [label for label, _ in clf.predict([texts[i] for i in valid])]
    result = clf.evaluate([texts[i] for i in valid], names)
    assert result["macro_f1"] == pytest.approx(f1_score(names, predicted, average="macro"))
    assert result["macro_f1"] == pytest.approx(history[-1]["valid_macro_f1"])
    assert result["accuracy"] == pytest.approx(history[-1]["valid_accuracy"])


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_matches_sklearn(seed):
    f1_score = pytest.importorskip("sklearn.metrics").f1_score
    g = np.random.default_rng(seed)
    k = 2 + seed
    y_true = g.integers(0, k, size=40)
    y_pred = np.where(g.random(40) < 0.6, y_true, g.integers(0, k + 1, size=40))
    y_pred[y_pred == 1] = 0  # a class never predicted, and (k) one never true
    expected = f1_score(y_true, y_pred, average="macro", zero_division=0)
    assert macro_f1(y_true, y_pred) == pytest.approx(expected, abs=1e-12)


def test_predict_prints_label_probability_and_text(trained, capsys):
    out, _ = trained
    results = main(["predict", str(out), "the cast was wonderful", "i found the plot painful"])
    lines = capsys.readouterr().out.splitlines()
    assert [label for label, _ in results] == ["positive", "negative"]
    assert all(0.5 < p <= 1 for _, p in results)
    label, prob, text = lines[0].split("\t")
    assert (label, text) == ("positive", "the cast was wonderful") and float(prob) > 0.5


def test_evaluate_on_a_jsonl_file(trained, tmp_path, capsys):
    out, _ = trained
    data = _data(tmp_path, "test.jsonl", n=60, seed=7)
    result = main(["evaluate", str(out), "--data", str(data)])
    assert result["n"] == 60 and result["accuracy"] >= 0.8
    assert capsys.readouterr().out.startswith(f"accuracy {result['accuracy']:.4f}")


def test_module_runs_as_a_program(trained):
    out, _ = trained
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "ember_text.classify", "predict", str(out), "a dull plot"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("negative\t")


def test_transformers_loads_the_folder_and_agrees(trained, monkeypatch):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a local folder: nothing to fetch
    out, _ = trained
    texts = ["the cast was wonderful", "the plot was not fun", "i found the ending dull"]
    model = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    with torch.no_grad():
        probs = model(**tok(texts, padding=True, return_tensors="pt")).logits.softmax(-1)
    expected = TextClassifier.from_pretrained(out).predict_proba(texts)
    np.testing.assert_allclose(probs.numpy(), expected, atol=1e-5)


def _weights(out):
    state = ember.load(str(out / CHECKPOINT))
    return {k: v.numpy() for k, v in state["model"].items()}, state


def test_resume_is_bit_identical(tmp_path):
    data = _data(tmp_path, "reviews.csv", n=60)
    argv = ["train", "--data", str(data), "--epochs", "2", "--batch-size", "8"] + FAST
    straight, split = tmp_path / "straight", tmp_path / "split"
    first = main(argv + ["--out", str(straight)])
    assert [r["epoch"] for r in main(argv + ["--out", str(split), "--stop-after", "1"])] == [1]
    assert not (split / "model.safetensors").exists()  # only a finished run saves the model
    again = main(argv + ["--out", str(split), "--resume"])
    assert [r["epoch"] for r in again] == [2]
    assert again[0]["train_loss"] == first[1]["train_loss"]
    (w_a, state_a), (w_b, state_b) = _weights(straight), _weights(split)
    assert w_a.keys() == w_b.keys() and state_a["epoch"] == state_b["epoch"] == 2
    for key in w_a:
        np.testing.assert_array_equal(w_a[key], w_b[key], err_msg=key)
    assert state_a["rng"] == state_b["rng"] and state_a["scheduler"] == state_b["scheduler"]
    final_a = ember.load(str(straight / "model.safetensors"))
    final_b = ember.load(str(split / "model.safetensors"))
    assert all(ember.equal(final_a[k], final_b[k]) for k in final_a)


def test_int_labels_a_valid_file_and_a_model_spec(tmp_path):
    texts, labels = toy_sentiment(80, seed=1)
    ints = [int(y == "positive") * 2 for y in labels]  # labels 0 and 2
    write_examples(tmp_path / "train.jsonl", texts[:60], ints[:60], "review", "stars")
    write_examples(tmp_path / "valid.csv", texts[60:], ints[60:], "review", "stars")
    argv = [
        "train",
        "--data",
        str(tmp_path / "train.jsonl"),
        "--valid",
        str(tmp_path / "valid.csv"),
    ]
    argv += ["--text-column", "review", "--label-column", "stars", "--epochs", "1"]
    argv += ["--model", "tiny:hidden_size=16,num_hidden_layers=1", "--out", str(tmp_path / "o")]
    history = main(argv + FAST)
    assert history[0]["valid_n"] == 20
    config = json.loads((tmp_path / "o" / "config.json").read_text())
    assert config["id2label"] == {"0": "0", "1": "2"} and config["hidden_size"] == 16
    assert config["num_hidden_layers"] == 1
    clf = TextClassifier.from_pretrained(tmp_path / "o")
    assert clf.labels == ["0", "2"] and clf.evaluate(texts[60:], ints[60:])["n"] == 20


def test_fine_tunes_a_pretrained_folder(tmp_path):
    texts = ["good", "fine day", "bad", "sad day", "ok", "so so"] * 5
    labels = ["pos", "pos", "neg", "neg", "meh", "meh"] * 5
    write_examples(tmp_path / "d.csv", texts, labels)
    argv = ["train", "--data", str(tmp_path / "d.csv"), "--model", str(FIXTURES / "bert")]
    argv += ["--epochs", "1", "--out", str(tmp_path / "o"), "--max-length", "512", "--quiet"]
    with pytest.warns(UserWarning, match="newly initialised.*classifier"):
        main(argv)
    out = tmp_path / "o"
    assert (out / "tokenizer.json").exists()
    assert json.loads((out / "tokenizer_config.json").read_text())["model_max_length"] == 64
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the saved folder has its head: no warning
        clf = TextClassifier.from_pretrained(out)
    assert clf.labels == ["meh", "neg", "pos"]
    assert clf.model.classifier.weight.shape == (3, 32)
    assert len(clf.predict(["good day " * 100])) == 1  # truncated to the 64 positions


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "is empty"),
        ("header.csv", "text,label\n", "is empty"),
        ("blank.jsonl", "\n\n", "is empty"),
        ("cols.csv", "review,label\ngreat,1\nbad,0\n", "no column 'text'.*columns: review, label"),
        ("one.csv", "text,label\ngreat,pos\nfine,pos\n", "every row has label 'pos'"),
        ("gap.csv", "text,label\ngreat,pos\nbad,\n", "line 3 has an empty 'label'"),
        ("bad.jsonl", '{"text": "a", "label": 1}\n[1, 2]\n', "line 2 is not a JSON object"),
        ("few.csv", "text,label\ngreat,pos\nbad,neg\n", "no label has two rows"),
        ("data.xlsx", "x", "unknown format '.xlsx'"),
    ],
)
def test_bad_data_fails_with_a_clear_message(tmp_path, name, content, message):
    path = _write(tmp_path / name, content)
    with pytest.raises(SystemExit, match=message):
        main(["train", "--data", str(path), "--out", str(tmp_path / "o"), "--quiet"])


def test_unknown_labels_and_models_are_refused(tmp_path):
    data = _write(tmp_path / "d.csv", "text,label\ngreat,pos\nbad,neg\nok,pos\nmeh,neg\n")
    valid = _write(tmp_path / "v.csv", "text,label\nfine,pos\nso so,meh\n")
    base = ["train", "--data", str(data), "--out", str(tmp_path / "o"), "--quiet"]
    with pytest.raises(SystemExit, match=r"labels \['meh'\] do not occur"):
        main(base + ["--valid", str(valid)])
    with pytest.raises(SystemExit, match="neither 'tiny"):
        main(base + ["--model", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit, match="'depth=2' is not a BertConfig field"):
        main(base + ["--model", "tiny:depth=2"])
    assert parse_model_spec("tiny:num_attention_heads=2")["num_attention_heads"] == 2


def test_split_is_seeded_and_stratified():
    labels = ["a"] * 30 + ["b"] * 10 + ["c"] * 2
    train, valid = split_indices(labels, 0.2, seed=3)
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(42))
    assert [labels[i] for i in valid].count("a") == 6
    assert [labels[i] for i in valid].count("b") == 2 and [labels[i] for i in valid].count("c") == 1
    again, _ = split_indices(labels, 0.2, seed=3)
    other, _ = split_indices(labels, 0.2, seed=4)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
