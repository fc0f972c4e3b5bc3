"""Text for ember, the PyTorch-like library (a Hugging Face-style toolkit on ember).

What will live here: ``tokenizers`` (SentencePiece train/load/encode; tokenizer.json, WordPiece
and byte-level BPE through the ``tokenizers`` library, behind one Tokenizer interface),
``models`` (BERT-family encoder, GPT-2-style decoder with KV cache, encoder-decoder
Transformer), ``generation`` (greedy, sampling, beam search), ``pretrained`` (Hugging Face
layout directories), ``tasks`` (sentiment classification, translation), ``AutoTokenizer``,
``AutoModel`` and ``SentenceEncoder``. It uses only ember's public API.
"""

__version__ = "0.1.0"
