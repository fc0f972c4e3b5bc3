"""SentencePiece models (unigram or BPE): train from text files, load, save, encode, decode."""

import shutil
import tempfile
from pathlib import Path

import sentencepiece as spm

from .base import Tokenizer


class SentencePieceTokenizer(Tokenizer):
    """A ``.model`` file behind the common interface.

    Ids follow the trained model: by default ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2 and, for models
    trained by :meth:`train`, ``<pad>`` 3. ``add_bos``/``add_eos`` say whether calls with
    ``add_special_tokens=True`` put ``<s>`` before and ``</s>`` after each text.
    """

    def __init__(self, model_file, add_bos=False, add_eos=False):
        self.model_file = str(model_file)
        self.processor = spm.SentencePieceProcessor(model_file=self.model_file)
        self.add_bos, self.add_eos = add_bos, add_eos
        p = self.processor
        for name, index in (
            ("unk", p.unk_id()),
            ("bos", p.bos_id()),
            ("eos", p.eos_id()),
            ("pad", p.pad_id()),
        ):
            if index >= 0:
                setattr(self, f"{name}_token", p.id_to_piece(index))

    @classmethod
    def train(cls, files, vocab_size, model_type="unigram", model_prefix=None, **options):
        """Train a model on text files (one sentence a line) and return its tokenizer.

        ``model_type`` is ``"unigram"``, ``"bpe"``, ``"char"`` or ``"word"``. The model is
        written to ``model_prefix + ".model"`` (a fresh temporary folder when None); extra
        ``options`` go to ``sentencepiece.SentencePieceTrainer``.
        """
        if isinstance(files, (str, Path)):
            files = [files]
        if model_prefix is None:
            model_prefix = str(Path(tempfile.mkdtemp(prefix="ember_spm_")) / "spm")
        settings = {"pad_id": 3, "hard_vocab_limit": False, "minloglevel": 2}
        settings.update(options)
        spm.SentencePieceTrainer.train(
            input=",".join(str(f) for f in files),
            model_prefix=str(model_prefix),
            vocab_size=vocab_size,
            model_type=model_type,
            **settings,
        )
        return cls(str(model_prefix) + ".model")

    @classmethod
    def from_file(cls, path, **kwargs):
        """Load a ``.model`` file."""
        return cls(path, **kwargs)

    def save(self, path):
        """Copy the model file to ``path``."""
        if Path(path).resolve() != Path(self.model_file).resolve():
            shutil.copyfile(self.model_file, path)

    @property
    def vocab_size(self):
        """Number of pieces."""
        return self.processor.get_piece_size()

    def token_to_id(self, token):
        """The id of ``token``, or None when it is not a piece."""
        index = self.processor.piece_to_id(token)
        if index == self.processor.unk_id() and token != self.processor.id_to_piece(index):
            return None
        return index

    def tokenize(self, text):
        """The pieces of ``text``."""
        return self.processor.encode(text, out_type=str)

    def _encode_batch(self, texts, pairs, add_special_tokens, max_length):
        if pairs is not None:
            raise NotImplementedError("SentencePieceTokenizer: text pairs are not supported")
        bos = [self.bos_token_id] if add_special_tokens and self.add_bos else []
        eos = [self.eos_token_id] if add_special_tokens and self.add_eos else []
        rows = []
        for ids in self.processor.encode(texts):
            if max_length is not None:
                ids = ids[: max(0, max_length - len(bos) - len(eos))]
            ids = bos + ids + eos
            rows.append((ids, [0] * len(ids)))
        return rows

    def _decode(self, ids, skip_special_tokens):
        p = self.processor
        if skip_special_tokens:
            ids = [i for i in ids if not (p.is_control(i) or p.is_unknown(i))]
        return p.decode(ids)
