"""Beam search: GPT-2 against transformers' recorded outputs, and both model kinds against an
exhaustive search over every sequence of a tiny vocabulary (an independent reference)."""

import itertools
from pathlib import Path

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember_text import GPT2Config, GPT2LMHeadModel, Transformer, TransformerConfig

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = np.load(FIXTURES / "seq2seq_expected.npz")
EOS = 0


@pytest.mark.parametrize(
    "name, kw",
    [
        ("beam3", dict(num_beams=3)),
        ("beam4_lp06_es", dict(num_beams=4, length_penalty=0.6, early_stopping=True)),
    ],
)
def test_gpt2_beam_matches_transformers(name, kw):
    model = GPT2LMHeadModel.from_pretrained(FIXTURES / "gpt2")
    prompt = ember.tensor([[5, 17, 42, 8], [9, 3, 77, 61]])
    eos = int(EXPECTED["gpt2_beam_eos"])
    out = model.generate(prompt, max_new_tokens=8, eos_token_id=eos, **kw)
    np.testing.assert_array_equal(out.numpy(), EXPECTED[f"gpt2_{name}"])


def peaky(model, seed):
    """Larger random weights, so that sequence scores are far apart."""
    ember.manual_seed(seed)
    with ember.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                ember.nn.init.normal_(p, 0.0, 0.7)
    return model.eval()


def tiny_gpt2(seed):
    config = GPT2Config(vocab_size=4, n_positions=16, n_embd=8, n_layer=1, n_head=2)
    return peaky(GPT2LMHeadModel(config), seed)


def tiny_marian(seed):
    config = TransformerConfig(
        vocab_size=5,
        d_model=8,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=16,
        decoder_ffn_dim=16,
        max_position_embeddings=16,
        pad_token_id=4,
        decoder_start_token_id=4,
        eos_token_id=EOS,
        forced_eos_token_id=None,
    )
    return peaky(Transformer(config), seed)


def exhaustive(logprobs_of, vocab, max_new, length_penalty):
    """The best finished sequence of all: those ending at EOS, and unfinished ones of
    ``max_new`` tokens, scored sum(log p) / length ** length_penalty; scores by full forward
    passes without a cache."""
    best, best_score = None, -np.inf
    words = [t for t in range(vocab) if t != EOS]
    candidates = [
        (*body, EOS) for n in range(max_new) for body in itertools.product(words, repeat=n)
    ]
    candidates += list(itertools.product(words, repeat=max_new))
    for seq in candidates:
        total = sum(logprobs_of(list(seq[:i]))[seq[i]] for i in range(len(seq)))
        score = total / len(seq) ** length_penalty
        if score > best_score:
            best, best_score = list(seq), score
    return best


def gpt2_logprobs(model, prompt):
    def logprobs_of(prefix):
        with ember.no_grad():
            logits = model(ember.tensor([prompt + prefix]))[0, -1]
        return F.log_softmax(logits, dim=-1).numpy().astype(np.float64)

    return logprobs_of


def marian_logprobs(model, src):
    def logprobs_of(prefix):
        with ember.no_grad():
            logits = model(ember.tensor([src]), decoder_input_ids=ember.tensor([[4] + prefix]))
        return F.log_softmax(logits[0, -1], dim=-1).numpy().astype(np.float64)

    return logprobs_of


def strip(row, start):
    """Generated tokens of an output row, without the prompt and the padding after EOS."""
    row = list(row[start:])
    return row[: row.index(EOS) + 1] if EOS in row else row


# num_beams >= the candidates of any step, so beam search prunes nothing and must find the
# exhaustive optimum, whatever the length penalty
@pytest.mark.parametrize("length_penalty", [1.0, 0.0, 2.0, -0.5])
@pytest.mark.parametrize("seed", [0, 2])  # seeds where beam search beats greedy
def test_gpt2_wide_beam_equals_exhaustive_search(seed, length_penalty):
    model = tiny_gpt2(seed)
    prompts = [[1, 2], [3, 1]]
    out = model.generate(
        ember.tensor(prompts),
        max_new_tokens=3,
        num_beams=12,
        eos_token_id=EOS,
        length_penalty=length_penalty,
    ).numpy()
    for row, prompt in zip(out, prompts):
        best = exhaustive(gpt2_logprobs(model, prompt), 4, 3, length_penalty)
        assert strip(row, 2) == best


@pytest.mark.parametrize("length_penalty", [1.0, 0.0, 2.0])
@pytest.mark.parametrize("seed", [0, 2])  # seeds where beam search beats greedy
def test_marian_wide_beam_equals_exhaustive_search(seed, length_penalty):
    model = tiny_marian(seed)
    sources = [[1, 2, 3, 0], [3, 3, 0, 4]]
    mask = ember.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    out = model.generate(
        ember.tensor(sources), mask, max_new_tokens=3, num_beams=20, length_penalty=length_penalty
    ).numpy()
    for row, src in zip(out, [[1, 2, 3, 0], [3, 3, 0]]):
        best = exhaustive(marian_logprobs(model, src), 5, 3, length_penalty)
        assert strip(row, 1) == best


def test_narrow_beam_is_no_worse_than_greedy():
    model = tiny_gpt2(3)
    prompt = ember.tensor([[1, 2]])
    lp = gpt2_logprobs(model, [1, 2])

    def score(row):
        seq = strip(row, 2)
        return sum(lp(seq[:i])[seq[i]] for i in range(len(seq))) / len(seq)

    greedy = model.generate(prompt, max_new_tokens=4, eos_token_id=EOS).numpy()[0]
    beam = model.generate(prompt, max_new_tokens=4, eos_token_id=EOS, num_beams=3).numpy()[0]
    assert score(beam) >= score(greedy) - 1e-6


def test_beam_options_are_checked():
    model = tiny_gpt2(0)
    with pytest.raises(ValueError, match="does not sample"):
        model.generate(ember.tensor([[1]]), num_beams=2, do_sample=True)
    with pytest.raises(ValueError, match="num_beams must be a positive int"):
        tiny_marian(0).generate(ember.tensor([[1, 0]]), num_beams=0)
