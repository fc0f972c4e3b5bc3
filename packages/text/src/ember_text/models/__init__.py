"""Models with Hugging Face's module trees and state_dict keys: BERT, GPT-2 and Marian."""

from .bert import BertConfig, BertForSequenceClassification, BertModel
from .gpt2 import GPT2Config, GPT2LMHeadModel, GPT2Model
from .marian import Transformer, TransformerConfig, TransformerModel

# model_type -> task -> class, for the Auto classes
MODEL_CLASSES = {
    "bert": {"base": BertModel, "sequence-classification": BertForSequenceClassification},
    "gpt2": {"base": GPT2Model, "causal-lm": GPT2LMHeadModel},
    "marian": {"base": TransformerModel, "seq2seq-lm": Transformer},
}

__all__ = [
    "BertConfig",
    "BertForSequenceClassification",
    "BertModel",
    "GPT2Config",
    "GPT2LMHeadModel",
    "GPT2Model",
    "MODEL_CLASSES",
    "Transformer",
    "TransformerConfig",
    "TransformerModel",
]
