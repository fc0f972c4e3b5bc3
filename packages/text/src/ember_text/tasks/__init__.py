"""Task recipes on ember_text's models, each also a command line: ``classify`` (fine-tune a
sequence classifier on a CSV or JSONL file)."""
