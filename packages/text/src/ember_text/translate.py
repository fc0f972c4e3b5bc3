"""Train and use a small translation Transformer from the command line; the recipe is
:mod:`ember_text.tasks.translate`.

    python -m ember_text.translate train --src train.src --tgt train.tgt --vocab-size 8000 \\
        --out runs/mt --epochs 10 [--valid-src valid.src --valid-tgt valid.tgt] [--resume]
    python -m ember_text.translate translate runs/mt --beams 4 < input.txt
    python -m ember_text.translate evaluate runs/mt --src test.src --ref test.tgt --beams 4

``train`` learns a SentencePiece vocabulary shared by both languages, trains with label
smoothing and a warmup schedule, prints the losses of every epoch and checkpoints to OUT
(``--resume`` continues from there). ``translate`` prints one translation per input line;
``evaluate`` prints BLEU (with the optional ``sacrebleu``: ``pip install 'ember-text[bleu]'``)
and the exact-match rate.
"""

from __future__ import annotations

import argparse
import sys

import ember

from .tasks.translate import TranslateError, Translator, read_pairs, train


def parse_args(argv=None):
    """The command line; see ``python -m ember_text.translate {train,translate,evaluate} -h``."""
    ap = argparse.ArgumentParser(prog="python -m ember_text.translate", description=__doc__)
    ap.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model on aligned source and target files")
    t.add_argument("--src", required=True, help="source sentences, one a line")
    t.add_argument("--tgt", required=True, help="their translations, line by line")
    t.add_argument("--valid-src", default=None)
    t.add_argument("--valid-tgt", default=None)
    t.add_argument("--vocab-size", type=int, default=1000, help="shared SentencePiece pieces")
    t.add_argument("--out", default="runs/translate", help="checkpoint and model folder")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--stop-after", type=int, default=None, help="end this run after that epoch")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--warmup-steps", type=int, default=100)
    t.add_argument("--label-smoothing", type=float, default=0.1)
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--max-length", type=int, default=128, help="ids kept per sentence")
    t.add_argument("--d-model", type=int, default=None)
    t.add_argument("--layers", type=int, default=None, help="encoder and decoder layers each")
    t.add_argument("--heads", type=int, default=None)
    t.add_argument("--ffn-dim", type=int, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.ember")
    t.add_argument("--threads", type=int, default=None, help="BLAS/compute threads")
    for name, helptext in (
        ("translate", "translate stdin, a line at a time"),
        ("evaluate", "BLEU and exact match against references"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("directory")
        p.add_argument("--beams", type=int, default=4)
        p.add_argument("--batch-size", type=int, default=32)
        if name == "evaluate":
            p.add_argument("--src", required=True)
            p.add_argument("--ref", required=True)
    return ap.parse_args(argv)


def _overrides(args):
    pairs = {
        "d_model": args.d_model,
        "encoder_layers": args.layers,
        "decoder_layers": args.layers,
        "encoder_attention_heads": args.heads,
        "decoder_attention_heads": args.heads,
        "encoder_ffn_dim": args.ffn_dim,
        "decoder_ffn_dim": args.ffn_dim,
    }
    return {k: v for k, v in pairs.items() if v is not None}


def run(args):
    """Carry out parsed ``args``, printing what the command line shows; returns the history
    of ``train``, the translations of ``translate`` or the scores of ``evaluate``."""
    if args.command == "train":
        if args.threads:
            ember.set_num_threads(args.threads)
        options = vars(args).copy()
        for key in ("command", "src", "tgt", "out", "threads", "d_model", "layers", "heads"):
            options.pop(key)
        options.pop("ffn_dim")
        return train(args.src, args.tgt, args.out, model_overrides=_overrides(args), **options)
    translator = Translator.from_pretrained(args.directory)
    if args.command == "translate":
        lines = [line.rstrip("\n") for line in sys.stdin]
        results = translator.translate(lines, num_beams=args.beams, batch_size=args.batch_size)
        for line in results:
            print(line)
        return results
    sources, references = read_pairs(args.src, args.ref)
    result = translator.evaluate(sources, references, args.beams, args.batch_size)
    print(f"BLEU {result['bleu']:.2f}  exact match {result['exact_match']:.3f}  n {result['n']}")
    return result


def main(argv=None):
    """Run the command line; unusable files or a missing sacrebleu exit with ``error: ...``."""
    args = parse_args(argv)
    try:
        return run(args)
    except (TranslateError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
