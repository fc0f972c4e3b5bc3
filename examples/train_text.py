"""Fine-tune ember_text's tiny BERT classifier on generated movie-review sentences and report
validation accuracy; exits non-zero below --min-accuracy. `nox -s demo` runs it.

    python examples/train_text.py [--rows 600] [--epochs 20] [--seed 0] [--out DIR]

A fifth of the sentences are negated ("the plot was not fun"), so a bag of words is not enough.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from ember_text.classify import TextClassifier
from ember_text.tasks.classify import toy_sentiment, train, write_examples


def main(argv=None) -> float:
    """Train, evaluate on a fresh test set, and return the final validation accuracy."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-accuracy", type=float, default=0.9)
    ap.add_argument("--out", default=None, help="keep the trained folder here (default: temp)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="train_text_") as tmp:
        out = args.out or f"{tmp}/model"
        texts, labels = toy_sentiment(args.rows, seed=args.seed)
        write_examples(f"{tmp}/reviews.csv", texts, labels)
        t0 = time.perf_counter()
        history = train(
            f"{tmp}/reviews.csv",
            out,
            model="tiny",
            epochs=args.epochs,
            valid_fraction=0.2,
            warmup_steps=10,
            seed=args.seed,
            quiet=True,  # the per-epoch lines are progress enough
        )
        seconds = time.perf_counter() - t0
        test_texts, test_labels = toy_sentiment(200, seed=args.seed + 1000)
        test = TextClassifier.from_pretrained(out).evaluate(test_texts, test_labels)
    last = history[-1]
    acc = last["valid_accuracy"]
    print(
        f"validation accuracy: {acc:.4f}  macro-F1 {last['valid_macro_f1']:.4f} "
        f"({last['valid_n']} sentences, {args.epochs} epochs in {seconds:.1f}s)"
    )
    print(f"test accuracy: {test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}")
    if acc < args.min_accuracy:
        print(f"FAILED: validation accuracy {acc:.4f} < {args.min_accuracy}", file=sys.stderr)
        sys.exit(1)
    return acc


if __name__ == "__main__":
    main()
