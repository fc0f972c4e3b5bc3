"""Fine-tune and use a text classifier from the command line; the recipe is
:mod:`ember_text.tasks.classify`.

    python -m ember_text.classify train --data reviews.csv --model tiny --epochs 3 --out runs/clf
    python -m ember_text.classify predict runs/clf "a wonderful film" "a dull plot"
    python -m ember_text.classify evaluate runs/clf --data test.csv

``train`` reads a ``.csv``, ``.tsv`` or ``.jsonl`` file (``--text-column``, ``--label-column``),
holds out a seeded stratified ``--valid-fraction`` unless ``--valid FILE`` is given, prints the
training loss and validation accuracy and macro-F1 after every epoch and checkpoints to OUT
(``--resume`` continues from there). ``--model`` is ``tiny`` (``tiny:hidden_size=64,...``) or a
Hugging Face layout BERT folder. ``predict`` prints ``label<TAB>probability<TAB>text`` a line;
``evaluate`` prints accuracy and macro-F1 of a labelled file.
"""

from __future__ import annotations

import argparse

import ember

from .pretrained import AutoModelForSequenceClassification
from .tasks.classify import (
    ClassifyError,
    batches,
    encode,
    label_name,
    predict_proba,
    read_examples,
    scores,
    train,
)
from .tokenizers import AutoTokenizer


class TextClassifier:
    """A folder written by ``train`` that labels texts: ``TextClassifier.from_pretrained(OUT)``.

    ``labels`` lists the label names by id; texts are truncated to the tokenizer's
    ``model_max_length``, the length training used.
    """

    def __init__(self, model, tokenizer, labels):
        self.model, self.tokenizer, self.labels = model.eval(), tokenizer, list(labels)

    @classmethod
    def from_pretrained(cls, directory):
        """Load the model, tokenizer and ``id2label`` of a fine-tuned classifier folder."""
        model = AutoModelForSequenceClassification.from_pretrained(directory)
        tok = AutoTokenizer.from_pretrained(directory)
        id2label = model.config.extra.get("id2label") or {}
        labels = [id2label.get(str(i), f"LABEL_{i}") for i in range(model.config.num_labels)]
        tok.model_max_length = min(tok.model_max_length, model.config.max_position_embeddings)
        return cls(model, tok, labels)

    def predict_proba(self, texts, batch_size=32):
        """Label probabilities, a ``(len(texts), len(labels))`` NumPy array."""
        ids = encode(self.tokenizer, texts)
        pad = self.tokenizer.pad_token_id or 0
        return predict_proba(self.model, batches(ids, [0] * len(ids), batch_size, pad))

    def predict(self, texts, batch_size=32):
        """``[(label, probability)]``: the most probable label of each text."""
        probs = self.predict_proba(texts, batch_size)
        return [(self.labels[i], float(p[i])) for p, i in zip(probs, probs.argmax(axis=1))]

    def evaluate(self, texts, labels, batch_size=32) -> dict:
        """``{"accuracy", "macro_f1", "n"}`` against label names (unknown names raise)."""
        index = {name: i for i, name in enumerate(self.labels)}
        unknown = sorted({label_name(y) for y in labels} - set(index))
        if unknown:
            raise ClassifyError(f"labels {unknown} are not among the model's {self.labels}")
        targets = [index[label_name(y)] for y in labels]
        return scores(self.predict_proba(texts, batch_size), targets)


def parse_args(argv=None):
    """The command line; see ``python -m ember_text.classify {train,predict,evaluate} --help``."""
    ap = argparse.ArgumentParser(prog="python -m ember_text.classify", description=__doc__)
    ap.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fine-tune a classifier on a labelled file")
    t.add_argument("--data", required=True, help="training file: .csv, .tsv or .jsonl")
    held_out = t.add_mutually_exclusive_group()
    held_out.add_argument("--valid", default=None, help="validation file (default: a split)")
    held_out.add_argument("--valid-fraction", type=float, default=0.1)
    t.add_argument("--model", default="tiny", help="tiny, tiny:k=v,... or a BERT folder")
    t.add_argument("--out", default="runs/classify", help="checkpoint and model folder")
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--stop-after", type=int, default=None, help="end this run after that epoch")
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=None, help="default 3e-3 tiny, 5e-5 pretrained")
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--warmup-steps", type=int, default=0)
    t.add_argument("--max-length", type=int, default=128, help="tokens kept per text")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.ember")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    p = sub.add_parser("predict", help="label texts with a trained folder")
    p.add_argument("directory")
    p.add_argument("texts", nargs="+")
    e = sub.add_parser("evaluate", help="accuracy and macro-F1 on a labelled file")
    e.add_argument("directory")
    e.add_argument("--data", required=True)
    for parser in (t, e):
        parser.add_argument("--text-column", default="text")
        parser.add_argument("--label-column", default="label")
    for parser in (p, e):
        parser.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--threads", type=int, default=None, help="BLAS/compute threads")
    return ap.parse_args(argv)


def run(args):
    """Carry out parsed ``args``: the history of ``train``, the predictions of ``predict`` or
    the scores of ``evaluate``, printing what the command line shows."""
    if args.command == "train":
        if args.threads:
            ember.set_num_threads(args.threads)
        options = vars(args).copy()
        for key in ("command", "data", "out", "threads"):
            options.pop(key)
        return train(args.data, args.out, **options)
    clf = TextClassifier.from_pretrained(args.directory)
    if args.command == "predict":
        results = clf.predict(args.texts, args.batch_size)
        for text, (label, prob) in zip(args.texts, results):
            print(f"{label}\t{prob:.4f}\t{text}")
        return results
    texts, labels = read_examples(args.data, args.text_column, args.label_column)
    result = clf.evaluate(texts, labels, args.batch_size)
    print(f"accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}  n {result['n']}")
    return result


def main(argv=None):
    """Run the command line; unusable data or models exit with ``error: ...``, not a traceback."""
    args = parse_args(argv)
    try:
        return run(args)
    except ClassifyError as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
