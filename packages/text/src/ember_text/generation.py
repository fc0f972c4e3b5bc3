"""Decoding for causal language models: greedy and sampling (temperature, top-k, top-p)."""

import ember
import ember.nn.functional as F


def _filter(logits, top_k, top_p):
    """Set logits outside the top-k / nucleus (top-p) to -inf; logits is (B, V)."""
    if top_k is not None and top_k > 0:
        k = min(top_k, logits.shape[-1])
        kth = ember.topk(logits, k, dim=-1)[0][:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        ordered, order = ember.sort(logits, dim=-1, descending=True)  # (B, V)
        cumulative = ember.cumsum(F.softmax(ordered, dim=-1), dim=-1)
        # drop a token once the tokens before it already hold top_p of the mass; keep the first
        drop_sorted = (cumulative - F.softmax(ordered, dim=-1)) >= top_p
        drop = ember.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def generate(
    model,
    input_ids,
    max_new_tokens=20,
    do_sample=False,
    temperature=1.0,
    top_k=None,
    top_p=None,
    eos_token_id=None,
    generator=None,
):
    """Append up to ``max_new_tokens`` tokens to ``input_ids`` (B, T), using the KV cache.

    ``model(ids, past_key_values=..., use_cache=True)`` must return ``(logits, presents)``.
    Greedy by default; ``do_sample=True`` samples from softmax(logits / temperature) after
    top-k and top-p filtering, drawing from ``generator`` (an ``ember.Generator``) or ember's
    default generator. Rows that produced ``eos_token_id`` continue with it; generation stops
    early once every row has. Returns the (B, T + new) int64 tensor.
    """
    if do_sample and temperature <= 0:
        raise ValueError(f"generate: temperature must be positive when sampling, got {temperature}")
    was_training = model.training
    model.eval()
    ids = input_ids
    finished = None
    try:
        with ember.no_grad():
            logits, past = model(ids, use_cache=True)
            for step in range(max_new_tokens):
                last = logits[:, -1, :]  # (B, V)
                if do_sample:
                    last = _filter(last / temperature, top_k, top_p)
                    probs = F.softmax(last, dim=-1)
                    token = ember.multinomial(probs, 1, generator=generator)  # (B, 1)
                else:
                    token = ember.argmax(last, dim=-1, keepdim=True)  # (B, 1)
                token = token.to(ids.dtype)
                if eos_token_id is not None:
                    if finished is not None:
                        token = ember.where(finished, ember.full_like(token, eos_token_id), token)
                    finished = (
                        token == eos_token_id
                        if finished is None
                        else finished | (token == eos_token_id)
                    )
                ids = ember.cat([ids, token], dim=1)
                if finished is not None and bool(finished.all()):
                    break
                if step + 1 < max_new_tokens:
                    logits, past = model(token, past_key_values=past, use_cache=True)
    finally:
        model.train(was_training)
    return ids
