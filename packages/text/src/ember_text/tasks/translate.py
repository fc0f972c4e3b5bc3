"""Train a small encoder-decoder Transformer to translate, from two aligned text files.

The recipe follows Marian's small-model defaults, scaled down: one SentencePiece vocabulary
shared by both languages (source and target files trained together), tied embeddings, label
smoothing, AdamW with a linear warmup then inverse square root decay of the lr (stepped every
batch) and the gradient norm clipped at 1.0. Sources and targets end with ``</s>``; the decoder
starts from ``<pad>`` as Marian's does. Each epoch reports the training loss (and the
validation loss when a validation pair of files is given) and writes ``OUT/checkpoint.ember``
(model, optimizer, scheduler, ember's generator state and the epoch) so ``resume=True``
continues. The finished model is written with ``save_pretrained`` next to ``tokenizer.model``,
so :class:`Translator`, ``AutoTokenizer`` and ``Transformer.from_pretrained`` load OUT. The
command line is :mod:`ember_text.translate`.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import numpy as np

import ember
import ember.nn.functional as F

from ..models.marian import Transformer, TransformerConfig, shift_tokens_right
from ..tokenizers import AutoTokenizer, SentencePieceTokenizer

CHECKPOINT = "checkpoint.ember"
SMALL = {
    "d_model": 64,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 256,
    "decoder_ffn_dim": 256,
    "dropout": 0.1,
    "scale_embedding": True,
}
# a toy language: each source word has one target word; the target reverses the word order
TOY_SOURCE = ("ba", "ko", "mi", "tu", "ze", "lo", "ra", "pi", "su", "ne", "go", "fa")
TOY_TARGET = ("red", "sun", "cat", "dog", "sky", "big", "run", "top", "low", "hat", "map", "zip")


class TranslateError(ValueError):
    """Input the recipe cannot use: files of different lengths, an empty corpus, a missing
    optional dependency."""


# ---------------------------------------------------------------- data
def toy_parallel(n=200, seed=0, min_words=2, max_words=5):
    """``(sources, targets)``: ``n`` seeded sentence pairs of a word-mapping, word-reversing
    toy language (``"ba ko mi"`` -> ``"cat sun red"``)."""
    rng = random.Random(seed)
    src, tgt = [], []
    for _ in range(n):
        words = [rng.randrange(len(TOY_SOURCE)) for _ in range(rng.randint(min_words, max_words))]
        src.append(" ".join(TOY_SOURCE[w] for w in words))
        tgt.append(" ".join(TOY_TARGET[w] for w in reversed(words)))
    return src, tgt


def read_lines(path):
    """The lines of a text file, without their newlines."""
    return Path(path).read_text(encoding="utf-8").splitlines()


def read_pairs(src, tgt):
    """Aligned ``(sources, targets)`` from two files, checked to have equally many lines."""
    sources, targets = read_lines(src), read_lines(tgt)
    if len(sources) != len(targets):
        raise TranslateError(f"{src} has {len(sources)} lines but {tgt} has {len(targets)}")
    if not sources:
        raise TranslateError(f"{src} is empty")
    return sources, targets


def encode(tokenizer, texts, max_length):
    """Token ids of each text followed by ``</s>``, at most ``max_length`` ids in all."""
    eos = tokenizer.eos_token_id
    return [row[: max_length - 1] + [eos] for row in tokenizer(list(texts))["input_ids"]]


def batches(sources, targets, batch_size, pad_id, order=None):
    """Yield ``(input_ids, attention_mask, labels)`` tensors padded to each batch's longest
    (sources with ``pad_id``, labels with -100, which the loss ignores)."""
    order = np.arange(len(sources)) if order is None else order
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        x, mask = _pad([sources[i] for i in rows], pad_id)
        y, _ = _pad([targets[i] for i in rows], -100)
        yield ember.tensor(x), ember.tensor(mask), ember.tensor(y)


def _pad(rows, value):
    width = max(1, max(map(len, rows)))
    out = np.full((len(rows), width), value, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for r, row in enumerate(rows):
        out[r, : len(row)], mask[r, : len(row)] = row, 1
    return out, mask


def build_tokenizer(files, vocab_size, out):
    """Train one SentencePiece model on both languages' files into ``out/tokenizer.model``."""
    out = Path(out)
    SentencePieceTokenizer.train(
        [str(f) for f in files], vocab_size, model_prefix=str(out / "spm"), character_coverage=1.0
    )
    (out / "spm.model").replace(out / "tokenizer.model")
    (out / "spm.vocab").unlink(missing_ok=True)
    config = {"tokenizer_class": "SentencePieceTokenizer", "add_eos_token": False}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return SentencePieceTokenizer(out / "tokenizer.model")


def build_model(tokenizer, max_length, **overrides):
    """A fresh :class:`Transformer` sized by :data:`SMALL` (and ``overrides``) for a vocabulary
    whose ``<pad>`` starts the decoder and whose ``</s>`` ends sentences."""
    fields = dict(SMALL)
    fields.update(overrides)
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    config = TransformerConfig(
        vocab_size=tokenizer.vocab_size,
        max_position_embeddings=max(2 * max_length + 16, 64),
        pad_token_id=pad,
        decoder_start_token_id=pad,
        eos_token_id=eos,
        forced_eos_token_id=eos,
        **fields,
    )
    return Transformer(config)


# ---------------------------------------------------------------- training
def warmup_schedule(opt, warmup):
    """The lr rises linearly over ``warmup`` steps, then decays as ``sqrt(warmup / step)``
    (the "Noam" schedule Marian uses)."""

    def factor(step):
        step = max(step, 1)
        return min(step / max(1, warmup), math.sqrt(max(1, warmup) / step))

    return ember.optim.lr_scheduler.LambdaLR(opt, factor)


def loss_of(model, x, mask, y, label_smoothing):
    """Mean token cross entropy of ``model`` on a batch, with ``label_smoothing``."""
    c = model.config
    decoder_input_ids = shift_tokens_right(y, c.pad_token_id, c.decoder_start_token_id)
    logits = model(x, mask, decoder_input_ids)  # (B, T, V)
    V = logits.shape[-1]
    return F.cross_entropy(
        logits.reshape(-1, V), y.reshape(-1), ignore_index=-100, label_smoothing=label_smoothing
    )


def train_one_epoch(model, data, opt, sched, label_smoothing):
    """One pass over ``(input_ids, mask, labels)`` batches; the mean loss per batch."""
    model.train()
    losses = []
    for x, mask, y in data:
        loss = loss_of(model, x, mask, y, label_smoothing)
        opt.zero_grad()
        loss.backward()
        ember.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def evaluate_loss(model, data):
    """Mean token cross entropy (no smoothing) over batches, in eval mode."""
    model.eval()
    with ember.no_grad():
        return float(np.mean([loss_of(model, x, m, y, 0.0).item() for x, m, y in data]))


def save_state(path, model, opt, sched, epoch, settings) -> None:
    """Write what a resume needs to ``path`` (atomically, via ``ember.save``)."""
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": epoch,
        "rng": ember.default_generator.get_state(),
        "args": json.dumps(settings, sort_keys=True, default=str),
    }
    ember.save(state, path)


def load_state(path, model, opt, sched) -> int:
    """Restore a checkpoint written by :func:`save_state`; returns the epochs already done."""
    state = ember.load(path)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    ember.default_generator.set_state(state["rng"])
    return int(state["epoch"])


def train(
    src,
    tgt,
    out,
    *,
    valid_src=None,
    valid_tgt=None,
    vocab_size=1000,
    epochs=10,
    batch_size=32,
    lr=3e-3,
    warmup_steps=100,
    label_smoothing=0.1,
    weight_decay=0.0,
    max_length=128,
    seed=0,
    resume=False,
    stop_after=None,
    model_overrides=None,
    log=print,
):
    """Train a translation model on aligned files ``src``/``tgt`` into folder ``out``.

    Returns one dict per epoch (``epoch``, ``train_loss``, ``valid_loss`` when ``valid_src``
    and ``valid_tgt`` are given, ``seconds``). ``vocab_size`` bounds the shared SentencePiece
    vocabulary; ``max_length`` the ids kept per sentence. ``model_overrides`` changes fields of
    :data:`SMALL`. ``stop_after`` ends this run after that epoch; ``resume`` continues from
    ``out/checkpoint.ember``. Raises :class:`TranslateError` for unusable files.
    """
    settings = {k: v for k, v in locals().items() if k != "log"}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sources, targets = read_pairs(src, tgt)
    ckpt = out / CHECKPOINT
    fresh = not (resume and ckpt.is_file())
    if fresh:
        build_tokenizer([src, tgt], vocab_size, out)
    tok = AutoTokenizer.from_pretrained(out)
    ember.manual_seed(seed)
    model = build_model(tok, max_length, **(model_overrides or {}))
    x_train, y_train = encode(tok, sources, max_length), encode(tok, targets, max_length)
    valid = None
    if valid_src is not None and valid_tgt is not None:
        vs, vt = read_pairs(valid_src, valid_tgt)
        valid = encode(tok, vs, max_length), encode(tok, vt, max_length)
    opt = ember.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    sched = warmup_schedule(opt, warmup_steps)
    start = 0 if fresh else load_state(ckpt, model, opt, sched)
    if not fresh:
        log(f"resumed from {ckpt} after epoch {start}")
    last = epochs if stop_after is None else min(epochs, stop_after)
    pad = tok.pad_token_id
    history = []
    for epoch in range(start + 1, last + 1):
        t0 = time.perf_counter()
        order = np.random.default_rng([seed, epoch]).permutation(len(x_train))
        data = batches(x_train, y_train, batch_size, pad, order)
        row = {
            "epoch": epoch,
            "train_loss": train_one_epoch(model, data, opt, sched, label_smoothing),
        }
        if valid is not None:
            row["valid_loss"] = evaluate_loss(model, batches(*valid, batch_size, pad))
        row["seconds"] = round(time.perf_counter() - t0, 3)
        save_state(ckpt, model, opt, sched, epoch, settings)
        history.append(row)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k.endswith("loss"))
        log(f"epoch {epoch}/{epochs}  {shown}  ({row['seconds']:.1f}s)")
    if last == epochs:
        model.save_pretrained(out)
    return history


# ---------------------------------------------------------------- use and scores
def bleu(hypotheses, references):
    """Corpus BLEU (sacrebleu's default 13a tokenisation) of hypotheses against one reference
    each; needs the optional ``sacrebleu`` (``pip install 'ember-text[bleu]'``)."""
    return float(_sacrebleu().corpus_bleu(list(hypotheses), [list(references)]).score)


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError:
        raise TranslateError(
            "BLEU needs sacrebleu: pip install sacrebleu (or 'ember-text[bleu]')"
        ) from None
    return sacrebleu


def exact_match(hypotheses, references):
    """Fraction of hypotheses equal to their reference after stripping spaces at the ends."""
    pairs = list(zip(hypotheses, references))
    return sum(h.strip() == r.strip() for h, r in pairs) / max(1, len(pairs))


class Translator:
    """A folder written by :func:`train` that translates: ``Translator.from_pretrained(OUT)``."""

    def __init__(self, model, tokenizer, max_length=128):
        self.model, self.tokenizer, self.max_length = model.eval(), tokenizer, max_length

    @classmethod
    def from_pretrained(cls, directory):
        """Load the model and SentencePiece tokenizer of a trained folder."""
        model = Transformer.from_pretrained(directory)
        limit = (model.config.max_position_embeddings - 16) // 2
        return cls(model, AutoTokenizer.from_pretrained(directory), limit)

    def translate(self, texts, num_beams=4, max_new_tokens=None, batch_size=32, **kwargs):
        """Translations of ``texts`` (a list of str), by beam search (greedy for 1 beam).

        ``max_new_tokens`` defaults to twice the longest source plus 10, within the model's
        positions; further ``kwargs`` (``length_penalty``, ``early_stopping``) go to
        :func:`~ember_text.generation.generate_seq2seq`.
        """
        ids = encode(self.tokenizer, texts, self.max_length)
        limit = self.model.config.max_position_embeddings - 1
        results = []
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(ids), batch_size):
            rows = ids[start : start + batch_size]
            x, mask = _pad(rows, pad)
            new = max_new_tokens or min(limit, 2 * x.shape[1] + 10)
            out = self.model.generate(
                ember.tensor(x),
                ember.tensor(mask),
                max_new_tokens=new,
                num_beams=num_beams,
                **kwargs,
            )
            results += self.tokenizer.batch_decode(out[:, 1:], skip_special_tokens=True)
        return results

    def evaluate(self, sources, references, num_beams=4, batch_size=32) -> dict:
        """``{"bleu", "exact_match", "n"}`` of the translations of ``sources``."""
        _sacrebleu()  # fail before translating, not after
        hyps = self.translate(sources, num_beams=num_beams, batch_size=batch_size)
        return {
            "bleu": bleu(hyps, references),
            "exact_match": exact_match(hyps, references),
            "n": len(hyps),
        }
