"""Decoding: greedy, sampling (temperature, top-k, top-p) and beam search.

``generate`` serves causal language models (GPT-2), ``generate_seq2seq`` encoder-decoder models
(:class:`~ember_text.models.marian.Transformer`). Beam search follows transformers' semantics: a
finished hypothesis scores ``sum of log-probs / generated_length ** length_penalty``; of the
``2 * num_beams`` best candidates of a step, only those ranked in the first ``num_beams`` may
finish; ``early_stopping`` is True (stop once ``num_beams`` hypotheses are done), False (stop
when the best running beam, scored at its current length, cannot beat the worst finished one)
or ``"never"`` (the same test at ``max_new_tokens`` when ``length_penalty > 0``).
"""

from dataclasses import dataclass

import numpy as np

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
    num_beams=1,
    length_penalty=1.0,
    early_stopping=False,
    pad_token_id=None,
):
    """Append up to ``max_new_tokens`` tokens to ``input_ids`` (B, T), using the KV cache.

    ``model(ids, past_key_values=..., use_cache=True)`` must return ``(logits, presents)``.
    Greedy by default; ``do_sample=True`` samples from softmax(logits / temperature) after
    top-k and top-p filtering, drawing from ``generator`` (an ``ember.Generator``) or ember's
    default generator. Rows that produced ``eos_token_id`` continue with it; generation stops
    early once every row has. ``num_beams > 1`` runs beam search (see the module docstring),
    padding shorter results with ``pad_token_id`` (``eos_token_id`` when None). Returns the
    (B, T + new) int64 tensor.
    """
    if do_sample and temperature <= 0:
        raise ValueError(f"generate: temperature must be positive when sampling, got {temperature}")
    if num_beams > 1:
        if do_sample:
            raise ValueError("generate: beam search does not sample; pass do_sample=False")

        def prefill():
            logits, past = model(input_ids, use_cache=True)
            return logits[:, -1, :], past

        def step(tokens, past):
            logits, past = model(tokens, past_key_values=past, use_cache=True)
            return logits[:, -1, :], past

        beams = BeamSettings(
            num_beams, max_new_tokens, eos_token_id, length_penalty, early_stopping
        )
        pad = eos_token_id if pad_token_id is None else pad_token_id
        return _in_eval(model, lambda: _append(input_ids, beam_search(prefill, step, beams), pad))
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


@dataclass
class BeamSettings:
    """Beam search options, with transformers' names.

    ``num_beams`` beams are kept per row for up to ``max_new_tokens`` steps. A hypothesis
    finishes on ``eos_token_id`` (or at the last step) with score ``sum of log-probs /
    generated_length ** length_penalty``. ``early_stopping`` is True, False or ``"never"``
    (see the module docstring). ``forced_eos_token_id`` is made the only choice at the last step.
    """

    num_beams: int
    max_new_tokens: int
    eos_token_id: int | None = None
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    forced_eos_token_id: int | None = None

    def __post_init__(self):
        if not isinstance(self.num_beams, int) or self.num_beams < 1:
            raise ValueError(f"beam search: num_beams must be a positive int, got {self.num_beams}")
        if self.early_stopping not in (True, False, "never"):
            raise ValueError(
                f"beam search: early_stopping must be True, False or 'never', "
                f"got {self.early_stopping!r}"
            )


def _index_rows(cache, rows):
    """Every tensor of a (nested tuple) cache with its rows taken at ``rows``."""
    if isinstance(cache, (tuple, list)):
        return tuple(_index_rows(c, rows) for c in cache)
    return cache.index_select(0, rows)


def _admit(pool, score, tokens, size):
    """Keep the ``size`` best finished hypotheses of a row, best first."""
    # transformers' empty slots hold -1e9: a hypothesis must beat that to enter
    if not score > -1e9:
        return
    pool.append((score, tokens))
    pool.sort(key=lambda h: -h[0])
    del pool[size:]


def _finish(done, improvable, ends, penalized, grown, s):
    """Admit the finishing candidates of a step into each row's finished hypotheses."""
    K = s.num_beams
    for b, pool in enumerate(done):
        if not improvable[b] or (s.early_stopping is True and len(pool) == K):
            continue
        for r in np.flatnonzero(ends[b, :K]):  # only the top num_beams candidates finish
            _admit(pool, penalized[b, r], grown[b, r].tolist(), K)


def beam_search(prefill, step, settings):
    """Beam search over a batch; returns the best hypothesis of each row as a list of token ids.

    ``prefill()`` returns ``(logits, cache)``: next-token logits (B, V) of the B input rows and
    a cache (nested tuples of tensors with rows first). ``step(tokens, cache)`` takes the
    beams' last tokens (B * num_beams, 1) and the cache reordered to those beams, and returns
    the same pair for B * num_beams rows. Scores are float32, like transformers'.
    """
    s = settings
    K, lp = s.num_beams, s.length_penalty
    logits, cache = prefill()
    B, V = logits.shape
    if s.max_new_tokens < 1:
        return [[] for _ in range(B)]
    cache = _index_rows(cache, ember.tensor(np.repeat(np.arange(B), K)))
    logp = F.log_softmax(logits.float(), dim=-1).numpy()[:, None, :]  # (B, 1, V)
    keep = 2 * K  # transformers keeps max(2, 1 + number of eos ids) * num_beams candidates
    scores = np.full((B, K), -1e9, dtype=np.float32)
    scores[:, 0] = 0.0  # the other beams repeat beam 0 and start out of the running
    tokens = np.zeros((B, K, 0), dtype=np.int64)
    done = [[] for _ in range(B)]
    improvable = np.ones(B, dtype=bool)
    for i in range(s.max_new_tokens):
        last = i + 1 == s.max_new_tokens
        if last and s.forced_eos_token_id is not None:
            logp = np.full_like(logp, -np.inf)
            logp[..., s.forced_eos_token_id] = 0.0
        total = (scores[:, :, None] + logp).reshape(B, K * V)  # (B, K * V)
        top = np.argsort(-total, axis=1, kind="stable")[:, :keep]  # (B, keep)
        top_scores = np.take_along_axis(total, top, axis=1)
        beam, token = top // V, top % V
        grown = np.concatenate(
            [np.take_along_axis(tokens, beam[:, :, None], axis=1), token[:, :, None]], axis=2
        )  # (B, keep, i + 1)
        ends = np.full(token.shape, last)  # (B, keep): candidates that finish here
        if s.eos_token_id is not None:
            ends |= token == s.eos_token_id
        _finish(done, improvable, ends, top_scores / (i + 1) ** lp, grown, s)
        running = top_scores - np.float32(1e9) * ends
        order = np.argsort(-running, axis=1, kind="stable")[:, :K]  # (B, K)
        scores = np.take_along_axis(running, order, axis=1)
        tokens = np.take_along_axis(grown, order[:, :, None], axis=1)
        length = s.max_new_tokens if s.early_stopping == "never" and lp > 0 else i + 1
        for b in range(B):  # can the best running beam still beat the worst finished one?
            if improvable[b] and len(done[b]) == K:
                improvable[b] = scores[b, 0] / length**lp > done[b][-1][0]
        full = all(len(d) == K for d in done) and s.early_stopping is True
        if last or not improvable.any() or full or ends.all():
            break
        rows = (np.arange(B)[:, None] * K + np.take_along_axis(beam, order, axis=1)).reshape(-1)
        logits, cache = step(
            ember.tensor(tokens[:, :, -1].reshape(-1, 1)), _index_rows(cache, ember.tensor(rows))
        )
        logp = F.log_softmax(logits.float(), dim=-1).numpy().reshape(B, K, V)
    return [d[0][1] if d else tokens[b, 0].tolist() for b, d in enumerate(done)]


def _append(prefix, hypotheses, pad_token_id):
    """``prefix`` (B, T) followed by each row's hypothesis, padded to the longest."""
    width = max(len(h) for h in hypotheses)
    pad = 0 if pad_token_id is None else pad_token_id
    out = np.full((len(hypotheses), prefix.shape[1] + width), pad, dtype=np.int64)
    out[:, : prefix.shape[1]] = prefix.numpy()
    for b, h in enumerate(hypotheses):
        out[b, prefix.shape[1] : prefix.shape[1] + len(h)] = h
    return ember.tensor(out)


def _in_eval(model, fn):
    """Run ``fn()`` with ``model`` in eval mode and without gradients, then restore the mode."""
    was_training = model.training
    model.eval()
    try:
        with ember.no_grad():
            return fn()
    finally:
        model.train(was_training)


def _greedy_seq2seq(model, input_ids, attention_mask, start, max_new_tokens, ids):
    """Greedy decoding for encoder-decoder models; ``ids`` holds eos, pad and forced eos."""
    eos, pad, forced = ids
    memory = model.encode(input_ids, attention_mask)
    out = start.numpy()
    finished = np.zeros(out.shape[0], dtype=bool)
    tokens, cache = start, None
    for i in range(max_new_tokens):
        logits, cache = model(
            attention_mask=attention_mask,
            decoder_input_ids=tokens,
            encoder_outputs=memory,
            past_key_values=cache,
            use_cache=True,
        )
        token = ember.argmax(logits[:, -1, :], dim=-1).numpy()  # (B,)
        if forced is not None and i + 1 == max_new_tokens:
            token = np.full_like(token, forced)
        token = np.where(finished, pad, token)
        if eos is not None:
            finished |= token == eos
        out = np.concatenate([out, token[:, None]], axis=1)
        if finished.all():
            break
        tokens = ember.tensor(token[:, None])
    return ember.tensor(out)


def generate_seq2seq(
    model,
    input_ids,
    attention_mask=None,
    max_new_tokens=20,
    num_beams=1,
    length_penalty=1.0,
    early_stopping=False,
    eos_token_id=None,
    pad_token_id=None,
    decoder_start_token_id=None,
    forced_eos_token_id=None,
):
    """Decode targets for source ids (B, S); returns (B, 1 + new) ids after the start token.

    The encoder runs once; the decoder runs one token per step with its cache (beams reorder
    it). Token ids left None come from ``model.config``, as transformers' default generation
    config does (so ``config.forced_eos_token_id`` forces EOS at the last step; pass
    ``forced_eos_token_id=False`` to turn that off). Greedy when ``num_beams == 1``: finished
    rows continue with ``pad_token_id``. Otherwise beam search (see the module docstring);
    shorter results are padded with ``pad_token_id``.
    """
    c = model.config
    eos = c.eos_token_id if eos_token_id is None else eos_token_id
    pad = c.pad_token_id if pad_token_id is None else pad_token_id
    first = c.decoder_start_token_id if decoder_start_token_id is None else decoder_start_token_id
    forced = c.forced_eos_token_id if forced_eos_token_id is None else forced_eos_token_id
    forced = None if forced is False else forced
    if input_ids.ndim != 2:
        raise ValueError(
            f"generate: input_ids must be (batch, length), got {tuple(input_ids.shape)}"
        )
    B = input_ids.shape[0]
    start = ember.full((B, 1), first, dtype=ember.int64)
    if num_beams == 1:
        ids = (eos, pad, forced)
        return _in_eval(
            model,
            lambda: _greedy_seq2seq(model, input_ids, attention_mask, start, max_new_tokens, ids),
        )
    settings = BeamSettings(num_beams, max_new_tokens, eos, length_penalty, early_stopping, forced)

    def run():
        memory = model.encode(input_ids, attention_mask)
        rows = ember.tensor(np.repeat(np.arange(B), num_beams))
        memory_k = memory.index_select(0, rows)  # (B * K, S, D): beams never leave their row
        mask_k = None if attention_mask is None else attention_mask.index_select(0, rows)

        def prefill():
            logits, cache = model(
                attention_mask=attention_mask,
                decoder_input_ids=start,
                encoder_outputs=memory,
                use_cache=True,
            )
            return logits[:, -1, :], cache

        def step(tokens, cache):
            logits, cache = model(
                attention_mask=mask_k,
                decoder_input_ids=tokens,
                encoder_outputs=memory_k,
                past_key_values=cache,
                use_cache=True,
            )
            return logits[:, -1, :], cache

        return _append(start, beam_search(prefill, step, settings), pad)

    return _in_eval(model, run)
