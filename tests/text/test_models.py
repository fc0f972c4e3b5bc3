"""BERT and GPT-2 against transformers' outputs recorded in fixtures, plus save/load checks."""

from pathlib import Path

import numpy as np
import pytest

import ember
from ember_text import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
)

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = np.load(FIXTURES / "expected.npz")


def bert_inputs():
    return [
        ember.tensor(EXPECTED[f"bert_tok_{k}"])
        for k in ("input_ids", "attention_mask", "token_type_ids")
    ]


@pytest.mark.parametrize("folder", ["bert", "bert_bin"])
def test_bert_matches_transformers(folder):
    model = AutoModel.from_pretrained(FIXTURES / folder)
    assert isinstance(model, BertModel)
    with ember.no_grad():
        hidden, pooled = model(*bert_inputs())
    np.testing.assert_allclose(hidden.numpy(), EXPECTED["bert_last_hidden_state"], atol=1e-4)
    np.testing.assert_allclose(pooled.numpy(), EXPECTED["bert_pooler_output"], atol=1e-4)


def test_bert_classifier_matches_and_trains(tmp_path):
    model = AutoModelForSequenceClassification.from_pretrained(FIXTURES / "bert_cls")
    ids, mask, _ = bert_inputs()
    with ember.no_grad():
        logits = model(ids, mask)
    np.testing.assert_allclose(logits.numpy(), EXPECTED["bert_cls_logits"], atol=1e-4)
    model.save_pretrained(tmp_path)
    again = BertForSequenceClassification.from_pretrained(tmp_path)
    assert again.config == model.config
    with ember.no_grad():
        np.testing.assert_allclose(again(ids, mask).numpy(), logits.numpy(), atol=1e-6)
    model.train()
    opt = ember.optim.AdamW(model.parameters(), lr=1e-3)
    loss, _ = model(ids, mask, labels=ember.tensor([0, 2]))
    loss.backward()
    opt.step()
    assert model.bert.embeddings.word_embeddings.weight.grad is not None


def test_classifier_from_base_checkpoint_warns():
    with pytest.warns(UserWarning, match="newly initialised.*classifier"):
        model = BertForSequenceClassification.from_pretrained(FIXTURES / "bert")
    base = BertModel.from_pretrained(FIXTURES / "bert")
    w = model.bert.encoder.layer[1].attention.self.query.weight
    assert ember.equal(w, base.encoder.layer[1].attention.self.query.weight)


def test_shape_mismatch_names_key_and_leaves_model_unchanged():
    config = BertConfig.from_pretrained(FIXTURES / "bert")
    config.intermediate_size = 48
    model = BertModel(config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"intermediate\.dense\.bias.*\(64,\).*\(48,\)"):
        model.load_hf_state_dict(ember.load(FIXTURES / "bert" / "model.safetensors"))
    for key, value in model.state_dict().items():
        assert ember.equal(value, before[key])


def test_gpt2_logits_and_greedy_match_transformers():
    model = AutoModelForCausalLM.from_pretrained(FIXTURES / "gpt2")
    assert model.lm_head.weight is model.transformer.wte.weight
    prompt = ember.tensor(EXPECTED["gpt2_prompt"])
    with ember.no_grad():
        logits = model(prompt)
    np.testing.assert_allclose(logits.numpy(), EXPECTED["gpt2_logits"], atol=1e-4)
    out = model.generate(prompt, max_new_tokens=10)
    np.testing.assert_array_equal(out.numpy(), EXPECTED["gpt2_greedy"])


def test_gpt2_kv_cache_equals_full_forward():
    model = GPT2LMHeadModel.from_pretrained(FIXTURES / "gpt2")
    ids = ember.tensor([[4, 8, 15, 16, 23, 42]])
    with ember.no_grad():
        full = model(ids)
        _, past = model(ids[:, :4], use_cache=True)
        step, _ = model(ids[:, 4:], past_key_values=past, use_cache=True)
    np.testing.assert_allclose(step.numpy(), full[:, 4:].numpy(), atol=1e-5)


def test_gpt2_sampling_is_seeded_and_filtered(tmp_path):
    model = GPT2LMHeadModel.from_pretrained(FIXTURES / "gpt2")
    prompt = ember.tensor(EXPECTED["gpt2_prompt"])

    def sample(**kw):
        g = ember.Generator().manual_seed(7)
        return model.generate(prompt, max_new_tokens=6, do_sample=True, generator=g, **kw).numpy()

    np.testing.assert_array_equal(sample(temperature=0.8), sample(temperature=0.8))
    # top_k=1 and a tiny top_p both leave only the most likely token: greedy
    np.testing.assert_array_equal(sample(top_k=1), model.generate(prompt, max_new_tokens=6).numpy())
    np.testing.assert_array_equal(
        sample(top_p=1e-6), model.generate(prompt, max_new_tokens=6).numpy()
    )
    model.save_pretrained(tmp_path)
    assert GPT2Config.from_pretrained(tmp_path) == model.config


def test_gpt2_eos_stops_and_loss():
    config = GPT2Config(vocab_size=20, n_positions=16, n_embd=8, n_layer=1, n_head=2)
    model = GPT2LMHeadModel(config)
    first = int(model.generate(ember.tensor([[1, 2]]), max_new_tokens=1)[0, -1])
    out = model.generate(ember.tensor([[1, 2]]), max_new_tokens=5, eos_token_id=first)
    assert out.shape[1] == 3
    loss, _ = model(ember.tensor([[1, 2, 3]]), labels=ember.tensor([[1, 2, 3]]))
    assert abs(float(loss) - np.log(20)) < 0.5


def test_config_roundtrip_keeps_unknown_fields(tmp_path):
    config = BertConfig.from_pretrained(FIXTURES / "bert_cls")
    assert config.num_labels == 3 and config.extra["id2label"]["2"] == "LABEL_2"
    config.save_pretrained(tmp_path)
    assert BertConfig.from_pretrained(tmp_path).to_dict() == config.to_dict()


def test_bert_checkpoint_with_gamma_beta_layer_norm_names(tmp_path):
    # the original Google BERT conversions store LayerNorm.weight/bias as gamma/beta
    state = ember.load(FIXTURES / "bert" / "model.safetensors")
    renamed = {
        k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        ): v
        for k, v in state.items()
    }
    assert sum(k.endswith(".gamma") for k in renamed) > 0
    folder = tmp_path / "old-bert"
    folder.mkdir()
    (folder / "config.json").write_text((FIXTURES / "bert" / "config.json").read_text())
    ember.save(renamed, folder / "model.safetensors")
    model = AutoModel.from_pretrained(folder)
    with ember.no_grad():
        hidden, _ = model(*bert_inputs())
    np.testing.assert_allclose(hidden.numpy(), EXPECTED["bert_last_hidden_state"], atol=1e-4)
