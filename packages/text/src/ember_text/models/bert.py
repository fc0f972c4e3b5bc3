"""BERT encoder with Hugging Face's module tree, so state_dict keys match ``transformers``."""

import math
from dataclasses import dataclass

import ember
import ember.nn.functional as F
from ember import nn

from ..pretrained import PretrainedConfig, PreTrainedModel


@dataclass
class BertConfig(PretrainedConfig):
    """BERT hyperparameters, with the field names of Hugging Face's ``config.json``."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    num_labels: int = 2
    classifier_dropout: float | None = None
    model_type: str = "bert"


def activation(name):
    """The function for a ``hidden_act`` / ``activation_function`` name of a config."""
    table = {
        "gelu": F.gelu,
        "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
        "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "relu": F.relu,
        "tanh": ember.tanh,
        "silu": F.silu,
    }
    if name not in table:
        raise ValueError(f"activation: unknown activation {name!r}; known: {sorted(table)}")
    return table[name]


class BertEmbeddings(nn.Module):
    """Word + position + token type embeddings, then LayerNorm and dropout."""

    def __init__(self, config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids=None):
        T = input_ids.shape[1]
        positions = ember.arange(T).unsqueeze(0)  # (1, T)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        if token_type_ids is None:  # all type 0: add that row, with no batch-sized constant
            x = x + self.token_type_embeddings.weight[0]  # (B, T, H)
        else:
            x = x + self.token_type_embeddings(token_type_ids)  # (B, T, H)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention with separate query/key/value layers."""

    def __init__(self, config):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(
                f"BertSelfAttention: hidden_size {config.hidden_size} is not a multiple of "
                f"num_attention_heads {config.num_attention_heads}"
            )
        self.heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x, mask=None):
        B, T, H = x.shape
        d = H // self.heads

        def split(t):
            return t.view(B, T, self.heads, d).transpose(1, 2)  # (B, heads, T, d)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        p = self.dropout_p if self.training else 0.0
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=p, scale=1 / math.sqrt(d)
        )
        return y.transpose(1, 2).reshape(B, T, H)  # (B, T, H)


class BertSelfOutput(nn.Module):
    """Projection after attention, dropout, residual and LayerNorm."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h, residual):
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class BertAttention(nn.Module):
    """``self`` (attention) followed by ``output`` (projection + residual + norm)."""

    def __init__(self, config):
        super().__init__()
        self.self = BertSelfAttention(config)  # HF's key name is "attention.self"
        self.output = BertSelfOutput(config)

    def forward(self, x, mask=None):
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    """The feed-forward expansion: dense then activation."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, x):
        return self.act(self.dense(x))  # (B, T, intermediate)


class BertOutput(nn.Module):
    """The feed-forward contraction, dropout, residual and LayerNorm."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h, residual):
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class BertLayer(nn.Module):
    """One post-norm encoder layer: attention, intermediate, output."""

    def __init__(self, config):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, x, mask=None):
        a = self.attention(x, mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    """A stack of ``num_hidden_layers`` BertLayers under the key ``layer``."""

    def __init__(self, config):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, x, mask=None):
        for block in self.layer:
            x = block(x, mask)
        return x


class BertPooler(nn.Module):
    """tanh(dense(hidden state of the first token))."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x):
        return ember.tanh(self.dense(x[:, 0]))  # (B, H)


class BertModel(PreTrainedModel):
    """The BERT encoder; ``forward`` returns ``(last_hidden_state, pooler_output)``.

    >>> model = BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
    ...                              num_attention_heads=2, intermediate_size=16))
    >>> hidden, pooled = model(ember.tensor([[1, 2, 3]]))
    >>> tuple(hidden.shape), tuple(pooled.shape)
    ((1, 3, 8), (1, 8))
    """

    config_class = BertConfig
    base_model_prefix = "bert"
    # older transformers saved the position-id buffer; it is arange(T), rebuilt in forward
    _keys_to_ignore_on_load = (r"embeddings\.position_ids$",)

    def __init__(self, config, add_pooling_layer=True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        mask = None
        if attention_mask is not None:
            mask = (attention_mask != 0).view(attention_mask.shape[0], 1, 1, -1)  # (B, 1, 1, T)
        hidden = self.encoder(self.embeddings(input_ids, token_type_ids), mask)  # (B, T, H)
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return hidden, pooled


class BertForSequenceClassification(PreTrainedModel):
    """BERT with dropout and a linear ``classifier`` on the pooled output.

    ``forward`` returns logits of shape (B, num_labels), or ``(loss, logits)`` given ``labels``.
    """

    config_class = BertConfig
    base_model_prefix = "bert"
    # older transformers saved the position-id buffer; it is arange(T), rebuilt in forward
    _keys_to_ignore_on_load = (r"embeddings\.position_ids$",)

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        p = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if p is None else p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        _, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        logits = self.classifier(self.dropout(pooled))  # (B, num_labels)
        if labels is None:
            return logits
        return F.cross_entropy(logits, labels), logits
