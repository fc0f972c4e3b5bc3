"""Task recipes on ember_text's models, each also a command line: ``classify`` (fine-tune a
sequence classifier on a CSV or JSONL file) and ``translate`` (train a small translation
Transformer on parallel text with a SentencePiece vocabulary, decode with beam search, score
with BLEU)."""
