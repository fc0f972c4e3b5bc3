"""GPT-2 decoder with Hugging Face's key names, a KV cache and ``generate``."""

import math
from dataclasses import dataclass

import ember
import ember.nn.functional as F
from ember import nn

from ..generation import generate
from ..pretrained import PretrainedConfig, PreTrainedModel
from .bert import activation


@dataclass
class GPT2Config(PretrainedConfig):
    """GPT-2 hyperparameters, with the field names of Hugging Face's ``config.json``."""

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    bos_token_id: int = 50256
    eos_token_id: int = 50256
    tie_word_embeddings: bool = True
    model_type: str = "gpt2"


class Conv1D(nn.Module):
    """GPT-2's linear layer: ``x @ weight + bias`` with ``weight`` stored as (in, out)."""

    def __init__(self, nx, nf):
        super().__init__()
        self.weight = nn.Parameter(ember.zeros(nx, nf))  # (in, out): the transpose of nn.Linear's
        self.bias = nn.Parameter(ember.zeros(nf))

    def forward(self, x):
        return x @ self.weight + self.bias


class GPT2Attention(nn.Module):
    """Causal self-attention; ``c_attn`` makes q, k, v in one matmul."""

    def __init__(self, config):
        super().__init__()
        self.heads = config.n_head
        self.c_attn = Conv1D(config.n_embd, 3 * config.n_embd)
        self.c_proj = Conv1D(config.n_embd, config.n_embd)
        self.attn_dropout = config.attn_pdrop
        self.resid_dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x, past=None):
        B, T, C = x.shape
        d = C // self.heads
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.heads, d).transpose(1, 2) for t in (q, k, v))  # (B, h, T, d)
        P = 0
        if past is not None:
            P = past[0].shape[2]
            k = ember.cat([past[0], k], dim=2)  # (B, h, P + T, d)
            v = ember.cat([past[1], v], dim=2)
        # query i (at position P + i) sees keys 0 .. P + i
        mask = ember.tril(ember.ones(T, P + T, dtype=ember.bool), diagonal=P)  # (T, P + T)
        p = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=p, scale=1 / math.sqrt(d)
        )
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y)), (k, v)


class GPT2MLP(nn.Module):
    """c_fc, activation, c_proj, dropout."""

    def __init__(self, config):
        super().__init__()
        inner = config.n_inner or 4 * config.n_embd
        self.c_fc = Conv1D(config.n_embd, inner)
        self.c_proj = Conv1D(inner, config.n_embd)
        self.act = activation(config.activation_function)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPT2Block(nn.Module):
    """Pre-norm block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(config)

    def forward(self, x, past=None):
        a, present = self.attn(self.ln_1(x), past)
        x = x + a
        return x + self.mlp(self.ln_2(x)), present


class GPT2Model(PreTrainedModel):
    """Token and position embeddings, ``h`` blocks, final ``ln_f``.

    ``forward(input_ids, past_key_values=None)`` returns ``(hidden, presents)`` where presents
    holds one (key, value) pair of shape (B, heads, T_total, head_dim) per block.
    """

    config_class = GPT2Config
    base_model_prefix = "transformer"
    _keys_to_ignore_on_load = (r"\.attn\.bias$", r"\.attn\.masked_bias$")

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([GPT2Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.init_weights()

    def forward(self, input_ids, past_key_values=None):
        T = input_ids.shape[1]
        P = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if P + T > self.config.n_positions:
            raise ValueError(
                f"GPT2Model: sequence length {P + T} exceeds n_positions {self.config.n_positions}"
            )
        positions = ember.arange(P, P + T).unsqueeze(0)  # (1, T)
        x = self.drop(self.wte(input_ids) + self.wpe(positions))  # (B, T, C)
        presents = []
        for i, block in enumerate(self.h):
            x, present = block(x, None if past_key_values is None else past_key_values[i])
            presents.append(present)
        return self.ln_f(x), tuple(presents)


class GPT2LMHeadModel(PreTrainedModel):
    """GPT-2 with a language-model head tied to ``transformer.wte``.

    ``forward`` returns logits (B, T, vocab), or ``(logits, presents)`` with ``use_cache=True``,
    or ``(loss, logits)`` given ``labels`` (next-token cross entropy, -100 ignored).

    >>> config = GPT2Config(vocab_size=20, n_positions=16, n_embd=8, n_layer=1, n_head=2)
    >>> out = GPT2LMHeadModel(config).generate(ember.tensor([[1, 2]]), max_new_tokens=3)
    >>> tuple(out.shape)
    (1, 5)
    """

    config_class = GPT2Config
    base_model_prefix = "transformer"
    _keys_to_ignore_on_load = GPT2Model._keys_to_ignore_on_load
    _tied_weights = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.transformer.wte.weight
        else:
            self._tied_weights = {}
            self.init_weights()

    def forward(self, input_ids, past_key_values=None, use_cache=False, labels=None):
        hidden, presents = self.transformer(input_ids, past_key_values)
        logits = self.lm_head(hidden)  # (B, T, vocab)
        if labels is not None:
            V = logits.shape[-1]
            shifted = logits[:, :-1].reshape(-1, V)
            loss = F.cross_entropy(shifted, labels[:, 1:].reshape(-1), ignore_index=-100)
            return loss, logits
        return (logits, presents) if use_cache else logits

    def generate(self, input_ids, max_new_tokens=20, **kwargs):
        """Continue ``input_ids``; see :func:`ember_text.generation.generate` for the options."""
        return generate(self, input_ids, max_new_tokens=max_new_tokens, **kwargs)
