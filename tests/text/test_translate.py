"""The translation recipe and command line: a small Transformer learns a toy language."""

import io
import sys

import pytest

import ember
from ember_text import Transformer
from ember_text.tasks.translate import (
    TranslateError,
    Translator,
    bleu,
    build_model,
    exact_match,
    toy_parallel,
    train,
)
from ember_text.tokenizers import AutoTokenizer
from ember_text.translate import main

SMALL = [
    "--d-model", "32", "--layers", "2", "--heads", "4", "--ffn-dim", "64",
    "--vocab-size", "60", "--batch-size", "16", "--lr", "5e-3", "--warmup-steps", "40",
]  # fmt: skip


def write_corpus(folder, n, seed, name):
    src, tgt = toy_parallel(n, seed=seed)
    (folder / f"{name}.src").write_text("\n".join(src) + "\n", encoding="utf-8")
    (folder / f"{name}.tgt").write_text("\n".join(tgt) + "\n", encoding="utf-8")
    return src, tgt


def test_toy_language_maps_and_reverses_words():
    src, tgt = toy_parallel(3, seed=0)
    assert [len(s.split()) for s in src] == [len(t.split()) for t in tgt]
    assert toy_parallel(3, seed=0) == (src, tgt) and toy_parallel(3, seed=1) != (src, tgt)


def test_command_line_learns_the_toy_language(tmp_path, capsys, monkeypatch):
    write_corpus(tmp_path, 200, 0, "train")
    test_src, test_tgt = write_corpus(tmp_path, 40, 1, "test")
    out = tmp_path / "mt"
    args = ["train", "--src", str(tmp_path / "train.src"), "--tgt", str(tmp_path / "train.tgt")]
    args += ["--valid-src", str(tmp_path / "test.src"), "--valid-tgt", str(tmp_path / "test.tgt")]
    args += ["--out", str(out), "--epochs", "40", *SMALL]
    first = main([*args, "--stop-after", "20"])
    assert [row["epoch"] for row in first] == list(range(1, 21))
    assert not (out / "model.safetensors").exists()  # not finished yet: checkpoint only
    rest = main([*args, "--resume"])
    assert [row["epoch"] for row in rest] == list(range(21, 41))
    assert rest[-1]["valid_loss"] < first[0]["valid_loss"] / 2
    learned = Translator.from_pretrained(out)
    untrained = Translator(build_model(AutoTokenizer.from_pretrained(out), 128), learned.tokenizer)
    learned_em = exact_match(learned.translate(test_src, num_beams=4), test_tgt)
    untrained_em = exact_match(untrained.translate(test_src, num_beams=4), test_tgt)
    assert learned_em >= 0.6 and untrained_em <= 0.05

    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(test_src[:3]) + "\n"))
    printed = main(["translate", str(out), "--beams", "1"])
    assert printed == learned.translate(test_src[:3], num_beams=1)
    assert capsys.readouterr().out.splitlines() == printed

    pytest.importorskip("sacrebleu")
    result = main(["evaluate", str(out), "--src", str(tmp_path / "test.src")] +
                  ["--ref", str(tmp_path / "test.tgt"), "--beams", "4"])  # fmt: skip
    assert "BLEU" in capsys.readouterr().out
    untrained_bleu = bleu(untrained.translate(test_src, num_beams=4), test_tgt)
    assert result["bleu"] > 50 and untrained_bleu < 10
    with capsys.disabled():
        print(f"\nexact match {learned_em:.3f} vs untrained {untrained_em:.3f}; "
              f"BLEU {result['bleu']:.1f} vs untrained {untrained_bleu:.1f}")  # fmt: skip


def test_resume_continues_as_one_run(tmp_path):
    write_corpus(tmp_path, 40, 0, "train")
    files = (tmp_path / "train.src", tmp_path / "train.tgt")
    options = dict(vocab_size=60, epochs=2, batch_size=16, log=lambda line: None)
    options["model_overrides"] = dict(d_model=16, encoder_layers=1, decoder_layers=1)
    whole = train(*files, tmp_path / "whole", **options)
    train(*files, tmp_path / "split", stop_after=1, **options)
    split = train(*files, tmp_path / "split", resume=True, **options)
    assert split[-1]["train_loss"] == pytest.approx(whole[-1]["train_loss"], rel=1e-6)
    a = Transformer.from_pretrained(tmp_path / "whole").state_dict()
    b = Transformer.from_pretrained(tmp_path / "split").state_dict()
    assert all(ember.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_clear_errors(tmp_path, monkeypatch):
    (tmp_path / "a.src").write_text("one\ntwo\n", encoding="utf-8")
    (tmp_path / "a.tgt").write_text("uno\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="error: .*a.src has 2 lines but .*a.tgt has 1"):
        main(["train", "--src", str(tmp_path / "a.src"), "--tgt", str(tmp_path / "a.tgt")])
    monkeypatch.setitem(sys.modules, "sacrebleu", None)
    with pytest.raises(TranslateError, match="pip install sacrebleu"):
        bleu(["a"], ["a"])
