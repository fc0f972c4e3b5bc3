"""``AutoTokenizer``: pick the tokenizer class a Hugging Face layout directory needs."""

import json

from ..hub import TOKENIZER_FILES, resolve
from .hf import HFTokenizer
from .sentencepiece import SentencePieceTokenizer

SENTENCEPIECE_FILES = ("tokenizer.model", "spiece.model", "sentencepiece.bpe.model")


class AutoTokenizer:
    """Load a tokenizer from a directory, like ``transformers.AutoTokenizer``.

    tokenizer.json (or legacy vocab.txt / vocab.json + merges.txt) gives an
    :class:`HFTokenizer`; a SentencePiece model file alone gives a :class:`SentencePieceTokenizer`.
    """

    def __init__(self):
        raise TypeError(
            "AutoTokenizer is not instantiated; use AutoTokenizer.from_pretrained(path)"
        )

    @staticmethod
    def from_pretrained(path):
        """The tokenizer in directory ``path``, a tokenizer.json / .model file, or a hub repo id."""
        path = resolve(path, TOKENIZER_FILES, "AutoTokenizer.from_pretrained")
        if path.is_file():
            if path.suffix == ".model":
                return SentencePieceTokenizer.from_file(path)
            return HFTokenizer.from_file(path)
        if not path.is_dir():
            raise FileNotFoundError(f"AutoTokenizer.from_pretrained: no such directory {path}")
        legacy = (path / "vocab.txt").is_file() or (path / "vocab.json").is_file()
        if (path / "tokenizer.json").is_file() or legacy:
            return HFTokenizer.from_pretrained(path)
        for name in SENTENCEPIECE_FILES:
            if (path / name).is_file():
                config_path = path / "tokenizer_config.json"
                config = json.loads(config_path.read_text()) if config_path.is_file() else {}
                return SentencePieceTokenizer(
                    path / name,
                    add_bos=config.get("add_bos_token", False),
                    add_eos=config.get("add_eos_token", False),
                )
        raise FileNotFoundError(f"AutoTokenizer.from_pretrained: no tokenizer files in {path}")
