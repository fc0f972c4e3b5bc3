"""Text for ember, the PyTorch-like library (a Hugging Face-style toolkit on ember).

``tokenizers`` (SentencePiece train/load/encode; tokenizer.json, WordPiece and byte-level BPE
through the ``tokenizers`` library, behind one Tokenizer interface), ``models`` (BERT encoder,
GPT-2 decoder with KV cache), ``generation`` (greedy and sampling), ``pretrained`` (Hugging
Face layout directories), ``AutoTokenizer`` and ``AutoModel``. It uses only ember's public API.
"""

__version__ = "0.1.0"

from .generation import generate, generate_seq2seq
from .models import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    GPT2Model,
    Transformer,
    TransformerConfig,
    TransformerModel,
)
from .pretrained import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
)
from .sentence import SentenceEncoder
from .tokenizers import AutoTokenizer, HFTokenizer, SentencePieceTokenizer, Tokenizer
