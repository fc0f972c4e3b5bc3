"""Tokenizers behind one interface: Hugging Face tokenizer.json files and SentencePiece models."""

from .auto import AutoTokenizer
from .base import Tokenizer
from .hf import HFTokenizer
from .sentencepiece import SentencePieceTokenizer

__all__ = ["AutoTokenizer", "HFTokenizer", "SentencePieceTokenizer", "Tokenizer"]
