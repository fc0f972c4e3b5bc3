"""Encoder-decoder Transformer with MarianMT's module tree, so state_dict keys match transformers.

The layout is Hugging Face's ``MarianMTModel``: post-norm layers (residual, then LayerNorm), no
embedding LayerNorm, sinusoidal positions that are computed rather than stored (sines in the first
half of each vector, cosines in the second), token embeddings shared by the encoder, the decoder
and the output layer, and a ``final_logits_bias`` buffer added to the logits. The decoder keeps a
cache per layer: self-attention keys/values grow by one step per token, cross-attention
keys/values are computed from the encoder output once.
"""

import math
from dataclasses import dataclass

import numpy as np

import ember
import ember.nn.functional as F
from ember import nn

from ..generation import generate_seq2seq
from ..pretrained import PretrainedConfig, PreTrainedModel
from .bert import activation


@dataclass
class TransformerConfig(PretrainedConfig):
    """Encoder-decoder hyperparameters, with the field names of Marian's ``config.json``."""

    vocab_size: int = 58101
    decoder_vocab_size: int | None = None
    max_position_embeddings: int = 1024
    d_model: int = 1024
    encoder_layers: int = 12
    encoder_ffn_dim: int = 4096
    encoder_attention_heads: int = 16
    decoder_layers: int = 12
    decoder_ffn_dim: int = 4096
    decoder_attention_heads: int = 16
    activation_function: str = "gelu"
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    init_std: float = 0.02
    scale_embedding: bool = False
    pad_token_id: int = 58100
    eos_token_id: int = 0
    bos_token_id: int | None = None
    decoder_start_token_id: int = 58100
    forced_eos_token_id: int | None = 0
    share_encoder_decoder_embeddings: bool = True
    tie_word_embeddings: bool = True
    is_encoder_decoder: bool = True
    model_type: str = "marian"

    @property
    def initializer_range(self):
        """``init_std`` under the name :meth:`PreTrainedModel.init_weights` reads."""
        return self.init_std

    @property
    def target_vocab_size(self):
        """Size of the decoder's vocabulary (the encoder's unless embeddings are unshared)."""
        if self.share_encoder_decoder_embeddings:
            return self.vocab_size
        return self.decoder_vocab_size or self.vocab_size


def sinusoidal_table(positions, dim):
    """Marian's (positions, dim) float32 table: sin of even angles, then cos of odd ones.

    Column ``j`` uses the angle ``pos / 10000 ** (2 * (j // 2) / dim)``; the sines of the even
    columns fill the first half, the cosines of the odd columns the second.
    """
    j = np.arange(dim)
    angles = np.arange(positions)[:, None] / np.power(10000, 2 * (j // 2) / dim)[None, :]
    half = (dim + 1) // 2
    table = np.empty((positions, dim))
    table[:, :half] = np.sin(angles[:, 0::2])
    table[:, half:] = np.cos(angles[:, 1::2])
    return table.astype(np.float32)


def shift_tokens_right(labels, pad_token_id, decoder_start_token_id):
    """Decoder inputs from labels: start token first, labels shifted right, -100 made pad."""
    B = labels.shape[0]
    start = ember.full((B, 1), decoder_start_token_id, dtype=labels.dtype)
    shifted = ember.cat([start, labels[:, :-1]], dim=1)  # (B, T)
    return shifted.masked_fill(shifted == -100, pad_token_id)


def _check_ids(name, ids, batch=None):
    if ids.ndim != 2:
        raise ValueError(
            f"Transformer: {name} must be (batch, length), got shape {tuple(ids.shape)}"
        )
    if batch is not None and ids.shape[0] != batch:
        raise ValueError(
            f"Transformer: {name} has batch size {ids.shape[0]}, the source batch has {batch}"
        )


class SinusoidalPositionalEmbedding(nn.Module):
    """Fixed sinusoidal positions, kept out of the state_dict (checkpoints' copies are ignored)."""

    def __init__(self, positions, dim):
        super().__init__()
        self.register_buffer("weight", ember.tensor(sinusoidal_table(positions, dim)), False)

    def forward(self, length, offset=0):
        if offset + length > self.weight.shape[0]:
            raise ValueError(
                f"Transformer: sequence length {offset + length} exceeds "
                f"max_position_embeddings {self.weight.shape[0]}"
            )
        return self.weight[offset : offset + length]  # (T, D)


class TransformerAttention(nn.Module):
    """Multi-head attention with ``q_proj k_proj v_proj out_proj``, for self or cross attention.

    ``forward(x, mask, memory=None, past=None)`` attends from ``x`` to itself (keys appended to
    ``past``) or, given ``memory``, to the encoder output (``past`` then holds its keys/values,
    computed once). Returns the output and the (key, value) pair to cache.
    """

    def __init__(self, dim, heads, dropout):
        super().__init__()
        if dim % heads:
            raise ValueError(f"TransformerAttention: d_model {dim} is not a multiple of {heads}")
        self.heads, self.dropout_p = heads, dropout
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def _split(self, x):
        B, T, D = x.shape
        return x.view(B, T, self.heads, D // self.heads).transpose(1, 2)  # (B, h, T, d)

    def forward(self, x, mask=None, memory=None, past=None):
        B, T, D = x.shape
        q = self._split(self.q_proj(x))  # (B, h, T, d)
        if memory is not None and past is not None:
            k, v = past  # cross-attention keys/values of the encoder output, (B, h, S, d)
        else:
            source = x if memory is None else memory
            k, v = self._split(self.k_proj(source)), self._split(self.v_proj(source))
            if past is not None:
                k = ember.cat([past[0], k], dim=2)  # (B, h, P + T, d)
                v = ember.cat([past[1], v], dim=2)
        p = self.dropout_p if self.training else 0.0
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=p, scale=1 / math.sqrt(D // self.heads)
        )
        return self.out_proj(y.transpose(1, 2).reshape(B, T, D)), (k, v)  # (B, T, D)


class TransformerEncoderLayer(nn.Module):
    """Post-norm encoder layer: self-attention, then the feed-forward block."""

    def __init__(self, config):
        super().__init__()
        d = config.d_model
        self.self_attn = TransformerAttention(
            d, config.encoder_attention_heads, config.attention_dropout
        )
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.act = activation(config.activation_function)
        self.act_drop = nn.Dropout(config.activation_dropout)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, mask=None):
        a, _ = self.self_attn(x, mask)
        x = self.self_attn_layer_norm(x + self.drop(a))
        h = self.fc2(self.act_drop(self.act(self.fc1(x))))
        return self.final_layer_norm(x + self.drop(h))  # (B, S, D)


class TransformerDecoderLayer(nn.Module):
    """Post-norm decoder layer: causal self-attention, cross-attention, feed-forward.

    ``past`` is this layer's cache ``(self_k, self_v, cross_k, cross_v)`` or None; the layer
    returns its output and the updated cache.
    """

    def __init__(self, config):
        super().__init__()
        d, heads = config.d_model, config.decoder_attention_heads
        self.self_attn = TransformerAttention(d, heads, config.attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.encoder_attn = TransformerAttention(d, heads, config.attention_dropout)
        self.encoder_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, config.decoder_ffn_dim)
        self.fc2 = nn.Linear(config.decoder_ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.act = activation(config.activation_function)
        self.act_drop = nn.Dropout(config.activation_dropout)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, causal, memory, memory_mask, past=None):
        a, (sk, sv) = self.self_attn(x, causal, past=None if past is None else past[:2])
        x = self.self_attn_layer_norm(x + self.drop(a))
        c, (ck, cv) = self.encoder_attn(
            x, memory_mask, memory=memory, past=None if past is None else past[2:]
        )
        x = self.encoder_attn_layer_norm(x + self.drop(c))
        h = self.fc2(self.act_drop(self.act(self.fc1(x))))
        return self.final_layer_norm(x + self.drop(h)), (sk, sv, ck, cv)  # (B, T, D)


class TransformerEncoder(nn.Module):
    """Scaled token embeddings plus sinusoidal positions, then ``layers``."""

    def __init__(self, config, embed_tokens):
        super().__init__()
        self.scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        self.embed_tokens = embed_tokens
        self.embed_positions = SinusoidalPositionalEmbedding(
            config.max_position_embeddings, config.d_model
        )
        self.drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            [TransformerEncoderLayer(config) for _ in range(config.encoder_layers)]
        )

    def forward(self, input_ids, mask=None):
        S = input_ids.shape[1]
        x = self.embed_tokens(input_ids) * self.scale + self.embed_positions(S)  # (B, S, D)
        x = self.drop(x)
        for layer in self.layers:
            x = layer(x, mask)
        return x


class TransformerDecoder(nn.Module):
    """Scaled token embeddings plus positions (offset by the cache length), then ``layers``."""

    def __init__(self, config, embed_tokens):
        super().__init__()
        self.scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        self.embed_tokens = embed_tokens
        self.embed_positions = SinusoidalPositionalEmbedding(
            config.max_position_embeddings, config.d_model
        )
        self.drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            [TransformerDecoderLayer(config) for _ in range(config.decoder_layers)]
        )

    def forward(self, input_ids, memory, memory_mask=None, past_key_values=None):
        T = input_ids.shape[1]
        P = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        x = self.embed_tokens(input_ids) * self.scale + self.embed_positions(T, P)  # (B, T, D)
        x = self.drop(x)
        # query i (at position P + i) sees keys 0 .. P + i
        causal = ember.tril(ember.ones(T, P + T, dtype=ember.bool), diagonal=P)  # (T, P + T)
        presents = []
        for i, layer in enumerate(self.layers):
            past = None if past_key_values is None else past_key_values[i]
            x, present = layer(x, causal, memory, memory_mask, past)
            presents.append(present)
        return x, tuple(presents)


def _source_mask(attention_mask, input_ids):
    if attention_mask is None:
        return None
    if tuple(attention_mask.shape) != tuple(input_ids.shape):
        raise ValueError(
            f"Transformer: attention_mask shape {tuple(attention_mask.shape)} differs from "
            f"input_ids shape {tuple(input_ids.shape)}"
        )
    B, S = attention_mask.shape
    return (attention_mask != 0).view(B, 1, 1, S)  # (B, 1, 1, S): True where a key is real


class TransformerModel(PreTrainedModel):
    """The encoder-decoder without a head (Marian's ``MarianModel``).

    ``forward(input_ids, attention_mask, decoder_input_ids)`` returns ``(hidden, presents)``:
    the decoder's last hidden state (B, T, d_model) and one cache tuple
    ``(self_k, self_v, cross_k, cross_v)`` per decoder layer.

    >>> config = TransformerConfig(vocab_size=20, d_model=8, encoder_layers=1, decoder_layers=1,
    ...     encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=16,
    ...     decoder_ffn_dim=16, max_position_embeddings=16, pad_token_id=19,
    ...     decoder_start_token_id=19)
    >>> hidden, _ = TransformerModel(config)(ember.tensor([[3, 4, 5]]), None, ember.tensor([[19]]))
    >>> tuple(hidden.shape)
    (1, 1, 8)
    """

    config_class = TransformerConfig
    base_model_prefix = "model"
    _keys_to_ignore_on_load = (r"embed_positions\.weight$",)

    def __init__(self, config):
        super().__init__()
        self.config = config
        d, pad = config.d_model, config.pad_token_id
        if config.share_encoder_decoder_embeddings:
            self.shared = nn.Embedding(config.vocab_size, d, padding_idx=pad)
            source = target = self.shared
            self._tied_weights = {
                "encoder.embed_tokens.weight": "shared.weight",
                "decoder.embed_tokens.weight": "shared.weight",
            }
        else:
            source = nn.Embedding(config.vocab_size, d, padding_idx=pad)
            target = nn.Embedding(config.target_vocab_size, d, padding_idx=pad)
            self._tied_weights = {}
        self.encoder = TransformerEncoder(config, source)
        self.decoder = TransformerDecoder(config, target)
        self.init_weights()

    def init_weights(self):
        """Hugging Face's initialisation, with the padding rows of the embeddings zeroed."""
        super().init_weights()
        pad = self.config.pad_token_id
        if pad is not None:
            with ember.no_grad():
                for emb in (self.encoder.embed_tokens, self.decoder.embed_tokens):
                    emb.weight[pad] = 0.0

    def encode(self, input_ids, attention_mask=None):
        """The encoder's last hidden state (B, S, d_model)."""
        _check_ids("input_ids", input_ids)
        return self.encoder(input_ids, _source_mask(attention_mask, input_ids))

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        decoder_input_ids=None,
        encoder_outputs=None,
        past_key_values=None,
    ):
        if encoder_outputs is None:
            if input_ids is None:
                raise ValueError("Transformer: pass input_ids or encoder_outputs")
            encoder_outputs = self.encode(input_ids, attention_mask)
        if decoder_input_ids is None:
            raise ValueError("Transformer: pass decoder_input_ids or labels")
        _check_ids("decoder_input_ids", decoder_input_ids, encoder_outputs.shape[0])
        mask = None
        if attention_mask is not None:
            B, S = encoder_outputs.shape[:2]
            mask = _source_mask(attention_mask, ember.zeros(B, S))
        return self.decoder(decoder_input_ids, encoder_outputs, mask, past_key_values)


class Transformer(PreTrainedModel):
    """Encoder-decoder Transformer with a tied output layer: Hugging Face's ``MarianMTModel``.

    ``forward(input_ids, attention_mask, decoder_input_ids)`` returns logits (B, T, vocab), or
    ``(logits, presents)`` with ``use_cache=True``, or ``(loss, logits)`` given ``labels``
    (decoder inputs are then the labels shifted right after ``decoder_start_token_id``; -100
    is ignored by the loss). ``generate`` translates with greedy or beam search.

    >>> config = TransformerConfig(vocab_size=20, d_model=8, encoder_layers=1, decoder_layers=1,
    ...     encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=16,
    ...     decoder_ffn_dim=16, max_position_embeddings=16, pad_token_id=19,
    ...     decoder_start_token_id=19)
    >>> out = Transformer(config).generate(ember.tensor([[3, 4, 5]]), max_new_tokens=4, num_beams=2)
    >>> out.shape[0], int(out[0, 0])
    (1, 19)
    """

    config_class = TransformerConfig
    base_model_prefix = "model"
    _keys_to_ignore_on_load = TransformerModel._keys_to_ignore_on_load

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.model = TransformerModel(config)
        V = config.target_vocab_size
        self.register_buffer("final_logits_bias", ember.zeros(1, V))
        self.lm_head = nn.Linear(config.d_model, V, bias=False)
        tied = {f"model.{k}": f"model.{v}" for k, v in self.model._tied_weights.items()}
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.decoder.embed_tokens.weight
            shared = config.share_encoder_decoder_embeddings
            source = "shared" if shared else "decoder.embed_tokens"
            tied["lm_head.weight"] = f"model.{source}.weight"
        else:
            with ember.no_grad():
                nn.init.normal_(self.lm_head.weight, 0.0, config.init_std)
        self._tied_weights = tied

    def encode(self, input_ids, attention_mask=None):
        """The encoder's last hidden state (B, S, d_model), to pass as ``encoder_outputs``."""
        return self.model.encode(input_ids, attention_mask)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        decoder_input_ids=None,
        labels=None,
        encoder_outputs=None,
        past_key_values=None,
        use_cache=False,
    ):
        if labels is not None and decoder_input_ids is None:
            c = self.config
            decoder_input_ids = shift_tokens_right(labels, c.pad_token_id, c.decoder_start_token_id)
        hidden, presents = self.model(
            input_ids, attention_mask, decoder_input_ids, encoder_outputs, past_key_values
        )
        logits = self.lm_head(hidden) + self.final_logits_bias  # (B, T, vocab)
        if labels is not None:
            V = logits.shape[-1]
            loss = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
            return loss, logits
        return (logits, presents) if use_cache else logits

    def generate(self, input_ids, attention_mask=None, max_new_tokens=20, **kwargs):
        """Translate ``input_ids``; see :func:`ember_text.generation.generate_seq2seq`."""
        return generate_seq2seq(
            self, input_ids, attention_mask, max_new_tokens=max_new_tokens, **kwargs
        )
