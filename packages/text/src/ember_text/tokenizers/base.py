"""The one Tokenizer interface: Hugging Face's call API on top of a backend's encode/decode.

A backend subclass supplies ``_encode_batch`` (texts to lists of ids and token type ids, with
truncation) and ``_decode``; this base class does padding, attention masks and tensors.
"""

import numpy as np

import ember

SPECIAL_NAMES = ("pad", "unk", "cls", "sep", "bos", "eos", "mask")


class Tokenizer:
    """Callable like a Hugging Face tokenizer: ``tok(texts, padding=True, truncation=True)``.

    Attributes ``pad_token``/``pad_token_id`` (and ``unk``, ``cls``, ``sep``, ``bos``, ``eos``,
    ``mask``) name the special tokens; ids are None where a token is not set.
    ``model_max_length`` bounds ``truncation=True`` without ``max_length``; ``padding_side``
    is ``"right"`` or ``"left"``; ``model_input_names`` lists the keys a call returns.
    """

    padding_side = "right"
    model_max_length = int(1e30)
    model_input_names = ("input_ids", "attention_mask")

    def _encode_batch(self, texts, pairs, add_special_tokens, max_length):
        raise NotImplementedError

    def _decode(self, ids, skip_special_tokens):
        raise NotImplementedError

    def token_to_id(self, token):
        """The id of ``token``, or None when it is not in the vocabulary."""
        raise NotImplementedError

    def __len__(self):
        return self.vocab_size

    def __getattr__(self, name):
        # pad_token_id, cls_token_id, ... follow the token attributes
        if name.endswith("_token_id") and name[: -len("_token_id")] in SPECIAL_NAMES:
            token = getattr(self, name[: -len("_id")], None)
            return None if token is None else self.token_to_id(token)
        if name.endswith("_token") and name[: -len("_token")] in SPECIAL_NAMES:
            return None
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def encode(
        self, text, text_pair=None, add_special_tokens=True, truncation=False, max_length=None
    ):
        """Token ids of one text (and an optional second segment) as a list of ints."""
        limit = self._limit(truncation, max_length)
        pairs = None if text_pair is None else [text_pair]
        return self._encode_batch([text], pairs, add_special_tokens, limit)[0][0]

    def decode(self, ids, skip_special_tokens=False):
        """Text of a sequence of ids (a list, NumPy array or ember tensor)."""
        return self._decode(_as_id_list(ids), skip_special_tokens)

    def batch_decode(self, sequences, skip_special_tokens=False):
        """``decode`` of each row of ``sequences``."""
        return [self.decode(row, skip_special_tokens) for row in _as_rows(sequences)]

    def _limit(self, truncation, max_length):
        if truncation in (False, None, "do_not_truncate"):
            return None
        return self.model_max_length if max_length is None else max_length

    def __call__(
        self,
        text,
        text_pair=None,
        padding=False,
        truncation=False,
        max_length=None,
        return_tensors=None,
        add_special_tokens=True,
        return_attention_mask=None,
        return_token_type_ids=None,
    ):
        """Encode a text or a list of texts into a dict of ``input_ids``, ``attention_mask``, ...

        ``padding`` is False, True / ``"longest"`` or ``"max_length"``; ``truncation`` is a
        bool; ``return_tensors`` is None (lists), ``"np"`` or ``"ember"`` (int64 arrays).
        """
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        pairs = None
        if text_pair is not None:
            pairs = [text_pair] if isinstance(text_pair, str) else list(text_pair)
            if len(pairs) != len(texts):
                raise ValueError(f"tokenizer: {len(texts)} texts but {len(pairs)} text pairs")
        limit = self._limit(truncation, max_length)
        rows = self._encode_batch(texts, pairs, add_special_tokens, limit)
        ids = [r[0] for r in rows]
        types = [r[1] for r in rows]
        masks = [[1] * len(r) for r in ids]
        if padding in (True, "longest", "max_length"):
            if padding == "max_length":
                length = self.model_max_length if max_length is None else max_length
            else:
                length = max(len(r) for r in ids)
            pad_id = self.pad_token_id
            if pad_id is None:
                raise ValueError("tokenizer: padding needs a pad token; set tokenizer.pad_token")
            ids = [self._pad(r, length, pad_id) for r in ids]
            types = [self._pad(r, length, 0) for r in types]
            masks = [self._pad(r, length, 0) for r in masks]
        elif padding not in (False, None, "do_not_pad"):
            raise ValueError(
                f"tokenizer: padding must be True, False, 'longest' or 'max_length', "
                f"got {padding!r}"
            )
        out = {"input_ids": ids}
        if return_token_type_ids or (
            return_token_type_ids is None and "token_type_ids" in self.model_input_names
        ):
            out["token_type_ids"] = types
        if return_attention_mask is not False:
            out["attention_mask"] = masks
        return {key: _convert(value, single, return_tensors) for key, value in out.items()}

    def _pad(self, row, length, value):
        filler = [value] * max(0, length - len(row))
        return row + filler if self.padding_side == "right" else filler + row


def _convert(rows, single, return_tensors):
    if return_tensors is None:
        return rows[0] if single else rows
    if len({len(r) for r in rows}) > 1:
        raise ValueError("tokenizer: sequences differ in length; pass padding=True to make tensors")
    array = np.asarray(rows, dtype=np.int64)
    if return_tensors == "np":
        return array
    if return_tensors in ("ember", "pt"):
        return ember.tensor(array)
    raise ValueError(
        f"tokenizer: return_tensors must be None, 'np' or 'ember', got {return_tensors!r}"
    )


def _as_id_list(ids):
    if hasattr(ids, "numpy"):
        ids = ids.numpy()
    return [int(i) for i in np.asarray(ids).reshape(-1)]


def _as_rows(sequences):
    if hasattr(sequences, "numpy"):
        sequences = sequences.numpy()
    return list(sequences)
