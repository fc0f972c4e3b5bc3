"""The Marian-layout encoder-decoder against transformers' outputs recorded in fixtures
(make_seq2seq_fixtures.py), plus cache, save/load, shape and training checks."""

from pathlib import Path

import numpy as np
import pytest

import ember
from ember_text import (
    AutoModel,
    AutoModelForSeq2SeqLM,
    Transformer,
    TransformerConfig,
    TransformerModel,
)
from ember_text.models.marian import shift_tokens_right, sinusoidal_table

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = np.load(FIXTURES / "seq2seq_expected.npz")
RUNS = {
    "greedy": dict(num_beams=1),
    "beam3": dict(num_beams=3),
    "beam4_lp06_es": dict(num_beams=4, length_penalty=0.6, early_stopping=True),
    "beam2_lp2_never": dict(num_beams=2, length_penalty=2.0, early_stopping="never"),
    "beam3_lp0": dict(num_beams=3, length_penalty=0.0),
}


def source():
    return ember.tensor(EXPECTED["marian_input_ids"]), ember.tensor(
        EXPECTED["marian_attention_mask"]
    )


def tiny_config(**overrides):
    fields = dict(
        vocab_size=30,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=24,
        pad_token_id=29,
        decoder_start_token_id=29,
        eos_token_id=0,
    )
    fields.update(overrides)
    return TransformerConfig(**fields)


@pytest.mark.parametrize("folder", ["marian", "marian_bin"])
def test_logits_and_loss_match_transformers(folder):
    model = AutoModelForSeq2SeqLM.from_pretrained(FIXTURES / folder)
    assert isinstance(model, Transformer)
    assert model.lm_head.weight is model.model.shared.weight
    ids, mask = source()
    with ember.no_grad():
        loss, logits = model(ids, mask, labels=ember.tensor(EXPECTED["marian_labels"]))
    np.testing.assert_allclose(logits.numpy(), EXPECTED["marian_logits"], atol=1e-4)
    assert abs(float(loss) - float(EXPECTED["marian_loss"])) < 1e-5


@pytest.mark.parametrize("new", [3, 10])
@pytest.mark.parametrize("run", sorted(RUNS))
def test_generate_matches_transformers(run, new):
    model = Transformer.from_pretrained(FIXTURES / "marian")
    ids, mask = source()
    out = model.generate(ids, mask, max_new_tokens=new, **RUNS[run])
    np.testing.assert_array_equal(out.numpy(), EXPECTED[f"marian_{run}_{new}"])


def test_sinusoids_put_sines_first():
    table = sinusoidal_table(5, 6)
    pos = np.arange(5)[:, None]
    freq = 1 / 10000 ** (np.arange(0, 6, 2) / 6)
    np.testing.assert_allclose(table[:, :3], np.sin(pos * freq), atol=1e-6)
    np.testing.assert_allclose(table[:, 3:], np.cos(pos * freq), atol=1e-6)


def test_base_model_loads_seq2seq_checkpoint():
    with pytest.warns(UserWarning, match="unused checkpoint weights.*final_logits_bias"):
        base = AutoModel.from_pretrained(FIXTURES / "marian")
    assert isinstance(base, TransformerModel)
    full = Transformer.from_pretrained(FIXTURES / "marian")
    ids, mask = source()
    dec = shift_tokens_right(ember.tensor(EXPECTED["marian_labels"]), 39, 39)
    with ember.no_grad():
        hidden, _ = base(ids, mask, dec)
        logits = full.lm_head(hidden) + full.final_logits_bias
    np.testing.assert_allclose(logits.numpy(), EXPECTED["marian_logits"], atol=1e-4)


def test_save_pretrained_roundtrip(tmp_path):
    model = Transformer.from_pretrained(FIXTURES / "marian_bin")
    model.save_pretrained(tmp_path)
    saved = ember.load(tmp_path / "model.safetensors")
    assert "model.shared.weight" in saved and "final_logits_bias" in saved
    assert not any("embed_positions" in k or k == "lm_head.weight" for k in saved)
    again = Transformer.from_pretrained(tmp_path)
    assert again.config == model.config and again.config.extra["encoder_layerdrop"] == 0.0
    ids, mask = source()
    dec = ember.tensor([[39, 4, 5], [39, 6, 7]])
    with ember.no_grad():
        np.testing.assert_array_equal(again(ids, mask, dec).numpy(), model(ids, mask, dec).numpy())


def test_kv_cache_equals_full_recomputation():
    model = Transformer.from_pretrained(FIXTURES / "marian")
    ids, mask = source()
    dec = ember.tensor([[39, 4, 8, 15, 16, 23], [39, 42 % 39, 3, 1, 2, 9]])
    with ember.no_grad():
        full = model(ids, mask, dec)
        memory = model.encode(ids, mask)
        logits, cache = model(
            attention_mask=mask,
            decoder_input_ids=dec[:, :3],
            encoder_outputs=memory,
            use_cache=True,
        )
        steps = [logits]
        for t in range(3, 6):
            logits, cache = model(
                attention_mask=mask,
                decoder_input_ids=dec[:, t : t + 1],
                encoder_outputs=memory,
                past_key_values=cache,
                use_cache=True,
            )
            steps.append(logits)
    assert cache[0][0].shape[2] == 6 and cache[0][2].shape[2] == ids.shape[1]
    np.testing.assert_allclose(ember.cat(steps, dim=1).numpy(), full.numpy(), atol=1e-5)
    # greedy decoding with the cache equals argmax over full recomputation
    out = model.generate(ids, mask, max_new_tokens=6, forced_eos_token_id=False)
    tokens = ember.full((2, 1), 39, dtype=ember.int64)
    with ember.no_grad():
        for _ in range(6):
            nxt = ember.argmax(model(ids, mask, tokens)[:, -1], dim=-1, keepdim=True)
            tokens = ember.cat([tokens, nxt], dim=1)
    finished = np.cumsum(tokens.numpy()[:, 1:] == 0, axis=1) > 0  # after eos: pad
    expected = tokens.numpy().copy()
    expected[:, 2:][finished[:, :-1]] = 39
    np.testing.assert_array_equal(out.numpy(), expected[:, : out.shape[1]])


def test_wrong_shapes_raise_clear_errors():
    model = Transformer(tiny_config())
    ids = ember.tensor([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match=r"input_ids must be \(batch, length\)"):
        model(ember.tensor([1, 2, 3]), decoder_input_ids=ember.tensor([[29]]))
    with pytest.raises(ValueError, match=r"attention_mask shape \(2, 2\) differs"):
        model(ids, ember.ones(2, 2, dtype=ember.int64), ember.tensor([[29], [29]]))
    with pytest.raises(ValueError, match="decoder_input_ids has batch size 3"):
        model(ids, decoder_input_ids=ember.tensor([[29], [29], [29]]))
    with pytest.raises(ValueError, match="pass decoder_input_ids or labels"):
        model(ids)
    with pytest.raises(ValueError, match="exceeds max_position_embeddings 24"):
        model(ember.ones(1, 25, dtype=ember.int64), decoder_input_ids=ember.tensor([[29]]))
    with pytest.raises(ValueError, match="not a multiple"):
        Transformer(tiny_config(encoder_attention_heads=3))
    with pytest.raises(ValueError, match="early_stopping"):
        model.generate(ids, num_beams=2, early_stopping="sometimes")


def test_labels_shift_and_training_step():
    labels = ember.tensor([[5, 6, 0], [7, 0, -100]])
    dec = shift_tokens_right(labels, 29, 29)
    assert dec.tolist() == [[29, 5, 6], [29, 7, 0]]
    model = Transformer(tiny_config())
    assert float(model.model.shared.weight[29].abs().sum()) == 0.0  # padding row, as HF inits
    ids = ember.tensor([[3, 4, 5, 0], [6, 7, 0, 29]])
    mask = ember.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    loss, logits = model(ids, mask, labels=labels)
    assert tuple(logits.shape) == (2, 3, 30) and abs(float(loss) - np.log(30)) < 1.0
    loss.backward()
    assert model.model.shared.weight.grad is not None
    assert model.model.decoder.layers[1].encoder_attn.k_proj.weight.grad is not None


def test_unshared_untied_embeddings():
    config = tiny_config(
        share_encoder_decoder_embeddings=False, tie_word_embeddings=False, decoder_vocab_size=35
    )
    model = Transformer(config)
    assert model.model._tied_weights == {} and model._tied_weights == {}
    assert tuple(model.lm_head.weight.shape) == (35, 16)
    assert model.lm_head.weight is not model.model.decoder.embed_tokens.weight
    logits = model(ember.tensor([[1, 2]]), decoder_input_ids=ember.tensor([[29, 33]]))
    assert tuple(logits.shape) == (1, 2, 35)
    assert "lm_head.weight" in model.state_dict()
