"""Hugging Face ``tokenizer.json`` files (WordPiece, byte-level BPE, ...) via ``tokenizers``.

Legacy ``vocab.txt`` (BERT WordPiece) and ``vocab.json`` + ``merges.txt`` (GPT-2 byte-level BPE)
directories are built into the same ``tokenizers`` pipelines Hugging Face converts them to.
"""

import json
from pathlib import Path

import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

from .base import SPECIAL_NAMES, Tokenizer

# tokenizer classes whose model inputs include token_type_ids (transformers' model_input_names)
TOKEN_TYPE_CLASSES = {"BertTokenizer", "ElectraTokenizer", "AlbertTokenizer", "FunnelTokenizer"}


class HFTokenizer(Tokenizer):
    """A ``tokenizers.Tokenizer`` behind the common interface.

    >>> from tokenizers import Tokenizer as Backend, models, pre_tokenizers
    >>> backend = Backend(models.WordLevel({"[PAD]": 0, "hi": 1, "there": 2}, unk_token="[PAD]"))
    >>> backend.pre_tokenizer = pre_tokenizers.Whitespace()
    >>> tok = HFTokenizer(backend, pad_token="[PAD]")
    >>> tok(["hi there", "hi"], padding=True)["input_ids"]
    [[1, 2], [1, 0]]
    """

    def __init__(self, backend, model_input_names=None, model_max_length=None, **special_tokens):
        self.backend = backend
        backend.no_truncation()
        backend.no_padding()
        for name, token in special_tokens.items():
            if name[: -len("_token")] not in SPECIAL_NAMES:
                raise TypeError(f"HFTokenizer: unknown argument {name!r}")
            setattr(self, name, token)
        if model_input_names is not None:
            self.model_input_names = tuple(model_input_names)
        if model_max_length is not None:
            self.model_max_length = int(model_max_length)

    @property
    def vocab_size(self):
        """Number of ids, added tokens included."""
        return self.backend.get_vocab_size(with_added_tokens=True)

    def token_to_id(self, token):
        """The id of ``token``, or None when it is not in the vocabulary."""
        return self.backend.token_to_id(token)

    def tokenize(self, text):
        """The token strings of ``text``, without special tokens."""
        return self.backend.encode(text, add_special_tokens=False).tokens

    def _encode_batch(self, texts, pairs, add_special_tokens, max_length):
        if max_length is None:
            self.backend.no_truncation()
        else:
            self.backend.enable_truncation(max_length)
        try:
            inputs = texts if pairs is None else list(zip(texts, pairs))
            encodings = self.backend.encode_batch(inputs, add_special_tokens=add_special_tokens)
        finally:
            self.backend.no_truncation()
        return [(list(e.ids), list(e.type_ids)) for e in encodings]

    def _decode(self, ids, skip_special_tokens):
        return self.backend.decode(ids, skip_special_tokens=skip_special_tokens)

    def save(self, path):
        """Write the backend to a ``tokenizer.json`` file at ``path``."""
        self.backend.save(str(path))

    @classmethod
    def from_file(cls, path, **kwargs):
        """Load a ``tokenizer.json`` file; ``kwargs`` set special tokens (``pad_token="[PAD]"``)."""
        return cls(tokenizers.Tokenizer.from_file(str(path)), **kwargs)

    @classmethod
    def from_pretrained(cls, directory):
        """Load a Hugging Face layout directory: tokenizer.json or legacy vocab files.

        Special tokens and ``model_max_length`` come from ``tokenizer_config.json`` and
        ``special_tokens_map.json`` when present.
        """
        directory = Path(directory)
        config = _read_config(directory)
        if (directory / "tokenizer.json").is_file():
            backend = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
        elif (directory / "vocab.txt").is_file():
            backend = _wordpiece_from_vocab(directory / "vocab.txt", config)
        elif (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file():
            backend = _byte_level_from_files(directory, config)
        else:
            raise FileNotFoundError(
                f"HFTokenizer.from_pretrained: {directory} has no tokenizer.json, vocab.txt "
                "or vocab.json + merges.txt"
            )
        specials = {}
        for name in SPECIAL_NAMES:
            token = config.get(f"{name}_token")
            if isinstance(token, dict):
                token = token.get("content")
            if token is not None:
                specials[f"{name}_token"] = token
        names = config.get("model_input_names")
        if names is None:
            class_name = str(config.get("tokenizer_class", "")).removesuffix("Fast")
            names = ["input_ids", "attention_mask"]
            if class_name in TOKEN_TYPE_CLASSES:
                names.insert(1, "token_type_ids")
        return cls(
            backend,
            model_input_names=names,
            model_max_length=config.get("model_max_length"),
            **specials,
        )


def _read_config(directory):
    config = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = directory / name
        if path.is_file():
            config.update(json.loads(path.read_text(encoding="utf-8")))
    return config


def _wordpiece_from_vocab(path, config):
    vocab = {}
    for index, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        vocab.setdefault(line.rstrip("\n"), index)
    unk, cls, sep = (
        config.get(k, d)
        for k, d in (("unk_token", "[UNK]"), ("cls_token", "[CLS]"), ("sep_token", "[SEP]"))
    )
    backend = tokenizers.Tokenizer(models.WordPiece(vocab, unk_token=unk))
    lower = config.get("do_lower_case", True)
    backend.normalizer = normalizers.BertNormalizer(
        lowercase=lower, strip_accents=config.get("strip_accents")
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
    )
    backend.decoder = decoders.WordPiece()
    _add_special(backend, config)
    return backend


def _byte_level_from_files(directory, config):
    model = models.BPE.from_file(str(directory / "vocab.json"), str(directory / "merges.txt"))
    backend = tokenizers.Tokenizer(model)
    prefix = config.get("add_prefix_space", False)
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix)
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    backend.decoder = decoders.ByteLevel()
    _add_special(backend, config)
    return backend


def _add_special(backend, config):
    tokens = []
    for name in SPECIAL_NAMES:
        token = config.get(f"{name}_token")
        if isinstance(token, dict):
            token = token.get("content")
        if token is not None and token not in tokens:
            tokens.append(token)
    backend.add_special_tokens(tokens)
