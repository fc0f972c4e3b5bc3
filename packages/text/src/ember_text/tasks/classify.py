"""Fine-tune a BERT sequence classifier on a CSV or JSONL file of texts and labels.

The recipe is Hugging Face's ``Trainer`` default for GLUE-style fine-tuning: AdamW (no weight
decay on biases and LayerNorm weights), a linear warmup then linear decay of the lr stepped
every batch, gradient norm clipped at 1.0. Each epoch reports the training loss and the
validation accuracy and macro-F1, and writes ``OUT/checkpoint.ember`` (model, optimizer,
scheduler, ember's generator state and the epoch, saved atomically by ``ember.save``), so
``resume=True`` continues bit-identically on the CPU. The finished model is written with
``save_pretrained`` (``id2label``/``label2id`` in ``config.json``) next to its tokenizer files,
so ``ember_text.classify.TextClassifier``, ``AutoTokenizer`` and
``BertForSequenceClassification.from_pretrained`` load OUT.

``model`` is a Hugging Face layout BERT directory (its tokenizer comes from the same folder) or
``tiny``, optionally with config overrides (``tiny:hidden_size=64,num_hidden_layers=1``): a
fresh small BERT and a WordPiece vocabulary built from the training texts. The command line
is :mod:`ember_text.classify`.
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import tokenizers
from tokenizers import decoders, normalizers, pre_tokenizers, processors
from tqdm import tqdm

import ember

from ..models import BertConfig, BertForSequenceClassification
from ..pretrained import load_checkpoint
from ..tokenizers import AutoTokenizer
from ..tokenizers.auto import SENTENCEPIECE_FILES

CHECKPOINT = "checkpoint.ember"
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0..4 of a tiny vocabulary
# --model tiny; vocab_size caps the vocabulary, which holds only what the texts need
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
TINY["vocab_size"] = 2000
# what copy_tokenizer copies (tokenizer_config.json is rewritten, not copied)
TOKENIZER_FILES = ("tokenizer.json", "special_tokens_map.json", "vocab.txt", "vocab.json")
TOKENIZER_FILES += ("merges.txt", *SENTENCEPIECE_FILES)
POSITIVE = ("great", "wonderful", "excellent", "superb", "moving", "brilliant", "charming", "fun")
NEGATIVE = ("awful", "boring", "terrible", "dull", "clumsy", "tedious", "bland", "painful")
SUBJECTS = ("the movie", "this film", "the plot", "the acting", "the ending", "the cast")
TEMPLATES = ("{s} was {w}", "{s} is really {w}", "i found {s} {w}", "{s} felt {w} and {v}")
NEGATED = ("{s} was not {w}", "{s} was never {w}", "i did not find {s} {w}")  # flip the label


class ClassifyError(ValueError):
    """Input the recipe cannot use: a data file with a missing column, no rows or one class,
    a model that is neither a spec nor a folder, a checkpoint for other labels."""


# ---------------------------------------------------------------- data
def label_name(value) -> str:
    """The name of a label: integers (JSON ints or integer strings) as ``str(int)``, else text."""
    text = str(value).strip()
    try:
        return str(int(text))
    except ValueError:
        return text


def label_names(labels) -> list[str]:
    """The sorted distinct names of ``labels``: numerically when all are integers; id = index."""
    names = set(map(label_name, labels))
    try:
        return sorted(names, key=int)
    except ValueError:
        return sorted(names)


def read_examples(path, text_column="text", label_column="label"):
    """``(texts, labels)`` of a ``.csv``, ``.tsv`` or ``.jsonl`` file; labels as names.

    Raises :class:`ClassifyError` naming the file for a missing column, no rows or an empty label.
    """
    path = Path(path)
    if not path.is_file():
        raise ClassifyError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        rows = _read_csv(path, "\t" if suffix == ".tsv" else ",")
    elif suffix in (".jsonl", ".json"):
        rows = _read_jsonl(path)
    else:
        raise ClassifyError(f"{path}: unknown format {suffix!r}; use .csv, .tsv or .jsonl")
    if not rows:
        raise ClassifyError(f"{path} is empty: it has no rows")
    texts, labels = [], []
    for line, row in rows:
        for column in (text_column, label_column):
            if column not in row:
                raise ClassifyError(
                    f"{path}: no column {column!r} (line {line}); columns: {', '.join(row)}"
                )
        if row[label_column] is None or label_name(row[label_column]) == "":
            raise ClassifyError(f"{path}: line {line} has an empty {label_column!r}")
        texts.append(str(row[text_column] or ""))
        labels.append(label_name(row[label_column]))
    return texts, labels


def _read_csv(path, delimiter):
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        return [(i + 2, row) for i, row in enumerate(reader)]


def _read_jsonl(path):
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if not isinstance(row, dict):
                raise ClassifyError(f"{path}: line {i + 1} is not a JSON object")
            rows.append((i + 1, row))
    return rows


def write_examples(path, texts, labels, text_column="text", label_column="label") -> None:
    """Write texts and labels as a ``.csv`` or ``.jsonl`` file (by suffix), columns named."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow([text_column, label_column])
            writer.writerows(zip(texts, labels))
    else:
        lines = [json.dumps({text_column: t, label_column: y}) for t, y in zip(texts, labels)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def toy_sentiment(n=300, seed=0, negated=0.2):
    """``(texts, labels)``: ``n`` generated movie-review sentences labelled ``positive`` or
    ``negative``, a toy set for smoke tests, docs and demos. A ``negated`` fraction says
    "not"/"never" before a word of the other sentiment, so single words do not decide."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        label = rng.choice(("positive", "negative"))
        flip = rng.random() < negated
        words = POSITIVE if (label == "positive") != flip else NEGATIVE
        w, v = rng.sample(words, 2)
        template = rng.choice(NEGATED if flip else TEMPLATES)
        texts.append(template.format(s=rng.choice(SUBJECTS), w=w, v=v))
        labels.append(label)
    return texts, labels


def split_indices(labels, fraction, seed):
    """``(train, valid)`` index arrays: a seeded split stratified by label (each label with at
    least two rows gives at least one validation row)."""
    if not 0 < fraction < 1:
        raise ClassifyError(f"split_indices: fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    train, valid = [], []
    for name in sorted(set(labels.tolist())):
        rows = rng.permutation(np.flatnonzero(labels == name))
        k = min(len(rows) - 1, max(1, round(fraction * len(rows))))
        valid.extend(rows[:k])
        train.extend(rows[k:])
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(valid, dtype=np.int64))


# ---------------------------------------------------------------- metrics
def macro_f1(y_true, y_pred) -> float:
    """The unweighted mean over labels of ``2 tp / (2 tp + fp + fn)``, labels being those in
    ``y_true`` or ``y_pred`` (scikit-learn's ``f1_score(average="macro")``)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"macro_f1: shapes differ: {y_true.shape} vs {y_pred.shape}")
    scores = []
    for c in np.union1d(y_true, y_pred):
        tp = np.sum((y_pred == c) & (y_true == c))
        wrong = np.sum((y_pred == c) != (y_true == c))  # fp + fn
        scores.append(2 * tp / (2 * tp + wrong))
    return float(np.mean(scores)) if scores else 0.0


# ---------------------------------------------------------------- tokenizer and model
def build_wordpiece(texts, vocab_size):
    """A BERT-style WordPiece tokenizer from ``texts``: the special tokens, every character
    (alone and as ``##c``), then the most frequent words (ties alphabetical) up to
    ``vocab_size``. Deterministic, unlike ``tokenizers``' trainer; unseen words split into
    characters."""
    normalizer = normalizers.BertNormalizer(lowercase=True)
    splitter = pre_tokenizers.BertPreTokenizer()
    counts = Counter(
        word
        for text in texts
        for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text))
    )
    chars = sorted({c for word in counts for c in word})
    vocab = list(SPECIALS) + chars + ["##" + c for c in chars]
    words = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
    vocab += words[: max(0, vocab_size - len(vocab))]
    ids = {token: i for i, token in enumerate(vocab)}
    backend = tokenizers.Tokenizer(tokenizers.models.WordPiece(ids, unk_token="[UNK]"))
    backend.normalizer, backend.pre_tokenizer = normalizer, splitter
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    backend.decoder = decoders.WordPiece()
    backend.add_special_tokens(list(SPECIALS))
    return backend


def save_wordpiece(backend, directory, max_length) -> None:
    """Write ``tokenizer.json`` and a ``tokenizer_config.json`` naming BERT's special tokens."""
    directory = Path(directory)
    backend.save(str(directory / "tokenizer.json"))
    names = ("pad", "unk", "cls", "sep", "mask")
    config = {f"{name}_token": token for name, token in zip(names, SPECIALS)}
    config.update(tokenizer_class="BertTokenizerFast", model_max_length=max_length)
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def copy_tokenizer(source, directory, max_length) -> None:
    """Copy a pretrained folder's tokenizer files, with ``model_max_length`` set to
    ``max_length`` so loading the copy truncates as training did."""
    source, directory = Path(source), Path(directory)
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            (directory / name).write_bytes((source / name).read_bytes())
    path = source / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    config["model_max_length"] = max_length
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def parse_model_spec(spec) -> dict | None:
    """BertConfig fields for ``tiny`` or ``tiny:key=value,...``; None for anything else."""
    name, _, overrides = str(spec).partition(":")
    if name != "tiny":
        return None
    fields = dict(TINY)
    for item in filter(None, overrides.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in BertConfig.__dataclass_fields__:
            raise ClassifyError(f"model spec {spec!r}: {item!r} is not a BertConfig field=value")
        default = BertConfig.__dataclass_fields__[key].default
        fields[key] = float(value) if default is None else type(default)(value)
    return fields


def with_labels(config, names):
    """``config`` with ``num_labels``, ``id2label`` and ``label2id`` for the label ``names``."""
    config.num_labels = len(names)
    config.extra["id2label"] = {str(i): name for i, name in enumerate(names)}
    config.extra["label2id"] = {name: i for i, name in enumerate(names)}
    return config


def prepare(model, texts, names, out, max_length, fresh=True):
    """``(model, tokenizer)`` for the ``model`` argument of :func:`train`. A ``fresh`` run
    writes the tokenizer files into ``out`` (a resumed one reads them back), with
    ``model_max_length`` the length texts are truncated to."""
    fields = parse_model_spec(model)
    if fields is None and not (Path(model) / "config.json").is_file():
        raise ClassifyError(
            f"model {model!r} is neither 'tiny[:k=v,...]' nor a folder with config.json"
        )
    if fields is not None:
        if fresh:
            backend = build_wordpiece(texts, fields["vocab_size"])
            save_wordpiece(backend, out, max_length)
        tokenizer = AutoTokenizer.from_pretrained(out)
        fields.update(vocab_size=tokenizer.vocab_size, max_position_embeddings=max_length)
        return BertForSequenceClassification(with_labels(BertConfig(**fields), names)), tokenizer
    config = with_labels(BertConfig.from_pretrained(model), names)
    if fresh:  # positions past the pretrained table have no embedding
        copy_tokenizer(model, out, min(max_length, config.max_position_embeddings))
    net = BertForSequenceClassification(config)
    state = load_checkpoint(model)
    head = {k: v for k, v in state.items() if k.startswith("classifier.")}
    if any(tuple(v.shape) != tuple(net.state_dict()[k].shape) for k, v in head.items()):
        state = {k: v for k, v in state.items() if k not in head}  # a new label set: new head
    net.load_hf_state_dict(state)
    return net, AutoTokenizer.from_pretrained(out)


# ---------------------------------------------------------------- batches and loops
def encode(tokenizer, texts):
    """Token id lists of ``texts``, truncated to the tokenizer's ``model_max_length``."""
    return tokenizer(list(texts), truncation=True)["input_ids"]


def batches(ids, targets, batch_size, pad_id, order=None):
    """Yield ``(input_ids, attention_mask, targets)`` tensors, padded to each batch's longest."""
    order = np.arange(len(ids)) if order is None else order
    for start in range(0, len(order), batch_size):
        rows = [ids[i] for i in order[start : start + batch_size]]
        width = max(1, max(map(len, rows)))
        x = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            x[r, : len(row)], mask[r, : len(row)] = row, 1
        y = np.asarray(targets, dtype=np.int64)[order[start : start + batch_size]]
        yield ember.tensor(x), ember.tensor(mask), ember.tensor(y)


def linear_schedule(opt, warmup, total):
    """Hugging Face's linear schedule: lr rises from 0 over ``warmup`` steps, then falls
    linearly to 0 at step ``total``."""

    def factor(step):
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return ember.optim.lr_scheduler.LambdaLR(opt, factor)


def make_optimizer(model, lr, weight_decay):
    """AdamW with ``weight_decay`` on matrices only, not on biases and LayerNorm weights."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return ember.optim.AdamW(groups, lr=lr)


def train_one_epoch(model, data, opt, sched, epoch, quiet=True, steps=None):
    """One pass over the ``(input_ids, mask, targets)`` batches ``data``; the mean loss."""
    model.train()
    total, loss_sum = 0, 0.0
    bar = tqdm(data, f"epoch {epoch} train", steps, disable=quiet, leave=False, mininterval=1.0)
    for x, mask, y in bar:
        loss, _ = model(x, mask, labels=y)
        opt.zero_grad()
        loss.backward()
        ember.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        total += y.shape[0]
        loss_sum += loss.item() * y.shape[0]
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return loss_sum / max(1, total)


def predict_proba(model, data):
    """Softmax probabilities ``(N, num_labels)`` over ``(input_ids, mask, ...)`` batches."""
    model.eval()
    out = []
    with ember.no_grad():
        for x, mask, *_ in data:
            out.append(ember.softmax(model(x, mask), dim=-1).numpy())
    return np.concatenate(out)


def scores(probs, targets) -> dict:
    """``{"accuracy", "macro_f1", "n"}`` of probabilities against integer targets."""
    pred = probs.argmax(axis=1)
    targets = np.asarray(targets)
    acc = float((pred == targets).mean()) if len(targets) else 0.0
    return {"accuracy": acc, "macro_f1": macro_f1(targets, pred), "n": len(targets)}


# ---------------------------------------------------------------- checkpoints and training
def save_state(path, model, opt, sched, epoch, names, settings) -> None:
    """Write what a bit-identical resume needs to ``path`` (atomically, via ``ember.save``)."""
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": epoch,
        "rng": ember.default_generator.get_state(),
        "labels": list(names),
        "args": json.dumps(settings, sort_keys=True, default=str),
    }
    ember.save(state, path)


def load_state(path, model, opt, sched, names) -> int:
    """Restore a checkpoint written by :func:`save_state`; returns the epochs already done."""
    state = ember.load(path)
    if list(state["labels"]) != list(names):
        raise ClassifyError(
            f"{path}: trained on labels {list(state['labels'])}, the data has {names}"
        )
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    ember.default_generator.set_state(state["rng"])
    return int(state["epoch"])


def load_splits(data, valid, valid_fraction, text_column, label_column, seed):
    """``(train_texts, train_labels, valid_texts, valid_labels, names)``; see :func:`train`."""
    texts, labels = read_examples(data, text_column, label_column)
    names = label_names(labels)
    if len(names) < 2:
        raise ClassifyError(
            f"{data}: every row has label {names[0]!r}; a classifier needs two or more"
        )
    if valid is None:
        tr, va = split_indices(labels, valid_fraction, seed)
        if not len(va):
            raise ClassifyError(f"{data}: no label has two rows to hold one out; pass a valid file")
        pick = lambda rows, idx: [rows[i] for i in idx]  # noqa: E731
        return pick(texts, tr), pick(labels, tr), pick(texts, va), pick(labels, va), names
    valid_texts, valid_labels = read_examples(valid, text_column, label_column)
    unknown = sorted(set(valid_labels) - set(names))
    if unknown:
        raise ClassifyError(f"{valid}: labels {unknown} do not occur in {data}")
    return texts, labels, valid_texts, valid_labels, names


def train(
    data,
    out,
    *,
    model="tiny",
    valid=None,
    valid_fraction=0.1,
    text_column="text",
    label_column="label",
    epochs=3,
    batch_size=16,
    lr=None,
    weight_decay=0.01,
    warmup_steps=0,
    max_length=128,
    seed=0,
    resume=False,
    stop_after=None,
    quiet=False,
    log=print,
):
    """Fine-tune a classifier on file ``data`` into folder ``out``; one metrics dict per epoch.

    Without ``valid`` (a file), a seeded stratified ``valid_fraction`` of ``data`` is held
    out. ``lr`` defaults to 5e-5 for a pretrained folder and 3e-3 for ``tiny``. ``stop_after``
    ends this run after that epoch (the schedule still spans ``epochs``); ``resume`` continues
    from ``out/checkpoint.ember``. ``quiet`` hides the progress bar; ``log`` gets a line per
    epoch. Raises :class:`ClassifyError` for unusable data or model.
    """
    settings = {k: v for k, v in locals().items() if k != "log"}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train_texts, train_labels, valid_texts, valid_labels, names = load_splits(
        data, valid, valid_fraction, text_column, label_column, seed
    )
    ckpt = out / CHECKPOINT
    fresh = not (resume and ckpt.is_file())
    ember.manual_seed(seed)
    net, tok = prepare(model, train_texts, names, out, max_length, fresh)
    if lr is None:
        lr = 3e-3 if parse_model_spec(model) is not None else 5e-5
    pad = tok.pad_token_id if tok.pad_token_id is not None else net.config.pad_token_id
    index = {name: i for i, name in enumerate(names)}
    train_ids, y_train = encode(tok, train_texts), [index[y] for y in train_labels]
    valid_ids, y_valid = encode(tok, valid_texts), [index[y] for y in valid_labels]
    opt = make_optimizer(net, lr, weight_decay)
    per_epoch = -(-len(train_ids) // batch_size)
    sched = linear_schedule(opt, warmup_steps, epochs * per_epoch)
    start = 0 if fresh else load_state(ckpt, net, opt, sched, names)
    if fresh:
        (out / "log.jsonl").unlink(missing_ok=True)
    else:
        log(f"resumed from {ckpt} after epoch {start}")
    last = epochs if stop_after is None else min(epochs, stop_after)
    history = []
    for epoch in range(start + 1, last + 1):
        t0 = time.perf_counter()
        order = np.random.default_rng([seed, epoch]).permutation(len(train_ids))
        batch_iter = batches(train_ids, y_train, batch_size, pad, order)
        loss = train_one_epoch(net, batch_iter, opt, sched, epoch, quiet, per_epoch)
        probs = predict_proba(net, batches(valid_ids, y_valid, batch_size, pad))
        row = {"epoch": epoch, "train_loss": loss}
        row.update({f"valid_{k}": v for k, v in scores(probs, y_valid).items()})
        row["seconds"] = round(time.perf_counter() - t0, 3)
        save_state(ckpt, net, opt, sched, epoch, names, settings)
        with open(out / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        log(
            f"epoch {epoch}/{epochs}  loss {loss:.4f}  valid accuracy {row['valid_accuracy']:.3f}"
            f"  macro-F1 {row['valid_macro_f1']:.3f}  ({row['seconds']:.1f}s)"
        )
        history.append(row)
    if last == epochs:
        net.save_pretrained(out)
    return history
