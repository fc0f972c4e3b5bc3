"""The benchmark models, written once against the PyTorch API and built with either library
(``lib`` is ``ember`` or ``torch``), so both run the same code."""

from __future__ import annotations


def mlp(lib):
    """784-512-512-10 MLP."""
    nn = lib.nn
    return nn.Sequential(
        nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
    )


def convnet(lib):
    """Two conv-bn-relu-pool blocks on 32x32 RGB, then a linear classifier."""
    nn = lib.nn

    def block(cin, cout):
        return [
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    return nn.Sequential(
        *block(3, 32), *block(32, 64), *block(64, 128), nn.Flatten(), nn.Linear(128 * 4 * 4, 10)
    )


def gpt(lib, vocab=1024, d=256, heads=4, layers=4, seq=128):
    """A GPT-style decoder from core layers with F.scaled_dot_product_attention."""
    nn, F = lib.nn, lib.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            q = q.view(b, t, heads, d // heads).transpose(1, 2)  # (B, heads, T, head_dim)
            k = k.view(b, t, heads, d // heads).transpose(1, 2)
            v = v.view(b, t, heads, d // heads).transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
            return x + self.out(F.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)
            self.blocks = nn.ModuleList(Block() for _ in range(layers))
            self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)

        def forward(self, idx):
            t = idx.shape[1]
            x = self.tok(idx) + self.pos(lib.arange(t, device=idx.device))
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.ln(x))

    return GPT()


class Flat:
    """Wrap a GPT so the loss sees (B*T, vocab) logits, built lazily per library."""

    def __new__(cls, lib, model):
        class FlatLogits(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.m = model

            def forward(self, idx):
                out = self.m(idx)
                return out.reshape(-1, out.shape[-1])

        return FlatLogits()


def copy_weights(src, dst) -> None:
    """Copy torch module weights into the ember twin (same state_dict keys)."""
    import numpy as np

    import ember

    sd = {k: ember.tensor(np.array(v.detach().numpy())) for k, v in src.state_dict().items()}
    dst.load_state_dict(sd)
